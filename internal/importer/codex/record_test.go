package codex

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
)

// recordEvent is what the record tests state about an event.
type recordEvent struct {
	Key        string // after "codex:"
	ResponseID string
	Time       string
	Session    string
	Reason     string
	Usage      tokenmeter.Usage
}

func summarizeRecords(evs []tokenmeter.Event) []recordEvent {
	var out []recordEvent
	for _, ev := range evs {
		out = append(out, recordEvent{strings.TrimPrefix(ev.RequestKey, "codex:"), ev.ResponseID,
			ev.Time.Format("2006-01-02T15:04:05.000Z07:00"), ev.Session, ev.Reason, ev.Usage})
	}
	return out
}

// uw is u with cache writes.
func uw(in, cached, written, out, reasoning int64) tokenmeter.Usage {
	x := u(in, cached, out, reasoning)
	x.CacheWrite5mTokens = written
	return x
}

// The responses of the 0.169 fixtures.
var (
	useR1 = uw(16993, 0, 0, 12, 0)    // resp_a1
	useR2 = uw(16954, 100, 50, 8, 3)  // resp_a2: input 17104 includes 100 cached and 50 written
	useD1 = uw(500, 0, 0, 20, 0)      // resp_d1, a delegate's, forwarded
	useR4 = uw(400, 16900, 0, 30, 10) // no record: from the running total
	useB1 = uw(500, 17000, 0, 40, 0)  // resp_b1, the fork's own
)

