package pricing_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// day returns midnight UTC of a YYYY-MM-DD date.
func day(t testing.TB, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// usd converts a dollar figure such as "0.125" to micro-dollars, exactly.
func usd(t testing.TB, s string) int64 {
	t.Helper()
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 6 {
		t.Fatalf("usd(%q): more than six decimals", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		t.Fatalf("usd(%q): %v", s, err)
	}
	f, err := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	if err != nil {
		t.Fatalf("usd(%q): %v", s, err)
	}
	return w*1_000_000 + f
}

// rates parses "in w5 w1 read out" in dollars per MTok.
func rates(t testing.TB, s string) pricing.Rates {
	t.Helper()
	f := strings.Fields(s)
	if len(f) != 5 {
		t.Fatalf("rates(%q): want 5 fields", s)
	}
	return pricing.Rates{
		Input: usd(t, f[0]), CacheWrite5m: usd(t, f[1]), CacheWrite1h: usd(t, f[2]),
		CacheRead: usd(t, f[3]), Output: usd(t, f[4]),
	}
}

func TestDefault(t *testing.T) {
	d := pricing.Default()
	if d != pricing.Default() {
		t.Error("Default() returned two different tables")
	}
	if got, want := d.Version(), "2026-12-08"; got != want {
		t.Errorf("Default().Version() = %q, want %q", got, want)
	}
}

// TestDefaultRates checks the embedded table against the figures of the
// price pages (docs/pricing.md, Sources), typed in a second time here in
// dollars: every
// id's rates today, and the earlier rates of the effective-dated rows.
func TestDefaultRates(t *testing.T) {
	const now = "2026-11-29"
	tests := []struct {
		id, at, provider string
		rates            string // "in w5 w1 read out", dollars per MTok
		long             string // "threshold in w5 w1 read out", or ""
		webSearch        string // dollars per 1,000 searches, or ""
		confidence       string
	}{
		// Anthropic: the pricing page [AP], model pages.
		{"claude-fable-5-2", now, "anthropic", "8 10 16 0.20 40", "", "10", "S"},
		{"claude-mythos-5-2", now, "anthropic", "8 10 16 0.20 40", "", "10", "S"},
		{"claude-fable-5-1", now, "anthropic", "10 12.50 20 0.25 50", "", "10", "O"},
		{"claude-mythos-5-1", now, "anthropic", "10 12.50 20 0.25 50", "", "10", "O"},
		{"claude-fable-5", now, "anthropic", "10 12.50 20 1 50", "", "10", "O"},
		{"claude-mythos-5", now, "anthropic", "10 12.50 20 1 50", "", "10", "O"},
		{"claude-opus-5-5", now, "anthropic", "4 5 8 0.20 20", "", "10", "O"},
		{"claude-opus-5", now, "anthropic", "5 6.25 10 0.50 25", "", "10", "O"},
		{"claude-opus-4-8", now, "anthropic", "5 6.25 10 0.50 25", "", "10", "O"},
		{"claude-opus-4-7", now, "anthropic", "5 6.25 10 0.50 25", "", "10", "O"},
		{"claude-opus-4-6", now, "anthropic", "5 6.25 10 0.50 25", "", "10", "O"},
		{"claude-opus-4-6", "2026-03-12", "anthropic", "5 6.25 10 0.50 25", "200000 10 12.50 20 1 37.50", "10", "S"},
		{"claude-opus-4-5", now, "anthropic", "5 6.25 10 0.50 25", "", "10", "O"},
		{"claude-opus-4-1", now, "anthropic", "15 18.75 30 1.50 75", "", "10", "O"},
		{"claude-opus-4", now, "anthropic", "15 18.75 30 1.50 75", "", "10", "O"},
		{"claude-3-opus", now, "anthropic", "15 18.75 30 1.50 75", "", "10", "O"},
		{"claude-sonnet-5-5", now, "anthropic", "2 2.50 4 0.10 10", "", "10", "O"},
		{"claude-sonnet-5-5", "2026-10-06", "anthropic", "2 2.50 4 0.20 10", "", "10", "O"},
		{"claude-sonnet-5", now, "anthropic", "2 2.50 4 0.20 10", "", "10", "O"},
		{"claude-sonnet-4-6", now, "anthropic", "3 3.75 6 0.30 15", "", "10", "O"},
		{"claude-sonnet-4-6", "2026-03-12", "anthropic", "3 3.75 6 0.30 15", "200000 6 7.50 12 0.60 22.50", "10", "S"},
		{"claude-sonnet-4-5", now, "anthropic", "3 3.75 6 0.30 15", "200000 6 7.50 12 0.60 22.50", "10", "O"},
		{"claude-sonnet-4", now, "anthropic", "3 3.75 6 0.30 15", "200000 6 7.50 12 0.60 22.50", "10", "O"},
		{"claude-3-7-sonnet", now, "anthropic", "3 3.75 6 0.30 15", "", "10", "O"},
		{"claude-haiku-5-5", now, "anthropic", "0.10 0.125 0.20 0.01 0.50", "100000 0.50 0.625 1 0.05 2.50", "10", "O"},
		{"claude-haiku-4-5", now, "anthropic", "1 1.25 2 0.10 5", "", "10", "O"},
		{"claude-3-5-haiku", now, "anthropic", "0.80 1 1.60 0.08 4", "", "10", "O"},
		{"claude-3-haiku", now, "anthropic", "0.25 0.30 0.50 0.03 1.25", "", "10", "O"},

		// OpenAI: the model and pricing pages [OM][OP]. Writes and cached input marked "—" are
		// billed as plain input; cache_write_1h is the 12-hour write where
		// one is listed, else the standard write.
		{"gpt-6.2-astra", now, "openai", "8 10 10 0.40 40", "272000 16 20 20 0.80 60", "", "U"},
		{"gpt-6.2-sol", now, "openai", "2 2.50 5 0.10 10", "272000 4 5 10 0.20 15", "", "O"},
		{"gpt-6.1-sol", now, "openai", "2 2.50 2.50 0.10 10", "272000 4 5 5 0.20 15", "", "O"},
		{"gpt-6-astra", now, "openai", "10 12.50 12.50 1 50", "272000 20 25 25 2 75", "", "O"},
		{"gpt-6-sol", now, "openai", "2 2.50 2.50 0.20 10", "272000 4 5 5 0.40 15", "", "O"},
		{"gpt-6-luna", now, "openai", "0.10 0.125 0.125 0.01 0.50", "272000 0.20 0.25 0.25 0.02 0.75", "", "O"},
		{"gpt-5.6-sol", now, "openai", "4 5 5 0.40 20", "272000 8 10 10 0.80 30", "10", "S"},
		{"gpt-5.6-sol", "2026-08-20", "openai", "5 6.25 6.25 0.50 30", "272000 10 12.50 12.50 1 45", "10", "S"},
		{"gpt-5.6-terra", now, "openai", "2 2.50 2.50 0.20 12", "272000 4 5 5 0.40 18", "10", "S"},
		{"gpt-5.6-terra", "2026-07-29", "openai", "2.50 3.125 3.125 0.25 15", "272000 5 6.25 6.25 0.50 22.50", "10", "S"},
		{"gpt-5.6-luna", now, "openai", "0.20 0.25 0.25 0.02 1.20", "272000 0.40 0.50 0.50 0.04 1.80", "10", "S"},
		{"gpt-5.6-luna", "2026-07-29", "openai", "1 1.25 1.25 0.10 6", "272000 2 2.50 2.50 0.20 9", "10", "S"},
		{"gpt-5.5", now, "openai", "5 5 5 0.50 30", "272000 10 10 10 1 45", "10", "S"},
		{"gpt-5.5-pro", now, "openai", "30 30 30 30 180", "272000 60 60 60 60 270", "10", "S"},
		{"gpt-5.4-pro", now, "openai", "30 30 30 30 180", "272000 60 60 60 60 270", "10", "S"},
		{"gpt-5.4", now, "openai", "2.50 2.50 2.50 0.25 15", "272000 5 5 5 0.50 22.50", "10", "S"},
		{"gpt-5.4-mini", now, "openai", "0.75 0.75 0.75 0.075 4.50", "", "10", "S"},
		{"gpt-5.4-nano", now, "openai", "0.20 0.20 0.20 0.02 1.25", "", "10", "S"},
		{"gpt-5.3-codex", now, "openai", "1.75 1.75 1.75 0.175 14", "", "10", "S"},
		{"gpt-5.2", now, "openai", "1.75 1.75 1.75 0.175 14", "", "10", "S"},
		{"gpt-5.2-pro", now, "openai", "21 21 21 21 168", "", "10", "S"},
		{"gpt-5.1", now, "openai", "1.25 1.25 1.25 0.125 10", "", "10", "S"},
		{"gpt-5", now, "openai", "1.25 1.25 1.25 0.125 10", "", "10", "S"},
		{"gpt-5-pro", now, "openai", "15 15 15 15 120", "", "10", "S"},
		{"gpt-5-mini", now, "openai", "0.25 0.25 0.25 0.025 2", "", "10", "S"},
		{"gpt-5.1-codex-mini", now, "openai", "0.25 0.25 0.25 0.025 2", "", "10", "S"},
		{"gpt-5-nano", now, "openai", "0.05 0.05 0.05 0.005 0.40", "", "10", "O"},
		{"gpt-4.1", now, "openai", "2 2 2 0.50 8", "", "", "S"},
		{"gpt-4.1-mini", now, "openai", "0.40 0.40 0.40 0.10 1.60", "", "", "S"},
		{"gpt-4.1-nano", now, "openai", "0.10 0.10 0.10 0.025 0.40", "", "", "S"},
		{"gpt-4o", now, "openai", "2.50 2.50 2.50 1.25 10", "", "", "S"},
		{"gpt-4o-2024-05-13", now, "openai", "5 5 5 5 15", "", "", "S"},
		{"chatgpt-4o-latest", now, "openai", "5 5 5 5 15", "", "", "S"},
		{"gpt-4o-mini", now, "openai", "0.15 0.15 0.15 0.075 0.60", "", "", "S"},
		{"o3", now, "openai", "2 2 2 0.50 8", "", "10", "S"},
		{"o3", "2025-06-09", "openai", "10 10 10 2.50 40", "", "10", "U"},
		{"o3-pro", now, "openai", "20 20 20 20 80", "", "10", "S"},
		{"o4-mini", now, "openai", "1.10 1.10 1.10 0.275 4.40", "", "10", "S"},
		{"o3-mini", now, "openai", "1.10 1.10 1.10 0.55 4.40", "", "10", "S"},
		{"o1-mini", now, "openai", "1.10 1.10 1.10 0.55 4.40", "", "10", "S"},
		{"o1", now, "openai", "15 15 15 7.50 60", "", "10", "S"},
		{"o1-pro", now, "openai", "150 150 150 150 600", "", "10", "S"},

		// Gemini: the pricing page [GQ][GP] (text input; cache writes billed as input).
		{"gemini-2.5-pro", now, "gemini", "1.25 1.25 1.25 0.125 10", "200000 2.50 2.50 2.50 0.25 15", "", "O"},
		{"gemini-2.5-pro", "2025-12-31", "gemini", "1.25 1.25 1.25 0.31 10", "200000 2.50 2.50 2.50 0.625 15", "", "U"},
		{"gemini-2.5-flash", now, "gemini", "0.30 0.30 0.30 0.03 2.50", "", "", "S"},
		{"gemini-2.5-flash", "2025-12-31", "gemini", "0.30 0.30 0.30 0.075 2.50", "", "", "U"},
		{"gemini-2.5-flash-lite", now, "gemini", "0.10 0.10 0.10 0.01 0.40", "", "", "S"},
		{"gemini-3-pro-preview", now, "gemini", "2 2 2 0.20 12", "200000 4 4 4 0.40 18", "", "S"},
		{"gemini-3.1-pro-preview", now, "gemini", "2 2 2 0.20 12", "200000 4 4 4 0.40 18", "", "O"},
		{"gemini-3-flash-preview", now, "gemini", "0.50 0.50 0.50 0.05 3", "", "", "S"},
		{"gemini-3.1-flash-lite", now, "gemini", "0.25 0.25 0.25 0.025 1.50", "", "", "S"},
		{"gemini-3.5-flash", now, "gemini", "1.50 1.50 1.50 0.15 9", "", "", "O"},
		{"gemini-3.5-flash-lite", now, "gemini", "0.30 0.30 0.30 0.03 2.50", "", "", "O"},
		{"gemini-3.6-flash", now, "gemini", "0.75 0.75 0.75 0.075 3.75", "", "", "U"},
		{"gemini-3.6-flash", "2026-09-01", "gemini", "1.50 1.50 1.50 0.15 7.50", "", "", "U"},
		{"gemini-3.6-flash", "2027-01-01", "gemini", "1.50 1.50 1.50 0.15 7.50", "", "", "S"},
		{"gemini-3.7-flash", now, "gemini", "0.75 0.75 0.75 0.075 3.75", "", "", "U"},
		{"gemini-3.7-flash", "2027-01-01", "gemini", "1.50 1.50 1.50 0.15 7.50", "", "", "S"},
		{"gemini-3.8-flash", now, "gemini", "0.75 0.75 0.75 0.075 3.75", "", "", "O"},
		{"gemini-3.8-flash", "2027-01-01", "gemini", "1.50 1.50 1.50 0.15 7.50", "", "", "O"},
	}
	tab := pricing.Default()
	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.id] = true
		p, ok := tab.Lookup(tt.id, day(t, tt.at))
		if !ok {
			t.Errorf("Lookup(%q, %s) found nothing", tt.id, tt.at)
			continue
		}
		want := struct {
			Provider, ID string
			Rates        pricing.Rates
			Long         *pricing.Tier
			WebSearch    int64
			Batch        int
			Confidence   string
		}{tt.provider, tt.id, rates(t, tt.rates), nil, 0, 50, tt.confidence}
		if tt.long != "" {
			f := strings.Fields(tt.long)
			th, _ := strconv.ParseInt(f[0], 10, 64)
			want.Long = &pricing.Tier{Threshold: th, Rates: rates(t, strings.Join(f[1:], " "))}
		}
		if tt.webSearch != "" {
			want.WebSearch = usd(t, tt.webSearch)
		}
		got := want
		got.Provider, got.ID, got.Rates, got.Long, got.WebSearch, got.Batch, got.Confidence =
			p.Provider, p.ID, p.Rates, p.LongContext, p.WebSearchPer1k, p.BatchDiscountPct, p.Confidence
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Lookup(%q, %s) mismatch (-want +got):\n%s", tt.id, tt.at, diff)
		}
		if p.Source == "" {
			t.Errorf("Lookup(%q, %s).Source is empty", tt.id, tt.at)
		}
	}

	// Every id of the file is checked above.
	var f struct {
		Models []struct{ ID string }
	}
	data, err := os.ReadFile("prices.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, m := range f.Models {
		if !tested[m.ID] {
			missing = append(missing, m.ID)
		}
	}
	if len(missing) > 0 {
		t.Errorf("ids in prices.json with no case in TestDefaultRates: %v", slices.Compact(missing))
	}
}

