package postgres

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestReserveAcrossReplicas: goroutines on two replicas (two stores, two
// connection pools, one schema) reserve against one hard limit and complete
// every admitted call with its whole worst case, through each replica's
// group-committing writer. The limit is never exceeded: not by what a
// monitor reads at any moment (usage plus open reservations, in one
// snapshot), nor by the ledger at the end; and it is reached, so the test
// had contention to lose.
func TestReserveAcrossReplicas(t *testing.T) {
	url := freshSchema(t)
	replicas := []*DB{openDB(t, url), openDB(t, url)}
	ctx := context.Background()
	now := time.Now().UTC()
	const max = 100_000
	lim := tokenmeter.Limit{Name: "team-day", Scope: "global", Metric: tokenmeter.MetricTokens, Max: max,
		Window: "day 00:00 UTC", Mode: tokenmeter.LimitHard, Created: now}
	perKey := tokenmeter.Limit{Name: "alice-day", Scope: "key:alice", Metric: tokenmeter.MetricTokens, Max: max / 2,
		Window: "day 00:00 UTC", Mode: tokenmeter.LimitHard, Created: now}
	if err := replicas[0].SetLimit(ctx, lim); err != nil {
		t.Fatal(err)
	}
	day := now.Truncate(24 * time.Hour)

	stop := make(chan struct{})
	var monitorErr atomic.Value
	var monitored sync.WaitGroup
	monitored.Add(1)
	go func() {
		defer monitored.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var total, alice int64
			err := replicas[0].pool.QueryRow(ctx, `SELECT
				(SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage_rollup) +
				(SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM reservations),
				(SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM usage_rollup WHERE principal = 'key:alice') +
				(SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM reservations WHERE principal = 'key:alice')`).Scan(&total, &alice)
			if err != nil {
				monitorErr.Store(err)
				return
			}
			if total > max || alice > max/2 {
				monitorErr.Store(fmt.Errorf("usage plus reservations reached %d (alice %d), over the limits %d and %d", total, alice, max, max/2))
				return
			}
		}
	}()

	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for r, db := range replicas {
		w := ledger.NewWriter(db, discard)
		w.Open()
		defer w.Close()
		for g := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(r), uint64(g)))
				for i := range 40 {
					req := fmt.Sprintf("r%d-g%d-%d", r, g, i)
					principal := "key:bob"
					checks := []tokenmeter.LimitCheck{{Limit: lim, Since: day}}
					if g%2 == 0 {
						principal = "key:alice"
						checks = append(checks, tokenmeter.LimitCheck{Limit: perKey, Since: day})
					}
					u := tokenmeter.Usage{InputTokens: 50 + rng.Int64N(100), OutputTokens: 100 + rng.Int64N(300)}
					res := tokenmeter.Reservation{RequestKey: req, Instance: fmt.Sprintf("replica-%d", r), Time: now,
						Principal: principal, Model: "m", Usage: u}
					_, ok, err := db.Reserve(ctx, res, checks)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						refused.Add(1)
						continue
					}
					admitted.Add(1)
					ev := storetest.Event(req, now, u) // the worst case, used in full
					ev.Principal, ev.Model = principal, "m"
					if err := w.Submit(ev).Wait(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(stop)
	monitored.Wait()
	if err, _ := monitorErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	var total, alice int64
	if err := replicas[1].Scan(ctx, 0, func(ev *tokenmeter.Event) error {
		total += ev.Usage.TotalTokens()
		if ev.Principal == "key:alice" {
			alice += ev.Usage.TotalTokens()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d calls admitted, %d refused; %d of %d tokens used, alice %d of %d", admitted.Load(), refused.Load(), total, max, alice, max/2)
	if total > max || alice > max/2 {
		t.Errorf("the ledger holds %d tokens (alice %d): over the limits %d and %d", total, alice, max, max/2)
	}
	if refused.Load() == 0 || total < max*9/10 {
		t.Errorf("%d refused, %d of %d used: the limit was never contended", refused.Load(), total, max)
	}
	if n, err := replicas[0].OpenReservations(ctx); err != nil || n != 0 {
		t.Errorf("%d reservations open after every call completed (%v)", n, err)
	}
	if _, err := ledger.Verify(ctx, replicas[0]); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestChainAcrossReplicas: three replicas append concurrently, directly
// and through group-committing writers, with duplicates; the ledger is one
// chain that verifies, holding each key once. (TestRoundTrips pins which
// path an append takes.)
func TestChainAcrossReplicas(t *testing.T) {
	url := freshSchema(t)
	ctx := context.Background()
	var replicas []*DB
	for range 3 {
		replicas = append(replicas, openDB(t, url))
	}
	var wg sync.WaitGroup
	for r, db := range replicas {
		w := ledger.NewWriter(db, discard)
		w.Open()
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					// Replicas 0 and 1 write the same keys (a retried call
					// seen by both); replica 2 its own.
					ev := storetest.Event(fmt.Sprintf("call-%d-%d-%d", min(r, 1), g, i), time.Now(), tokenmeter.Usage{InputTokens: 1})
					var err error
					if i%3 == 0 {
						_, err = db.Append(ctx, []tokenmeter.Event{ev})
					} else {
						err = w.Submit(ev).Wait(ctx)
					}
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		defer w.Close()
	}
	wg.Wait()
	res, err := ledger.Verify(ctx, replicas[2])
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Events != 2*4*50 {
		t.Errorf("ledger holds %d events, want %d (each key once)", res.Events, 2*4*50)
	}
	var fast, slow int64
	for _, db := range replicas {
		fast, slow = fast+db.fastAppends.Load(), slow+db.slowAppends.Load()
	}
	t.Logf("%d appends in one round trip, %d read the head first", fast, slow)
	seq, hash, err := replicas[0].Head(ctx)
	if err != nil || seq != res.Events || hash != res.Head {
		t.Errorf("Head = %d %s, %v; want the last event, %d %s", seq, hash, err, res.Events, res.Head)
	}
}
