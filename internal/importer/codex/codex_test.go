package codex

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
)

// Session ids of the fixtures.
const (
	idBasic   = "0199b8a1-5c2e-7d30-9a41-3f0c2b7e4d11"
	idParent  = "0199c0d2-4e6f-7a81-b3c4-5d6e7f809a1b"
	idFork    = "0199c0d9-1a2b-7c3d-8e4f-a0b1c2d3e4f5"
	idSub     = "0199c0e4-7f80-7912-a3b4-c5d6e7f80912"
	idSeeded  = "0199c0f1-2345-7678-89ab-cdef01234567"
	idNoModel = "0199d1f0-0a0b-7c0d-8e0f-101112131415"
	idReset   = "0199e2a3-b4c5-7d6e-8f70-8192a3b4c5d6"

	idRecords     = "019a1b2c-3d4e-7f50-8a6b-7c8d9e0fa1b2"
	idRecordsFork = "019a1b2d-0000-7111-8222-933344455566"
)

// Fixture files in testdata/.
var (
	fileBasic   = "testdata/rollout-2025-10-06T09-14-02-" + idBasic + ".jsonl"
	fileParent  = "testdata/rollout-2025-10-06T10-00-00-" + idParent + ".jsonl"
	fileFork    = "testdata/rollout-2025-10-06T10-05-00-" + idFork + ".jsonl"
	fileSub     = "testdata/rollout-2025-10-06T10-05-20-" + idSub + ".jsonl"
	fileSeeded  = "testdata/rollout-2025-10-06T10-09-00-" + idSeeded + ".jsonl"
	fileNoModel = "testdata/rollout-2025-10-07T08-00-00-" + idNoModel + ".jsonl"
	fileReset   = "testdata/rollout-2025-09-12T16-20-00-" + idReset + ".jsonl"
	// Codex 0.169 logs: token_usage_record lines beside token_count.
	fileRecords     = "testdata/rollout-2026-12-08T00-40-41-" + idRecords + ".jsonl"
	fileRecordsFork = "testdata/rollout-2026-12-08T01-00-00-" + idRecordsFork + ".jsonl"
	fixtures        = []string{fileBasic, fileParent, fileFork, fileSub, fileSeeded, fileNoModel, fileReset, fileRecords, fileRecordsFork}
)

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte{'\n'})
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// feed opens path with state, hands it lines (each ending in '\n', the
// first at offset off, numbered from n+1) and ends the read.
func feed(path, state string, lines [][]byte, n, off int64) (events []tokenmeter.Event, next int64, newState string, warns []string) {
	p := Format{}.Open(path, state)
	for _, l := range lines {
		n++
		if w := p.Line(bytes.TrimSuffix(l, []byte{'\n'}), n, off); w != "" {
			warns = append(warns, w)
		}
		off += int64(len(l))
	}
	events, resume, newState := p.End(off, true)
	return events, resume, newState, warns
}

func readAll(t testing.TB, path string) []tokenmeter.Event {
	t.Helper()
	events, _, _, warns := feed(path, "", readLines(t, path), 0, 0)
	if len(warns) > 0 {
		t.Fatalf("%s: unexpected warnings %q", path, warns)
	}
	return events
}

// event is what a test states about an event; the rest is checked by
// checkInvariants.
type event struct {
	Key     string // after "codex:"
	Time    string
	Model   string
	Session string
	Project string
	Reason  string
	Usage   tokenmeter.Usage
}

func summarize(evs []tokenmeter.Event) []event {
	out := make([]event, 0, len(evs))
	for _, ev := range evs {
		out = append(out, event{
			Key: strings.TrimPrefix(ev.RequestKey, "codex:"), Time: ev.Time.Format(time.RFC3339Nano), Model: ev.Model,
			Session: ev.Session, Project: ev.Project, Reason: ev.Reason, Usage: ev.Usage,
		})
	}
	return out
}

