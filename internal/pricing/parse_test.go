package pricing_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

func TestParse(t *testing.T) {
	const src = `{"version": "v1", "source_read": "test", "models": [
	  {"provider": "anthropic", "id": " Claude-X ", "aliases": ["claude-x-20260101", "CLAUDE-X-LATEST", "claude-x"],
	   "effective_from": "2026-01-01", "effective_to": "2026-03-13",
	   "input": 3000000, "output": 15000000, "cache_write_5m": 3750000, "cache_write_1h": 6000000, "cache_read": 300000,
	   "long_context": {"threshold": 200000, "input": 6000000, "output": 22500000, "cache_write_5m": 7500000, "cache_write_1h": 12000000, "cache_read": 600000},
	   "batch_discount_pct": 50, "web_search_per_1k": 10000000, "source": "[AP]", "confidence": "O", "note": "n"},
	  {"provider": "anthropic", "id": "claude-x", "effective_from": "2026-03-13",
	   "input": 0, "output": 0, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 0, "batch_discount_pct": 0}]}`
	tab, err := pricing.Parse(strings.NewReader(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := tab.Version(), "v1"; got != want {
		t.Errorf("Version() = %q, want %q", got, want)
	}
	want := pricing.Price{
		Provider: "anthropic", ID: "claude-x",
		From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC),
		Rates: pricing.Rates{Input: 3_000_000, Output: 15_000_000, CacheWrite5m: 3_750_000, CacheWrite1h: 6_000_000, CacheRead: 300_000},
		LongContext: &pricing.Tier{Threshold: 200_000, Rates: pricing.Rates{
			Input: 6_000_000, Output: 22_500_000, CacheWrite5m: 7_500_000, CacheWrite1h: 12_000_000, CacheRead: 600_000}},
		BatchDiscountPct: 50, WebSearchPer1k: 10_000_000, Source: "[AP]", Confidence: "O",
	}
	for _, model := range []string{"claude-x", "claude-x-latest", "Claude-X-20260101", "claude-x-20251231"} {
		got, ok := tab.Lookup(model, time.Date(2026, 3, 12, 23, 59, 59, 0, time.UTC))
		if !ok {
			t.Errorf("Lookup(%q) found nothing", model)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Lookup(%q) mismatch (-want +got):\n%s", model, diff)
		}
	}
	// A zero price is a price, not an unknown model.
	if got, ok := tab.Cost("claude-x", time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC), tokenmeter.Usage{InputTokens: 5}, false); !ok || got != 0 {
		t.Errorf("Cost(claude-x, 2026-03-13) = %d, %v; want 0, true", got, ok)
	}
}

// TestParseErrors feeds Parse each file of testdata/bad and checks that the
// error names the problem.
func TestParseErrors(t *testing.T) {
	tests := map[string]string{
		"unknown_key":           `models[0]: json: unknown field "inptu"`,
		"unknown_top_key":       `unknown field "versoin"`,
		"unknown_tier_key":      `models[0]: json: unknown field "treshold"`,
		"negative_rate":         `models[0] (m): cache_read -1 is negative`,
		"negative_tier_rate":    `models[0] (m): long_context.output -2 is negative`,
		"negative_web_search":   `web_search_per_1k -10 is negative`,
		"missing_rate":          `models[0] (m): missing "cache_write_1h"`,
		"missing_tier_rate":     `missing "long_context.cache_read"`,
		"missing_threshold":     `missing "long_context.threshold"`,
		"zero_threshold":        `long_context.threshold 0 is not positive`,
		"float_rate":            `cannot unmarshal number 1.5`,
		"string_rate":           `cannot unmarshal string`,
		"to_before_from":        `effective_to 2026-01-01 is not after effective_from 2026-02-01`,
		"to_equals_from":        `effective_to 2026-02-01 is not after effective_from 2026-02-01`,
		"bad_date":              `effective_from "2026-13-01" is not a YYYY-MM-DD date`,
		"bad_to_date":           `effective_to "1 March 2026" is not a YYYY-MM-DD date`,
		"missing_from":          `missing "effective_from"`,
		"overlap":               `m: rows [2026-01-01, open) and [2026-06-01, open) overlap`,
		"overlap_closed":        `m: rows [2026-01-01, 2026-07-01) and [2026-06-01, open) overlap`,
		"alias_conflict":        `models[1] (n): alias "x" already names m`,
		"alias_is_id":           `"n" is both a model id and an alias of m`,
		"empty_alias":           `empty alias`,
		"bad_provider":          `provider "mistral" is not anthropic, openai or gemini`,
		"missing_provider":      `missing "provider"`,
		"provider_mismatch":     `models[1] (m): provider "gemini", but an earlier row of this id has "openai"`,
		"missing_id":            `models[0]: missing "id"`,
		"bad_confidence":        `confidence "high" is not O, S or U`,
		"bad_batch":             `batch_discount_pct 150 is not between 0 and 100`,
		"missing_batch":         `missing "batch_discount_pct"`,
		"bad_service_tier_pct":  `service_tiers.priority 0 is not a percentage between 1 and 10000`,
		"bad_service_tier_name": `service_tiers: "fast" is not a tier name`,
		"missing_version":       `missing "version"`,
		"missing_models":        `missing "models"`,
		"trailing":              `unexpected data after the table`,
		"not_json":              `unexpected EOF`,
		"empty":                 `EOF`,
		"models_not_list":       `cannot unmarshal object`,
	}
	files, err := filepath.Glob("testdata/bad/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("testdata/bad has %d files, the test %d cases", len(files), len(tests))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		want, ok := tests[name]
		if !ok {
			t.Errorf("%s: no case", file)
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := pricing.Parse(bytes.NewReader(data))
		if err == nil || tab != nil {
			t.Errorf("Parse(%s) = %v, %v; want nil and an error containing %q", file, tab, err, want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "parse price table: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) error = %q, want one containing %q", file, err, want)
		}
	}
}

// FuzzParse checks that Parse never panics and that any table it accepts
// prices each of its ids from that id's first row on.
// Its seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	at := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	u := tokenmeter.Usage{InputTokens: 300_000, OutputTokens: 1000, CacheReadTokens: 10, WebSearchRequests: 2}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := pricing.Parse(bytes.NewReader(data))
		if err != nil {
			if tab != nil {
				t.Fatalf("Parse returned a table and the error %v", err)
			}
			return
		}
		var file struct {
			Models []struct {
				ID            string `json:"id"`
				Aliases       []string
				EffectiveFrom string `json:"effective_from"`
			}
		}
		if err := json.Unmarshal(data, &file); err != nil {
			t.Fatalf("Parse accepted what json.Unmarshal refuses: %v", err)
		}
		merged := pricing.Default().Merge(tab)
		for _, m := range file.Models {
			from, err := time.Parse(time.DateOnly, m.EffectiveFrom)
			if err != nil {
				t.Fatalf("Parse accepted effective_from %q: %v", m.EffectiveFrom, err)
			}
			for _, name := range append([]string{m.ID}, m.Aliases...) {
				if _, ok := tab.Lookup(name, from); !ok {
					t.Errorf("Lookup(%q, %s) on the parsed table found nothing", name, m.EffectiveFrom)
				}
				tab.Cost(name, at, u, true)
			}
			if _, ok := merged.Lookup(m.ID, from); !ok {
				t.Errorf("Lookup(%q, %s) on the merged table found nothing", m.ID, m.EffectiveFrom)
			}
			merged.Cost(m.ID, at, u, false)
		}
	})
}
