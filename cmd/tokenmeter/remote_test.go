package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// remoteEnv points --server commands at the admin token, and keeps a
// $TOKENMETER_SERVER of the caller's out of the local commands.
func remoteEnv(t *testing.T, token string) {
	t.Helper()
	t.Setenv(EnvAdminToken, token)
	t.Setenv(EnvServer, "")
}

// normJSON decodes b and drops the fields that depend on the instant it
// was computed at (generated_at; the active block's countdown and
// projection), so two runs a moment apart compare equal.
func normJSON(t *testing.T, what, b string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, b)
	}
	delete(m, "generated_at")
	if blk, ok := m["block"].(map[string]any); ok {
		delete(blk, "remaining_minutes")
		delete(blk, "projection")
		delete(blk, "burn_rate")
	}
	j, _ := json.MarshalIndent(m, "", "  ")
	return string(j)
}

// TestRemoteMatchesLocal: each command run with --server against a gateway
// prints what it prints on the gateway's data directory.
func TestRemoteMatchesLocal(t *testing.T) {
	gw, _, _ := adminGateway(t)
	data, srv := gw.Config.Data, gw.URL()
	remoteEnv(t, testAdminToken)
	for _, args := range [][]string{
		{"alice-day", "--scope", "key:alice", "--metric", "requests", "--max", "100", "--window", "day", "--tz", "UTC"},
		{"all-cost", "--scope", "global", "--metric", "cost_usd", "--max", "50", "--window", "month", "--tz", "Europe/Berlin"},
		{"block", "--scope", "global", "--metric", "tokens", "--max", "1000000", "--window", "5h-block", "--mode", "hard"},
	} {
		if _, stderr, err := run(t, append([]string{"limits", "set", "--data", data}, args...)...); err != nil {
			t.Fatalf("limits set %s: %v %s", args, err, stderr)
		}
	}

	for _, tc := range []struct {
		args []string
		json bool // compare as JSON, without the instant-dependent fields
	}{
		{args: []string{"keys", "list"}},
		{args: []string{"keys", "list", "--json"}},
		{args: []string{"report", "daily", "--json"}, json: true},
		{args: []string{"report", "daily", "--json", "--tz", "Europe/Berlin", "--by", "key"}, json: true},
		{args: []string{"report", "monthly", "--json", "--by", "project", "--since", "2000-01-01"}, json: true},
		{args: []string{"report", "daily", "--tz", "UTC"}},
		{args: []string{"report", "models", "--csv", "--tz", "UTC"}},
		{args: []string{"report", "session", "--json", "--tz", "UTC"}, json: true},
		{args: []string{"status", "--json"}, json: true},
		{args: []string{"status", "--json", "--tz", "Asia/Tokyo"}, json: true},
		{args: []string{"limits", "list", "--json"}},
		{args: []string{"limits", "list"}},
	} {
		name := strings.Join(tc.args, " ")
		want, stderr, err := run(t, append(tc.args, "--data", data)...)
		if err != nil {
			t.Fatalf("%s --data: %v %s", name, err, stderr)
		}
		got, stderr, err := run(t, append(tc.args, "--server", srv)...)
		if err != nil {
			t.Errorf("%s --server: %v %s", name, err, stderr)
			continue
		}
		if tc.json {
			got, want = normJSON(t, name+" --server", got), normJSON(t, name+" --data", want)
		}
		if got != want {
			t.Errorf("%s --server printed\n%s\nwant (as with --data)\n%s", name, got, want)
		}
	}

	// $TOKENMETER_SERVER stands for --server.
	t.Setenv(EnvServer, srv)
	want, _, _ := run(t, "keys", "list", "--json", "--data", data)
	if got, stderr, err := run(t, "keys", "list", "--json"); err != nil || got != want {
		t.Errorf("keys list --json with $%s: %v %s\n%s\nwant\n%s", EnvServer, err, stderr, got, want)
	}
}

