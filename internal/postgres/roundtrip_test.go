package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// openCounting opens a store on url whose connections count round trips,
// with one connection so statements are prepared once.
func openCounting(tb testing.TB, url string) (*DB, *atomic.Int64) {
	tb.Helper()
	db := NewDB(url)
	db.MaxConns = 1
	db.roundTrips = new(atomic.Int64)
	if err := db.Open(); err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, db.roundTrips
}

// TestRoundTrips pins what the gateway's hot path costs in round trips to
// PostgreSQL: an Append of any size is one when this process appended
// last, two when another replica did; a Reserve is one.
func TestRoundTrips(t *testing.T) {
	url := freshSchema(t)
	db, rt := openCounting(t, url)
	other := openDB(t, url)
	ctx := context.Background()
	n := 0
	batch := func(size int) []tokenmeter.Event {
		var evs []tokenmeter.Event
		for range size {
			n++
			evs = append(evs, storetest.Event(fmt.Sprintf("r%d", n), time.Now(), tokenmeter.Usage{InputTokens: 1}))
		}
		return evs
	}
	cost := func(what string, fn func() error) int64 {
		t.Helper()
		before := rt.Load()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return rt.Load() - before
	}
	appendN := func(size int) func() error {
		return func() error { _, err := db.Append(ctx, batch(size)); return err }
	}
	// Warm up: the first use of each statement prepares it.
	for range 3 {
		cost("warm up", appendN(2))
	}
	for _, size := range []int{1, 16, 256} {
		if got := cost("append", appendN(size)); got != 1 {
			t.Errorf("Append of %d events after this process's own: %d round trips, want 1", size, got)
		}
	}
	if _, err := other.Append(ctx, batch(1)); err != nil {
		t.Fatal(err)
	}
	if got := cost("append after another replica", appendN(1)); got != 3 {
		t.Errorf("Append after another replica's: %d round trips, want 3 (a wrong guess, then the head read and the commit)", got)
	}
	if got := cost("append read first", appendN(1)); got != 2 {
		t.Errorf("Append after a wrong guess: %d round trips, want 2 (the head read first)", got)
	}

	lim := tokenmeter.Limit{Name: "l", Scope: "global", Metric: tokenmeter.MetricTokens, Max: 1 << 40, Window: "day", Mode: tokenmeter.LimitHard, Created: time.Now()}
	checks := []tokenmeter.LimitCheck{{Limit: lim, Since: time.Now().Add(-time.Hour)}}
	reserve := func(key string) func() error {
		return func() error {
			_, ok, err := db.Reserve(ctx, tokenmeter.Reservation{RequestKey: key, Time: time.Now(), Usage: tokenmeter.Usage{OutputTokens: 10}}, checks)
			if err == nil && !ok {
				err = fmt.Errorf("refused")
			}
			return err
		}
	}
	cost("warm up", reserve("warm"))
	if got := cost("reserve", reserve("r")); got != 1 {
		t.Errorf("Reserve: %d round trips, want 1", got)
	}
}
