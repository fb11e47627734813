package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// TestVerifyTamper edits, deletes, swaps and appends rows behind the
// ledger's back, as internal/ledger's TestVerifyTamper does on SQLite, and
// checks that Verify names the same first bad event. The head row is
// written with every append, so events removed from the end always show.
func TestVerifyTamper(t *testing.T) {
	tests := []struct {
		name    string
		sql     string
		wantSeq int64
		want    string
	}{
		{"Edit", `UPDATE events SET output_tokens = output_tokens + 1 WHERE seq = 3`, 3, "altered"},
		{"EditTime", `UPDATE events SET time_us = time_us - 1000000 WHERE seq = 4`, 4, "altered"},
		{"Delete", `DELETE FROM events WHERE seq = 2`, 2, "missing"},
		{"DeleteLast", `DELETE FROM events WHERE seq = 5`, 5, "removed from the end"},
		{"DeleteLastTwo", `DELETE FROM events WHERE seq >= 4`, 4, "removed from the end"},
		{"Swap", `UPDATE events SET seq = -2 WHERE seq = 2; UPDATE events SET seq = 2 WHERE seq = 3; UPDATE events SET seq = 3 WHERE seq = -2`, 2, "does not link"},
		{"SwapContent", `UPDATE events SET key = key || 'x' WHERE seq = 1`, 1, "altered"},
		{"Insert", `INSERT INTO events SELECT seq + 10, key || 'x', request_key, kind, time_us, source, instance, provider, endpoint, model, stream,
			principal, project, tags, upstream_request_id, status, outcome, reason, input_tokens, output_tokens, cache_write_5m, cache_write_1h,
			cache_read, reasoning_tokens, web_search, web_fetch, usage_known, raw_usage, latency_us, ttfb_us, cost_micros, cost_known,
			prev_hash, hash, session, response_id, estimate, hold_tokens, hold_input, hold_output, hold_cost FROM events WHERE seq = 5`, 6, "missing"},
		{"EditRollup", `UPDATE usage_rollup SET output_tokens = output_tokens + 1`, 0, "aggregates were altered"},
		{"DeleteRollup", `DELETE FROM usage_rollup`, 0, "missing from the aggregated usage"},
		{"EditDailyRollup", `UPDATE usage_rollup_day SET input_tokens = input_tokens + 1`, 0, "aggregates were altered"},
		{"DeleteDailyRollup", `DELETE FROM usage_rollup_day`, 0, "missing from the aggregated usage"},
		{"EditTotal", `UPDATE usage_total SET input_tokens = input_tokens - 1`, 0, "usage totals (usage_total)"},
		{"DeleteTotal", `DELETE FROM usage_total`, 0, "usage totals (usage_total)"},
		{"EditDailyTotal", `UPDATE usage_total_day SET hold_cost = hold_cost + 1`, 0, "usage totals (usage_total_day)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := mustOpen(t)
			ctx := context.Background()
			for i := range 5 {
				if _, err := db.Append(ctx, []tokenmeter.Event{storetest.Event(fmt.Sprintf("r%d", i), time.Now(), tokenmeter.Usage{OutputTokens: int64(i)})}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ledger.Verify(ctx, db); err != nil {
				t.Fatalf("Verify before tampering: %v", err)
			}
			for _, stmt := range strings.Split(tt.sql, "; ") {
				if _, err := db.pool.Exec(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			_, err := ledger.Verify(ctx, db)
			ve, ok := err.(*ledger.VerifyError)
			if !ok {
				t.Fatalf("Verify after %s = %v, want *VerifyError", tt.name, err)
			}
			if ve.Seq != tt.wantSeq || !strings.Contains(ve.Problem, tt.want) {
				t.Errorf("Verify after %s = %v; want event %d, %q", tt.name, ve, tt.wantSeq, tt.want)
			}
		})
	}
}