// TestRecords: a Codex 0.169 file counts each response once, from its
// token_usage_record (which wins over the token_count that follows it: it
// names the response), keyed as that total would be, with the Responses id;
// a response with no record is still counted from the total; a delegate's
// record forwarded into the file counts on its own; a compacted line's copy
// of a record is not counted.
func TestRecords(t *testing.T) {
	p := idRecords + ":"
	evs := readAll(t, fileRecords)
	checkInvariants(t, evs)
	want := []recordEvent{
		{p + "16993.0.12.0", "resp_a1", "2026-12-08T00:40:41.843Z", idRecords, "", useR1},
		{p + "34097.100.20.3", "resp_a2", "2026-12-08T00:41:12.000Z", idRecords, "", useR2},
		{"resp_d1", "resp_d1", "2026-12-08T00:41:20.000Z", idRecords, "", useD1},
		{p + "51397.17000.50.13", "", "2026-12-08T00:42:05.000Z", idRecords, "", useR4},
	}
	if diff := cmp.Diff(want, summarizeRecords(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, ev := range evs {
		if ev.Model != "gpt-6.1-sol" || ev.Project != "/home/ana/src/api" {
			t.Errorf("%s: model %q project %q", ev.RequestKey, ev.Model, ev.Project)
		}
	}

	// The fork copies the parent's totals but not its records: each copy
	// gets the key of the parent's record of that response, and its usage.
	fork := readAll(t, fileRecordsFork)
	wantFork := []recordEvent{
		{p + "16993.0.12.0", "", "2026-12-08T01:00:00.003Z", idRecordsFork, "", useR1},
		{p + "34097.100.20.3", "", "2026-12-08T01:00:00.005Z", idRecordsFork, "", useR2},
		{p + "51597.17100.60.3", "resp_b1", "2026-12-08T01:00:12.000Z", idRecordsFork, "", useB1},
	}
	if diff := cmp.Diff(wantFork, summarizeRecords(fork)); diff != "" {
		t.Errorf("fork: events (-want +got):\n%s", diff)
	}
	for _, order := range [][]string{{fileRecords, fileRecordsFork}, {fileRecordsFork, fileRecords}} {
		l := &ledger{byKey: make(map[string]tokenmeter.Event)}
		for _, f := range order {
			l.add(readAll(t, f))
		}
		if got, want := l.total(), useR1.Add(useR2).Add(useD1).Add(useR4).Add(useB1); got != want || l.dups != 2 {
			t.Errorf("order %v: total %+v with %d duplicates, want %+v with 2", order, got, l.dups, want)
		}
	}
}

// record returns a token_usage_record line of thread for response rid.
func record(thread, rid, usage string) string {
	return `{` + ts + `,"type":"token_usage_record","payload":{"thread_id":"` + thread + `","turn_id":"t","session_id":"` + thread +
		`","root_turn_id":"t","response_id":"` + rid + `","usage":` + usage + `,"turn_token_usage":` + usage + `,"thread_token_usage":` + usage + `}}`
}

// TestRecordOrder: a record written after the total that counted its
// response (the other order than Codex 0.169's) is the same response,
// under the same key; and a total whose records cover only part of its
// difference counts the rest.
func TestRecordOrder(t *testing.T) {
	const path = "/h/.codex/sessions/rollout-2026-12-08T00-00-00-" + idBasic + ".jsonl"
	meta := `{` + ts + `,"type":"session_meta","payload":{"id":"` + idBasic + `","cwd":"/w"}}`
	u1, t2 := usageJSON("1000", "200", "50", "10"), usageJSON("3500", "700", "90", "10")
	lines := [][]byte{
		[]byte(meta + "\n"),
		[]byte(tokenCount(u1, u1) + "\n"),
		[]byte(record(idBasic, "resp_1", u1) + "\n"),
		// Two responses before the next total, only one of them recorded.
		[]byte(record(idBasic, "resp_2", usageJSON("2000", "500", "30", "0")) + "\n"),
		[]byte(tokenCount(t2, usageJSON("500", "0", "10", "0")) + "\n"),
	}
	evs, _, _, warns := feed(path, "", lines, 0, 0)
	if len(warns) != 0 {
		t.Fatalf("warnings %q", warns)
	}
	k := idBasic + ":"
	want := []recordEvent{
		{k + "1000.200.50.10", "", "2025-10-06T09:30:00.000Z", idBasic, ReasonFallbackModel, u(800, 200, 50, 10)},
		{k + "1000.200.50.10", "resp_1", "2025-10-06T09:30:00.000Z", idBasic, ReasonFallbackModel, u(800, 200, 50, 10)},
		{k + "3000.700.80.10", "resp_2", "2025-10-06T09:30:00.000Z", idBasic, ReasonFallbackModel, u(1500, 500, 30, 0)},
		{k + "3500.700.90.10", "", "2025-10-06T09:30:00.000Z", idBasic, ReasonFallbackModel, u(500, 0, 10, 0)},
	}
	if diff := cmp.Diff(want, summarizeRecords(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	l := &ledger{byKey: make(map[string]tokenmeter.Event)}
	l.add(evs)
	if got, want := l.total(), u(2800, 700, 90, 10); got != want {
		t.Errorf("counted once: total %+v, want %+v", got, want)
	}
}

// TestBadRecords: a record that cannot be read is skipped with a warning
// that echoes nothing, and its response is then counted from the total
// that follows.
func TestBadRecords(t *testing.T) {
	const path = "/h/.codex/sessions/rollout-2026-12-08T00-00-00-" + idBasic + ".jsonl"
	good := usageJSON("1000", "0", "100", "0")
	for _, tt := range []struct{ line, want string }{
		{record(idBasic, "resp_1", `"lots"`), "usage is a string, want an object"},
		{record(idBasic, "resp_1", usageJSON("-3", "0", "0", "0")), "usage.input_tokens is negative"},
		{record(idBasic, "resp_1", usageJSON("2000000000", "0", "0", "0")), "implausibly large"},
		{record(idBasic, "resp 1; sk-SECRETSECRET", good), "response_id is not a plain identifier"},
		{record(idBasic, "", good), "no response_id"},
		{strings.Replace(record(idBasic, "resp_1", good), `"thread_id":"`+idBasic+`"`, `"thread_id":["SECRET"]`, 1), "thread_id is an array"},
		{strings.Replace(record(idBasic, "resp_1", good), `,"usage":`+good, "", 1), "no usage"},
		{strings.Replace(record(idBasic, "resp_1", good), ts+",", "", 1), "no timestamp"},
		{`{` + ts + `,"type":"token_usage_record","payload":"SECRET"}`, "payload is a string, want an object"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			p := Format{}.Open(path, "")
			w := p.Line([]byte(tt.line), 1, 0)
			if !strings.HasPrefix(w, "token_usage_record: ") || !strings.Contains(w, tt.want) || strings.Contains(w, "SECRET") {
				t.Errorf("warning %q, want one containing %q and no secret", w, tt.want)
			}
			if w := p.Line([]byte(tokenCount(good, good)), 2, 0); w != "" {
				t.Fatalf("total after the bad record: %q", w)
			}
			evs, _, _ := p.End(0, true)
			if len(evs) != 1 || evs[0].Usage != u(1000, 0, 100, 0) || evs[0].ResponseID != "" {
				t.Errorf("events %+v, want the response counted once from the total", summarizeRecords(evs))
			}
		})
	}
}

// TestRecordsArchived reads the 0.169 fixture the way the
// archived copy is read: the same keys, so nothing counts twice.
func TestRecordsArchived(t *testing.T) {
	lines := readLines(t, fileRecords)
	a, _, _, _ := feed("/h/.codex/sessions/2026/12/08/"+filepath.Base(fileRecords), "", lines, 0, 0)
	b, _, _, _ := feed("/h/.codex/archived_sessions/"+filepath.Base(fileRecords), "", lines, 0, 0)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("archived copy differs (-active +archived):\n%s", diff)
	}
}

// FuzzRecord puts one token_usage_record of arbitrary counts and id, of
// this thread or another, before or after the total that counts its turn,
// and checks what the ledger (first event per key) then holds, in input +
// output tokens: the turn once when the record is this thread's and the
// turn covers it (a record after the total with other counts is another
// response); the record alone when it claims more than the turn (records
// are exact); the turn plus the record when the record is another
// thread's; the turn when the record is refused with a warning.
func FuzzRecord(f *testing.F) {
	f.Add(int64(1000), int64(200), int64(0), int64(50), int64(10), "resp_1", false, false)
	f.Add(int64(2000), int64(1000), int64(0), int64(60), int64(10), "resp_same", false, true)
	f.Add(int64(700), int64(100), int64(50), int64(20), int64(0), "resp_2", false, true)
	f.Add(int64(5000), int64(0), int64(0), int64(9000), int64(0), "resp_big", false, false)
	f.Add(int64(10), int64(20), int64(30), int64(5), int64(9), "resp_fwd", true, false)
	f.Add(int64(-1), int64(0), int64(0), int64(0), int64(0), "resp bad", false, false)
	f.Add(int64(0), int64(0), int64(0), int64(0), int64(0), "", false, true)
	f.Fuzz(func(t *testing.T, in, cached, written, out, reasoning int64, rid string, forwarded, after bool) {
		const path = "/h/.codex/sessions/rollout-2026-12-08T00-00-00-" + idBasic + ".jsonl"
		if in >= 0 && out >= 0 {
			// Keep Codex's inclusions, so input + output is what the
			// record says.
			cached %= in + 1
			written %= in - cached + 1
			reasoning %= out + 1
			cached, written, reasoning = max(cached, 0), max(written, 0), max(reasoning, 0)
		}
		n := func(v int64) string { return strconv.FormatInt(v, 10) }
		ru := `{"input_tokens":` + n(in) + `,"cached_input_tokens":` + n(cached) + `,"cache_write_input_tokens":` + n(written) +
			`,"output_tokens":` + n(out) + `,"reasoning_output_tokens":` + n(reasoning) + `}`
		ridJSON, _ := json.Marshal(rid)
		thread := idBasic
		if forwarded {
			thread = idParent
		}
		rec := strings.Replace(record(thread, "RID", ru), `"RID"`, string(ridJSON), 1)
		t0 := usageJSON("1000", "0", "100", "0")
		t1 := usageJSON("3000", "1000", "160", "10")
		lines := []string{tokenCount(t0, t0), rec, tokenCount(t1, usageJSON("2000", "1000", "60", "10"))}
		if after {
			lines[1], lines[2] = lines[2], lines[1]
		}
		p := Format{}.Open(path, "")
		warned := false
		for i, l := range lines {
			w := p.Line([]byte(l), int64(i+1), 0)
			if len(w) > 200 || (len(rid) > 8 && strings.Contains(w, rid)) {
				t.Fatalf("warning %q echoes the line", w)
			}
			warned = warned || w != ""
		}
		evs, _, _ := p.End(0, true)
		l := &ledger{byKey: make(map[string]tokenmeter.Event)}
		l.add(evs)
		const first, turn = 1100, 2060 // input + output of the first response and of the turn
		r := in + out
		d := totals{2000, 1000, 60, 10, 0}
		rt := totals{in, cached, out, reasoning, written}
		var want int64
		switch {
		case warned:
			want = first + turn
		case forwarded:
			want = first + turn + r
		case after && rt == d:
			want = first + turn
		case after:
			want = first + turn + r
		case rt.within(d):
			want = first + turn
		default:
			want = first + r
		}
		if got := l.total().TotalTokens(); got != want {
			t.Fatalf("ledger holds %d tokens, want %d (warned %v; events %+v)", got, want, warned, summarizeRecords(evs))
		}
		for _, ev := range evs {
			u := ev.Usage
			if u.InputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWrite5mTokens < 0 || u.OutputTokens < 0 || u.ReasoningTokens < 0 || u.ReasoningTokens > u.OutputTokens {
				t.Fatalf("bad usage %+v", u)
			}
		}
	})
}