func checkInvariants(t *testing.T, evs []tokenmeter.Event) {
	t.Helper()
	for _, ev := range evs {
		if ev.Key != tokenmeter.EventKey(ev.RequestKey, tokenmeter.KindCompleted) || ev.Kind != tokenmeter.KindCompleted ||
			ev.Source != tokenmeter.SourceCodex || ev.Provider != "openai" || ev.Outcome != tokenmeter.OutcomeOK ||
			!ev.UsageKnown || ev.RawUsage != nil || !strings.HasPrefix(ev.RequestKey, "codex:") || ev.Time.Location() != time.UTC {
			t.Errorf("event %s breaks the invariants: %+v", ev.RequestKey, ev)
		}
	}
}

func u(in, cached, out, reasoning int64) tokenmeter.Usage {
	return tokenmeter.Usage{InputTokens: in, CacheReadTokens: cached, OutputTokens: out, ReasoningTokens: reasoning}
}

// The per-response usage of the fixtures (uncached input, cached, output,
// reasoning), as the generator of the files chose it.
var (
	useP1, useP2, useP3 = u(12040, 0, 538, 384), u(907, 11904, 402, 192), u(336, 13568, 611, 448)
	useC1, useC2        = u(678, 12672, 1207, 896), u(586, 14336, 318, 128)
	useG1               = u(1188, 13824, 744, 512)
	useS1               = u(448, 13952, 505, 320)
)

