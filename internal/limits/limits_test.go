package limits_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
	"github.com/tokenmeter/tokenmeter/internal/window"
)

var t0 = time.Date(2026, 11, 29, 10, 7, 0, 0, time.UTC)

func mustOpen(t *testing.T) *sqlite.DB {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func call(t *testing.T, db *sqlite.DB, key string, at time.Time, principal string, u tokenmeter.Usage) {
	t.Helper()
	ev := storetest.Event(key, at, u)
	ev.Principal = principal
	if _, err := db.Append(context.Background(), []tokenmeter.Event{ev}); err != nil {
		t.Fatal(err)
	}
}

func TestWorstCase(t *testing.T) {
	for _, tt := range []struct {
		body, bpt  int
		max, deflt int64
		want       tokenmeter.Usage
	}{
		{300, 3, 100, 50, tokenmeter.Usage{InputTokens: 100, OutputTokens: 100}},
		{301, 3, 0, 50, tokenmeter.Usage{InputTokens: 101, OutputTokens: 50}},
		{10, 0, 7, 50, tokenmeter.Usage{InputTokens: 4, OutputTokens: 7}},
		{0, 1, 0, 9, tokenmeter.Usage{OutputTokens: 9}},
	} {
		if got := limits.WorstCase(tt.body, tt.max, tt.bpt, tt.deflt); got != tt.want {
			t.Errorf("WorstCase(%d, %d, %d, %d) = %+v, want %+v", tt.body, tt.max, tt.bpt, tt.deflt, got, tt.want)
		}
	}
}

func TestEnforcer(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	for _, l := range []tokenmeter.Limit{
		{Name: "a-hour", Scope: "key:a", Metric: tokenmeter.MetricTokens, Max: 1000, Window: "rolling:1h", Mode: tokenmeter.LimitHard, Created: t0},
		{Name: "a-day", Scope: "key:a", Metric: tokenmeter.MetricRequests, Max: 100, Window: "day 00:00 UTC", Mode: tokenmeter.LimitHard, Created: t0},
		{Name: "soft", Scope: "global", Metric: tokenmeter.MetricTokens, Max: 1, Window: "hour UTC", Mode: tokenmeter.LimitSoft, Created: t0},
	} {
		if err := db.SetLimit(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	// 600 tokens 50 minutes ago (bucket 09:15), 100 at 09:40.
	call(t, db, "old", t0.Add(-50*time.Minute), "key:a", tokenmeter.Usage{InputTokens: 600})
	call(t, db, "mid", t0.Add(-27*time.Minute), "key:a", tokenmeter.Usage{InputTokens: 100})
	e := limits.New(db)
	e.Now = func() time.Time { return t0 }

	// No hard limit applies to key:b (the soft one never refuses).
	d, err := e.Reserve(ctx, limits.Request{RequestKey: "b1", Principal: "key:b", Usage: tokenmeter.Usage{InputTokens: 1 << 40}})
	if err != nil || !d.Allowed || d.Reserved || d.Applies {
		t.Errorf("Reserve(key:b) = %+v, %v; want allowed, nothing reserved, no limit", d, err)
	}
	// 300 fit (700 + 300 = 1000): the tightest limit is the hour, 0 left.
	d, err = e.Reserve(ctx, limits.Request{RequestKey: "a1", Principal: "key:a", Usage: tokenmeter.Usage{InputTokens: 200, OutputTokens: 100}})
	if err != nil || !d.Allowed || !d.Reserved || d.Limit.Name != "a-hour" || d.Remaining != 0 || !d.Reset.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Reserve(a1, 300) = %+v, %v; want allowed under a-hour with 0 left, reset %v", d, err, t0.Add(time.Hour))
	}
	// 50 more do not; they fit once the 09:15 bucket (600) has left the
	// window, at 09:15 + 15m + 1h = 10:30.
	d, err = e.Reserve(ctx, limits.Request{RequestKey: "a2", Principal: "key:a", Usage: tokenmeter.Usage{OutputTokens: 50}})
	if err != nil || d.Allowed || d.Reserved || d.Limit.Name != "a-hour" || d.RetryAfter != 23*time.Minute {
		t.Fatalf("Reserve(a2) = %+v, %v; want refused by a-hour, retry after 23m", d, err)
	}
	// 750 more need the reservation gone too, which cannot be foreseen:
	// the full window.
	d, err = e.Reserve(ctx, limits.Request{RequestKey: "a2", Principal: "key:a", Usage: tokenmeter.Usage{OutputTokens: 750}})
	if err != nil || d.Allowed || d.RetryAfter != time.Hour {
		t.Fatalf("Reserve(a2, 750) = %+v, %v; want refused, retry after 1h", d, err)
	}
	if err := e.Release(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	// Without the reservation 700 are used: 400 more need 100 of it to
	// leave, which the 09:15 bucket does at 09:15 + 15m + 1h = 10:30.
	d, err = e.Reserve(ctx, limits.Request{RequestKey: "a3", Principal: "key:a", Usage: tokenmeter.Usage{OutputTokens: 400}})
	if err != nil || d.Allowed || d.RetryAfter != 23*time.Minute || d.Remaining != 300 {
		t.Fatalf("Reserve(a3, 400) = %+v, %v; want refused, retry after 23m, 300 remaining", d, err)
	}
	// A request over the maximum by itself waits the full window.
	d, _ = e.Reserve(ctx, limits.Request{RequestKey: "a4", Principal: "key:a", Usage: tokenmeter.Usage{OutputTokens: 5000}})
	if d.Allowed || d.RetryAfter != time.Hour {
		t.Errorf("Reserve(a4, 5000) = %+v; want refused, retry after 1h", d)
	}
}

func TestFixedRetryAfter(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	l := tokenmeter.Limit{Name: "day", Scope: "project:p", Metric: tokenmeter.MetricRequests, Max: 1, Window: "day 09:00 UTC", Mode: tokenmeter.LimitHard, Created: t0}
	if err := db.SetLimit(ctx, l); err != nil {
		t.Fatal(err)
	}
	e := limits.New(db)
	e.Now = func() time.Time { return t0 }
	if d, err := e.Reserve(ctx, limits.Request{RequestKey: "r1", Project: "p"}); err != nil || !d.Allowed {
		t.Fatalf("first request: %+v, %v", d, err)
	}
	d, err := e.Reserve(ctx, limits.Request{RequestKey: "r2", Project: "p"})
	reset := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	if err != nil || d.Allowed || !d.Reset.Equal(reset) || d.RetryAfter != reset.Sub(t0) {
		t.Errorf("second request: %+v, %v; want refused until %v", d, err, reset)
	}
}

func TestWindowBlock(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	l := tokenmeter.Limit{Name: "b", Scope: "key:a", Metric: tokenmeter.MetricTokens, Max: 10, Window: "5h-block", Mode: tokenmeter.LimitHard, Created: t0}
	spec, err := window.ParseString(l.Window)
	if err != nil {
		t.Fatal(err)
	}
	// Calls at 01:20 (block 01:00-06:00) and 06:30 (block 06:00-11:00);
	// another key's call at 09:50 starts nothing for key:a.
	call(t, db, "c1", time.Date(2026, 11, 29, 1, 20, 0, 0, time.UTC), "key:a", tokenmeter.Usage{InputTokens: 1})
	call(t, db, "c2", time.Date(2026, 11, 29, 6, 30, 0, 0, time.UTC), "key:a", tokenmeter.Usage{InputTokens: 1})
	call(t, db, "c3", time.Date(2026, 11, 29, 9, 50, 0, 0, time.UTC), "key:b", tokenmeter.Usage{InputTokens: 1})
	start, reset, err := limits.Window(ctx, db, l, spec, t0)
	if err != nil || !start.Equal(time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC)) || !reset.Equal(time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("Window(5h-block at %v) = %v, %v, %v; want 06:00 to 11:00", t0, start, reset, err)
	}
	// At 11:30 no block is open: a call would start one at 11:00.
	at := time.Date(2026, 11, 29, 11, 30, 0, 0, time.UTC)
	if start, reset, _ = limits.Window(ctx, db, l, spec, at); !start.Equal(at.Truncate(time.Hour)) || !reset.Equal(at.Truncate(time.Hour).Add(5*time.Hour)) {
		t.Errorf("Window(5h-block at %v) = %v, %v; want 11:00 to 16:00", at, start, reset)
	}
}
