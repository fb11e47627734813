package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/status"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// statusNow is the fixed "now" of the small-ledger tests: 2h20m before the
// end of the block that started at 10:00 UTC.
var statusNow = time.Date(2026, 3, 2, 12, 40, 0, 0, time.UTC)

// hookJSON is what Claude Code sends its statusLine command (abridged).
const hookJSON = `{"hook_event_name":"Status","session_id":"abc123","transcript_path":"/tmp/t.jsonl","cwd":"/src/app",
"model":{"id":"claude-sonnet-4-5","display_name":"Sonnet 4.5"},"workspace":{"current_dir":"/src/app","project_dir":"/src/app"},
"version":"2.1.0","output_style":{"name":"default"},"cost":{"total_cost_usd":0.8412,"total_duration_ms":45000,"total_lines_added":3},
"exceeds_200k_tokens":false,"context_window":{"used_percentage":12}}`

// smallLedger writes a ledger into a data directory: yesterday one call
// ($8.89), today a block from 10:00 UTC with two calls an hour apart
// ($1.50 and $1.91, 1,000,000 and 200,000 tokens).
func smallLedger(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db := sqlite.NewDB(filepath.Join(dir, LedgerFile))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mk := func(id string, at time.Time, u tokenmeter.Usage, cost tokenmeter.Micros) tokenmeter.Event {
		ev := storetest.Event(id, at, u)
		ev.Cost = cost
		return ev
	}
	_, err := db.Append(context.Background(), []tokenmeter.Event{
		mk("y1", time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC), tokenmeter.Usage{InputTokens: 5000}, 8_890_000),
		mk("t1", time.Date(2026, 3, 2, 10, 10, 0, 0, time.UTC), tokenmeter.Usage{InputTokens: 900_000, OutputTokens: 100_000}, 1_500_000),
		mk("t2", time.Date(2026, 3, 2, 11, 10, 0, 0, time.UTC), tokenmeter.Usage{CacheReadTokens: 150_000, OutputTokens: 50_000}, 1_910_000),
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestStatuslineFigures(t *testing.T) {
	dir := smallLedger(t)
	line, err := statusline(context.Background(), dir, time.UTC, status.ParseHook([]byte(hookJSON)), statusNow)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Sonnet 4.5 · block $3.41 1.2M tok, 2h20m left, $1.36/h · today $3.41 · cc $0.84"; line != want {
		t.Errorf("statusline =\n %q\nwant\n %q", line, want)
	}
	// In Berlin (UTC+1) today began at 23:00 UTC: yesterday's call at
	// 20:00 UTC is still not in it.
	berlin, _ := time.LoadLocation("Europe/Berlin")
	line, _ = statusline(context.Background(), dir, berlin, status.Hook{}, statusNow)
	if want := "block $3.41 1.2M tok, 2h20m left, $1.36/h · today $3.41"; line != want {
		t.Errorf("statusline without a hook = %q, want %q", line, want)
	}
	// After the block and past midnight: no active block, nothing today.
	line, _ = statusline(context.Background(), dir, time.UTC, status.Hook{}, statusNow.Add(12*time.Hour))
	if want := "no active block · today $0.00"; line != want {
		t.Errorf("statusline the next day = %q, want %q", line, want)
	}
}

// TestStatuslineInput runs the command on bad or missing input: it always
// prints exactly one line of at most 80 characters and exits 0.
func TestStatuslineInput(t *testing.T) {
	dir := smallLedger(t)
	tests := []struct {
		name, stdin, data, want string
	}{
		{"hook", hookJSON, dir, "Sonnet 4.5 · "},
		{"empty stdin", "", dir, "today $"},
		{"garbage", "\x00\xff{{{not json", dir, "today $"},
		{"not an object", `[1,2,3]`, dir, "today $"},
		{"wrong types", `{"model":"opus","cost":{"total_cost_usd":"lots"},"rate_limits":7,"workspace":[]}`, dir, "today $"},
		{"model with newline", `{"model":{"display_name":"evil\nname\u001b[31m"}}`, dir, "evil name"},
		{"rate limits", `{"rate_limits":{"five_hour":{"used_percentage":42.4,"resets_at":1772456400}}}`, dir, "5h limit 42%"},
		{"huge", `{"session_id":"` + strings.Repeat("x", 3<<20) + `"}`, dir, "today $"},
		{"missing ledger", hookJSON, filepath.Join(t.TempDir(), "nowhere"), "Sonnet 4.5 · no ledger: run tokenmeter import claude-code · cc session $0.84"},
		{"missing ledger, no hook", "", filepath.Join(t.TempDir(), "nowhere"), "no ledger: run tokenmeter import"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(context.Background(), []string{"statusline", "--data", tt.data}, strings.NewReader(tt.stdin), &out, &errb)
			if err != nil {
				t.Fatalf("statusline: %v (stderr %q)", err, errb.String())
			}
			s := out.String()
			if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
				t.Errorf("output %q is not exactly one line", s)
			}
			line := strings.TrimSuffix(s, "\n")
			if n := utf8.RuneCountInString(line); n > status.LineWidth || n == 0 {
				t.Errorf("line %q has %d characters; want 1 to %d", line, n, status.LineWidth)
			}
			if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' }) {
				t.Errorf("line %q holds control characters", line)
			}
			if !strings.Contains(line, tt.want) {
				t.Errorf("line %q does not contain %q", line, tt.want)
			}
			if strings.Contains(errb.String(), "goroutine") {
				t.Errorf("stderr has a stack trace:\n%s", errb.String())
			}
		})
	}
}