// TestRemoteKeys: keys create, revoke and rotate with --server change the
// gateway's ledger and print what the local commands print.
func TestRemoteKeys(t *testing.T) {
	gw, _, _ := adminGateway(t)
	data, srv := gw.Config.Data, gw.URL()
	remoteEnv(t, testAdminToken)
	localKeys := func() map[string]keyJSON {
		t.Helper()
		out, stderr, err := run(t, "keys", "list", "--json", "--data", data)
		if err != nil {
			t.Fatalf("keys list: %v %s", err, stderr)
		}
		var l struct{ Keys []keyJSON }
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatal(err)
		}
		m := map[string]keyJSON{}
		for _, k := range l.Keys {
			m[k.Name] = k
		}
		return m
	}

	// create --json: the key, its secret, as in the ledger.
	out, stderr, err := run(t, "keys", "create", "--json", "--name", "carol", "--project", "mobile", "--expires", "2099-01-01", "--server", srv)
	if err != nil {
		t.Fatalf("keys create --server: %v %s", err, stderr)
	}
	var c keyJSON
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("keys create --json --server: %v\n%s", err, out)
	}
	c.Key = ""
	if l := localKeys()["carol"]; l != c || c.Project != "mobile" || c.Expires != "2099-01-01T00:00:00Z" {
		t.Errorf("keys create --json --server printed %+v; the ledger holds %+v", c, l)
	}

	// create (text): the local command's text, for another key and secret.
	secretRE := regexp.MustCompile(`tm-[A-Za-z0-9_-]+`)
	remote, stderr, err := run(t, "keys", "create", "--name", "dave", "--server", srv)
	if err != nil {
		t.Fatalf("keys create --server: %v %s", err, stderr)
	}
	local, _, err := run(t, "keys", "create", "--name", "erin", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	norm := func(s, name string) string {
		return secretRE.ReplaceAllString(strings.ReplaceAll(s, `"`+name+`"`, `"NAME"`), "tm-SECRET")
	}
	if norm(remote, "dave") != norm(local, "erin") {
		t.Errorf("keys create --server printed\n%s\nwant as keys create --data\n%s", remote, local)
	}
	if s := secretRE.FindString(remote); !strings.HasPrefix(s, localKeys()["dave"].Prefix) {
		t.Errorf("keys create --server: secret %q does not have the ledger's prefix %q", s, localKeys()["dave"].Prefix)
	}

	// revoke: the same line as the local command; the ledger says revoked.
	remote, stderr, err = run(t, "keys", "revoke", "carol", "--server", srv)
	if err != nil {
		t.Fatalf("keys revoke --server: %v %s", err, stderr)
	}
	local, _, _ = run(t, "keys", "revoke", "erin", "--data", data)
	if norm(remote, "carol") != norm(local, "erin") {
		t.Errorf("keys revoke --server printed %q; want as keys revoke --data %q", remote, local)
	}
	if st := localKeys()["carol"].Status; st != "revoked" {
		t.Errorf("carol after keys revoke --server: %s; want revoked", st)
	}

	// rotate --json: a new secret whose prefix the ledger holds.
	before := localKeys()["bob"].Prefix
	out, stderr, err = run(t, "keys", "rotate", "bob", "--json", "--server", srv)
	if err != nil {
		t.Fatalf("keys rotate --server: %v %s", err, stderr)
	}
	var r keyJSON
	json.Unmarshal([]byte(out), &r)
	if after := localKeys()["bob"].Prefix; after == before || !strings.HasPrefix(r.Key, after) || r.Prefix != after {
		t.Errorf("keys rotate --json --server: %s; ledger prefix %s (was %s)", out, after, before)
	}
	remote, _, err = run(t, "keys", "rotate", "dave", "--server", srv)
	if err != nil {
		t.Fatal(err)
	}
	createKey(t, data, "--name", "frank")
	local, _, _ = run(t, "keys", "rotate", "frank", "--data", data)
	if norm(remote, "dave") != norm(local, "frank") {
		t.Errorf("keys rotate --server printed\n%s\nwant as keys rotate --data\n%s", remote, local)
	}

	// The API's refusals are one-line errors with exit status 1.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "revoke", "nobody"}, `no key named "nobody" (HTTP 404 from http://`},
		{[]string{"keys", "revoke", "carol"}, "HTTP 409"},
		{[]string{"keys", "create", "--name", "alice"}, "HTTP 409"},
	} {
		_, _, err := run(t, append(tc.args, "--server", srv)...)
		checkRemoteError(t, strings.Join(tc.args, " "), err, 1, tc.want)
	}
}

// checkRemoteError checks that err ends the program with code and one line
// containing want, without the admin token.
func checkRemoteError(t *testing.T, what string, err error, code int, want string) {
	t.Helper()
	var ex *exitError
	if !errors.As(err, &ex) {
		t.Errorf("%s: error %v; want an exit status %d", what, err, code)
		return
	}
	if ex.code != code || !strings.Contains(ex.msg, want) || strings.Contains(ex.msg, "\n") ||
		strings.Contains(ex.msg, testAdminToken) || strings.Contains(ex.msg, "wrong-"+testAdminToken) {
		t.Errorf("%s: exit %d %q; want exit %d, one line containing %q, no token", what, ex.code, ex.msg, code, want)
	}
}

