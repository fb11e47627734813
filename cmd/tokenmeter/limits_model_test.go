package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// TestLimitModelAliases: a model: limit counts the calls of the alias and of
// its dated snapshots, whichever of the two the limit names, and no other
// model (providers answer an alias with the snapshot's name).
func TestLimitModelAliases(t *testing.T) {
	data := newLedger(t)
	for _, args := range [][]string{
		{"alias", "--scope", "model:claude-sonnet-4-5", "--metric", "requests", "--max", "100", "--window", "day", "--tz", "UTC"},
		{"dated", "--scope", "model:claude-sonnet-4-5-20250929", "--metric", "requests", "--max", "100", "--window", "day", "--tz", "UTC"},
		{"openai", "--scope", "model:gpt-4o", "--metric", "requests", "--max", "100", "--window", "day", "--tz", "UTC"},
	} {
		if _, stderr, err := run(t, append([]string{"limits", "set", "--data", data}, args...)...); err != nil {
			t.Fatalf("limits set %s: %v %s", args, err, stderr)
		}
	}
	now := time.Now().UTC()
	var evs []tokenmeter.Event
	for i, model := range []string{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "claude-sonnet-4-5-1m", "gpt-4o-2024-08-06", "gpt-4o-mini"} {
		ev := storetest.Event("m"+string(rune('a'+i)), now.Add(-time.Second), tokenmeter.Usage{InputTokens: 1})
		ev.Model = model
		evs = append(evs, ev)
	}
	appendUsage(t, data, evs...)
	out, _, err := run(t, "limits", "list", "--json", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Limits []limitJSON }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"alias": 2, "dated": 2, "openai": 1}
	for _, l := range list.Limits {
		if l.Used != want[l.Name] {
			t.Errorf("limit %s counts %v requests, want %v", l.Name, l.Used, want[l.Name])
		}
	}
}