func TestStatusJSON(t *testing.T) {
	dir := smallLedger(t)
	out, stderr, err := run(t, "status", "--json", "--data", dir, "--tz", "UTC")
	if err != nil {
		t.Fatalf("status --json: %v\n%s", err, stderr)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	for _, key := range []string{"generated_at", "time_zone", "block", "today", "week"} {
		if _, ok := st[key]; !ok {
			t.Errorf("status JSON lacks %q:\n%s", key, out)
		}
	}
	for _, p := range []string{"today", "week"} {
		period, _ := st[p].(map[string]any)
		for _, key := range []string{"period", "start", "input_tokens", "output_tokens", "cache_creation_input_tokens",
			"cache_read_input_tokens", "total_tokens", "requests", "cost_usd"} {
			if _, ok := period[key]; !ok {
				t.Errorf("status JSON %s lacks %q", p, key)
			}
		}
	}

	// The block's fields, at a fixed now.
	db, err := openLedgerReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := (&status.Reader{Store: db, Loc: time.UTC}).Read(context.Background(), statusNow, true)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	status.JSON(&buf, s)
	var generic struct {
		Block map[string]any `json:"block"`
		Week  map[string]any `json:"week"`
	}
	json.Unmarshal(buf.Bytes(), &generic)
	for _, key := range []string{"start", "reset", "first_activity", "last_activity", "remaining_minutes", "start_exact",
		"models", "total_tokens", "cost_usd", "burn_rate", "projection"} {
		if _, ok := generic.Block[key]; !ok {
			t.Errorf("status JSON block lacks %q:\n%s", key, buf.String())
		}
	}
	b := s.Block
	if b == nil {
		t.Fatalf("no active block at %v:\n%s", statusNow, buf.String())
	}
	if !b.Start.Equal(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) || !b.Reset.Equal(b.Start.Add(5*time.Hour)) ||
		b.RemainingMinutes != 140 || b.TotalTokens != 1_200_000 || b.CostMicros != 3_410_000 || !b.StartExact {
		t.Errorf("block = %+v", b)
	}
	// 1.2M tokens and $3.41 in the 150 minutes since the first call.
	if b.BurnRate == nil || b.BurnRate.TokensPerMinute != 8_000 || b.BurnRate.CostMicrosPerHour != 1_364_000 {
		t.Errorf("burn rate = %+v; want 8000 tokens/min, $1.364/h", b.BurnRate)
	}
	if p := b.Projection; p == nil || p.TotalTokens != 1_200_000+140*8_000 || p.CostMicros != 3_410_000+3_182_667 {
		t.Errorf("projection = %+v", b.Projection)
	}
	if s.Today.CostMicros != 3_410_000 || s.Today.Period != "2026-03-02" || s.Week.Period != "2026-03-02" || s.Week.CostMicros != 3_410_000 {
		t.Errorf("today %+v, week %+v", s.Today, s.Week)
	}

	// The text form fits 80 columns.
	out, _, err = run(t, "status", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if utf8.RuneCountInString(l) > 80 {
			t.Errorf("status line %q is wider than 80", l)
		}
	}
	if _, _, err := run(t, "status", "--data", filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("status without a ledger succeeded")
	}
}

func TestReportSessionBlocksCLI(t *testing.T) {
	dir := smallLedger(t)
	for _, kind := range []string{"session", "blocks"} {
		out, stderr, err := run(t, "report", kind, "--json", "--data", dir, "--tz", "UTC")
		if err != nil {
			t.Fatalf("report %s: %v\n%s", kind, err, stderr)
		}
		var rep struct {
			Rows   []map[string]any `json:"rows"`
			Totals map[string]any   `json:"totals"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Rows) == 0 || rep.Totals["requests"] != 3.0 {
			t.Errorf("report %s --json: %v\n%s", kind, err, out)
		}
	}
	if _, _, err := run(t, "report", "blocks", "--by", "model", "--data", dir); err == nil {
		t.Error("report blocks --by model succeeded")
	}
}

// BenchmarkStatusline measures the whole status line (open the ledger
// read-only, query, render) on a ledger of 1,000,000 calls over 60 days,
// built once per run (about half a minute): go test -run=^$
// -bench=Statusline ./cmd/tokenmeter
func BenchmarkStatusline(b *testing.B) {
	dir := b.TempDir()
	now := time.Now()
	fillLedger(b, filepath.Join(dir, LedgerFile), now, 1_000_000, 60*24*time.Hour)
	args := []string{"statusline", "--data", dir, "--tz", "Europe/Berlin"}
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		if err := Run(context.Background(), args, strings.NewReader(hookJSON), &out, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	if !strings.Contains(out.String(), "block $") {
		b.Errorf("no active block in %q", out.String())
	}
	b.Logf("%s", strings.TrimSpace(out.String()))
}

// fillLedger appends n calls spread evenly over span up to now, in
// batches of 10,000: three models, two keys, four projects, a session per
// hour.
func fillLedger(b *testing.B, path string, now time.Time, n int, span time.Duration) {
	b.Helper()
	start := time.Now()
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	models := []string{"claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5"}
	step := span / time.Duration(n)
	first := now.Add(-span)
	batch := make([]tokenmeter.Event, 0, 10_000)
	for i := range n {
		at := first.Add(time.Duration(i) * step)
		ev := storetest.Event(fmt.Sprintf("bench-%07d", i), at, tokenmeter.Usage{
			InputTokens: int64(10 + i%500), OutputTokens: int64(100 + i%2000), CacheReadTokens: int64(i % 30_000)})
		ev.Model = models[i%3]
		ev.Principal = fmt.Sprintf("cred:%04x", i%2)
		ev.Project = fmt.Sprintf("project-%d", i%4)
		ev.Session = fmt.Sprintf("session-%d", at.Unix()/3600)
		ev.Cost = tokenmeter.Micros(100 + i%5000)
		batch = append(batch, ev)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := db.Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Logf("ledger of %d calls built in %v", n, time.Since(start).Round(time.Millisecond))
}
