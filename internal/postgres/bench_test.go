package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// BenchmarkAppend measures one commit of a batch of events, as
// internal/sqlite's BenchmarkAppend does: the cost the ledger writer pays
// per group commit, and its round trips to the server. With replicas=2
// two stores append in turn, so every append finds the head moved.
func BenchmarkAppend(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		for _, batch := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("replicas=%d/batch=%d", replicas, batch), func(b *testing.B) {
				url := freshSchema(b)
				var dbs []*DB
				var rts []*atomic.Int64
				for range replicas {
					db, rt := openCounting(b, url)
					dbs, rts = append(dbs, db), append(rts, rt)
				}
				ctx := context.Background()
				events := make([]tokenmeter.Event, batch)
				count := func() (n int64) {
					for _, rt := range rts {
						n += rt.Load()
					}
					return n
				}
				before := count()
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					for j := range events {
						events[j] = storetest.Event(fmt.Sprintf("r%d-%d", i, j), time.Now(), tokenmeter.Usage{InputTokens: 100, OutputTokens: 20})
					}
					if _, err := dbs[i%replicas].Append(ctx, events); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
				b.ReportMetric(float64(count()-before)/float64(b.N), "roundtrips/op")
			})
		}
	}
}

// populate appends a month of a fifty-person team's calls (about 1,700 a
// day over 50 keys, 3 models and 4 projects), so that limit checks read
// realistic rollups: a month's window from the daily rows, today from the
// 15-minute rows.
func populate(b testing.TB, db *DB) {
	ctx := context.Background()
	now := time.Now().UTC()
	var events []tokenmeter.Event
	for i := range 50_000 {
		at := now.Add(-time.Duration(i) * (30 * 24 * time.Hour / 50_000))
		ev := storetest.Event(fmt.Sprintf("old%d", i), at, tokenmeter.Usage{InputTokens: 100, OutputTokens: 20})
		ev.Principal = fmt.Sprintf("key:dev%d", i%50)
		ev.Model = []string{"claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5"}[i%3]
		ev.Project = fmt.Sprintf("p%d", i%4)
		events = append(events, ev)
	}
	for chunk := range slices.Chunk(events, 1000) {
		if _, err := db.Append(ctx, chunk); err != nil {
			b.Fatal(err)
		}
	}
	// As autovacuum would have by now: the planner's statistics.
	if _, err := exec(ctx, db.pool, `ANALYZE events, usage_rollup, usage_rollup_day, usage_total, usage_total_day`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReserve measures a reservation against a global and a per-key
// hard limit with a month's window: its latency and round trips alone
// (serial), and the throughput of two replicas' goroutines reserving
// against the same limits at once (parallel), which queue for the limits'
// locks.
func BenchmarkReserve(b *testing.B) {
	for _, data := range []string{"empty", "month"} {
		url := freshSchema(b)
		db, rt := openCounting(b, url)
		other := openDB(b, url)
		if data == "month" {
			populate(b, db)
		}
		now := time.Now().UTC()
		month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		limits := []tokenmeter.Limit{
			{Name: "team-month", Scope: "global", Metric: tokenmeter.MetricCost, Max: 1 << 50, Window: "month", Mode: tokenmeter.LimitHard, Created: now},
			{Name: "dev-month", Scope: "key:dev7", Metric: tokenmeter.MetricTokens, Max: 1 << 50, Window: "month", Mode: tokenmeter.LimitHard, Created: now},
		}
		checks := []tokenmeter.LimitCheck{{Limit: limits[0], Since: month}, {Limit: limits[1], Since: month}}
		res := func(key, instance string) tokenmeter.Reservation {
			return tokenmeter.Reservation{RequestKey: key, Instance: instance, Time: now, Principal: "key:dev7", Model: "claude-sonnet-4-5",
				Usage: tokenmeter.Usage{InputTokens: 2000, OutputTokens: 4096}, Cost: 70_000}
		}
		ctx := context.Background()
		b.Run("data="+data+"/serial", func(b *testing.B) {
			before := rt.Load()
			for i := 0; b.Loop(); i++ {
				if _, ok, err := db.Reserve(ctx, res(fmt.Sprintf("s%d", i), "a"), checks); err != nil || !ok {
					b.Fatal(ok, err)
				}
				if i%256 == 255 {
					b.StopTimer()
					before -= rt.Load()
					db.ReleaseReservations(ctx, []string{"a"})
					before += rt.Load()
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(rt.Load()-before)/float64(b.N), "roundtrips/op")
			db.ReleaseReservations(ctx, nil)
		})
		b.Run("data="+data+"/parallel-2-replicas", func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				i := n.Add(1)
				store := []*DB{db, other}[i%2]
				instance := fmt.Sprintf("p%d", i)
				for j := 0; pb.Next(); j++ {
					key := fmt.Sprintf("%s-%d", instance, j)
					if _, ok, err := store.Reserve(ctx, res(key, instance), checks); err != nil || !ok {
						b.Fatal(ok, err)
					}
					if err := store.ReleaseReservation(ctx, key); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reserves/s")
		})
	}
}

// BenchmarkFloor measures what every figure above is made of on this
// server: a round trip (SELECT 1) and a commit that waits for the WAL to
// reach the disk (flushSQL alone).
func BenchmarkFloor(b *testing.B) {
	db := openDB(b, serverURL(b))
	ctx := context.Background()
	for _, c := range []struct{ name, sql string }{{"roundtrip", "SELECT 1"}, {"durable-commit", flushSQL}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := exec(ctx, db.pool, c.sql); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