func TestParse(t *testing.T) {
	const shop, api = "/home/ana/src/shop", "/home/ana/src/api"
	p := idParent + ":"
	tests := []struct {
		name string
		path string
		want []event
	}{
		{"heartbeat, re-emits, cached input, reasoning, model switch", fileBasic, []event{
			{idBasic + ":8123.0.412.256", "2025-10-06T09:14:16.302Z", "gpt-5-codex", idBasic, shop, "", u(8123, 0, 412, 256)},
			{idBasic + ":16790.7936.640.384", "2025-10-06T09:14:27.689Z", "gpt-5-codex", idBasic, shop, "", u(731, 7936, 228, 128)},
			{idBasic + ":26192.16512.1830.1344", "2025-10-06T09:20:58.93Z", "gpt-5", idBasic, shop, "", u(826, 8576, 1190, 960)},
			{idBasic + ":36213.25856.1925.1344", "2025-10-06T09:21:03.15Z", "gpt-5", idBasic, shop, "", u(677, 9344, 95, 0)},
		}},
		{"parent", fileParent, []event{
			{p + "12040.0.538.384", "2025-10-06T10:00:11.99Z", "gpt-5-codex", idParent, api, "", useP1},
			{p + "24851.11904.940.576", "2025-10-06T10:00:19.24Z", "gpt-5-codex", idParent, api, "", useP2},
			{p + "38755.25472.1551.1024", "2025-10-06T10:07:41.551Z", "gpt-5-codex", idParent, api, "", useP3},
		}},
		{"fork: copies keyed as the parent's originals", fileFork, []event{
			{p + "12040.0.538.384", "2025-10-06T10:05:00.415Z", "gpt-5-codex", idFork, api, "", useP1},
			{p + "24851.11904.940.576", "2025-10-06T10:05:00.415Z", "gpt-5-codex", idFork, api, "", useP2},
			{p + "38201.24576.2147.1472", "2025-10-06T10:05:15.102Z", "gpt-5-codex", idFork, api, "", useC1},
			{p + "53123.38912.2465.1600", "2025-10-06T10:05:31.77Z", "gpt-5-codex", idFork, api, "", useC2},
		}},
		{"sub-agent of the fork: root found through the copied session_meta lines", fileSub, []event{
			{p + "12040.0.538.384", "2025-10-06T10:05:20.203Z", "gpt-5-codex", idSub, api, "", useP1},
			{p + "24851.11904.940.576", "2025-10-06T10:05:20.203Z", "gpt-5-codex", idSub, api, "", useP2},
			{p + "38201.24576.2147.1472", "2025-10-06T10:05:20.203Z", "gpt-5-codex", idSub, api, "", useC1},
			{p + "53213.38400.2891.1984", "2025-10-06T10:05:29.4Z", "gpt-5-mini", idSub, api, "", useG1},
		}},
		{"fork by reference: the inherited total counts its last response only", fileSeeded, []event{
			{p + "38755.25472.1551.1024", "2025-10-06T10:09:00.104Z", "gpt-5", idSeeded, api, ReasonNoBaseline + "; " + ReasonFallbackModel, useP3},
			{p + "53155.39424.2056.1344", "2025-10-06T10:09:09.61Z", "gpt-5-codex", idSeeded, api, "", useS1},
		}},
		{"no turn_context: fallback model", fileNoModel, []event{
			{idNoModel + ":5120.0.210.64", "2025-10-07T08:00:06.3Z", "gpt-5", idNoModel, "/srv/ci/build-4411", ReasonFallbackModel, u(5120, 0, 210, 64)},
			{idNoModel + ":10540.5120.305.64", "2025-10-07T08:00:09.875Z", "gpt-5", idNoModel, "/srv/ci/build-4411", ReasonFallbackModel, u(300, 5120, 95, 0)},
		}},
		{"running total goes backwards: fresh start", fileReset, []event{
			{idReset + ":9000.0.300.128", "2025-09-12T16:20:09.1Z", "gpt-5", idReset, "/home/ana/notes", "", u(9000, 0, 300, 128)},
			{idReset + ":18500.8960.420.192", "2025-09-12T16:20:21.7Z", "gpt-5", idReset, "/home/ana/notes", "", u(540, 8960, 120, 64)},
			{idReset + ":19200.0.350.192", "2025-09-13T09:02:30.25Z", "gpt-5", idReset, "/home/ana/notes", ReasonReset, u(19200, 0, 350, 192)},
			{idReset + ":38900.19072.430.192", "2025-09-13T09:02:44.98Z", "gpt-5", idReset, "/home/ana/notes", "", u(628, 19072, 80, 0)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := readAll(t, tt.path)
			checkInvariants(t, evs)
			if diff := cmp.Diff(tt.want, summarize(evs)); diff != "" {
				t.Errorf("read %s: events (-want +got):\n%s", filepath.Base(tt.path), diff)
			}
		})
	}
}

// ledger keeps the first event of each key, as Store.Import does.
type ledger struct {
	byKey map[string]tokenmeter.Event
	dups  int
}

func (l *ledger) add(evs []tokenmeter.Event) {
	for _, ev := range evs {
		if _, ok := l.byKey[ev.Key]; ok {
			l.dups++
			continue
		}
		l.byKey[ev.Key] = ev
	}
}

func (l *ledger) total() tokenmeter.Usage {
	var sum tokenmeter.Usage
	for _, ev := range l.byKey {
		sum = sum.Add(ev.Usage)
	}
	return sum
}

// TestForkCountsOnce reads a parent, a fork of it, a sub-agent of the fork
// (each copying its ancestors' history) and a fork recorded without a copy,
// in both orders: every response counts once.
func TestForkCountsOnce(t *testing.T) {
	want := useP1.Add(useP2).Add(useP3).Add(useC1).Add(useC2).Add(useG1).Add(useS1)
	lineage := []string{fileParent, fileFork, fileSub, fileSeeded}
	var naive tokenmeter.Usage
	for _, f := range lineage {
		for _, ev := range readAll(t, f) {
			naive = naive.Add(ev.Usage)
		}
	}
	if naive == want {
		t.Fatalf("the fixtures do not copy history: a naive sum (%+v) is already right", naive)
	}
	for _, order := range [][]string{lineage, {fileSeeded, fileSub, fileFork, fileParent}} {
		l := &ledger{byKey: make(map[string]tokenmeter.Event)}
		for _, f := range order {
			l.add(readAll(t, f))
		}
		if got := l.total(); got != want {
			t.Errorf("order %v: total %+v, want %+v", order, got, want)
		}
		if l.dups != 6 { // fork: P1 P2; sub-agent: P1 P2 C1; by reference: P3
			t.Errorf("order %v: %d duplicates, want 6", order, l.dups)
		}
	}
	// Each copy has its original's key and usage, so the ledger may keep
	// either.
	orig := make(map[string]tokenmeter.Usage)
	for _, f := range []string{fileParent, fileFork} {
		for _, ev := range readAll(t, f) {
			orig[ev.Key] = ev.Usage
		}
	}
	for _, f := range []string{fileFork, fileSub, fileSeeded} {
		for _, ev := range readAll(t, f) {
			if o, ok := orig[ev.Key]; ok && o != ev.Usage {
				t.Errorf("%s: copy %s has usage %+v, original %+v", filepath.Base(f), ev.Key, ev.Usage, o)
			}
		}
	}
}

// TestArchivedCopy: the same file under sessions/ and archived_sessions/
// gives the same keys.
func TestArchivedCopy(t *testing.T) {
	lines := readLines(t, fileBasic)
	a, _, _, _ := feed("/h/.codex/sessions/2025/10/06/"+filepath.Base(fileBasic), "", lines, 0, 0)
	b, _, _, _ := feed("/h/.codex/archived_sessions/"+filepath.Base(fileBasic), "", lines, 0, 0)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("archived copy differs (-active +archived):\n%s", diff)
	}
}

