package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// The environment of the CLI's --server mode. The admin token is never a
// flag: a flag value lands in shell history and in ps.
const (
	EnvServer     = "TOKENMETER_SERVER"
	EnvAdminToken = "TOKENMETER_ADMIN_TOKEN"
)

// DefaultRemoteTimeout bounds each call to a remote gateway's admin API.
const DefaultRemoteTimeout = 10 * time.Second

// maxRemoteBody bounds an answer of the admin API that the CLI reads.
const maxRemoteBody = 64 << 20

// addServerFlag adds --server to a command that can run against a remote
// gateway's admin API.
func addServerFlag(fs *flag.FlagSet) {
	fs.String("server", "", "run against the gateway at `URL` (its /api, with the admin token from $"+EnvAdminToken+
		") instead of a local ledger; default $"+EnvServer)
}

// remote is a client of a gateway's admin API (docs/admin-api.md), for the
// commands given --server.
type remote struct {
	base   *url.URL
	token  string
	client *http.Client
}

// remoteFor returns the client for cmd's parsed flags, or nil when the
// command runs on the local data directory (see serverFor).
func remoteFor(cmd string, fs *flag.FlagSet) (*remote, error) {
	u, err := serverFor(cmd, fs)
	if u == nil || err != nil {
		return nil, err
	}
	token := strings.TrimSpace(os.Getenv(EnvAdminToken))
	if token == "" {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("%s: --server needs the gateway's admin token in $%s "+
			"(there is no flag for it: a flag's value would land in shell history and ps)", cmd, EnvAdminToken)}
	}
	return &remote{base: u, token: token, client: &http.Client{Timeout: DefaultRemoteTimeout}}, nil
}

// serverFor returns the gateway named by cmd's parsed flags: --server,
// else $TOKENMETER_SERVER unless a flag chose a local ledger (--data,
// --config, --database); nil for the local ledger.
func serverFor(cmd string, fs *flag.FlagSet) (*url.URL, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	server := ""
	if f := fs.Lookup("server"); f != nil {
		server = f.Value.String()
	}
	local := localLedgerChosen(set)
	switch {
	case set["server"] && local != "":
		return nil, &exitError{code: 2, msg: cmd + ": choose one of " + local + " and --server"}
	case !set["server"] && local != "":
		return nil, nil
	case !set["server"]:
		server = os.Getenv(EnvServer)
	}
	if server == "" {
		if set["server"] {
			return nil, &exitError{code: 2, msg: cmd + ": --server: empty URL"}
		}
		return nil, nil
	}
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("%s: --server %q: want the gateway's URL, like http://127.0.0.1:8787", cmd, server)}
	}
	if u.User != nil {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("%s: --server %s: put no credentials in the URL (the admin token goes in $%s)", cmd, u.Redacted(), EnvAdminToken)}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("%s: --server %s: want the gateway's URL without query or fragment", cmd, u.Redacted())}
	}
	return u, nil
}

// call sends method path?query with in as its JSON body (when not nil) and
// decodes a 2xx answer into out. Any other answer, and a failure to get
// one, is a one-line error naming cmd, never the token.
func (r *remote) call(ctx context.Context, cmd, method, path string, query url.Values, in, out any) error {
	u := *r.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawPath = ""
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %v", cmd, err)}
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	where := r.base.Redacted()
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			return &exitError{code: 1, msg: fmt.Sprintf("%s: no answer from the gateway at %s within %s", cmd, where, r.client.Timeout)}
		}
		return &exitError{code: 1, msg: r.clean(fmt.Sprintf("%s: cannot reach the gateway at %s: %v", cmd, where, err))}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteBody))
	if err != nil {
		return &exitError{code: 1, msg: r.clean(fmt.Sprintf("%s: read the answer of the gateway at %s: %v", cmd, where, err))}
	}
	if resp.StatusCode/100 != 2 {
		return &exitError{code: 1, msg: r.clean(cmd + ": " + apiMessage(resp, b, where))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: the gateway at %s answered %s %s with JSON this tokenmeter cannot read (%v); are both the same version?",
			cmd, where, method, path, err)}
	}
	return nil
}

// apiMessage turns an error answer of the admin API into one line.
func apiMessage(resp *http.Response, body []byte, where string) string {
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil {
		msg = e.Error.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	status := fmt.Sprintf("HTTP %d", resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Sprintf("the gateway at %s refused the admin token: %s (%s); check $%s", where, msg, status, EnvAdminToken)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Sprintf("the gateway at %s forbids this: %s (%s); $%s must hold the admin token, not a virtual key",
			where, msg, status, EnvAdminToken)
	case resp.StatusCode == http.StatusNotFound && e.Error.Type == "":
		return fmt.Sprintf("%s has no admin API here (%s); is it a tokenmeter gateway?", where, status)
	case resp.StatusCode >= 500:
		return fmt.Sprintf("the gateway at %s failed: %s (%s)", where, msg, status)
	}
	return fmt.Sprintf("%s (%s from %s)", msg, status, where)
}

// clean makes s one line of bounded length without the token.
func (r *remote) clean(s string) string {
	s = strings.ReplaceAll(s, r.token, "[admin token]")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// fromKeyJSON is the key that j, an answer of the admin API, describes, so
// that the local renderers print it.
func fromKeyJSON(j keyJSON) (tokenmeter.VirtualKey, error) {
	v := tokenmeter.VirtualKey{Name: j.Name, Prefix: j.Prefix, Project: j.Project}
	for _, f := range []struct {
		s   string
		dst *time.Time
	}{{j.Created, &v.Created}, {j.Expires, &v.Expires}, {j.Revoked, &v.Revoked}, {j.Rotated, &v.Rotated}} {
		if f.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, f.s)
		if err != nil {
			return v, fmt.Errorf("key %q: time %q from the gateway: %w", j.Name, f.s, err)
		}
		*f.dst = t.UTC()
	}
	return v, nil
}

// zoneParam is the tz parameter that asks the gateway for the zone loc,
// empty when loc has no IANA name (the gateway then uses its own).
func zoneParam(loc *time.Location) string {
	if n := loc.String(); n != "Local" {
		return n
	}
	return ""
}
