package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// runEstimates checks the three usage states (known, estimated, unknown),
// the hold a call of unknown usage keeps on hard limits, and the
// settlement of a gateway call's estimate by an imported reading of the
// same call (issue 12).
func runEstimates(t *testing.T, open func(t *testing.T) tokenmeter.Store) {
	ctx := context.Background()
	sum := func(t *testing.T, s tokenmeter.Store, q tokenmeter.UsageQuery) tokenmeter.UsageBucket {
		t.Helper()
		bs, err := s.Usage(ctx, q)
		if err != nil {
			t.Fatalf("Usage(%+v): %v", q, err)
		}
		var total tokenmeter.UsageBucket
		for _, b := range bs {
			total.Requests += b.Requests
			total.Usage = total.Usage.Add(b.Usage)
			total.Cost += b.Cost
			total.UsageUnknown += b.UsageUnknown
			total.UsageEstimated += b.UsageEstimated
			total.EstimatedTokens += b.EstimatedTokens
			total.CostUnknown += b.CostUnknown
			total.Hold = total.Hold.Add(b.Hold)
		}
		return total
	}
	// Every way of asking must give the same sums: the rollups, the daily
	// rows, and the events themselves.
	queries := []tokenmeter.UsageQuery{
		{},
		{Bucket: tokenmeter.RollupBucket},
		{Bucket: 24 * time.Hour},
		{FromEvents: true},
		{Since: t0.Add(-time.Hour).Truncate(time.Hour), Until: t0.Add(2 * time.Hour).Truncate(time.Hour)},
		{Since: t0.Add(-time.Minute), Until: t0.Add(time.Hour)}, // off the grid: summed from events
	}
	check := func(t *testing.T, s tokenmeter.Store, want tokenmeter.UsageBucket) {
		t.Helper()
		for _, q := range queries {
			got := sum(t, s, q)
			got.First, got.Last = time.Time{}, time.Time{}
			if got != want {
				t.Errorf("Usage(%+v):\n got %+v\nwant %+v", q, got, want)
			}
		}
	}

	estimated := func(req string, u tokenmeter.Usage) tokenmeter.Event {
		ev := Event(req, t0, u)
		ev.UsageKnown, ev.Estimate = false, "output: 812 relayed characters at 4 per token; input: message_start"
		ev.Outcome, ev.Reason = tokenmeter.OutcomeCancelled, "client disconnected"
		ev.ResponseID, ev.UpstreamRequestID = "msg_"+req, "req_"+req
		return ev
	}

	t.Run("States", func(t *testing.T) {
		s := open(t)
		known := Event("k", t0, tokenmeter.Usage{InputTokens: 10, OutputTokens: 5})
		est := estimated("e", tokenmeter.Usage{InputTokens: 100, OutputTokens: 200})
		est.Hold = tokenmeter.Hold{Tokens: 700, InputTokens: 0, OutputTokens: 700, Cost: 9000}
		unknown := Event("u", t0, tokenmeter.Usage{InputTokens: 30})
		unknown.UsageKnown, unknown.CostKnown, unknown.Cost = false, false, 0
		unpricedEstimate := estimated("p", tokenmeter.Usage{OutputTokens: 4})
		unpricedEstimate.CostKnown, unpricedEstimate.Cost = false, 0
		if _, err := s.Append(ctx, []tokenmeter.Event{known, est, unknown, unpricedEstimate}); err != nil {
			t.Fatal(err)
		}
		check(t, s, tokenmeter.UsageBucket{Requests: 4,
			Usage: tokenmeter.Usage{InputTokens: 140, OutputTokens: 209}, Cost: 84,
			UsageUnknown: 1, UsageEstimated: 2, EstimatedTokens: 304, CostUnknown: 1,
			Hold: tokenmeter.Hold{Tokens: 700, OutputTokens: 700, Cost: 9000}})
		for _, ev := range scanAll(t, s) {
			if h := tokenmeter.ChainHash(&ev); h != ev.Hash {
				t.Errorf("event %d: stored hash %s, recomputed %s (a new field is not read back)", ev.Seq, ev.Hash, h)
			}
			if ev.Key == est.Key && (ev.Estimate != est.Estimate || ev.Hold != est.Hold || ev.ResponseID != est.ResponseID) {
				t.Errorf("estimated event read back as %+v", ev)
			}
		}
	})

	t.Run("HoldCharged", func(t *testing.T) {
		// A hard limit counts the hold of a call whose usage is not known:
		// 300 recorded (an estimate) + 700 held = the 1000 it reserved.
		s := open(t)
		l := tokenmeter.Limit{Name: "out", Scope: tokenmeter.ScopeGlobal, Metric: tokenmeter.MetricTokens, Max: 1200,
			Window: "day", Mode: tokenmeter.LimitHard, Created: t0}
		if err := s.SetLimit(ctx, l); err != nil {
			t.Fatal(err)
		}
		check := []tokenmeter.LimitCheck{{Limit: l, Since: t0.Truncate(24 * time.Hour)}}
		r := tokenmeter.Reservation{RequestKey: "e", Time: t0, Usage: tokenmeter.Usage{InputTokens: 100, OutputTokens: 900}}
		if _, ok, err := s.Reserve(ctx, r, check); err != nil || !ok {
			t.Fatalf("Reserve = %v, %v", ok, err)
		}
		est := estimated("e", tokenmeter.Usage{InputTokens: 100, OutputTokens: 200})
		est.Time = time.Now()
		est.Hold = tokenmeter.HoldFor(r.Usage, 0, est.Usage, est.Cost)
		if est.Hold.Tokens != 700 {
			t.Fatalf("HoldFor = %+v", est.Hold)
		}
		check[0].Since = est.Time.Add(-time.Hour)
		if _, err := s.Append(ctx, []tokenmeter.Event{est}); err != nil {
			t.Fatal(err)
		}
		states, ok, err := s.Reserve(ctx, tokenmeter.Reservation{RequestKey: "next", Time: est.Time, Usage: tokenmeter.Usage{OutputTokens: 201}}, check)
		if err != nil {
			t.Fatal(err)
		}
		if ok || states[0].Used != 1000 || states[0].Reserved != 0 {
			t.Errorf("Reserve after the estimated call = %v, %+v; want refused with 1000 used (300 recorded + 700 held)", ok, states)
		}
	})

	t.Run("Settle", func(t *testing.T) {
		s := open(t)
		est := estimated("gw1", tokenmeter.Usage{InputTokens: 100, OutputTokens: 200})
		est.Hold = tokenmeter.Hold{Tokens: 700, OutputTokens: 700, Cost: 5000}
		unknown := estimated("gw2", tokenmeter.Usage{InputTokens: 50})
		unknown.Estimate = ""
		known := Event("gw3", t0, tokenmeter.Usage{InputTokens: 7, OutputTokens: 7})
		known.ResponseID = "msg_gw3"
		if _, err := s.Append(ctx, []tokenmeter.Event{est, unknown, known}); err != nil {
			t.Fatal(err)
		}
		imp := func(req, resp, upstream string, u tokenmeter.Usage, cost tokenmeter.Micros) tokenmeter.Event {
			ev := Event(req, t0.Add(time.Second), u)
			ev.Source, ev.ResponseID, ev.UpstreamRequestID, ev.Cost = tokenmeter.SourceClaudeCode, resp, upstream, cost
			return ev
		}
		batch := []tokenmeter.Event{
			imp("msg_gw1", "msg_gw1", "", tokenmeter.Usage{InputTokens: 100, OutputTokens: 150}, 77), // by response id
			imp("msg_x2", "", "req_gw2", tokenmeter.Usage{InputTokens: 60, OutputTokens: 9}, 11),     // by upstream id
			imp("msg_gw3", "msg_gw3", "", tokenmeter.Usage{InputTokens: 7, OutputTokens: 7}, 42),     // known: skipped
		}
		res, err := s.Import(ctx, batch, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := (tokenmeter.ImportResult{Recorded: 3, Settled: 2}); res != want {
			t.Errorf("Import = %+v, want %+v", res, want)
		}
		want := tokenmeter.UsageBucket{Requests: 3, Usage: tokenmeter.Usage{InputTokens: 167, OutputTokens: 166}, Cost: 77 + 11 + 42}
		check(t, s, want)
		// Importing the same readings again changes nothing.
		if res, err := s.Import(ctx, batch, nil); err != nil || res != (tokenmeter.ImportResult{Recorded: 3}) {
			t.Errorf("second Import = %+v, %v; want 3 recorded, nothing settled", res, err)
		}
		check(t, s, want)
		evs := scanAll(t, s)
		if err := checkChain(evs); err != nil {
			t.Error(err)
		}
		var kinds []tokenmeter.Kind
		for _, ev := range evs[3:] {
			kinds = append(kinds, ev.Kind)
			if ev.RequestKey != "gw1" && ev.RequestKey != "gw2" {
				t.Errorf("settlement event %s is not under the gateway's call", ev.Key)
			}
		}
		if len(kinds) != 4 || kinds[0] != tokenmeter.KindRetracted || kinds[1] != tokenmeter.KindRevised {
			t.Errorf("settlement events = %v, want retracted, revised for each call", kinds)
		}
	})
}

// scanAll reads every event of s in order.
func scanAll(t *testing.T, s tokenmeter.Store) []tokenmeter.Event {
	t.Helper()
	var out []tokenmeter.Event
	if err := s.Scan(context.Background(), 0, func(ev *tokenmeter.Event) error { out = append(out, *ev); return nil }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}