// TestResume splits each fixture at every line boundary: reading on from
// the saved offset with the saved state gives exactly the events of one
// read, and so does reading one line per Open.
func TestResume(t *testing.T) {
	for _, path := range append(fixtures, "hostile") {
		var lines [][]byte
		if path == "hostile" {
			lines = hostileFile(t)
		} else {
			lines = readLines(t, path)
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, wantNext, wantState, wantWarns := feed(path, "", lines, 0, 0)
			if len(want) == 0 {
				t.Fatal("no events in a full read")
			}
			for k := 0; k <= len(lines); k++ {
				first, next, st, w1 := feed(path, "", lines[:k], 0, 0)
				rest, end, st2, w2 := feed(path, st, lines[k:], int64(k), next)
				if diff := cmp.Diff(want, append(first, rest...)); diff != "" {
					t.Fatalf("split after line %d (state %s): events differ (-one read +two):\n%s", k, st, diff)
				}
				if end != wantNext || st2 != wantState {
					t.Fatalf("split after line %d: end %d state %s, want %d %s", k, end, st2, wantNext, wantState)
				}
				if diff := cmp.Diff(wantWarns, append(w1, w2...)); diff != "" {
					t.Fatalf("split after line %d: warnings differ:\n%s", k, diff)
				}
			}
			var (
				got  []tokenmeter.Event
				st   string
				next int64
			)
			for k, l := range lines {
				var evs []tokenmeter.Event
				evs, next, st, _ = feed(path, st, [][]byte{l}, int64(k), next)
				got = append(got, evs...)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("one line per read: events differ (-one read +line by line):\n%s", diff)
			}
		})
	}
}

// hostileFile is the basic fixture with bad lines between its good ones.
func hostileFile(t *testing.T) [][]byte {
	var out [][]byte
	for i, l := range readLines(t, fileBasic) {
		out = append(out, l)
		if i%3 == 1 {
			bad := hostileLines[(i/3)%len(hostileLines)]
			out = append(out, []byte(bad.line+"\n"))
		}
	}
	return out
}

const ts = `"timestamp":"2025-10-06T09:30:00.000Z"`

// tokenCount returns a token_count line with the given total and last usage
// objects.
func tokenCount(total, last string) string {
	return `{` + ts + `,"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":` + total +
		`,"last_token_usage":` + last + `,"model_context_window":272000},"rate_limits":null}}`
}

