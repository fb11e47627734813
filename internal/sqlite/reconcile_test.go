package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// TestReconcileRunsReadOnly: runs stored by serve are read back by a
// read-only opener (reconcile history), discrepancies in order.
func TestReconcileRunsReadOnly(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var ds []tokenmeter.Discrepancy
	for i := range 300 {
		ds = append(ds, tokenmeter.Discrepancy{Start: at, End: at.Add(time.Hour), Model: "m", Class: tokenmeter.ReconcileMismatch,
			Category: tokenmeter.CategoryOutput, Provider: int64(1000 - i), Final: true, Beyond: true})
	}
	id, err := db.AddReconcileRun(ctx, tokenmeter.ReconcileRun{Provider: "openai", Ran: at, Since: at, Until: at.Add(time.Hour),
		Bucket: time.Hour, By: "key", Tolerance: "0", Status: tokenmeter.ReconcileDiscrepancies, Discrepancies: ds})
	if err != nil {
		t.Fatal(err)
	}
	path := db.Path
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro := sqlite.NewDB(path)
	ro.ReadOnly = true
	if err := ro.Open(); err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.ReconcileRun(ctx, id)
	if err != nil || len(got.Discrepancies) != 300 || got.Discrepancies[0].Provider != 1000 || got.Discrepancies[299].Provider != 701 {
		t.Errorf("ReconcileRun read-only: %d discrepancies, %v", len(got.Discrepancies), err)
	}
	if _, err := ro.AddReconcileRun(ctx, tokenmeter.ReconcileRun{Provider: "openai"}); err == nil {
		t.Error("AddReconcileRun on a read-only ledger succeeded")
	}
}
