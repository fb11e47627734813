package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// TestUsageFromAggregates: every query the 15-minute and daily rollups
// answer (spans cut at any quarter hour, as local midnights in
// Asia/Kathmandu are; buckets of a quarter hour, an hour, a day, a week,
// one wide bucket, and none) equals the sum of the events.
func TestUsageFromAggregates(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	defer db.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var events []tokenmeter.Event
	for i := range 600 {
		at := base.Add(time.Duration(rng.Int64N(int64(10 * 24 * time.Hour))))
		ev := storetest.Event(fmt.Sprintf("r%d", i), at, tokenmeter.Usage{InputTokens: rng.Int64N(1000), OutputTokens: rng.Int64N(500), CacheReadTokens: rng.Int64N(50)})
		ev.Model = []string{"claude-sonnet-5-5", "gpt-5"}[rng.IntN(2)]
		ev.Principal = []string{"key:a", "key:b"}[rng.IntN(2)]
		ev.Cost = tokenmeter.Micros(rng.Int64N(10000))
		if rng.IntN(20) == 0 {
			ev.UsageKnown, ev.Usage, ev.Cost = false, tokenmeter.Usage{}, 0
		}
		events = append(events, ev)
	}
	for chunk := range slices.Chunk(events, 250) {
		if _, err := db.Append(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	// Imports and a revision, through the other write path.
	imp := storetest.Event("imported", base.Add(50*time.Hour+7*time.Minute), tokenmeter.Usage{InputTokens: 5, OutputTokens: 5})
	imp.Source = tokenmeter.SourceClaudeCode
	if _, err := db.Import(ctx, []tokenmeter.Event{imp}, nil); err != nil {
		t.Fatal(err)
	}
	imp.Usage.OutputTokens = 50
	if res, err := db.Import(ctx, []tokenmeter.Event{imp}, nil); err != nil || res.Revised != 1 {
		t.Fatalf("revision: %+v, %v", res, err)
	}

	ktm := time.FixedZone("+05:45", 5*3600+45*60)
	edges := []time.Time{{}, time.Date(2026, 11, 21, 0, 0, 0, 0, ktm), time.Date(2026, 11, 23, 13, 15, 0, 0, time.UTC),
		time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 0, 0, 0, 0, ktm)}
	sortBuckets := func(bs []tokenmeter.UsageBucket) {
		slices.SortFunc(bs, func(a, b tokenmeter.UsageBucket) int {
			return strings.Compare(fmt.Sprint(a.Start.UnixMicro(), a.Source, a.Provider, a.Model, a.Principal, a.Project, a.Outcome),
				fmt.Sprint(b.Start.UnixMicro(), b.Source, b.Provider, b.Model, b.Principal, b.Project, b.Outcome))
		})
	}
	for _, width := range []time.Duration{0, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, tokenmeter.RollupBucket << 20} {
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
				sortBuckets(got)
				sortBuckets(want)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Usage(since %v, until %v, bucket %v) from aggregates differs from the events (-events +aggregates):\n%s", since, until, width, diff)
				}
			}
		}
	}
}