func TestLookup(t *testing.T) {
	tab := pricing.Default()
	tests := []struct {
		model  string
		at     string
		wantID string // "" when not found
		from   string // the wanted row's effective_from, if it matters
	}{
		{"claude-opus-4-5", "2026-11-29", "claude-opus-4-5", ""},
		{"claude-opus-4-5-20251101", "2026-11-29", "claude-opus-4-5", ""},
		{"CLAUDE-Opus-4-5", "2026-11-29", "claude-opus-4-5", ""},
		{" claude-opus-4-5 ", "2026-11-29", "claude-opus-4-5", ""},
		{"claude-opus-4-0", "2026-11-29", "claude-opus-4", ""},
		{"claude-opus-4-20250514", "2026-11-29", "claude-opus-4", ""},
		{"claude-3-5-haiku-latest", "2026-11-29", "claude-3-5-haiku", ""},
		{"claude-3-opus-latest", "2026-11-29", "claude-3-opus", ""},
		// A snapshot date the table does not list is removed.
		{"claude-haiku-4-5-20991231", "2026-11-29", "claude-haiku-4-5", ""},
		{"claude-opus-5-5-20260923", "2026-11-29", "claude-opus-5-5", ""},
		// Claude Code's context-window suffix.
		{"claude-opus-5-5[1m]", "2026-11-29", "claude-opus-5-5", ""},
		{"claude-sonnet-4-5-20250929[1m]", "2026-11-29", "claude-sonnet-4-5", ""},
		// Bedrock and Vertex.
		{"anthropic.claude-3-haiku-20240307-v1:0", "2026-11-29", "claude-3-haiku", ""},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "2026-11-29", "claude-sonnet-4-5", ""},
		{"global.anthropic.claude-opus-4-6-v1", "2026-11-29", "claude-opus-4-6", ""},
		{"eu.anthropic.claude-3-5-haiku-20241022-v1:0:200k", "2026-11-29", "claude-3-5-haiku", ""},
		{"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-5-20251101-v1:0", "2026-11-29", "claude-opus-4-5", ""},
		{"claude-opus-4-5@20251101", "2026-11-29", "claude-opus-4-5", ""},
		{"publishers/anthropic/models/claude-sonnet-4-5@20250929", "2026-11-29", "claude-sonnet-4-5", ""},
		// OpenAI snapshots price as their base id, except gpt-4o-2024-05-13.
		{"gpt-5-2025-08-07", "2026-11-29", "gpt-5", ""},
		{"gpt-4o-2024-11-20", "2026-11-29", "gpt-4o", ""},
		{"gpt-4o-2024-05-13", "2026-11-29", "gpt-4o-2024-05-13", ""},
		{"gpt-6.1-sol-2026-09-29", "2026-11-29", "gpt-6.1-sol", ""},
		{"gpt-5-nano-2025-08-07", "2026-11-29", "gpt-5-nano", ""},
		{"o3-2025-04-16", "2025-05-01", "o3", "2025-04-16"},
		{"gpt-5.6", "2026-11-29", "gpt-5.6-sol", "2026-08-21"},
		// Gemini.
		{"models/gemini-2.5-pro", "2026-11-29", "gemini-2.5-pro", "2026-01-01"},
		{"gemini-3.6-flash", "2026-12-31", "gemini-3.6-flash", "2026-09-02"},
		{"gemini-3.6-flash", "2027-01-01", "gemini-3.6-flash", "2027-01-01"},
		// Effective dates: from is inclusive, to exclusive.
		{"claude-sonnet-5-5", "2026-10-06", "claude-sonnet-5-5", "2026-09-28"},
		{"claude-sonnet-5-5", "2026-10-07", "claude-sonnet-5-5", "2026-10-07"},
		{"claude-opus-4-6", "2026-03-12", "claude-opus-4-6", "2026-03-01"},
		{"claude-opus-4-6", "2026-03-13", "claude-opus-4-6", "2026-03-13"},
		// Before a model's first row: the first row.
		{"claude-opus-4-6", "2026-02-05", "claude-opus-4-6", "2026-03-01"},
		{"claude-opus-4-5", "2020-01-01", "claude-opus-4-5", "2025-11-01"},
		{"gpt-5.5", "0001-01-01", "gpt-5.5", ""},
		// Unknown.
		{"", "2026-11-29", "", ""},
		{"claude-3-5-sonnet-20241022", "2026-11-29", "", ""},
		{"claude-opus-4-6-fast", "2026-11-29", "", ""},
		{"claude-mythos-preview", "2026-11-29", "", ""},
		{"claude-opus-4-5-2025110", "2026-11-29", "", ""},
		{"claude-opus-4-5-20251301", "2026-11-29", "", ""},
		{"gpt-4o-2024-13-01", "2026-11-29", "", ""},
		{"anthropic.claude-opus-4-5-20251101-beta", "2026-11-29", "", ""},
		{"gpt-5-chat-latest", "2026-11-29", "", ""},
		{"[1m]", "2026-11-29", "", ""},
		{"-20250101", "2026-11-29", "", ""},
	}
	for _, tt := range tests {
		// Twice: the second call is answered from the resolution cache.
		for range 2 {
			p, ok := tab.Lookup(tt.model, day(t, tt.at))
			if ok != (tt.wantID != "") || p.ID != tt.wantID {
				t.Errorf("Lookup(%q, %s) = %q, %v; want %q, %v", tt.model, tt.at, p.ID, ok, tt.wantID, tt.wantID != "")
				break
			}
			if tt.from != "" && !p.From.Equal(day(t, tt.from)) {
				t.Errorf("Lookup(%q, %s).From = %s, want %s", tt.model, tt.at, p.From.Format(time.DateOnly), tt.from)
			}
		}
	}
}

