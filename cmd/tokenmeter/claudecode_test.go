package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// claudeCodeTimeout bounds one `claude -p` run; a run takes about half a
// second against the fake upstream.
const claudeCodeTimeout = 2 * time.Minute

// TestClaudeCodeEndToEnd runs the real Claude Code CLI through the gateway
// against fake-upstream and checks that the ledger holds exactly the calls
// the upstream served, that every response in Claude Code's transcripts is
// one of them (its requestId is the upstream request id the gateway
// stored), and that importing those transcripts adds nothing (G2).
func TestClaudeCodeEndToEnd(t *testing.T) {
	bin := os.Getenv("TOKENMETER_TEST_CLAUDE_CODE")
	if bin == "" {
		t.Skip("TOKENMETER_TEST_CLAUDE_CODE (path to a claude executable) is not set; .ci/run installs one")
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("TOKENMETER_TEST_CLAUDE_CODE=%s: %v", bin, err)
	}
	up, observed := newObservedUpstream(t)
	gw := startGateway(t, up.URL, nil)
	cc := &claudeCode{bin: bin, home: t.TempDir(), tmp: t.TempDir(), baseURL: gw.URL() + "/anthropic"}

	// Three prompts, none of which asks for a tool: a plain one; one with
	// cache usage on another model, printed as JSON; and one continuing
	// the second's session with reasoning, so that the reply has a
	// thinking block and Claude Code writes two transcript lines for it.
	plainDir, sessionDir := t.TempDir(), t.TempDir()
	out := cc.run(t, plainDir, "-p", "Say hi.")
	if got, want := strings.TrimSpace(string(out)), fakeupstream.OutputText(fakeupstream.DefaultOutputTokens); got != want {
		t.Errorf("claude -p printed %q, want the fake's reply %q", got, want)
	}
	out = cc.run(t, sessionDir, "-p", "Remember this. [[fake output=5 cache_read=100 cache_write_5m=20 cache_write_1h=30]]",
		"--model", "haiku", "--output-format", "json")
	var result struct {
		Result  string `json:"result"`
		IsError bool   `json:"is_error"`
	}
	if err := json.Unmarshal(out, &result); err != nil || result.IsError || result.Result != fakeupstream.OutputText(5) {
		t.Errorf("claude -p --output-format json printed %s (decode error %v); want a result %q that is not an error", out, err, fakeupstream.OutputText(5))
	}
	out = cc.run(t, sessionDir, "-p", "Think about it. [[fake output=3 reasoning=6]]", "--continue")
	if got, want := strings.TrimSpace(string(out)), fakeupstream.OutputText(3); got != want {
		t.Errorf("claude -p --continue printed %q, want %q", got, want)
	}
	const prompts = 3

	// The ledger against what the upstream served: one completed event per
	// call, same model, same usage.
	ledger := gw.completed(t)
	calls := observed.all()
	byUpstream := map[string]tokenmeter.Event{}
	for _, ev := range ledger {
		if ev.Outcome != tokenmeter.OutcomeOK || ev.UpstreamRequestID == "" || !ev.UsageKnown {
			t.Errorf("completed event %s: outcome %q (%s), upstream request id %q, usage known %v; want ok, an id, known usage",
				ev.RequestKey, ev.Outcome, ev.Reason, ev.UpstreamRequestID, ev.UsageKnown)
		}
		byUpstream[ev.UpstreamRequestID] = ev
	}
	if len(ledger) != len(calls) || len(byUpstream) != len(calls) {
		t.Errorf("ledger has %d completed events (%d upstream ids) for %d calls the upstream served: %+v", len(ledger), len(byUpstream), len(calls), calls)
	}
	messages := 0
	for _, c := range calls {
		t.Logf("Claude Code called %s %s: model %s, stream %v, status %d, usage %+v", c.Method, c.Path, c.Model, c.Stream, c.Status, c.Usage)
		if c.Method != "POST" || c.Path != "/v1/messages" {
			t.Errorf("Claude Code called %s %s; only POST /v1/messages was expected (update docs/claude-code.md)", c.Method, c.Path)
			continue
		}
		messages++
		ev, ok := byUpstream[c.RequestID]
		if !ok {
			t.Errorf("call %s (%s) is missing from the ledger", c.RequestID, c.Model)
			continue
		}
		if ev.Endpoint != c.Path || ev.Model != c.Model || ev.Stream != c.Stream || ev.Status != c.Status {
			t.Errorf("call %s recorded as %s model %q stream %v status %d; upstream served %s model %q stream %v status %d",
				c.RequestID, ev.Endpoint, ev.Model, ev.Stream, ev.Status, c.Path, c.Model, c.Stream, c.Status)
		}
		if diff := cmp.Diff(c.Usage, ev.Usage); diff != "" {
			t.Errorf("call %s: ledger usage differs from the upstream's (-upstream +ledger):\n%s", c.RequestID, diff)
		}
	}
	if messages != prompts {
		t.Errorf("Claude Code made %d /v1/messages calls for %d prompts, want one each", messages, prompts)
	}

	// Claude Code's own record: every response line names a call the
	// gateway recorded, with the same model and usage, and every recorded
	// call is in the transcripts.
	projects := filepath.Join(cc.home, ".claude", "projects")
	responses := readTranscripts(t, projects)
	seen := map[string]bool{}
	for _, r := range responses {
		seen[r.requestID] = true
		ev, ok := byUpstream[r.requestID]
		if !ok {
			t.Errorf("%s: response %s has requestId %q, which is no upstream_request_id in the ledger", r.where, r.messageID, r.requestID)
			continue
		}
		if r.model != ev.Model {
			t.Errorf("%s: transcript model %q, ledger %q", r.where, r.model, ev.Model)
		}
		if diff := cmp.Diff(r.usage, ev.Usage); diff != "" {
			t.Errorf("%s: transcript usage differs from the ledger's (-transcript +ledger):\n%s", r.where, diff)
		}
	}
	for id := range byUpstream {
		if !seen[id] {
			t.Errorf("call %s is in the ledger but in no transcript", id)
		}
	}
	if len(responses) <= len(seen) {
		t.Errorf("transcripts have %d response lines for %d calls; want more lines than calls (the thinking reply is written as two lines)", len(responses), len(seen))
	}

	// Importing the transcripts, with the gateway still running, adds
	// nothing: every response is a call the gateway recorded.
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"import", "claude-code", "--dir", projects, "--data", gw.Config.Data, "--json"}, strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		t.Fatalf("tokenmeter import claude-code: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	var summary struct {
		Added    *int `json:"events_added"`
		Recorded *int `json:"already_recorded"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &summary); err != nil || summary.Added == nil || summary.Recorded == nil {
		t.Fatalf("import --json printed %q (decode error %v); want events_added and already_recorded", &stdout, err)
	}
	t.Logf("import claude-code --json: %s", bytes.TrimSpace(stdout.Bytes()))
	if *summary.Added != 0 || *summary.Recorded != len(seen) {
		t.Errorf("import claude-code: events_added %d, already_recorded %d; want 0 and %d (the calls the gateway metered)\n%s",
			*summary.Added, *summary.Recorded, len(seen), &stdout)
	}
	if after := gw.completed(t); len(after) != len(ledger) {
		t.Errorf("after the import the ledger has %d completed events, before %d", len(after), len(ledger))
	}

	// The chain the gateway and the importer wrote together still verifies.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Close(ctx); err != nil {
		t.Errorf("close gateway: %v", err)
	}
	stdout.Reset()
	stderr.Reset()
	if err := Run(context.Background(), []string{"verify", "--data", gw.Config.Data}, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Errorf("tokenmeter verify after the import: %v\n%s%s", err, &stdout, &stderr)
	}
}

// observedUpstream collects the calls fake-upstream served.
type observedUpstream struct {
	mu    sync.Mutex
	calls []fakeupstream.Call
}

func newObservedUpstream(t *testing.T) (*httptest.Server, *observedUpstream) {
	t.Helper()
	o := &observedUpstream{}
	srv := httptest.NewServer(fakeupstream.New(fakeupstream.Options{Observe: func(c fakeupstream.Call) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.calls = append(o.calls, c)
	}}))
	t.Cleanup(srv.Close)
	return srv, o
}

func (o *observedUpstream) all() []fakeupstream.Call {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]fakeupstream.Call(nil), o.calls...)
}

// claudeCode runs the claude executable bin with its own HOME and TMPDIR
// and nothing else from the test's environment, pointed at the gateway.
type claudeCode struct {
	bin, home, tmp, baseURL string
}

// run runs claude with args in dir and returns its standard output. Claude
// Code needs no configuration files in HOME for -p: it creates
// ~/.claude.json and ~/.claude/ itself, and -p skips the trust dialog.
func (cc *claudeCode) run(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), claudeCodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cc.bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + cc.home,
		"TMPDIR=" + cc.tmp,
		"ANTHROPIC_BASE_URL=" + cc.baseURL,
		"ANTHROPIC_API_KEY=sk-ant-api03-claude-code-e2e",
		// No telemetry, error reports, update checks or connection warm-up
		// (HEAD /api/hello): only the calls a prompt needs.
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("claude %s (in %s, after %v): %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), dir, time.Since(start).Round(time.Millisecond), err, &stdout, &stderr)
	}
	t.Logf("claude %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return stdout.Bytes()
}

// transcriptResponse is one assistant line of a Claude Code transcript.
type transcriptResponse struct {
	where                       string // file:line
	requestID, messageID, model string
	usage                       tokenmeter.Usage
}

// readTranscripts returns the assistant lines of every transcript under
// dir. API-error lines fail the test: no prompt here should get one.
func readTranscripts(t *testing.T, dir string) []transcriptResponse {
	t.Helper()
	var out []transcriptResponse
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".jsonl") {
			return err
		}
		files++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 64<<20)
		for n := 1; sc.Scan(); n++ {
			var line struct {
				Type      string `json:"type"`
				Subtype   string `json:"subtype"`
				RequestID string `json:"requestId"`
				Message   struct {
					ID    string `json:"id"`
					Model string `json:"model"`
					Usage struct {
						InputTokens   int64 `json:"input_tokens"`
						OutputTokens  int64 `json:"output_tokens"`
						CacheRead     int64 `json:"cache_read_input_tokens"`
						CacheCreation struct {
							Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
							Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
						} `json:"cache_creation"`
						OutputDetails struct {
							Thinking int64 `json:"thinking_tokens"`
						} `json:"output_tokens_details"`
					} `json:"usage"`
				} `json:"message"`
			}
			where := filepath.Base(path) + ":" + strconv.Itoa(n)
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Errorf("%s: not JSON: %v", where, err)
				continue
			}
			switch {
			case line.Type == "system" && line.Subtype == "api_error":
				t.Errorf("%s: Claude Code logged an API error: %s", where, sc.Bytes())
			case line.Type == "assistant":
				u := line.Message.Usage
				out = append(out, transcriptResponse{
					where: where, requestID: line.RequestID, messageID: line.Message.ID, model: line.Message.Model,
					usage: tokenmeter.Usage{
						InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CacheReadTokens: u.CacheRead,
						CacheWrite5mTokens: u.CacheCreation.Ephemeral5m, CacheWrite1hTokens: u.CacheCreation.Ephemeral1h,
						ReasoningTokens: u.OutputDetails.Thinking,
					},
				})
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatalf("read transcripts under %s: %v", dir, err)
	}
	if files == 0 || len(out) == 0 {
		t.Fatalf("found %d transcripts with %d responses under %s; Claude Code wrote none", files, len(out), dir)
	}
	return out
}
