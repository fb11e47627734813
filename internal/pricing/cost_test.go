package pricing_test

import (
	"math"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// TestCost checks costs computed by hand from the price pages, in micro-dollars
// (1 token at $1/MTok is 1 µ$).
func TestCost(t *testing.T) {
	tests := []struct {
		name  string
		model string
		at    string
		u     tokenmeter.Usage
		batch bool
		want  tokenmeter.Micros
	}{
		{
			// 1000×5 + 500×25 + 2000×6.25 + 1000×10 + 10000×0.50 = 5000 + 12500 + 12500 + 10000 + 5000
			name: "every category", model: "claude-opus-4-5-20251101", at: "2026-11-29",
			u:    tokenmeter.Usage{InputTokens: 1000, OutputTokens: 500, CacheWrite5mTokens: 2000, CacheWrite1hTokens: 1000, CacheReadTokens: 10000},
			want: 45000,
		},
		{
			// Codex's default model at gpt-5's rates, ccusage's worked
			// example: 1800×1.25 + 1200×0.125 + 300×10 = 2250 + 150 + 3000.
			name: "gpt-5-codex", model: "gpt-5-codex", at: "2025-10-06",
			u:    tokenmeter.Usage{InputTokens: 1800, CacheReadTokens: 1200, OutputTokens: 300},
			want: 5400,
		},
		{
			name: "batch halves every category", model: "claude-opus-4-5", at: "2026-11-29",
			u:     tokenmeter.Usage{InputTokens: 1000, OutputTokens: 500, CacheWrite5mTokens: 2000, CacheWrite1hTokens: 1000, CacheReadTokens: 10000},
			batch: true, want: 22500,
		},
		{
			// Prompt exactly 100,000 is not above the threshold:
			// 40000×0.10 + 60000×0.01 + 1000×0.50 = 4000 + 600 + 500.
			name: "haiku 5.5 at its threshold", model: "claude-haiku-5-5", at: "2026-11-29",
			u:    tokenmeter.Usage{InputTokens: 40000, CacheReadTokens: 60000, OutputTokens: 1000},
			want: 5100,
		},
		{
			// One token more: every rate ×5, output included.
			// 40001×0.50 + 60000×0.05 + 1000×2.50 = 20000.5 + 3000 + 2500 = 25500.5, half up.
			name: "haiku 5.5 above its threshold", model: "claude-haiku-5-5", at: "2026-11-29",
			u:    tokenmeter.Usage{InputTokens: 40001, CacheReadTokens: 60000, OutputTokens: 1000},
			want: 25501,
		},
		{
			// 10000.25 + 1500 + 1250 = 12750.25.
			name: "haiku 5.5 above its threshold, batch", model: "claude-haiku-5-5", at: "2026-11-29",
			u:     tokenmeter.Usage{InputTokens: 40001, CacheReadTokens: 60000, OutputTokens: 1000},
			batch: true, want: 12750,
		},
		{
			// Cache writes count toward the threshold: 150000 + 60000 > 200000.
			// 150000×6 + 60000×12 + 2000×22.50 = 900000 + 720000 + 45000.
			name: "sonnet 4.5 long context", model: "claude-sonnet-4-5-20250929[1m]", at: "2025-12-01",
			u:    tokenmeter.Usage{InputTokens: 150000, CacheWrite1hTokens: 60000, OutputTokens: 2000},
			want: 1665000,
		},
		{
			// 250000×10 + 1000×37.50.
			name: "opus 4.6 long context before 2026-03-13", model: "claude-opus-4-6", at: "2026-03-12",
			u:    tokenmeter.Usage{InputTokens: 250000, OutputTokens: 1000},
			want: 2537500,
		},
		{
			name: "opus 4.6 before its first row", model: "claude-opus-4-6", at: "2026-02-05",
			u:    tokenmeter.Usage{InputTokens: 250000, OutputTokens: 1000},
			want: 2537500,
		},
		{
			// 250000×5 + 1000×25.
			name: "opus 4.6 flat from 2026-03-13", model: "claude-opus-4-6", at: "2026-03-13",
			u:    tokenmeter.Usage{InputTokens: 250000, OutputTokens: 1000},
			want: 1275000,
		},
		{
			name: "sonnet 5.5 cache read before the cut", model: "claude-sonnet-5-5", at: "2026-10-06",
			u:    tokenmeter.Usage{CacheReadTokens: 1_000_000},
			want: 200000,
		},
		{
			name: "sonnet 5.5 cache read after the cut", model: "claude-sonnet-5-5", at: "2026-10-07",
			u:    tokenmeter.Usage{CacheReadTokens: 1_000_000},
			want: 100000,
		},
		{
			// 100×4 + 50×20 + 3 searches × $10/1000 = 400 + 1000 + 30000.
			name: "web search", model: "claude-opus-5-5", at: "2026-11-29",
			u:    tokenmeter.Usage{InputTokens: 100, OutputTokens: 50, WebSearchRequests: 3, WebFetchRequests: 5},
			want: 31400,
		},
		{
			// Search fees are not discounted: 200 + 500 + 30000.
			name: "web search, batch", model: "claude-opus-5-5", at: "2026-11-29",
			u:     tokenmeter.Usage{InputTokens: 100, OutputTokens: 50, WebSearchRequests: 3},
			batch: true, want: 30700,
		},
		{
			// 10×0.05 = 0.5, rounded half up.
			name: "rounding half up", model: "gpt-5-nano", at: "2026-11-29",
			u:    tokenmeter.Usage{InputTokens: 10},
			want: 1,
		},
		{
			// 9×0.05 = 0.45.
			name: "rounding down", model: "gpt-5-nano", at: "2026-11-29",
			u:    tokenmeter.Usage{InputTokens: 9},
			want: 0,
		},
		{
			// Reasoning is inside output: 10000×1.25 + 90000×0.125 + 5000×10 = 12500 + 11250 + 50000.
			name: "openai snapshot with reasoning", model: "gpt-5-2025-08-07", at: "2026-11-29",
			u:    tokenmeter.Usage{InputTokens: 10000, CacheReadTokens: 90000, OutputTokens: 5000, ReasoningTokens: 4000},
			want: 73750,
		},
		{
			// 300000 > 272000: (200000×4 + 100000×0.20 + 10000×15) / 2 = (800000 + 20000 + 150000) / 2.
			name: "gpt-6.2-sol long context, batch", model: "gpt-6.2-sol", at: "2026-11-29",
			u:     tokenmeter.Usage{InputTokens: 200000, CacheReadTokens: 100000, OutputTokens: 10000},
			batch: true, want: 485000,
		},
		{
			// 272000 is not more than 272K: 272000×2.
			name: "gpt-6.2-sol at 272K", model: "gpt-6.2-sol", at: "2026-11-29",
			u:    tokenmeter.Usage{InputTokens: 272000},
			want: 544000,
		},
		{
			// OpenAI writes with a 12-hour retention: 1000×5.
			name: "gpt-6.2-sol extended cache write", model: "gpt-6.2-sol", at: "2026-11-29",
			u:    tokenmeter.Usage{CacheWrite1hTokens: 1000},
			want: 5000,
		},
		{
			// 2000×10 + 1000×40 before 2025-06-10, 2000×2 + 1000×8 after.
			name: "o3 before the price cut", model: "o3-2025-04-16", at: "2025-06-09",
			u:    tokenmeter.Usage{InputTokens: 2000, OutputTokens: 1000},
			want: 60000,
		},
		{
			name: "o3 after the price cut", model: "o3", at: "2025-06-10",
			u:    tokenmeter.Usage{InputTokens: 2000, OutputTokens: 1000},
			want: 12000,
		},
		{
			// 150000×2.50 + 60000×0.25 + 1000×15 = 375000 + 15000 + 15000.
			name: "gemini 2.5 pro above 200k", model: "models/gemini-2.5-pro", at: "2026-11-29",
			u:    tokenmeter.Usage{InputTokens: 150000, CacheReadTokens: 60000, OutputTokens: 1000},
			want: 405000,
		},
		{
			name: "gemini 3.6 flash promotion", model: "gemini-3.6-flash", at: "2026-12-31",
			u:    tokenmeter.Usage{InputTokens: 1_000_000},
			want: 750000,
		},
		{
			name: "gemini 3.6 flash after the promotion", model: "gemini-3.6-flash", at: "2027-01-01",
			u:    tokenmeter.Usage{InputTokens: 1_000_000},
			want: 1500000,
		},
		{
			name: "zero usage", model: "o1-pro", at: "2026-11-29",
			want: 0,
		},
	}
	tab := pricing.Default()
	for _, tt := range tests {
		got, ok := tab.Cost(tt.model, day(t, tt.at), tt.u, tt.batch)
		if !ok || got != tt.want {
			t.Errorf("%s: Cost(%q, %s, %+v, %v) = %d, %v; want %d, true", tt.name, tt.model, tt.at, tt.u, tt.batch, got, ok, tt.want)
		}
	}
}

func TestCostNotOK(t *testing.T) {
	tests := []struct {
		name  string
		model string
		u     tokenmeter.Usage
	}{
		{"unknown model", "claude-3-5-sonnet-20241022", tokenmeter.Usage{InputTokens: 1000}},
		{"unknown model, no usage", "my-model", tokenmeter.Usage{}},
		{"negative count", "claude-opus-4-5", tokenmeter.Usage{InputTokens: 10, CacheReadTokens: -1}},
		{"cost beyond Micros", "claude-opus-4-5", tokenmeter.Usage{OutputTokens: math.MaxInt64}},
		{"sum beyond Micros", "o1-pro", tokenmeter.Usage{InputTokens: math.MaxInt64 / 2, OutputTokens: math.MaxInt64 / 2, CacheReadTokens: math.MaxInt64 / 2}},
	}
	tab := pricing.Default()
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		if got, ok := tab.Cost(tt.model, at, tt.u, false); ok || got != 0 {
			t.Errorf("%s: Cost(%q, %+v) = %d, %v; want 0, false", tt.name, tt.model, tt.u, got, ok)
		}
	}
}

