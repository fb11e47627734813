package claudecode

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
)

// assistant returns a transcript line for one content block of a response.
func assistant(msgID, reqID string, sidechain bool, stop string, u string) string {
	sc := "false"
	if sidechain {
		sc = "true"
	}
	if stop == "" {
		stop = "null"
	} else {
		stop = `"` + stop + `"`
	}
	req := ""
	if reqID != "" {
		req = `"requestId":"` + reqID + `",`
	}
	return `{"parentUuid":"p","isSidechain":` + sc + `,"userType":"external","cwd":"/home/u/app","sessionId":"s1","version":"2.0.14","type":"assistant",` +
		`"message":{"model":"claude-sonnet-4-5-20250929","id":"` + msgID + `","type":"message","role":"assistant","content":[{"type":"text","text":"hello \"usage\" {"}],` +
		`"stop_reason":` + stop + `,"usage":` + u + `},` + req + `"uuid":"u-` + msgID + `","timestamp":"2026-11-20T10:00:01.500Z"}`
}

func parse(t *testing.T, lines []string, settled bool) ([]tokenmeter.Event, int64, []string) {
	t.Helper()
	p := Format{}.Open("/x/projects/-home-u-app/s1.jsonl", "")
	var warns []string
	off := int64(0)
	for i, l := range lines {
		if w := p.Line([]byte(l), int64(i+1), off); w != "" {
			warns = append(warns, w)
		}
		off += int64(len(l)) + 1
	}
	evs, resume, _ := p.End(off, settled)
	return evs, resume, warns
}