// TestRemoteErrors: a wrong or missing token, a virtual key, a failing
// gateway and the commands the API lacks give clear one-line errors.
func TestRemoteErrors(t *testing.T) {
	gw, alice, _ := adminGateway(t)
	srv := gw.URL()
	cmds := [][]string{
		{"keys", "list"}, {"keys", "create", "--name", "x"}, {"keys", "revoke", "alice"}, {"keys", "rotate", "alice"},
		{"report", "daily", "--json"}, {"status", "--json"}, {"limits", "list", "--json"},
	}
	remoteEnv(t, "wrong-"+testAdminToken)
	for _, c := range cmds {
		out, _, err := run(t, append(c, "--server", srv)...)
		checkRemoteError(t, strings.Join(c, " ")+" with a wrong token", err, 1, "refused the admin token")
		if out != "" {
			t.Errorf("%s with a wrong token printed %q", c, out)
		}
	}
	remoteEnv(t, alice)
	_, _, err := run(t, "keys", "list", "--server", srv)
	checkRemoteError(t, "keys list with a virtual key", err, 1, "HTTP 403")
	if err != nil && strings.Contains(err.Error(), alice) {
		t.Errorf("keys list with a virtual key: the error %q shows the key", err)
	}

	remoteEnv(t, "")
	for _, c := range cmds {
		_, _, err := run(t, append(c, "--server", srv)...)
		checkRemoteError(t, strings.Join(c, " ")+" without a token", err, 2, EnvAdminToken)
		if err != nil && !strings.Contains(err.Error(), "shell history") {
			t.Errorf("%s without a token: %q; want the reason there is no flag", c, err)
		}
	}

	remoteEnv(t, testAdminToken)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"limits", "set", "x", "--scope", "global", "--metric", "tokens", "--max", "1", "--window", "day", "--reset-at", "09:10", "--server", srv}, "--reset-at"},
		{[]string{"keys", "list", "--server", srv, "--data", t.TempDir()}, "choose one of --data and --server"},
		{[]string{"status", "--server", "127.0.0.1:8787"}, "want the gateway's URL"},
		{[]string{"report", "daily", "--server", "http://admin:pw@127.0.0.1:1"}, "no credentials in the URL"},
	} {
		_, _, err := run(t, tc.args...)
		checkRemoteError(t, strings.Join(tc.args, " "), err, 2, tc.want)
	}

	// A gateway that fails, and one that is not there.
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error": {"type": "internal", "message": "internal error\nsee the log"}}`))
	}))
	defer fail.Close()
	_, _, err = run(t, "status", "--server", fail.URL)
	checkRemoteError(t, "status against a failing gateway", err, 1, "failed: internal error see the log (HTTP 500)")
	notAPI := httptest.NewServer(http.NotFoundHandler())
	defer notAPI.Close()
	_, _, err = run(t, "limits", "list", "--server", notAPI.URL)
	checkRemoteError(t, "limits list against a non-gateway", err, 1, "no admin API")
	fail.Close()
	_, _, err = run(t, "report", "daily", "--server", fail.URL)
	checkRemoteError(t, "report against a closed port", err, 1, "cannot reach the gateway")
}

// TestRemoteLimitsSetDelete: limits set and delete with --server change
// the gateway's limits as they would on its data directory.
func TestRemoteLimitsSetDelete(t *testing.T) {
	gw, _, _ := adminGateway(t)
	data, srv := gw.Config.Data, gw.URL()
	remoteEnv(t, testAdminToken)
	defs := [][]string{
		{"--scope", "key:alice", "--metric", "requests", "--max", "100", "--window", "day", "--tz", "UTC"},
		{"--scope", "global", "--metric", "cost_usd", "--max", "12.5", "--window", "month", "--tz", "Europe/Berlin", "--mode", "hard"},
		{"--scope", "model:claude-sonnet-4-5", "--metric", "tokens", "--max", "1000000", "--window", "rolling:90m"},
	}
	for i, def := range defs {
		if _, stderr, err := run(t, append([]string{"limits", "set", fmt.Sprintf("remote%d", i), "--server", srv}, def...)...); err != nil {
			t.Fatalf("limits set --server %s: %v %s", def, err, stderr)
		}
		if _, stderr, err := run(t, append([]string{"limits", "set", fmt.Sprintf("local%d", i), "--data", data}, def...)...); err != nil {
			t.Fatalf("limits set --data %s: %v %s", def, err, stderr)
		}
	}
	out, _, err := run(t, "limits", "list", "--json", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Limits []map[string]any `json:"limits"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	byName := map[string]map[string]any{}
	for _, l := range got.Limits {
		name := l["name"].(string)
		delete(l, "name")
		delete(l, "created")
		byName[name] = l
	}
	for i := range defs {
		r, l := byName[fmt.Sprintf("remote%d", i)], byName[fmt.Sprintf("local%d", i)]
		if r == nil || fmt.Sprint(r) != fmt.Sprint(l) {
			t.Errorf("limit set with --server:\n%v\nwant as set with --data:\n%v", r, l)
		}
	}
	if _, stderr, err := run(t, "limits", "delete", "remote1", "--server", srv); err != nil {
		t.Fatalf("limits delete --server: %v %s", err, stderr)
	}
	_, _, err = run(t, "limits", "delete", "remote1", "--server", srv)
	checkRemoteError(t, "limits delete of a deleted limit", err, 1, "no limit named")
	if out, _, _ := run(t, "limits", "list", "--data", data); strings.Contains(out, "remote1") {
		t.Errorf("limits list after delete --server still shows remote1:\n%s", out)
	}
}
