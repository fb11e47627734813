package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// TestReserveFollowsCommits checks the reserver's cached window usage
// against the ledger: with the re-read turned off (a refresh far longer
// than the test), every Reserve must report exactly what a fresh read of
// the rollups says, after concurrent appends, imports with revisions and
// reservations released by completion, by hand, or never taken.
func TestReserveFollowsCommits(t *testing.T) {
	ctx := context.Background()
	cached := MustOpenDB(t)
	defer cached.Close()
	cached.ReserveRefresh = time.Hour

	now := time.Now().UTC()
	day := now.Truncate(24 * time.Hour)
	limit := func(name, scope string, m tokenmeter.LimitMetric) tokenmeter.Limit {
		return tokenmeter.Limit{Name: name, Scope: scope, Metric: m, Max: 1 << 60, Window: "day", Mode: tokenmeter.LimitHard}
	}
	checks := []tokenmeter.LimitCheck{
		{Limit: limit("g-tok", "global", tokenmeter.MetricTokens), Since: day},
		{Limit: limit("g-req", "global", tokenmeter.MetricRequests), Since: day},
		{Limit: limit("a-cost", "key:alice", tokenmeter.MetricCost), Since: day},
		{Limit: limit("p-out", "project:web", tokenmeter.MetricOutputTokens), Since: now.Add(-time.Hour)},
		{Limit: limit("m-in", "model:claude-sonnet-4-5", tokenmeter.MetricInputTokens), Since: day},
		// Whole days from the daily rows, the edges from the 15-minute ones.
		{Limit: limit("g-days", "global", tokenmeter.MetricTokens), Since: now.Add(-9*24*time.Hour + 7*time.Hour).Truncate(15 * time.Minute)},
		{Limit: limit("b-days", "key:bob", tokenmeter.MetricCost), Since: day.Add(-5 * 24 * time.Hour)},
	}
	event := func(req string, at time.Time, rng *rand.Rand) tokenmeter.Event {
		ev := storetest.Event(req, at, tokenmeter.Usage{InputTokens: rng.Int64N(1000), OutputTokens: rng.Int64N(1000), CacheReadTokens: rng.Int64N(100)})
		ev.Principal = []string{"key:alice", "key:bob", "cred:0123456789abcdef"}[rng.IntN(3)]
		ev.Project = []string{"", "web", "cli"}[rng.IntN(3)]
		ev.Model = []string{"claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "gpt-4o"}[rng.IntN(3)]
		ev.Cost = tokenmeter.Micros(rng.Int64N(5000))
		return ev
	}
	// Some usage before the first Reserve (read from the rollups), then
	// concurrent writers and reservers.
	rng := rand.New(rand.NewPCG(1, 2))
	var early []tokenmeter.Event
	for i := range 50 {
		early = append(early, event(fmt.Sprintf("early%d", i), now.Add(-time.Duration(rng.IntN(120))*time.Minute), rng))
		early = append(early, event(fmt.Sprintf("older%d", i), now.Add(-time.Duration(rng.IntN(10*24*60))*time.Minute), rng))
	}
	if _, err := cached.Append(ctx, early); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		states, ok, err := cached.Reserve(ctx, tokenmeter.Reservation{RequestKey: "probe", Time: now}, checks)
		if err != nil || !ok {
			t.Fatalf("%s: Reserve = %v, %v", when, ok, err)
		}
		cached.ReleaseReservation(ctx, "probe")
		for i, c := range checks {
			want, err := usedFromEvents(ctx, cached, c)
			if err != nil {
				t.Fatal(err)
			}
			if states[i].Used != want {
				t.Errorf("%s: %s used %d from the reserver, %d from the events", when, c.Limit.Name, states[i].Used, want)
			}
		}
	}
	check("after the first read")

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 60 {
				req := fmt.Sprintf("w%d-%d", w, i)
				ev := event(req, now.Add(-time.Duration(rng.IntN(180))*time.Minute), rng)
				r := tokenmeter.Reservation{RequestKey: req, Instance: "i", Time: now, Principal: ev.Principal,
					Project: ev.Project, Model: ev.Model, Usage: tokenmeter.Usage{InputTokens: 10, OutputTokens: 2000}, Cost: 100}
				if _, ok, err := cached.Reserve(ctx, r, checks); err != nil || !ok {
					t.Errorf("Reserve(%s) = %v, %v", req, ok, err)
					return
				}
				switch i % 5 {
				case 0: // refused after reserving: released by hand
					cached.ReleaseReservation(ctx, req)
				case 1: // imported, then a fuller reading revises it
					ev.Source = tokenmeter.SourceClaudeCode
					cached.ReleaseReservation(ctx, req)
					if _, err := cached.Import(ctx, []tokenmeter.Event{ev}, nil); err != nil {
						t.Error(err)
					}
					ev.Usage.OutputTokens += 50
					if res, err := cached.Import(ctx, []tokenmeter.Event{ev}, nil); err != nil || res.Revised != 1 {
						t.Errorf("fuller reading of %s: %+v, %v; want one revision", req, res, err)
					}
				default: // completed through the gateway
					if _, err := cached.Append(ctx, []tokenmeter.Event{ev}); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	check("after concurrent writes")
	if n := cached.OpenReservations(); n != 0 {
		t.Errorf("%d reservations open after every call completed or was released", n)
	}
}

// usedFromEvents sums c's metric over the completed and revised events of
// its scope from its window start (floored to the rollup grid), by
// scanning the ledger: the independent figure the reserver must match.
func usedFromEvents(ctx context.Context, s tokenmeter.Store, c tokenmeter.LimitCheck) (int64, error) {
	since := c.Since.Truncate(tokenmeter.RollupBucket)
	var used int64
	err := s.Scan(ctx, 0, func(ev *tokenmeter.Event) error {
		if ev.Kind != tokenmeter.KindCompleted && ev.Kind != tokenmeter.KindRevised {
			return nil
		}
		if ev.Time.Truncate(tokenmeter.RollupBucket).Before(since) || !tokenmeter.ScopeApplies(c.Limit.Scope, ev.Principal, ev.Project, ev.Model) {
			return nil
		}
		var requests int64
		if ev.Kind == tokenmeter.KindCompleted {
			requests = 1
		}
		used += c.Limit.Metric.Of(ev.Usage, requests, ev.Cost)
		return nil
	})
	return used, err
}