// TestLookupEnded checks that a price whose last row has ended is not
// carried forward, and that a gap between rows is priced with the next row.
func TestLookupEnded(t *testing.T) {
	const src = `{"version": "t", "models": [
	  {"provider": "openai", "id": "m", "effective_from": "2026-01-01", "effective_to": "2026-02-01",
	   "input": 1, "output": 1, "cache_write_5m": 1, "cache_write_1h": 1, "cache_read": 1, "batch_discount_pct": 50},
	  {"provider": "openai", "id": "m", "effective_from": "2026-03-01", "effective_to": "2026-04-01",
	   "input": 2, "output": 2, "cache_write_5m": 2, "cache_write_1h": 2, "cache_read": 2, "batch_discount_pct": 50}]}`
	tab, err := pricing.Parse(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at        string
		wantInput int64 // 0: not found
	}{
		{"2025-06-01", 1},
		{"2026-01-31", 1},
		{"2026-02-01", 2}, // gap: the next row
		{"2026-03-31", 2},
		{"2026-04-01", 0}, // ended
	}
	for _, tt := range tests {
		p, ok := tab.Lookup("m", day(t, tt.at))
		if ok != (tt.wantInput != 0) || p.Input != tt.wantInput {
			t.Errorf("Lookup(%q, %s) = input %d, %v; want %d, %v", "m", tt.at, p.Input, ok, tt.wantInput, tt.wantInput != 0)
		}
	}
}

