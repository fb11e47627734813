package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
)

// runReconcile checks the ReconcileStore: runs round-trip with their
// summary and discrepancies in order, are listed newest first without
// their discrepancies, filtered by provider and limited.
func runReconcile(t *testing.T, s tokenmeter.ReconcileStore) {
	ctx := context.Background()
	day := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	run := tokenmeter.ReconcileRun{
		Provider: "anthropic", Ran: day.Add(30*time.Hour + 123456*time.Microsecond), Since: day, Until: day.Add(24 * time.Hour),
		Bucket: time.Hour, By: "model", Tolerance: "2%", Lag: 10 * time.Minute, Status: tokenmeter.ReconcileDiscrepancies,
		Summary: tokenmeter.ReconcileSummary{Buckets: 24, Rows: 3, Matched: 1, ProviderOnly: 1, Mismatched: 1, Beyond: 2,
			ProviderUsage: tokenmeter.Usage{InputTokens: 100, OutputTokens: 40}, LedgerUsage: tokenmeter.Usage{InputTokens: 90},
			ProviderCost: 1_234_567, LedgerCost: 1_000_000, HasCost: true},
		Discrepancies: []tokenmeter.Discrepancy{
			{Start: day.Add(3 * time.Hour), End: day.Add(4 * time.Hour), Model: "claude-sonnet-5-5", Class: tokenmeter.ReconcileMismatch,
				Category: tokenmeter.CategoryOutput, Provider: 40, Ledger: 0, Final: true, Beyond: true},
			{Start: day.Add(5 * time.Hour), End: day.Add(6 * time.Hour), Model: "claude-haiku-5-5", Key: "apikey_01", Principals: "cred:0123456789abcdef,key:ci",
				Class: tokenmeter.ReconcileProviderOnly, Category: tokenmeter.CategoryInput, Provider: 10, Ledger: 0, Final: false, Beyond: true},
		},
	}
	id, err := s.AddReconcileRun(ctx, run)
	if err != nil {
		t.Fatalf("AddReconcileRun: %v", err)
	}
	got, err := s.ReconcileRun(ctx, id)
	if err != nil {
		t.Fatalf("ReconcileRun(%d): %v", id, err)
	}
	want := run
	want.ID = id
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReconcileRun(%d) differs from the run added (-added +read):\n%s", id, diff)
	}

	failed := tokenmeter.ReconcileRun{Provider: "openai", Ran: run.Ran.Add(time.Hour), Since: day, Until: day.Add(24 * time.Hour),
		Bucket: 24 * time.Hour, By: "key", Tolerance: "0", Status: tokenmeter.ReconcileFailed, Error: "usage report page 2: missing data"}
	id2, err := s.AddReconcileRun(ctx, failed)
	if err != nil {
		t.Fatalf("AddReconcileRun(failed): %v", err)
	}
	if id2 <= id {
		t.Errorf("second run id %d, want more than %d", id2, id)
	}
	runs, err := s.ReconcileRuns(ctx, "", 0)
	if err != nil {
		t.Fatalf("ReconcileRuns: %v", err)
	}
	if len(runs) != 2 || runs[0].ID != id2 || runs[1].ID != id || runs[1].Discrepancies != nil || runs[0].Error != failed.Error {
		t.Errorf("ReconcileRuns(\"\", 0) = %+v, want runs %d then %d without discrepancies", runs, id2, id)
	}
	if runs, err := s.ReconcileRuns(ctx, "anthropic", 0); err != nil || len(runs) != 1 || runs[0].ID != id {
		t.Errorf("ReconcileRuns(anthropic) = %+v, %v; want run %d only", runs, err, id)
	}
	if runs, err := s.ReconcileRuns(ctx, "", 1); err != nil || len(runs) != 1 || runs[0].ID != id2 {
		t.Errorf("ReconcileRuns(\"\", 1) = %+v, %v; want run %d only", runs, err, id2)
	}
	if _, err := s.ReconcileRun(ctx, id2+100); tokenmeter.ErrorCode(err) != tokenmeter.ENOTFOUND {
		t.Errorf("ReconcileRun(unknown) = %v, want ENOTFOUND", err)
	}
}
