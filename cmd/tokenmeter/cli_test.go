package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/report"
	_ "modernc.org/sqlite"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// TestReportWhileServing runs report and verify against the data directory
// of a running gateway, then checks the totals against what was served.
func TestReportWhileServing(t *testing.T) {
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, nil)
	const calls = 7
	var last string
	for i := range calls {
		resp, _ := post(t, gw.URL()+"/anthropic/v1/messages", map[string]string{"X-Tokenmeter-Project": "proj-a"},
			fmt.Sprintf(`{"model":"claude-haiku-5-5","max_tokens":100,"messages":[{"role":"user","content":"[[fake output=10 cache_read=5 input=20]] %d"}]}`, i))
		last = resp.Header.Get(HeaderRequestIDForTest)
	}
	gw.waitCompleted(t, last)

	out, stderr, err := run(t, "report", "daily", "--json", "--by", "project", "--data", gw.Config.Data)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, stderr)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report --json output is not JSON: %v\n%s", err, out)
	}
	tot := rep.Totals
	if tot.Requests != calls || tot.InputTokens != 20*calls || tot.OutputTokens != 10*calls || tot.CacheReadInputTokens != 5*calls || tot.CostMicros <= 0 {
		t.Errorf("report totals %+v; want %d requests, %d input, %d output, %d cache read, a cost", tot, calls, 20*calls, 10*calls, 5*calls)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Key != "proj-a" {
		t.Errorf("rows %+v; want one row for project proj-a", rep.Rows)
	}
	for _, args := range [][]string{{"--csv"}, {"--tz", "UTC"}} {
		out, _, err := run(t, append([]string{"report", "models", "--data", gw.Config.Data}, args...)...)
		if err != nil || !strings.Contains(out, "claude-haiku-5-5") {
			t.Errorf("report models %s: %v\n%s", args, err, out)
		}
	}
	out, _, err = run(t, "verify", "--data", gw.Config.Data)
	if err != nil || !strings.Contains(out, "ledger OK") {
		t.Errorf("verify on a live ledger: %v\n%s", err, out)
	}
}

// TestVerifyCLI tampers with the database file and checks that verify
// fails with exit status 3, naming the event.
func TestVerifyCLI(t *testing.T) {
	for _, tc := range []struct{ name, sql, want string }{
		{"edit", `UPDATE events SET output_tokens = 1 WHERE seq = 4`, "event 4"},
		{"delete", `DELETE FROM events WHERE seq = 3`, "event 3"},
		// The head is recorded lazily while serving and exactly at Close,
		// so removing the newest events after a clean stop shows too.
		{"delete-last", `DELETE FROM events WHERE seq = (SELECT MAX(seq) FROM events)`, "removed from the end"},
		{"swap", `UPDATE events SET seq = -1 WHERE seq = 2; UPDATE events SET seq = 2 WHERE seq = 5; UPDATE events SET seq = 5 WHERE seq = -1`, "event 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, _ := newUpstream(t)
			gw := startGateway(t, up.URL, nil)
			var last string
			for range 3 {
				resp, _ := post(t, gw.URL()+"/anthropic/v1/messages", nil, `{"model":"claude-haiku-5-5","max_tokens":9,"messages":[]}`)
				last = resp.Header.Get(HeaderRequestIDForTest)
			}
			gw.waitCompleted(t, last)
			ctx := context.Background()
			gw.Close(ctx)
			raw, err := sql.Open("sqlite", "file:"+filepath.Join(gw.Config.Data, LedgerFile))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			out, _, err := run(t, "verify", "--data", gw.Config.Data)
			var ex *exitError
			if !errors.As(err, &ex) || ex.code != 3 || !strings.Contains(ex.msg, tc.want) {
				t.Errorf("verify after %s: err %v, out %q; want exit 3 naming %s", tc.name, err, out, tc.want)
			}
		})
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"report"}, "report: name the report: daily"},
		{[]string{"report", "hourly", "--data", dir}, `unknown report "hourly"`},
		{[]string{"report", "daily", "--data", dir}, "no ledger"},
		{[]string{"report", "daily", "extra"}, `report: unexpected argument "extra"`},
		{[]string{"report", "daily", "--since", "29/11/2026"}, "not YYYY-MM-DD"},
		{[]string{"report", "daily", "--tz", "Mars/Olympus"}, "unknown time zone"},
		{[]string{"report", "daily", "--json", "--csv"}, "one of --json and --csv"},
		{[]string{"report", "daily", "--bogus"}, "report: unknown flag --bogus"},
		{[]string{"verify", "--data", dir}, "no ledger"},
		{[]string{"serve", "--durability", "lax", "--data", dir}, "durability = lax"},
		{[]string{"serve", "--upstream", "nonsense", "--data", dir}, "NAME=URL"},
	} {
		_, stderr, err := run(t, tc.args...)
		msg := ""
		if err != nil {
			msg = message(err) + " " + stderr
		}
		if err == nil || !strings.Contains(msg, tc.want) {
			t.Errorf("tokenmeter %s: err %v (stderr %q); want an error mentioning %q", strings.Join(tc.args, " "), err, stderr, tc.want)
		}
	}
}

