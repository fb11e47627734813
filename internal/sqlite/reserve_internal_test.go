package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// TestCommittedSkipsWhatWasRead covers the race the reserver's asOf
// guards against: a commit whose usage a check's read already saw (the
// read ran between the commit and its bookkeeping) must not be added
// again, while a newer one must.
func TestCommittedSkipsWhatWasRead(t *testing.T) {
	ctx := context.Background()
	db := NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.ReserveRefresh = time.Hour
	now := time.Now().UTC()
	ev := tokenmeter.Event{Key: "a", RequestKey: "a", Kind: tokenmeter.KindCompleted, Time: now, Source: tokenmeter.SourceProxy,
		Provider: "anthropic", Model: "m", Outcome: tokenmeter.OutcomeOK, Usage: tokenmeter.Usage{InputTokens: 7}, UsageKnown: true}
	evs := []tokenmeter.Event{ev}
	if _, err := db.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	ev = evs[0] // with its Seq
	check := []tokenmeter.LimitCheck{{Limit: tokenmeter.Limit{Name: "l", Scope: "global", Metric: tokenmeter.MetricInputTokens,
		Max: 100, Window: "day", Mode: tokenmeter.LimitHard}, Since: now.Add(-time.Hour)}}
	used := func() int64 {
		st, _, err := db.Reserve(ctx, tokenmeter.Reservation{RequestKey: "probe"}, check)
		if err != nil {
			t.Fatal(err)
		}
		db.ReleaseReservation(ctx, "probe")
		return st[0].Used
	}
	if got := used(); got != 7 {
		t.Fatalf("used = %d, want 7", got)
	}
	// The bookkeeping of the commit the read saw arrives late: no change.
	db.rs.committed(rolled{lastSeq: ev.Seq, events: []*tokenmeter.Event{&ev}})
	if got := used(); got != 7 {
		t.Errorf("after a late commit the read had seen: used = %d, want 7", got)
	}
	// A newer commit counts.
	later := ev
	later.Seq = ev.Seq + 1
	db.rs.committed(rolled{lastSeq: later.Seq, events: []*tokenmeter.Event{&later}})
	if got := used(); got != 14 {
		t.Errorf("after a newer commit: used = %d, want 14", got)
	}
}
