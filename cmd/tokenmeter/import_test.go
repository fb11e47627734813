package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/importer"
)

// transcriptLine is a final Claude Code transcript line for a response.
func transcriptLine(msgID, requestID string, at time.Time, input, output int64) string {
	return fmt.Sprintf(`{"parentUuid":null,"isSidechain":false,"userType":"external","cwd":"/home/u/app","sessionId":"sess-1","version":"2.0.14","type":"assistant",`+
		`"message":{"model":"claude-sonnet-4-5-20250929","id":%q,"type":"message","role":"assistant","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn",`+
		`"usage":{"input_tokens":%d,"output_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}},"requestId":%q,"uuid":"u-%s","timestamp":%q}`+"\n",
		msgID, input, output, requestID, msgID, at.UTC().Format("2006-01-02T15:04:05.000Z"))
}

// TestImportAlongsideGateway sends calls through the gateway, then writes
// the transcript Claude Code would have written for them plus one call that
// bypassed the gateway: serve --import and a later `tokenmeter import` add
// only the bypassing call (G2).
func TestImportAlongsideGateway(t *testing.T) {
	root := t.TempDir()
	projects := filepath.Join(root, "projects", "-home-u-app")
	os.MkdirAll(projects, 0o755)
	t.Setenv("CLAUDE_CONFIG_DIR", root)
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, func(s *Serve) { s.Config.Import = []string{"claude-code"} })

	var transcript strings.Builder
	for i := range 3 {
		resp, body := post(t, gw.URL()+"/anthropic/v1/messages", map[string]string{"x-api-key": "sk-ant-test"},
			fmt.Sprintf(`{"model":"claude-sonnet-4-5-20250929","max_tokens":100,"messages":[{"role":"user","content":"call %d [[fake output=%d]]"}]}`, i, 10+i))
		if resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
		var msg struct {
			ID    string `json:"id"`
			Usage struct {
				Input  int64 `json:"input_tokens"`
				Output int64 `json:"output_tokens"`
			} `json:"usage"`
		}
		json.Unmarshal(body, &msg)
		ev := gw.waitCompleted(t, resp.Header.Get("X-Tokenmeter-Request-Id"))
		if ev.UpstreamRequestID == "" || ev.UpstreamRequestID != resp.Header.Get("Request-Id") {
			t.Fatalf("call %d: ledger upstream id %q, response request-id %q", i, ev.UpstreamRequestID, resp.Header.Get("Request-Id"))
		}
		transcript.WriteString(transcriptLine(msg.ID, ev.UpstreamRequestID, ev.Time, msg.Usage.Input, msg.Usage.Output))
	}
	transcript.WriteString(transcriptLine("msg_direct", "req_direct", time.Now(), 5, 7))
	if err := os.WriteFile(filepath.Join(projects, "sess-1.jsonl"), []byte(transcript.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// serve --import picks the file up.
	var events map[string]tokenmeter.Event
	for i := 0; i < 300; i++ {
		if events = gw.completed(t); len(events) == 4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	bySource := map[tokenmeter.Source]int{}
	for _, ev := range events {
		bySource[ev.Source]++
	}
	if bySource[tokenmeter.SourceProxy] != 3 || bySource[tokenmeter.SourceClaudeCode] != 1 {
		t.Fatalf("ledger holds %v calls by source, want 3 proxy and 1 claude-code\nlogs:\n%s", bySource, gw.logs)
	}
	if imp := events["claude-code:msg_direct"]; imp.Usage.OutputTokens != 7 || imp.Project != "/home/u/app" || imp.Session != "sess-1" || !imp.CostKnown {
		t.Errorf("imported call: %+v", imp)
	}

	// A one-off import of the same logs, into the same ledger, adds nothing.
	stdout, stderr, err := run(t, "import", "claude-code", "--dir", filepath.Join(root, "projects"), "--data", gw.Config.Data, "--json")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	var st importer.Stats
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("import --json: %v: %s", err, stdout)
	}
	if st.Added != 0 || st.Recorded != 0 || st.Unchanged != 1 {
		t.Errorf("second import: %+v", st)
	}
	if n := len(gw.completed(t)); n != 4 {
		t.Errorf("ledger holds %d calls after the second import, want 4", n)
	}
}

func TestImportCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "projects")
	os.MkdirAll(filepath.Join(dir, "p"), 0o755)
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	os.WriteFile(filepath.Join(dir, "p", "s.jsonl"), []byte(transcriptLine("m1", "r1", at, 1, 2)+"{not json\n"+transcriptLine("m2", "r2", at, 3, 4)), 0o644)
	data := t.TempDir()

	stdout, stderr, err := run(t, "import", "claude-code", "--dir", dir, "--data", data)
	var ex *exitError
	if !errors.As(err, &ex) || ex.code != ExitWarnings {
		t.Fatalf("import with a bad line: err %v, want exit %d", err, ExitWarnings)
	}
	if !strings.Contains(stderr, "s.jsonl:2: not a JSON object") || !strings.Contains(stdout, "2 new") {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
	out, _, err := run(t, "report", "daily", "--data", data, "--tz", "UTC", "--json")
	if err != nil || !strings.Contains(out, `"output_tokens": 6`) {
		t.Errorf("report after import: %v\n%s", err, out)
	}
	// Nothing new: nothing read, clean exit.
	if stdout, _, err := run(t, "import", "claude-code", "--dir", dir, "--data", data); err != nil || !strings.Contains(stdout, "0 new") {
		t.Errorf("second import: %v %q", err, stdout)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"import"}, "import: name the logs: claude-code or codex"},
		{[]string{"import", "cursor"}, `unknown log kind "cursor"`},
		{[]string{"import", "claude-code", "--dir", filepath.Join(dir, "missing"), "--data", data}, "not a readable directory"},
	} {
		_, _, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v, want %q", tt.args, err, tt.want)
		}
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLAUDE_CONFIG_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	if _, _, err := run(t, "import", "claude-code", "--data", data); err == nil || !strings.Contains(err.Error(), "no claude-code logs found") {
		t.Errorf("import with no logs anywhere: %v", err)
	}
}

// TestImportMessages: copies of a call within the files of a first import
// are "duplicates", not "already imported"; an import that finds no files
// says so.
func TestImportMessages(t *testing.T) {
	data := t.TempDir()
	logs := t.TempDir()
	at := time.Now().Add(-time.Hour)
	line := transcriptLine("msg_1", "req_1", at, 10, 5)
	for _, name := range []string{"a.jsonl", "b.jsonl"} { // a resumed session copies the call
		if err := os.WriteFile(filepath.Join(logs, name), []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := run(t, "import", "claude-code", "--dir", logs, "--data", data)
	if err != nil || !strings.Contains(out, "1 new, 1 duplicates (copies of calls counted once)") || strings.Contains(out, "already imported") {
		t.Errorf("first import: %v\n%s", err, out)
	}
	empty := t.TempDir()
	_, stderr, err := run(t, "import", "codex", "--dir", empty, "--data", data)
	if err != nil || !strings.Contains(stderr, "tokenmeter: warning: no codex log files in "+empty+": nothing was imported") {
		t.Errorf("import of an empty directory: %v; stderr %q", err, stderr)
	}
}
