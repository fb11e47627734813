package status_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/report"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/status"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

var now = time.Date(2026, 3, 12, 15, 40, 0, 0, time.UTC)

// counting records the queries a Reader makes of a real store.
type counting struct {
	store   tokenmeter.Store
	queries []tokenmeter.UsageQuery
}

func (c *counting) Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error) {
	c.queries = append(c.queries, q)
	return c.store.Usage(ctx, q)
}

// ledger returns a store with one call of 100 tokens and 1,000 µ$ at each
// time.
func ledger(t *testing.T, calls []time.Time) *sqlite.DB {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var events []tokenmeter.Event
	for n, at := range calls {
		ev := storetest.Event(fmt.Sprintf("c%d", n), at, tokenmeter.Usage{InputTokens: 60, OutputTokens: 40})
		ev.Cost = 1000
		events = append(events, ev)
	}
	if _, err := db.Append(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	return db
}

// every returns calls every step from from to to.
func every(step time.Duration, from, to time.Time) []time.Time {
	var out []time.Time
	for at := from; !at.After(to); at = at.Add(step) {
		out = append(out, at)
	}
	return out
}

// TestReadLookback checks the active block against blocks computed over
// all history, and that every query is one the rollups answer.
func TestReadLookback(t *testing.T) {
	tests := []struct {
		name    string
		calls   []time.Time
		queries int // block queries, then today (from the blocks' buckets)
		exact   bool
	}{
		{"paused at night", append(every(time.Hour, now.Add(-30*time.Hour), now.Add(-20*time.Hour)),
			every(20*time.Minute, now.Add(-7*time.Hour+3*time.Minute), now.Add(-10*time.Minute))...), 1, true},
		{"no pause for 40h", every(2*time.Hour+17*time.Minute, now.Add(-40*time.Hour), now.Add(-time.Hour)), 2, true},
		{"no pause for 100h", every(2*time.Hour+17*time.Minute, now.Add(-100*time.Hour), now.Add(-time.Hour)), 2, false},
		{"idle for 6h", every(time.Hour, now.Add(-50*time.Hour), now.Add(-6*time.Hour)), 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := ledger(t, tt.calls)
			c := &counting{store: db}
			st, err := (&status.Reader{Store: c, Loc: time.UTC}).Read(context.Background(), now, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range c.queries {
				onGrid := func(t time.Time) bool { return t.IsZero() || t.UnixMicro()%tokenmeter.RollupBucket.Microseconds() == 0 }
				if q.BySession || q.FromEvents || q.Bucket < 0 || q.Bucket%tokenmeter.RollupBucket != 0 || !onGrid(q.Since) || !onGrid(q.Until) {
					t.Errorf("query %+v is not answered from the rollups", q)
				}
			}
			if len(c.queries) != tt.queries {
				t.Errorf("%d queries, want %d: %+v", len(c.queries), tt.queries, c.queries)
			}
			all, _ := db.Usage(context.Background(), tokenmeter.UsageQuery{Bucket: 15 * time.Minute})
			blocks := report.SplitBlocks(all, now)
			want := blocks[len(blocks)-1]
			if !want.Active {
				if st.Block != nil {
					t.Errorf("active block %+v; want none", st.Block)
				}
				return
			}
			if st.Block == nil {
				t.Fatalf("no active block; want %v", want.Start)
			}
			if st.Block.StartExact != tt.exact {
				t.Errorf("start_exact = %v, want %v", st.Block.StartExact, tt.exact)
			}
			if tt.exact && (!st.Block.Start.Equal(want.Start) || st.Block.Requests != want.Requests) {
				t.Errorf("block from %v with %d calls; over all history it is from %v with %d",
					st.Block.Start, st.Block.Requests, want.Start, want.Requests)
			}
			var today int64
			for _, at := range tt.calls {
				if at.Day() == now.Day() {
					today++
				}
			}
			if st.Today.Requests != today {
				t.Errorf("today %d calls, want %d", st.Today.Requests, today)
			}
		})
	}
}

// TestReadLastActivity: with no call in the first look-back, status still
// names the last call if it lies within DefaultLookback.
func TestReadLastActivity(t *testing.T) {
	last := now.Add(-30 * time.Hour)
	db := ledger(t, []time.Time{now.Add(-31 * time.Hour), last})
	st, err := (&status.Reader{Store: db, Loc: time.UTC}).Read(context.Background(), now, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Block != nil || !st.LastActivity.Equal(last) {
		t.Errorf("block %+v, last activity %v; want no block and %v", st.Block, st.LastActivity, last)
	}
	db = ledger(t, []time.Time{now.Add(-80 * time.Hour)})
	if st, err := (&status.Reader{Store: db, Loc: time.UTC}).Read(context.Background(), now, false); err != nil || !st.LastActivity.IsZero() {
		t.Errorf("a call beyond the look-back: last activity %v, %v; want none", st.LastActivity, err)
	}
}

// TestReadZone checks today and this week in a zone whose midnight is not
// on a whole UTC hour (India, UTC+5:30).
func TestReadZone(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skip(err)
	}
	// Local midnight of 12 March is 18:30 UTC on 11 March.
	db := ledger(t, []time.Time{
		time.Date(2026, 3, 11, 18, 20, 0, 0, time.UTC), // 11 March local
		time.Date(2026, 3, 11, 18, 40, 0, 0, time.UTC), // 12 March local
		time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC),   // Monday 9 March local
		time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC),   // the week before
	})
	st, err := (&status.Reader{Store: db, Loc: kolkata}).Read(context.Background(), now, true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Today.Requests != 1 || st.Today.Period != "2026-03-12" || st.Week.Requests != 3 || st.Week.Period != "2026-03-09" {
		t.Errorf("today %+v, week %+v", st.Today, st.Week)
	}
	var out bytes.Buffer
	if err := status.Text(&out, st); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if utf8.RuneCountInString(l) > 80 {
			t.Errorf("text line %q is wider than 80", l)
		}
	}
}