func usageJSON(in, cached, out, reasoning string) string {
	return `{"input_tokens":` + in + `,"cached_input_tokens":` + cached + `,"output_tokens":` + out +
		`,"reasoning_output_tokens":` + reasoning + `,"total_tokens":0}`
}

var okLast = usageJSON("10", "0", "1", "0")

// hostileLines each draw a warning containing want and change nothing.
var hostileLines = []struct{ line, want string }{
	{`not json at all`, "not a JSON object"},
	{`{"timestamp":"2025-10-06T09:30:00Z","type":"event_msg","payload":{"type":"token_count"`, "not a JSON object"},
	{`{"type":"event_msg","payload":{"type":"token_count","info":{]}}`, "info is malformed JSON"},
	{`{"type":"event_msg","payload":{"type":"token_count"}} trailing}`, "not a JSON object"},
	{`{"type":7,"payload":{"type":"token_count"}}`, "type is a number, want a string"},
	{`{` + ts + `,"type":"event_msg","payload":"token_count"}`, "event_msg: payload is a string, want an object"},
	{`{` + ts + `,"type":"event_msg","payload":{"type":"token_count","info":"full"}}`, "info is a string, want an object"},
	{`{` + ts + `,"type":"event_msg","payload":{"type":"token_count","info":{"last_token_usage":` + okLast + `}}}`, "without total_token_usage"},
	{tokenCount(`[1,2,3]`, okLast), "total_token_usage is an array, want an object"},
	{tokenCount(usageJSON("-5", "0", "0", "0"), okLast), "total_token_usage.input_tokens is negative (-5)"},
	{tokenCount(usageJSON("99999999999999999999", "0", "0", "0"), okLast), "input_tokens is implausibly large"},
	{tokenCount(usageJSON("-99999999999999999999", "0", "0", "0"), okLast), "input_tokens is negative"},
	{tokenCount(usageJSON("1.5", "0", "0", "0"), okLast), "input_tokens is not an integer: 1.5"},
	{tokenCount(usageJSON("1e3", "0", "0", "0"), okLast), "input_tokens is not an integer"},
	{tokenCount(usageJSON(`"100"`, "0", "0", "0"), okLast), "input_tokens is a string, want an integer"},
	{tokenCount(usageJSON("true", "0", "0", "0"), okLast), "input_tokens is a boolean"},
	{tokenCount(usageJSON("5000000000000", "0", "0", "0"), okLast), "total_token_usage.input_tokens is implausibly large (5000000000000)"},
	{tokenCount(usageJSON("999000000", "0", "0", "0"), usageJSON("2000000000", "0", "0", "0")), "last_token_usage.input_tokens is implausibly large"},
	{tokenCount(usageJSON("900000000000", "0", "100", "10"), okLast), "one response of 899999999000 tokens is implausibly large"},
	{tokenCount(usageJSON("900000000000", "0", "0", "0"), okLast), "one response of 900000000000 tokens"}, // backwards: a fresh start, still too large
	{strings.Replace(tokenCount(usageJSON("70000", "0", "0", "0"), okLast), ts+",", "", 1), "no timestamp"},
	{strings.Replace(tokenCount(usageJSON("70000", "0", "0", "0"), okLast), "2025-10-06T09:30:00.000Z", "yesterday", 1), "timestamp is not RFC 3339"},
	{`{` + ts + `,"type":"session_meta","payload":{"id":42}}`, "session_meta: id is a number, want a string"},
	{`{` + ts + `,"type":"session_meta","payload":{"id":"../../etc/passwd"}}`, "id missing or not a plain identifier"},
	{`{` + ts + `,"type":"session_meta","payload":["sk-proj-SECRETSECRETSECRET"]}`, "session_meta: payload is an array"},
	{`{` + ts + `,"type":"session_meta","payload":{"id":"x","forked_from_id":{"sk":"SECRETSECRET"}}}`, "forked_from_id is an object"},
	{`{` + ts + `,"type":"turn_context","payload":{"model":["sk-live-SECRETSECRETSECRET"]}}`, "turn_context: model is an array"},
	{`{` + ts + `,"type":"turn_context","payload":{"model":"gpt 5 \u0000 SECRET"}}`, "model is not a plausible model name"},
	{`{` + ts + `,"type":"turn_context","payload":{"model":"gpt-5","cwd":17}}`, "cwd is a number"},
}

