package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestLimitsSurviveRestart (G3): counters move only by events. Usage counted
// against fixed, rolling and block windows is the same after the gateway
// restarts in the middle of the windows, and the window bounds do not move.
func TestLimitsSurviveRestart(t *testing.T) {
	data := newLedger(t)
	secret := createKey(t, data, "--name", "alice")
	for _, args := range [][]string{
		{"day", "--scope", "key:alice", "--metric", "tokens", "--max", "1000000", "--window", "day", "--reset-at", "04:30", "--tz", "America/New_York", "--mode", "hard"},
		{"week", "--scope", "global", "--metric", "requests", "--max", "1000", "--window", "week", "--tz", "Asia/Kolkata"},
		{"rolling", "--scope", "key:alice", "--metric", "cost_usd", "--max", "100", "--window", "rolling:6h", "--mode", "hard"},
		{"block", "--scope", "key:alice", "--metric", "output_tokens", "--max", "1000000", "--window", "5h-block"},
	} {
		if _, stderr, err := run(t, append([]string{"limits", "set", "--data", data}, args...)...); err != nil {
			t.Fatalf("limits set %s: %v %s", args, err, stderr)
		}
	}
	list := func() map[string]limitJSON {
		t.Helper()
		out, stderr, err := run(t, "limits", "list", "--json", "--data", data)
		if err != nil {
			t.Fatalf("limits list: %v %s", err, stderr)
		}
		var l struct{ Limits []limitJSON }
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("limits list --json: %v\n%s", err, out)
		}
		m := map[string]limitJSON{}
		for _, x := range l.Limits {
			m[x.Name] = x
		}
		return m
	}

	gw, _ := keysGateway(t, nil, func(s *Serve) { s.Config.Data = data })
	for range 3 {
		resp, body := callWith(t, gw, "anthropic", secret, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %d %s", resp.StatusCode, body)
		}
		gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	}
	before := list()
	for name, l := range before {
		if l.Used <= 0 {
			t.Errorf("limit %s counts nothing after 3 calls: %+v", name, l)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Close(ctx); err != nil {
		t.Fatal(err)
	}

	gw2, _ := keysGateway(t, nil, func(s *Serve) { s.Config.Data = data })
	after := list()
	for name, b := range before {
		a := after[name]
		// A rolling window moves with the clock; the others stay put.
		moved := name != "rolling" && (a.WindowStart != b.WindowStart || a.Reset != b.Reset)
		if a.Used != b.Used || moved {
			t.Errorf("limit %s changed across a restart:\nbefore %+v\nafter  %+v", name, b, a)
		}
	}
	// And the restarted gateway keeps counting from there.
	resp, body := callWith(t, gw2, "anthropic", secret, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("call after restart: %d %s", resp.StatusCode, body)
	}
	gw2.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	if l := list()["week"]; l.Used != before["week"].Used+1 {
		t.Errorf("week requests after one more call: %v, want %v", l.Used, before["week"].Used+1)
	}
}