func TestMerge(t *testing.T) {
	f, err := os.Open("testdata/override.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	override, err := pricing.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	base := pricing.Default()
	m := base.Merge(override)

	if got, want := m.Version(), "2026-12-08+acme-2026-12"; got != want {
		t.Errorf("Merge: Version() = %q, want %q", got, want)
	}
	tests := []struct {
		model, at string
		wantID    string
		wantInput string // dollars; "" when not found
	}{
		// A new price from a date on: the base row ends there.
		{"claude-opus-4-5", "2026-11-30", "claude-opus-4-5", "5"},
		{"claude-opus-4-5-20251101", "2026-12-01", "claude-opus-4-5", "4"},
		// A period inside a base row cuts it in two.
		{"claude-sonnet-4-5", "2025-12-31", "claude-sonnet-4-5", "3"},
		{"claude-sonnet-4-5", "2026-01-01", "claude-sonnet-4-5", "2.70"},
		{"claude-sonnet-4-5", "2026-01-31", "claude-sonnet-4-5", "2.70"},
		{"claude-sonnet-4-5", "2026-02-01", "claude-sonnet-4-5", "3"},
		// A new model with its alias.
		{"acme-tuned", "2026-11-29", "acme-tuned", "3"},
		{"ft:gpt-4o-mini:acme::x1", "2026-11-29", "acme-tuned", "3"},
		// An alias of the override wins over the same alias in the base...
		{"gpt-5.6", "2026-11-29", "gpt-5.6-terra", "2"},
		// ...but not over an id.
		{"gpt-5.6-sol", "2026-11-29", "gpt-5.6-sol", "4"},
		// Untouched rows are kept.
		{"gemini-2.5-pro", "2026-11-29", "gemini-2.5-pro", "1.25"},
		{"claude-sonnet-4-5", "2025-10-01", "claude-sonnet-4-5", "3"},
	}
	for _, tt := range tests {
		p, ok := m.Lookup(tt.model, day(t, tt.at))
		if !ok || p.ID != tt.wantID || p.Input != usd(t, tt.wantInput) {
			t.Errorf("merged Lookup(%q, %s) = %q input %d, %v; want %q input %d", tt.model, tt.at, p.ID, p.Input, ok, tt.wantID, usd(t, tt.wantInput))
		}
	}
	// The sonnet-4-5 piece after the override keeps the base row's tier.
	if p, _ := m.Lookup("claude-sonnet-4-5", day(t, "2026-02-01")); p.LongContext == nil || !p.From.Equal(day(t, "2026-02-01")) {
		t.Errorf("merged Lookup(claude-sonnet-4-5, 2026-02-01) = %+v, want the base row from 2026-02-01 with its tier", p)
	}

	// The inputs are unchanged.
	if p, _ := base.Lookup("claude-opus-4-5", day(t, "2026-12-01")); p.Input != usd(t, "5") {
		t.Errorf("after Merge, Default().Lookup(claude-opus-4-5, 2026-12-01).Input = %d, want %d", p.Input, usd(t, "5"))
	}
	if _, ok := base.Lookup("acme-tuned", day(t, "2026-11-29")); ok {
		t.Error("after Merge, Default().Lookup(acme-tuned) found a price")
	}
	if _, ok := override.Lookup("claude-opus-4-5", day(t, "2026-11-29")); !ok {
		t.Error("after Merge, override.Lookup(claude-opus-4-5) found nothing")
	}
}

// TestLookupCache checks resolution under concurrent use and past the bound
// on cached names.
func TestLookupCache(t *testing.T) {
	empty, err := pricing.Parse(strings.NewReader(`{"version": "none", "models": []}`))
	if err != nil {
		t.Fatal(err)
	}
	tab := pricing.Default().Merge(empty) // a table with an empty cache
	at := day(t, "2026-11-29")
	names := map[string]string{
		"us.anthropic.claude-sonnet-4-5-20250929-v1:0": "claude-sonnet-4-5",
		"gpt-5-2025-08-07":           "gpt-5",
		"Claude-Opus-5-5[1m]":        "claude-opus-5-5",
		"claude-3-5-sonnet-20241022": "",
	}
	errs := make(chan string, 8*len(names))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for model, want := range names {
				if p, ok := tab.Lookup(model, at); p.ID != want || ok != (want != "") {
					errs <- fmt.Sprintf("Lookup(%q) = %q, %v; want %q", model, p.ID, ok, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	for i := range 5000 {
		if _, ok := tab.Lookup(fmt.Sprintf("no-such-model-%d", i), at); ok {
			t.Fatalf("Lookup(no-such-model-%d) found a price", i)
		}
	}
	if p, ok := tab.Lookup("claude-haiku-4-5-20991231", at); !ok || p.ID != "claude-haiku-4-5" {
		t.Errorf("with a full cache, Lookup(claude-haiku-4-5-20991231) = %q, %v; want claude-haiku-4-5, true", p.ID, ok)
	}
}
