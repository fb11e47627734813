package alerts_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/alerts"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// BenchmarkEvaluate: one pass of the default rules over a ledger holding
// 100,000 calls of 20 keys spread over the last 30 days, with ten limits
// (day, month, rolling and 5-hour-block windows) — what the engine does
// every interval once it has caught up.
func BenchmarkEvaluate(b *testing.B) {
	ctx := context.Background()
	db := sqlite.NewDB(filepath.Join(b.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const calls = 100_000
	batch := make([]tokenmeter.Event, 0, 1000)
	for i := range calls {
		at := now.Add(-30 * 24 * time.Hour).Add(time.Duration(i) * (30 * 24 * time.Hour / calls))
		ev := storetest.Event(fmt.Sprintf("c%d", i), at, tokenmeter.Usage{InputTokens: 100, OutputTokens: 50})
		ev.Principal = fmt.Sprintf("key:k%d", i%20)
		if i%50 == 0 {
			ev.Status, ev.Outcome = 429, tokenmeter.OutcomeError
		}
		batch = append(batch, ev)
		if len(batch) == cap(batch) {
			if _, err := db.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	windows := []string{"day 00:00 UTC", "month 00:00 UTC", "rolling:1h", "5h-block", "week mon 00:00 UTC"}
	for i := range 10 {
		scope := "global"
		if i%2 == 1 {
			scope = fmt.Sprintf("key:k%d", i)
		}
		l := tokenmeter.Limit{Name: fmt.Sprintf("l%d", i), Scope: scope, Metric: tokenmeter.MetricTokens, Max: 1 << 40,
			Window: windows[i%len(windows)], Mode: tokenmeter.LimitSoft, Created: now.Add(-time.Hour)}
		if err := db.SetLimit(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	e := alerts.New(db, slog.New(slog.DiscardHandler))
	e.Now = func() time.Time { return now }
	if err := e.Evaluate(ctx); err != nil { // catches up with the ledger
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := e.Evaluate(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