// TestPriceCost checks Price.Cost on prices built by hand, including ones
// Parse would refuse.
func TestPriceCost(t *testing.T) {
	tests := []struct {
		name   string
		p      pricing.Price
		u      tokenmeter.Usage
		batch  bool
		want   tokenmeter.Micros
		wantOK bool
	}{
		{"plain", pricing.Price{Rates: pricing.Rates{Input: 3_000_000}}, tokenmeter.Usage{InputTokens: 7}, false, 21, true},
		{"no discount", pricing.Price{Rates: pricing.Rates{Input: 3_000_000}}, tokenmeter.Usage{InputTokens: 7}, true, 21, true},
		{"25% off", pricing.Price{Rates: pricing.Rates{Input: 4_000_000}, BatchDiscountPct: 25}, tokenmeter.Usage{InputTokens: 7}, true, 21, true},
		{"free", pricing.Price{BatchDiscountPct: 100, Rates: pricing.Rates{Output: 1}}, tokenmeter.Usage{OutputTokens: 1 << 40}, true, 0, true},
		{"negative rate", pricing.Price{Rates: pricing.Rates{CacheRead: -1}}, tokenmeter.Usage{}, false, 0, false},
		{"discount above 100", pricing.Price{BatchDiscountPct: 101}, tokenmeter.Usage{}, true, 0, false},
		{"huge rate", pricing.Price{Rates: pricing.Rates{Input: math.MaxInt64}}, tokenmeter.Usage{InputTokens: math.MaxInt64}, false, 0, false},
		{"huge counts, tier saturates", pricing.Price{LongContext: &pricing.Tier{Threshold: 10}}, tokenmeter.Usage{InputTokens: math.MaxInt64, CacheReadTokens: math.MaxInt64, CacheWrite5mTokens: math.MaxInt64}, false, 0, true},
		// The largest cost that fits: (2⁶³−1) µ$.
		{"max micros", pricing.Price{Rates: pricing.Rates{Input: 1_000_000}}, tokenmeter.Usage{InputTokens: math.MaxInt64}, false, math.MaxInt64, true},
	}
	for _, tt := range tests {
		got, ok := tt.p.Cost(tt.u, tt.batch)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("%s: %+v.Cost(%+v, %v) = %d, %v; want %d, %v", tt.name, tt.p, tt.u, tt.batch, got, ok, tt.want, tt.wantOK)
		}
	}
}

