package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	openaisdk "github.com/openai/openai-go/v3"
	openaiopt "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// codexTimeout bounds one `codex exec` run; a run takes about a second
// against the fake upstream.
const codexTimeout = 2 * time.Minute

// codexKey is the API key Codex is given: it passes through the gateway and
// is recorded as its hash.
const codexKey = "sk-test-codex-e2e"

// TestCodexEndToEnd runs the real Codex CLI (TOKENMETER_TEST_CODEX, pinned
// by .ci/run) through the gateway against fake-upstream, over the
// Responses WebSocket (the built-in provider with openai_base_url, Codex's
// default) and over HTTPS (a custom provider with wire_api "responses"),
// then imports Codex's own session files. For each transport: every call
// the upstream served is in the ledger once with the upstream's model and
// usage; the tokens Codex printed are what the ledger holds for its
// responses (Codex prints the total less cached input); every response in
// Codex's token_usage_record lines is a call the gateway recorded; and the
// import adds nothing: every call counted once (G2).
func TestCodexEndToEnd(t *testing.T) {
	bin := os.Getenv("TOKENMETER_TEST_CODEX")
	if bin == "" {
		t.Skip("TOKENMETER_TEST_CODEX (path to a codex executable) is not set; .ci/run installs one")
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("TOKENMETER_TEST_CODEX=%s: %v", bin, err)
	}
	for _, transport := range []string{"WebSocket", "HTTPS"} {
		t.Run(transport, func(t *testing.T) {
			up, observed := newObservedUpstream(t)
			gw := startGateway(t, up.URL, nil)
			cx := &codexCLI{bin: bin, home: t.TempDir(), codexHome: t.TempDir(), work: t.TempDir()}
			config := "openai_base_url = " + strconv.Quote(gw.URL()+"/openai/v1") + "\n"
			method := "GET" // a WebSocket message is served as one call on GET /v1/responses
			if transport == "HTTPS" {
				config = "model_provider = \"tokenmeter\"\n\n[model_providers.tokenmeter]\nname = \"tokenmeter\"\n" +
					"base_url = " + strconv.Quote(gw.URL()+"/openai/v1") + "\nenv_key = \"OPENAI_API_KEY\"\nwire_api = \"responses\"\n"
				method = "POST"
			}
			if err := os.WriteFile(filepath.Join(cx.codexHome, "config.toml"), []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}

			// Two runs, two sessions: a plain prompt, and one whose reply
			// reads from the prompt cache and reasons.
			printed := int64(0)
			for _, prompt := range []string{"Say hi.", "Say more. [[fake output=5 cache_read=100 reasoning=3]]"} {
				n, reply := cx.exec(t, prompt)
				printed += n
				if reply == "" {
					t.Errorf("codex exec %q printed no reply", prompt)
				}
			}

			// The ledger against what the upstream served.
			ledger := gw.completed(t)
			calls := observed.all()
			var served []fakeupstream.Call
			for _, c := range calls {
				t.Logf("Codex called %s %s: model %s, status %d, usage %+v, billed %+v", c.Method, c.Path, c.Model, c.Status, c.Usage, c.Billed)
				if c.Method != method || c.Path != "/v1/responses" {
					t.Errorf("Codex called %s %s; over %s only %s /v1/responses was expected (update docs/codex.md)", c.Method, c.Path, transport, method)
					continue
				}
				served = append(served, c)
			}
			if len(ledger) != len(served) {
				t.Errorf("ledger has %d completed events for %d calls the upstream served", len(ledger), len(served))
			}
			var billed, recorded tokenmeter.Usage
			for _, c := range served {
				billed = billed.Add(c.Billed) // fake-upstream's billing account
			}
			unmatched := map[string]tokenmeter.Event{}
			for k, ev := range ledger {
				if ev.Outcome != tokenmeter.OutcomeOK || !ev.UsageKnown || ev.Endpoint != "/v1/responses" {
					t.Errorf("completed event %s: outcome %q (%s), usage known %v, endpoint %s; want ok, known, /v1/responses",
						k, ev.Outcome, ev.Reason, ev.UsageKnown, ev.Endpoint)
				}
				if ev.Principal != tokenmeter.CredentialID(codexKey) {
					t.Errorf("completed event %s: principal %q, want the hash of Codex's API key", k, ev.Principal)
				}
				recorded = recorded.Add(ev.Usage)
				unmatched[k] = ev
			}
			for _, c := range served {
				found := ""
				for k, ev := range unmatched {
					if ev.Model == c.Model && ev.Usage == c.Usage {
						found = k
						break
					}
				}
				if found == "" {
					t.Errorf("upstream call %s (%s, %+v) has no completed event with its model and usage", c.RequestID, c.Model, c.Usage)
					continue
				}
				delete(unmatched, found)
			}
			if diff := cmp.Diff(billed, recorded); diff != "" {
				t.Errorf("ledger total differs from what the upstream billed (-billed +ledger):\n%s", diff)
			}
			if got := recorded.InputTokens + recorded.OutputTokens; got != printed {
				t.Errorf("Codex printed %d tokens used; the ledger holds %d uncached input + output", printed, got)
			}

			// Codex's own record: one token_usage_record per generating
			// response, naming the response id the upstream gave it.
			sessions := filepath.Join(cx.codexHome, "sessions")
			records := readCodexRecords(t, sessions)
			generating := 0
			for _, c := range served {
				if !c.Usage.IsZero() {
					generating++
				}
			}
			if len(records) != generating {
				t.Errorf("Codex wrote %d token_usage_record lines for %d responses that generated", len(records), generating)
			}
			for _, r := range records {
				found := false
				for _, c := range served {
					if r.responseID == "resp_"+strings.TrimPrefix(c.RequestID, "req_") {
						found = true
						if diff := cmp.Diff(c.Usage, r.usage); diff != "" {
							t.Errorf("%s: token_usage_record usage (-upstream +Codex):\n%s", r.where, diff)
						}
					}
				}
				if !found {
					t.Errorf("%s: response_id %q is no response the upstream served", r.where, r.responseID)
				}
			}

			// Importing the session files with the gateway running adds
			// nothing: every response is a call the gateway recorded.
			var stdout, stderr bytes.Buffer
			err := Run(context.Background(), []string{"import", "codex", "--dir", sessions, "--data", gw.Config.Data, "--json"}, strings.NewReader(""), &stdout, &stderr)
			if err != nil {
				t.Fatalf("tokenmeter import codex: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			}
			var summary struct {
				Added    *int `json:"events_added"`
				Recorded *int `json:"already_recorded"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &summary); err != nil || summary.Added == nil || summary.Recorded == nil {
				t.Fatalf("import --json printed %q (decode error %v); want events_added and already_recorded", &stdout, err)
			}
			t.Logf("import codex --json: %s", bytes.TrimSpace(stdout.Bytes()))
			if *summary.Added != 0 || *summary.Recorded != len(records) {
				t.Errorf("import codex: events_added %d, already_recorded %d; want 0 and %d (the responses the gateway metered)",
					*summary.Added, *summary.Recorded, len(records))
			}
			after := gw.completed(t)
			var total tokenmeter.Usage
			for _, ev := range after {
				total = total.Add(ev.Usage)
			}
			if len(after) != len(ledger) || total != recorded {
				t.Errorf("after the import the ledger has %d completed events totalling %+v; before %d totalling %+v", len(after), total, len(ledger), recorded)
			}
		})
	}
}

// codexCLI runs the codex executable with its own HOME and CODEX_HOME and
// nothing else from the test's environment.
type codexCLI struct {
	bin, home, codexHome, work string
}

// tokensUsed is the summary codex exec prints on standard error.
var tokensUsed = regexp.MustCompile(`(?m)^tokens used\s*\n\s*([0-9][0-9,]*)\s*$`)

// exec runs `codex exec --skip-git-repo-check prompt` and returns the
// tokens Codex says it used and the reply it printed.
func (cx *codexCLI) exec(t *testing.T, prompt string) (int64, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), codexTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cx.bin, "exec", "--skip-git-repo-check", prompt)
	cmd.Dir = cx.work
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + cx.home,
		"CODEX_HOME=" + cx.codexHome,
		// The built-in provider sends no credential for OPENAI_API_KEY
		// (only after `codex login --with-api-key`, or with CODEX_API_KEY);
		// a custom provider reads its env_key.
		"CODEX_API_KEY=" + codexKey,
		"OPENAI_API_KEY=" + codexKey,
	}
	cmd.Stdin = strings.NewReader("")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("codex exec %q (after %v): %v\nstdout:\n%s\nstderr:\n%s", prompt, time.Since(start).Round(time.Millisecond), err, &stdout, &stderr)
	}
	t.Logf("codex exec %q: %v", prompt, time.Since(start).Round(time.Millisecond))
	m := tokensUsed.FindSubmatch(stderr.Bytes())
	if m == nil {
		t.Fatalf("codex exec %q printed no \"tokens used\":\n%s", prompt, &stderr)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(string(m[1]), ",", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n, strings.TrimSpace(stdout.String())
}

// codexRecord is one token_usage_record line of a Codex session file.
type codexRecord struct {
	where, responseID string
	usage             tokenmeter.Usage // in tokenmeter's categories
}

// readCodexRecords returns the token_usage_record lines of every session
// file under dir.
func readCodexRecords(t *testing.T, dir string) []codexRecord {
	t.Helper()
	var out []codexRecord
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
				Type    string `json:"type"`
				Payload struct {
					ResponseID string `json:"response_id"`
					Usage      struct {
						Input     int64 `json:"input_tokens"`
						Cached    int64 `json:"cached_input_tokens"`
						Output    int64 `json:"output_tokens"`
						Reasoning int64 `json:"reasoning_output_tokens"`
					} `json:"usage"`
				} `json:"payload"`
			}
			where := filepath.Base(path) + ":" + strconv.Itoa(n)
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Errorf("%s: not JSON: %v", where, err)
				continue
			}
			if line.Type != "token_usage_record" {
				continue
			}
			u := line.Payload.Usage
			out = append(out, codexRecord{where: where, responseID: line.Payload.ResponseID, usage: tokenmeter.Usage{
				InputTokens: u.Input - u.Cached, CacheReadTokens: u.Cached, OutputTokens: u.Output, ReasoningTokens: u.Reasoning}})
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatalf("read sessions under %s: %v", dir, err)
	}
	if files == 0 {
		t.Fatalf("no session files under %s; Codex wrote none", dir)
	}
	return out
}

// TestResponsesWebSocketHardLimit: over the Responses WebSocket, through
// a real gateway and ledger, a hard token limit is held per response.create
// as for a POST: requests are admitted while their worst case fits, then
// refused on the socket with the transport's error message (status 429,
// the limit named, retry-after), the connection stays usable, and the
// upstream never bills more than the limit. A message whose cost cannot be
// reserved (response.steer) is refused with 403 under the limit.
func TestResponsesWebSocketHardLimit(t *testing.T) {
	data := t.TempDir()
	up, observed := newObservedUpstream(t)
	// serve creates the ledger; the limit is set before the first request,
	// which reads the limits fresh.
	gw := startGateway(t, up.URL, func(s *Serve) { s.Config.Data = data })
	if out, stderr, err := run(t, "limits", "set", "ws-day", "--data", data, "--scope", "global", "--metric", "tokens",
		"--max", "1000", "--window", "day", "--mode", "hard"); err != nil {
		t.Fatalf("limits set: %v %s %s", err, out, stderr)
	}
	client := openaisdk.NewClient(openaiopt.WithBaseURL(gw.URL()+"/openai/v1"), openaiopt.WithAPIKey("sk-test-ws-limit"), openaiopt.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := client.Responses.Connect(ctx, responses.ResponseConnectionOptions{})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer conn.Close()

	admitted, refused := 0, 0
	for i := 0; i < 10 && refused == 0; i++ {
		err := conn.Create(ctx, responses.ResponsesClientEventResponseCreateParam{
			Model:           "gpt-5.4",
			Input:           responses.ResponsesClientEventResponseCreateInputUnionParam{OfString: openaisdk.String("count [[fake output=300]]")},
			MaxOutputTokens: openaisdk.Int(300),
		})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		for {
			raw, err := conn.RecvRaw(ctx)
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			var ev struct {
				Type    string            `json:"type"`
				Status  int               `json:"status"`
				Error   map[string]any    `json:"error"`
				Headers map[string]string `json:"headers"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type == "response.completed" {
				admitted++
				break
			}
			if ev.Type == "error" {
				refused++
				if ev.Status != 429 || ev.Headers["x-tokenmeter-limit"] != "ws-day" || ev.Headers["retry-after"] == "" || ev.Error["code"] != "rate_limit_exceeded" {
					t.Errorf("refusal %s: want status 429, code rate_limit_exceeded, headers naming ws-day with retry-after", raw)
				}
				break
			}
		}
	}
	if admitted == 0 || refused != 1 {
		t.Fatalf("%d admitted, %d refused; want some admitted, then a refusal", admitted, refused)
	}

	// A steer adds input to a response; its cost cannot be reserved.
	if err := conn.SendRaw(ctx, json.RawMessage(`{"type":"response.steer","input":"more"}`)); err != nil {
		t.Fatal(err)
	}
	raw, err := conn.RecvRaw(ctx)
	if err != nil || !strings.Contains(string(raw), `"status":403`) {
		t.Errorf("response.steer under a hard limit answered %s (%v), want an error message with status 403", raw, err)
	}

	var billed, recorded int64
	n := 0
	for _, c := range observed.all() {
		billed += c.Billed.InputTokens + c.Billed.OutputTokens + c.Billed.CacheReadTokens
		n++
	}
	for _, ev := range gw.completed(t) {
		recorded += ev.Usage.InputTokens + ev.Usage.OutputTokens + ev.Usage.CacheReadTokens
	}
	if n != admitted || billed != recorded || billed > 1000 {
		t.Errorf("upstream served %d calls billing %d tokens, ledger %d; want %d calls, equal totals, at most the limit of 1000", n, billed, recorded, admitted)
	}
}
