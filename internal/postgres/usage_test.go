package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// TestUsageFromAggregates: every query the 15-minute and daily rollups
// answer (spans cut at any quarter hour, as local midnights in
// Asia/Kathmandu are; buckets of a quarter hour, an hour, a day, a week,
// one wide bucket, and none) equals the sum of the events, with estimates,
// holds, revisions and settlements among them.
func TestUsageFromAggregates(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var events []tokenmeter.Event
	for i := range 600 {
		at := base.Add(time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
		ev := storetest.Event(fmt.Sprintf("r%d", i), at, tokenmeter.Usage{InputTokens: rng.Int64N(1000), OutputTokens: rng.Int64N(500), CacheReadTokens: rng.Int64N(50)})
		ev.Model = []string{"claude-sonnet-5-5", "gpt-5"}[rng.IntN(2)]
		ev.Principal = []string{"key:a", "key:b"}[rng.IntN(2)]
		ev.Cost = tokenmeter.Micros(rng.Int64N(10000))
		ev.ResponseID = fmt.Sprintf("msg_%d", i)
		switch rng.IntN(10) {
		case 0:
			ev.UsageKnown, ev.Usage, ev.Cost = false, tokenmeter.Usage{}, 0
		case 1:
			ev.UsageKnown, ev.Estimate = false, "a guess"
			ev.Hold = tokenmeter.Hold{Tokens: 500, OutputTokens: 500, Cost: 700}
		case 2:
			ev.CostKnown, ev.Cost = false, 0
		}
		events = append(events, ev)
	}
	for chunk := range slices.Chunk(events, 250) {
		if _, err := db.Append(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	// Imports: a revision, and settlements of estimated calls.
	imp := storetest.Event("imported", base.Add(50*time.Hour+7*time.Minute), tokenmeter.Usage{InputTokens: 5, OutputTokens: 5})
	imp.Source = tokenmeter.SourceClaudeCode
	if _, err := db.Import(ctx, []tokenmeter.Event{imp}, nil); err != nil {
		t.Fatal(err)
	}
	imp.Usage.OutputTokens = 50
	if res, err := db.Import(ctx, []tokenmeter.Event{imp}, nil); err != nil || res.Revised != 1 {
		t.Fatalf("revision: %+v, %v", res, err)
	}
	var readings []tokenmeter.Event
	for _, ev := range events {
		if ev.Estimate != "" {
			r := storetest.Event("cc-"+ev.ResponseID, ev.Time.Add(time.Second), tokenmeter.Usage{InputTokens: 7, OutputTokens: 70})
			r.Source, r.ResponseID = tokenmeter.SourceClaudeCode, ev.ResponseID
			readings = append(readings, r)
		}
	}
	if res, err := db.Import(ctx, readings, nil); err != nil || res.Settled != len(readings) || res.Settled == 0 {
		t.Fatalf("settlements: %+v, %v; want %d settled", res, err, len(readings))
	}

	ktm := time.FixedZone("+05:45", 5*3600+45*60)
	edges := []time.Time{{}, time.Date(2026, 11, 21, 0, 0, 0, 0, ktm), time.Date(2026, 11, 23, 13, 15, 0, 0, time.UTC),
		time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 0, 0, 0, 0, ktm)}
	for _, width := range []time.Duration{0, tokenmeter.RollupBucket, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, tokenmeter.RollupBucket << 20} {
		for i, since := range edges {
			for _, until := range edges[i:] {
				if !until.IsZero() && !until.After(since) {
					continue
				}
				q := tokenmeter.UsageQuery{Since: since, Until: until, Bucket: width}
				got, err := db.Usage(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				q.FromEvents = true
				want, err := db.Usage(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Usage(since %v, until %v, bucket %v) from aggregates differs from the events (-events +aggregates):\n%s", since, until, width, diff)
				}
			}
		}
	}
	// And the events' sums are the events' contributions, added up here.
	var want tokenmeter.UsageBucket
	if err := db.Scan(ctx, 0, func(ev *tokenmeter.Event) error {
		if c, ok := ev.Contribution(); ok {
			want.Add(c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Usage(ctx, tokenmeter.UsageQuery{FromEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	var sum tokenmeter.UsageBucket
	for _, b := range got {
		sum.Add(tokenmeter.Contribution{Requests: b.Requests, Usage: b.Usage, Cost: b.Cost, UsageUnknown: b.UsageUnknown,
			UsageEstimated: b.UsageEstimated, EstimatedTokens: b.EstimatedTokens, CostUnknown: b.CostUnknown, Hold: b.Hold})
	}
	if sum != want {
		t.Errorf("Usage from events sums to %+v\nwant the events' contributions %+v", sum, want)
	}
}