// BenchmarkCost measures Lookup and Cost together, as the gateway calls them
// on every response.
func BenchmarkCost(b *testing.B) {
	tab := pricing.Default()
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	u := tokenmeter.Usage{InputTokens: 1200, OutputTokens: 800, CacheWrite5mTokens: 3000, CacheReadTokens: 45000}
	for _, model := range []string{
		"claude-sonnet-5-5",                            // id
		"claude-sonnet-4-5-20250929",                   // alias
		"us.anthropic.claude-sonnet-4-5-20250929-v1:0", // resolved once, then cached
		"gpt-5-2025-08-07",                             // resolved once, then cached
	} {
		b.Run(model, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := tab.Cost(model, at, u, false); !ok {
					b.Fatalf("Cost(%q) not ok", model)
				}
			}
		})
	}
}

// TestCostServiceTier: OpenAI calls served on the flex, priority (fast)
// and ultrafast tiers are priced at their share of the standard rates
// (prices.md 2.2); the standard names price as before; a tier the row
// does not list has no price rather than the standard one (issue 13
// item 13).
func TestCostServiceTier(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.DateOnly, s); return v }
	d := pricing.Default()
	// gpt-5: 10000×1.25 + 90000×0.125 + 5000×10 = 73750 µ$ at standard.
	u := tokenmeter.Usage{InputTokens: 10000, CacheReadTokens: 90000, OutputTokens: 5000, ReasoningTokens: 4000}
	for _, tt := range []struct {
		model, at, tier string
		batch           bool
		want            tokenmeter.Micros
		ok              bool
	}{
		{"gpt-5", "2026-12-01", "", false, 73750, true},
		{"gpt-5", "2026-12-01", "default", false, 73750, true},
		{"gpt-5", "2026-12-01", "auto", false, 73750, true},
		{"gpt-5", "2026-12-01", "flex", false, 36875, true},
		{"gpt-5", "2026-12-01", "priority", false, 147500, true},
		{"gpt-5", "2026-12-01", "fast", false, 147500, true},
		{"gpt-5", "2026-12-01", "FAST", false, 147500, true},
		{"gpt-5", "2026-12-01", "scale", false, 0, false},
		{"gpt-5", "2026-12-01", "ultrafast", false, 0, false},
		{"gpt-5-mini", "2026-12-01", "priority", false, 0, true}, // checked below: 1.8×
		{"gpt-4o", "2026-12-01", "priority", false, 0, false},    // not captured in prices.md: no price
		{"gpt-5.5", "2026-12-01", "priority", false, 0, true},    // 2.5×
		{"gpt-6.1-sol", "2026-12-01", "ultrafast", false, 0, true},
		{"gpt-6.2-sol", "2027-02-28", "ultrafast", false, 0, true},
		{"gpt-6.2-sol", "2027-03-01", "ultrafast", false, 0, true},
		{"gpt-5", "2026-12-01", "flex", true, 18438, true}, // both halvings: 73750 / 4, half up
	} {
		got, ok := d.CostIn(tt.model, at(tt.at), u, tt.batch, tt.tier)
		if ok != tt.ok || (tt.want != 0 && got != tt.want) {
			t.Errorf("CostIn(%s, %s, tier %q, batch %v) = %d, %v; want %d, %v", tt.model, tt.at, tt.tier, tt.batch, got, ok, tt.want, tt.ok)
		}
		if !ok && got != 0 {
			t.Errorf("CostIn(%s, tier %q) = %d without a price; want 0", tt.model, tt.tier, got)
		}
	}
	ratio := func(model, at, tier string) float64 {
		std, _ := d.CostIn(model, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), u, false, "")
		if at != "" {
			std, _ = d.Cost(model, atDate(at), u, false)
		}
		c, _ := d.CostIn(model, atDate(orDate(at)), u, false, tier)
		return float64(c) / float64(std)
	}
	for _, tt := range []struct {
		model, at, tier string
		want            float64
	}{
		{"gpt-5-mini", "", "priority", 1.8},
		{"gpt-4.1", "", "priority", 1.75},
		{"gpt-5.5", "", "priority", 2.5},
		{"gpt-6.1-sol", "", "ultrafast", 6},
		{"gpt-6.2-sol", "2027-02-28", "ultrafast", 3},
		{"gpt-6.2-sol", "2027-03-01", "ultrafast", 6},
	} {
		if got := ratio(tt.model, tt.at, tt.tier); math.Abs(got-tt.want) > 0.001 {
			t.Errorf("%s on %s at %s: %.4f× standard, want %.2f×", tt.model, tt.tier, orDate(tt.at), got, tt.want)
		}
	}
}

func orDate(s string) string {
	if s == "" {
		return "2026-12-01"
	}
	return s
}

func atDate(s string) time.Time { v, _ := time.Parse(time.DateOnly, s); return v }