func TestHostileLines(t *testing.T) {
	const path = "/h/.codex/sessions/rollout-2025-10-06T09-14-02-" + idBasic + ".jsonl"
	head := []string{
		`{"timestamp":"2025-10-06T09:14:02.118Z","type":"session_meta","payload":{"id":"` + idBasic + `","cwd":"/w"}}`,
		`{"timestamp":"2025-10-06T09:14:09.502Z","type":"turn_context","payload":{"cwd":"/w","model":"gpt-5-codex"}}`,
		tokenCount(usageJSON("1000", "0", "100", "10"), usageJSON("1000", "0", "100", "10")),
	}
	after := tokenCount(usageJSON("3000", "1500", "150", "10"), usageJSON("2000", "1500", "50", "0"))
	for _, tt := range hostileLines {
		t.Run(tt.want, func(t *testing.T) {
			p := Format{}.Open(path, "")
			for i, l := range head {
				if w := p.Line([]byte(l), int64(i+1), 0); w != "" {
					t.Fatalf("good line %d: warning %q", i+1, w)
				}
			}
			w := p.Line([]byte(tt.line), 4, 0)
			if !strings.Contains(w, tt.want) || !strings.HasSuffix(w, "(skipped)") {
				t.Errorf("Line(%.60q) = %q, want a warning containing %q", tt.line, w, tt.want)
			}
			if strings.Contains(w, "SECRET") || len(w) > 160 {
				t.Errorf("warning %q echoes the line", w)
			}
			if w := p.Line([]byte(after), 5, 0); w != "" {
				t.Fatalf("good line after the bad one: warning %q", w)
			}
			evs, _, _ := p.End(0, true)
			got := summarize(evs)
			if len(got) != 2 || got[1].Usage != u(500, 1500, 50, 0) || got[1].Model != "gpt-5-codex" || got[1].Session != idBasic || got[1].Project != "/w" {
				t.Errorf("events after the bad line: %+v, want the second with the usage since the first good total", got)
			}
		})
	}
}

// TestIgnoredLines: lines that are not usage give no warning, even when
// they mention the words the prefilter looks for.
func TestIgnoredLines(t *testing.T) {
	for _, l := range []string{
		``, `   `,
		`{` + ts + `,"type":"response_item","payload":{"type":"function_call_output","output":"token_count session_meta turn_context"}}`,
		`{` + ts + `,"type":"event_msg","payload":{"type":"agent_message","message":"the token_count is fine"}}`,
		`{` + ts + `,"type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"primary":{"used_percent":2.0}}}}`,
		`{` + ts + `,"type":"event_msg","payload":{"type":"token_count"}}`,
		`{"type":"response_item","payload":{"type":"message","content":[{"text":"no markers here {"}]}}`,
		`{"id":"` + idBasic + `","timestamp":"2025-05-01T10:00:00Z","instructions":null}`, // pre-envelope session header
		`{` + ts + `,"type":"compacted","payload":{"message":"summary of the turn_context"}}`,
	} {
		p := Format{}.Open("rollout-x.jsonl", "")
		if w := p.Line([]byte(l), 1, 0); w != "" {
			t.Errorf("Line(%.60q) = %q, want no warning", l, w)
		}
		if evs, _, _ := p.End(int64(len(l)), true); len(evs) != 0 {
			t.Errorf("Line(%.60q) gave events %+v", l, evs)
		}
	}
}