func TestParse(t *testing.T) {
	full := `{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":40,"ephemeral_1h_input_tokens":60},"output_tokens":250,"server_tool_use":{"web_search_requests":2,"web_fetch_requests":0},"service_tier":"standard"}`
	partial := strings.Replace(full, `"output_tokens":250`, `"output_tokens":3`, 1)
	want := tokenmeter.Usage{InputTokens: 10, OutputTokens: 250, CacheWrite5mTokens: 40, CacheWrite1hTokens: 60, CacheReadTokens: 1000, WebSearchRequests: 2}
	tests := []struct {
		name     string
		lines    []string
		settled  bool
		want     []tokenmeter.Usage
		keys     []string
		warnings int
		held     bool
	}{
		{"split response, last line final", []string{assistant("msg_A", "req_A", false, "", partial), assistant("msg_A", "req_A", false, "tool_use", full)}, false,
			[]tokenmeter.Usage{want}, []string{"claude-code:msg_A"}, 0, false},
		{"largest total wins whatever the order", []string{assistant("msg_A", "req_A", false, "end_turn", full), assistant("msg_A", "req_A", false, "", partial)}, true,
			[]tokenmeter.Usage{want}, []string{"claude-code:msg_A"}, 0, false},
		{"sidechain responses count", []string{assistant("msg_A", "req_A", true, "end_turn", full), assistant("msg_B", "req_B", false, "end_turn", full)}, true,
			[]tokenmeter.Usage{want, want}, []string{"claude-code:msg_A", "claude-code:msg_B"}, 0, false},
		{"no request id: keyed by message id", []string{assistant("msg_A", "", false, "", partial), assistant("msg_A", "", false, "end_turn", full)}, true,
			[]tokenmeter.Usage{want}, []string{"claude-code:msg_A"}, 0, false},
		{"no message id: keyed by request id", []string{assistant("", "req_A", false, "end_turn", full)}, true,
			[]tokenmeter.Usage{want}, []string{"claude-code:req:req_A"}, 0, false},
		{"still streaming: held back", []string{assistant("msg_B", "req_B", false, "end_turn", full), assistant("msg_A", "req_A", false, "", partial)}, false,
			[]tokenmeter.Usage{want}, []string{"claude-code:msg_B"}, 0, true},
		{"settled: the partial count is all there is", []string{assistant("msg_A", "req_A", false, "", partial)}, true,
			[]tokenmeter.Usage{{InputTokens: 10, OutputTokens: 3, CacheWrite5mTokens: 40, CacheWrite1hTokens: 60, CacheReadTokens: 1000, WebSearchRequests: 2}}, []string{"claude-code:msg_A"}, 0, false},
		{"api error and synthetic lines are not calls", []string{
			strings.Replace(assistant("msg_E", "req_E", false, "end_turn", full), `"type":"assistant"`, `"isApiErrorMessage":true,"type":"assistant"`, 1),
			strings.Replace(assistant("msg_S", "req_S", false, "end_turn", full), `claude-sonnet-4-5-20250929`, `<synthetic>`, 1),
			assistant("msg_Z", "req_Z", false, "end_turn", `{"input_tokens":0,"output_tokens":0}`),
		}, true, nil, nil, 0, false},
		{"lines without usage are skipped quietly", []string{`{"type":"user","message":{"role":"user","content":"hi"},"uuid":"u"}`, `{"type":"summary","summary":"x"}`, ``}, true, nil, nil, 0, false},
		{"garbage warns", []string{"\x00\x01binary", `{"type":"assistant","usage":`, `{"type":"assistant","message":{"id":"m","usage":{"input_tokens":-5}},"timestamp":"2026-11-20T10:00:00Z"}`,
			`{"type":"assistant","message":{"id":"m","usage":{"input_tokens":5}},"timestamp":"yesterday"}`, `{"type":"assistant","message":{"id":"m","usage":{"input_tokens":"5"}},"timestamp":"2026-11-20T10:00:00Z"}`}, true,
			nil, nil, 5, false},
		{"spaced JSON is read", []string{strings.ReplaceAll(strings.ReplaceAll(assistant("msg_A", "req_A", false, "end_turn", full), `":`, `": `), `,"`, `, "`)}, true,
			[]tokenmeter.Usage{want}, []string{"claude-code:msg_A"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, resume, warns := parse(t, tt.lines, tt.settled)
			var got []tokenmeter.Usage
			var keys []string
			for _, ev := range evs {
				got = append(got, ev.Usage)
				keys = append(keys, ev.RequestKey)
				if ev.Project != "/home/u/app" && len(tt.lines) > 0 {
					t.Errorf("project = %q, want /home/u/app", ev.Project)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.keys, keys); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			if len(warns) != tt.warnings {
				t.Errorf("warnings = %q, want %d", warns, tt.warnings)
			}
			end := int64(0)
			for _, l := range tt.lines {
				end += int64(len(l)) + 1
			}
			if held := resume < end; held != tt.held {
				t.Errorf("resume = %d of %d: held back %v, want %v", resume, end, held, tt.held)
			}
		})
	}
}

func TestEventFields(t *testing.T) {
	evs, _, _ := parse(t, []string{assistant("msg_A", "req_A", false, "end_turn", `{"input_tokens":1,"output_tokens":2}`)}, true)
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	ev := evs[0]
	if ev.Key != "claude-code:msg_A/completed" || ev.Source != tokenmeter.SourceClaudeCode || ev.Provider != "anthropic" ||
		ev.Model != "claude-sonnet-4-5-20250929" || ev.Session != "s1" || ev.UpstreamRequestID != "req_A" ||
		ev.Time.Format("2006-01-02T15:04:05.000Z07:00") != "2026-11-20T10:00:01.500Z" || !ev.UsageKnown || ev.Outcome != tokenmeter.OutcomeOK {
		t.Errorf("event = %+v", ev)
	}
}

func TestProgressCopy(t *testing.T) {
	inner := assistant("msg_SUB", "req_SUB", true, "end_turn", `{"input_tokens":7,"output_tokens":9}`)
	line := `{"type":"progress","sessionId":"s1","cwd":"/home/u/app","data":{"type":"agent_progress","message":` + inner + `},"uuid":"pp","timestamp":"2026-11-20T10:00:02.000Z"}`
	evs, _, warns := parse(t, []string{line}, true)
	if len(warns) != 0 || len(evs) != 1 || evs[0].RequestKey != "claude-code:msg_SUB" || evs[0].Usage.OutputTokens != 9 {
		t.Errorf("progress copy: events %+v, warnings %q", evs, warns)
	}
	// Other progress lines carry no usage.
	evs, _, _ = parse(t, []string{`{"type":"progress","data":{"type":"bash_progress","usage":{"input_tokens":5}},"timestamp":"2026-11-20T10:00:02.000Z"}`}, true)
	if len(evs) != 0 {
		t.Errorf("bash progress made events: %+v", evs)
	}
}

func TestDefaultDirs(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a", "projects"), 0o755)
	env := map[string]string{"CLAUDE_CONFIG_DIR": filepath.Join(root, "a") + ", " + filepath.Join(root, "b", "projects")}
	got := DefaultDirs(func(k string) string { return env[k] }, "/home/u")
	want := []string{filepath.Join(root, "a", "projects"), filepath.Join(root, "b", "projects")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CLAUDE_CONFIG_DIR (-want +got):\n%s", diff)
	}
	got = DefaultDirs(func(string) string { return "" }, "/home/u")
	want = []string{"/home/u/.config/claude/projects", "/home/u/.claude/projects"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestSessionAndProjectFromPath(t *testing.T) {
	for path, want := range map[string][2]string{
		"/r/projects/-home-u-app/abc.jsonl":                   {"abc", "-home-u-app"},
		"/r/projects/-home-u-app/agent-1234.jsonl":            {"agent-1234", "-home-u-app"},
		"/r/projects/-home-u-app/abc/subagents/agent-x.jsonl": {"abc", "-home-u-app"},
		"/elsewhere/-home-u-app/abc.jsonl":                    {"abc", "-home-u-app"},
	} {
		if s, p := sessionFromPath(path), projectFromPath(path); s != want[0] || p != want[1] {
			t.Errorf("%s: session %q project %q, want %q", path, s, p, want)
		}
	}
}

// FuzzLine feeds arbitrary lines to the parser: it must not panic, and
// every event it makes has non-negative counts and a key.
func FuzzLine(f *testing.F) {
	f.Add([]byte(assistant("msg_A", "req_A", false, "end_turn", `{"input_tokens":10,"output_tokens":250,"cache_creation":{"ephemeral_1h_input_tokens":5}}`)))
	f.Add([]byte(`{"type":"progress","data":{"type":"agent_progress","message":{"type":"assistant","message":{"id":"m","usage":{"input_tokens":1}},"timestamp":"2026-11-20T10:00:00Z"}}}`))
	f.Add([]byte(`{"type":"assistant","message":{"id":"m","usage":{"input_tokens":1e400}},"timestamp":"2026-11-20T10:00:00Z"}`))
	f.Add([]byte("\xff\xfe{\"usage\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := Format{}.Open("/x/projects/p/s.jsonl", "")
		for i, l := range bytes.Split(b, []byte{'\n'}) {
			p.Line(l, int64(i+1), 0)
		}
		evs, _, _ := p.End(int64(len(b)), true)
		for _, ev := range evs {
			u := ev.Usage
			if ev.RequestKey == "" || u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheWrite5mTokens < 0 || u.CacheWrite1hTokens < 0 ||
				u.CacheReadTokens < 0 || u.ReasoningTokens < 0 || u.WebSearchRequests < 0 || u.WebFetchRequests < 0 {
				t.Fatalf("bad event from %q: %+v", b, ev)
			}
		}
	})
}