// TestBurnRateRule: status (JSON and text) and the status line apply
// report.BurnRateAt to the active block: a burst of calls milliseconds
// apart has no burn rate or projection until report.MinBurnSpan after its
// first call, and then the pace since that call (issue 13 item 2).
func TestBurnRateRule(t *testing.T) {
	first := now.Add(-2 * time.Minute)
	var calls []time.Time
	for i := range 4 {
		calls = append(calls, first.Add(time.Duration(i)*3*time.Millisecond))
	}
	db := ledger(t, calls) // 400 tokens, 4,000 µ$
	r := &status.Reader{Store: db, Loc: time.UTC}
	st, err := r.Read(context.Background(), now, true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Block == nil || st.Block.BurnRate != nil || st.Block.Projection != nil {
		t.Fatalf("2 minutes after a burst: block %+v; want one without burn rate or projection", st.Block)
	}
	var text bytes.Buffer
	status.Text(&text, st)
	if !strings.Contains(text.String(), "Burn rate  from 15:48 (10m after the block's first call)") || strings.Contains(text.String(), "At reset") {
		t.Errorf("text before the minimum span:\n%s", text.String())
	}
	if line := status.Line(st, status.Hook{}, ""); strings.Contains(line, "/h") {
		t.Errorf("status line before the minimum span: %q", line)
	}

	later := first.Add(report.MinBurnSpan)
	st, err = r.Read(context.Background(), later, true)
	if err != nil {
		t.Fatal(err)
	}
	rate, proj := report.BurnRateAt(st.Block.FirstActivity, st.Block.Reset, later, 400, 4000)
	if st.Block.BurnRate == nil || *st.Block.BurnRate != *rate || *st.Block.Projection != *proj || rate.TokensPerMinute != 40 || rate.CostMicrosPerHour != 24000 {
		t.Errorf("at the minimum span: burn rate %+v, projection %+v; want %+v, %+v (40 tok/min, $0.024/h)", st.Block.BurnRate, st.Block.Projection, rate, proj)
	}
	text.Reset()
	status.Text(&text, st)
	if !strings.Contains(text.String(), "Burn rate  40 tokens/min, $0.0240/h") {
		t.Errorf("text at the minimum span:\n%s", text.String())
	}
	if line := status.Line(st, status.Hook{}, ""); !strings.Contains(line, "$0.02/h") {
		t.Errorf("status line at the minimum span: %q", line)
	}
}

func TestParseHook(t *testing.T) {
	full := `{"session_id":"s1","model":{"id":"claude-opus-4-1","display_name":"Opus"},"cost":{"total_cost_usd":1.5},
		"rate_limits":{"five_hour":{"used_percentage":42,"resets_at":1772456400},"seven_day":{"used_percentage":7,"resets_at":"2026-03-28T15:00:00Z"}},
		"new_field":{"x":[1,2]}}`
	h := status.ParseHook([]byte(full))
	if h.SessionID != "s1" || h.Model.DisplayName != "Opus" || h.Cost.TotalCostUSD == nil || *h.Cost.TotalCostUSD != 1.5 {
		t.Errorf("ParseHook(full) = %+v", h)
	}
	if got := h.RateLimits.FiveHour.Resets(); !got.Equal(time.Unix(1772456400, 0)) {
		t.Errorf("five_hour resets %v", got)
	}
	if got := h.RateLimits.SevenDay.Resets(); !got.Equal(time.Date(2026, 3, 28, 15, 0, 0, 0, time.UTC)) {
		t.Errorf("seven_day resets %v", got)
	}
	// A field of the wrong type is dropped, the rest kept.
	h = status.ParseHook([]byte(`{"session_id":"s2","model":"opus","cost":{"total_cost_usd":0.25}}`))
	if h.SessionID != "s2" || h.Model.ID != "" || h.Cost.TotalCostUSD == nil || *h.Cost.TotalCostUSD != 0.25 {
		t.Errorf("ParseHook(wrong model type) = %+v", h)
	}
	for _, in := range []string{"", "null", "garbage", "{", `"str"`, `[{}]`, "\xff\xfe"} {
		if h := status.ParseHook([]byte(in)); h.SessionID != "" || h.Cost.TotalCostUSD != nil {
			t.Errorf("ParseHook(%q) = %+v, want zero", in, h)
		}
	}
	if got := (*status.RateLimit)(nil).Resets(); !got.IsZero() {
		t.Errorf("nil Resets = %v", got)
	}
}

func TestLine(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	block := &status.Block{RemainingMinutes: 133, Figures: report.Figures{TotalTokens: 1_234_567, CostMicros: 3_410_000},
		BurnRate: &report.BurnRate{CostMicrosPerHour: 1_520_000}}
	st := &status.Status{Block: block, Today: status.Period{Figures: report.Figures{CostMicros: 12_300_000}}}
	hook := func(model string, cost *float64, pct *float64) status.Hook {
		var h status.Hook
		h.Model.DisplayName, h.Cost.TotalCostUSD = model, cost
		if pct != nil {
			h.RateLimits.FiveHour = &status.RateLimit{UsedPercentage: pct}
		}
		return h
	}
	tests := []struct {
		name string
		st   *status.Status
		hook status.Hook
		want string
	}{
		{"all", st, hook("Sonnet 4.5", f(0.84), nil),
			"Sonnet 4.5 · block $3.41 1.2M tok, 2h13m left, $1.52/h · today $12.30 · cc $0.84"},
		{"no hook", st, status.Hook{}, "block $3.41 1.2M tok, 2h13m left, $1.52/h · today $12.30"},
		{"no burn rate yet", &status.Status{Block: &status.Block{RemainingMinutes: 299, Figures: report.Figures{TotalTokens: 950, CostMicros: 10_000}}},
			hook("Opus", f(1.5), nil), "Opus · block $0.01 950 tok, 4h59m left · today $0.00 · cc session $1.50"},
		{"shorter session", st, hook("Opus", f(12.5), nil),
			"Opus · block $3.41 1.2M tok, 2h13m left, $1.52/h · today $12.30 · cc $12.50"},
		{"rate limit", st, hook("Sonnet 4.5", f(0.84), f(42.4)),
			"Sonnet 4.5 · block $3.41 1.2M tok, 2h13m left · today $12.30 · 5h 42% · cc $0.84"},
		{"long model", st, hook(strings.Repeat("m", 40), f(0.84), f(42.4)),
			"mmmmmmmmmmmmmmmmmmmmmmm… · block $3.41, 2h13m left · today $12.30 · cc $0.84"},
		{"idle", &status.Status{}, hook("Opus", nil, nil), "Opus · no active block · today $0.00"},
		{"no ledger", nil, hook("Opus", f(0.84), nil), "Opus · hint · cc session $0.84"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := status.Line(tt.st, tt.hook, "hint")
			if got != tt.want {
				t.Errorf("Line() (-want +got):\n%s", cmp.Diff(tt.want, got))
			}
			if n := utf8.RuneCountInString(got); n > status.LineWidth {
				t.Errorf("Line() = %q, %d characters", got, n)
			}
		})
	}
}

// FuzzParseHook feeds arbitrary status-line hook input: no panic, and the
// line never exceeds LineWidth characters or carries control characters.
func FuzzParseHook(f *testing.F) {
	f.Add([]byte(`{"session_id":"s","model":{"display_name":"Opus 4.5"},"cost":{"total_cost_usd":1.25},"rate_limits":{"five_hour":{"used_percentage":42,"resets_at":1764400000}}}`))
	f.Add([]byte(`{"cost":{"total_cost_usd":"abc"},"rate_limits":{"five_hour":{"used_percentage":"x","resets_at":"2026-11-29T12:00:00Z"}}}`))
	f.Add([]byte("{\"model\":{\"display_name\":\"\\u001b[31mred\\u0007\"}}"))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := status.ParseHook(b)
		line := status.Line(nil, h, "")
		if n := utf8.RuneCountInString(line); n > status.LineWidth {
			t.Fatalf("line of %d characters: %q", n, line)
		}
		for _, r := range line {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character %U in %q", r, line)
			}
		}
	})
}