// TestCapped: counts that break Codex's inclusions are capped, never
// negative.
func TestCapped(t *testing.T) {
	p := Format{}.Open("rollout-"+idBasic+".jsonl", "")
	p.Line([]byte(`{"type":"turn_context","payload":{"model":"gpt-5"}}`), 1, 0)
	p.Line([]byte(tokenCount(usageJSON("100", "250", "10", "40"), "null")), 2, 0)
	evs, _, _ := p.End(0, true)
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	if got, want := evs[0].Usage, u(0, 100, 10, 10); got != want {
		t.Errorf("usage %+v, want %+v", got, want)
	}
	if want := reasonCachedCapped + "; " + reasonReasonCapped; evs[0].Reason != want {
		t.Errorf("reason %q, want %q", evs[0].Reason, want)
	}
	if evs[0].Session != idBasic || !strings.HasPrefix(evs[0].RequestKey, "codex:"+idBasic+":") {
		t.Errorf("without session_meta the file name's id is used: %+v", evs[0])
	}
}

// TestLostState: a state that cannot be read is reported once, and the
// first total then counts only its last response, so a lost state neither
// double counts nor drops the session's responses.
func TestLostState(t *testing.T) {
	lines := readLines(t, fileBasic)
	full := readAll(t, fileBasic)
	k := 14 // the turn_context that switches to gpt-5
	if !bytes.Contains(lines[k], []byte(`"turn_context"`)) {
		t.Fatalf("line %d is not the second turn_context", k+1)
	}
	for _, st := range []string{"{not json", `{"v":99}`, `{"v":1,"totals":{"input":-1}}`, `{"v":1,"session":"a:b"}`} {
		evs, _, _, warns := feed(fileBasic, st, lines[k:], int64(k), 0)
		if len(warns) != 1 || !strings.Contains(warns[0], "saved import state unreadable") {
			t.Errorf("state %s: warnings %q, want one about the state", st, warns)
		}
		want := summarize(full[2:])
		want[0].Reason = ReasonNoBaseline
		if diff := cmp.Diff(want, summarize(evs)); diff != "" {
			t.Errorf("state %s: events (-want +got):\n%s", st, diff)
		}
	}
}

// TestLostStateBadLine: the state's warning and the first line's are given
// together.
func TestLostStateBadLine(t *testing.T) {
	p := Format{}.Open(fileBasic, "{not json")
	w := p.Line([]byte("garbage"), 1, 0)
	if !strings.HasPrefix(w, "saved import state unreadable") || !strings.Contains(w, "not a JSON object") {
		t.Errorf("first line: warning %q, want both the state's and the line's", w)
	}
	if w := p.Line([]byte("garbage"), 2, 0); strings.Contains(w, "state") {
		t.Errorf("second line: warning %q repeats the state's", w)
	}
}