// TestServeListen: a bare port is a wrong command line, said before
// anything else (not the exposure warning and then a failure); an address
// on every interface gives clients a loopback URL, not http://[::]:PORT.
func TestServeListen(t *testing.T) {
	_, stderr, err := run(t, "serve", "--listen", "8787", "--data", t.TempDir())
	code, msg := exitStatus(err)
	if code != 2 || !strings.Contains(msg, `listen = "8787": want HOST:PORT, e.g. 127.0.0.1:8787 (or :8787 for every interface)`) ||
		strings.Contains(stderr, "without TLS") {
		t.Errorf("serve --listen 8787: exit %d %q, stderr %q", code, msg, stderr)
	}
	up, _ := newUpstream(t)
	url, stdout, _, stop := startServe(t, t.TempDir(), up.URL, "--listen", ":0")
	defer stop()
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.Contains(stdout.String(), "[::]") ||
		!strings.Contains(stdout.String(), "export ANTHROPIC_BASE_URL="+url+"/anthropic") {
		t.Errorf("serve --listen :0: URL %q, stdout:\n%s", url, stdout)
	}
}

// TestReportByTag: x-tokenmeter-tags is recorded and shown: report --by
// tag has a row per tag (a call with two tags in both), the totals count
// each call once, and the admin API's hourly view groups the same way.
func TestReportByTag(t *testing.T) {
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, func(s *Serve) { s.Config.AdminToken = testAdminToken })
	var last string
	for _, tags := range []string{"ci, nightly", "ci", ""} {
		h := map[string]string{}
		if tags != "" {
			h["X-Tokenmeter-Tags"] = tags
		}
		resp, _ := post(t, gw.URL()+"/anthropic/v1/messages", h,
			`{"model":"claude-haiku-5-5","max_tokens":100,"messages":[{"role":"user","content":"[[fake output=10 input=20]]"}]}`)
		last = resp.Header.Get(HeaderRequestIDForTest)
	}
	gw.waitCompleted(t, last)
	out, stderr, err := run(t, "report", "daily", "--by", "tag", "--json", "--data", gw.Config.Data)
	if err != nil {
		t.Fatalf("report --by tag: %v %s", err, stderr)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range rep.Rows {
		got[r.Key] += r.Requests
	}
	if want := map[string]int64{"ci": 2, "nightly": 1, "(none)": 1}; fmt.Sprint(got) != fmt.Sprint(want) || rep.Totals.Requests != 3 || rep.By != "tag" {
		t.Errorf("rows %v, totals %d requests, by %q; want %v and 3", got, rep.Totals.Requests, rep.By, want)
	}
	if out, _, err := run(t, "report", "daily", "--by", "tag", "--data", gw.Config.Data); err != nil || !strings.Contains(out, "nightly") {
		t.Errorf("report --by tag (table): %v\n%s", err, out)
	}
	if _, _, err := run(t, "report", "session", "--by", "tag", "--data", gw.Config.Data); err == nil || !strings.Contains(err.Error(), "cannot be grouped by tag") {
		t.Errorf("report session --by tag: %v", err)
	}
	req, _ := http.NewRequest("GET", gw.URL()+"/api/hourly?by=tag", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hourly report.Report
	if err := json.NewDecoder(resp.Body).Decode(&hourly); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/hourly?by=tag: %d %v", resp.StatusCode, err)
	}
	got = map[string]int64{}
	for _, r := range hourly.Rows {
		got[r.Key] += r.Requests
	}
	if got["ci"] != 2 || got["nightly"] != 1 || hourly.Totals.Requests != 3 {
		t.Errorf("/api/hourly?by=tag: rows %v, totals %d", got, hourly.Totals.Requests)
	}
}