func TestDefaultDirs(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		env  map[string]string
		home string
		want []string
	}{
		{nil, "/home/ana", []string{"/home/ana/.codex/sessions", "/home/ana/.codex/archived_sessions"}},
		{map[string]string{"CODEX_HOME": "/data/codex"}, "/home/ana", []string{"/data/codex/sessions", "/data/codex/archived_sessions"}},
		{map[string]string{"CODEX_HOME": ""}, "/home/ana", []string{"/home/ana/.codex/sessions", "/home/ana/.codex/archived_sessions"}},
		{nil, "", nil},
	}
	for _, tt := range tests {
		if got := DefaultDirs(env(tt.env), tt.home); !cmp.Equal(got, tt.want) {
			t.Errorf("DefaultDirs(%v, %q) = %q, want %q", tt.env, tt.home, got, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/h/.codex/sessions/2025/10/06/rollout-2025-10-06T09-14-02-" + idBasic + ".jsonl", true},
		{"/h/.codex/archived_sessions/rollout-2025-10-06T09-14-02-" + idBasic + ".jsonl", true},
		{"/h/.codex/sessions/2025/10/06/rollout-x.jsonl.tmp", false},
		{"/h/.codex/history.jsonl", false},
		{"/h/.codex/sessions/rollout-x.json", false},
		{"/h/.codex/rollout-dir.jsonl/notes.txt", false},
	}
	for _, tt := range tests {
		if got := (Format{}).Match(tt.path); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	if (Format{}).Source() != tokenmeter.SourceCodex {
		t.Errorf("Source() = %q", Format{}.Source())
	}
}

func TestLineageRoot(t *testing.T) {
	tests := []struct {
		chain []meta
		want  string
	}{
		{[]meta{{ID: "a"}}, "a"},
		{[]meta{{ID: "c", Parent: "p"}}, "p"},
		{[]meta{{ID: "c", Parent: "p"}, {ID: "p"}}, "p"},
		{[]meta{{ID: "g", Parent: "c"}, {ID: "c", Parent: "p"}, {ID: "p"}}, "p"},
		{[]meta{{ID: "g"}, {ID: "c"}, {ID: "p"}}, "p"},                           // older forks: parents not recorded
		{[]meta{{ID: "g", Parent: "c"}, {ID: "c", Parent: "p"}}, "p"},            // p's own line not copied
		{[]meta{{ID: "a", Parent: "b"}, {ID: "b", Parent: "a"}}, "b"},            // a cycle
		{[]meta{{ID: "a", Parent: "a"}}, "a"},                                    // its own parent
		{[]meta{{ID: "c", Parent: "p"}, {ID: "x"}, {ID: "p", Parent: "q"}}, "q"}, // declared parents win
	}
	for _, tt := range tests {
		if got := lineageRoot(tt.chain); got != tt.want {
			t.Errorf("lineageRoot(%+v) = %q, want %q", tt.chain, got, tt.want)
		}
	}
}

func FuzzLine(f *testing.F) {
	for _, path := range fixtures {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("", b)
	}
	f.Fuzz(func(t *testing.T, state string, data []byte) {
		const path = "/h/.codex/sessions/rollout-2025-10-06T09-14-02-" + idBasic + ".jsonl"
		lines := bytes.SplitAfter(data, []byte{'\n'})
		p := Format{}.Open(path, state)
		var off int64
		for i, l := range lines {
			if w := p.Line(bytes.TrimSuffix(l, []byte{'\n'}), int64(i+1), off); len(w) > 200 {
				t.Fatalf("warning of %d bytes: %q", len(w), w)
			}
			off += int64(len(l))
		}
		evs, next, st := p.End(off, true)
		if next != off {
			t.Fatalf("End resumes at %d, want %d", next, off)
		}
		for _, ev := range evs {
			u := ev.Usage
			if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.ReasoningTokens < 0 ||
				u.CacheWrite5mTokens < 0 || u.CacheWrite1hTokens != 0 || u.WebSearchRequests != 0 || u.WebFetchRequests != 0 ||
				u.ReasoningTokens > u.OutputTokens || u.TotalTokens() == 0 || u.PromptTokens() > MaxTurnTokens || u.OutputTokens > MaxTurnTokens {
				t.Fatalf("bad usage %+v", u)
			}
			if ev.Key != tokenmeter.EventKey(ev.RequestKey, tokenmeter.KindCompleted) || !strings.HasPrefix(ev.RequestKey, "codex:") {
				t.Fatalf("bad key %q / %q", ev.Key, ev.RequestKey)
			}
		}
		// End's state is readable, and reading on from it after any line
		// gives what one read gives.
		if w := (Format{}).Open(path, st).Line(nil, 1, 0); w != "" {
			t.Fatalf("state %q from End is unreadable: %s", st, w)
		}
		k := len(lines) / 2
		first, n1, st1, _ := feed(path, state, lines[:k], 0, 0)
		rest, _, st2, _ := feed(path, st1, lines[k:], int64(k), n1)
		if diff := cmp.Diff(evs, append(first, rest...)); diff != "" {
			t.Fatalf("split after line %d: events differ (-one read +two):\n%s", k, diff)
		}
		if st2 != st {
			t.Fatalf("split after line %d: state %s, want %s", k, st2, st)
		}
	})
}
