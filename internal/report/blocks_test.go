package report_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/report"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// TestBlockBoundaries appends calls at the given times to a ledger, splits
// its buckets into blocks and compares the result, written as
// "start+requests" for blocks and "gap start-end" for gaps. Each case runs
// on 15-minute, 30-minute and hourly buckets, which must agree.
func TestBlockBoundaries(t *testing.T) {
	h := func(hour, min int) time.Time { return time.Date(2026, 3, 2, hour, min, 0, 0, time.UTC) }
	us := time.Microsecond
	tests := []struct {
		name  string
		calls []time.Time
		want  []string
	}{
		{"one call", []time.Time{h(10, 7)}, []string{"10:00+1"}},
		// Not more than 5 h after the block's start: same block.
		{"exactly 5h after start", []time.Time{h(10, 0), h(15, 0)}, []string{"10:00+2"}},
		{"5h+1us after start", []time.Time{h(10, 30), h(15, 0).Add(us)}, []string{"10:00+1", "15:00+1"}},
		// More than 5 h after the previous call: a gap block between.
		{"5h+1us after a call on the hour", []time.Time{h(10, 0), h(15, 0).Add(us)},
			[]string{"10:00+1", "gap 15:00:00.000000-15:00:00.000001", "15:00+1"}},
		// A pause of exactly 5 h is no gap; the block ends by its length.
		{"gap of exactly 5h", []time.Time{h(10, 20), h(12, 0), h(17, 0)}, []string{"10:00+2", "17:00+1"}},
		{"gap of 5h+1us", []time.Time{h(10, 20), h(12, 0), h(17, 0).Add(us)},
			[]string{"10:00+2", "gap 17:00:00.000000-17:00:00.000001", "17:00+1"}},
		{"long gap", []time.Time{h(1, 5), h(9, 59)}, []string{"01:00+1", "gap 06:05:00.000000-09:59:00.000000", "09:00+1"}},
		{"block ends, next starts on its hour", []time.Time{h(10, 30), h(13, 0), h(15, 30)}, []string{"10:00+2", "15:00+1"}},
		{"next block floored into the last hour", []time.Time{h(10, 0), h(14, 59), h(15, 1), h(19, 59), h(20, 0)},
			[]string{"10:00+2", "15:00+3"}},
		{"calls at one instant", []time.Time{h(10, 0), h(10, 0), h(15, 0), h(15, 0)}, []string{"10:00+4"}},
		// The documented limit: a call exactly 5 h after the block's start
		// belongs to it (ccusage: 10:00+2, 15:00+1), but its bucket also
		// holds a later call, so the bucket starts the next block.
		{"exactly 5h after start, bucket shared", []time.Time{h(10, 0), h(15, 0), h(15, 10)}, []string{"10:00+1", "15:00+2"}},
	}
	for _, tt := range tests {
		for _, width := range []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour} {
			t.Run(fmt.Sprintf("%s/%v", tt.name, width), func(t *testing.T) {
				db := ledgerAt(t, tt.calls)
				buckets, err := db.Usage(context.Background(), tokenmeter.UsageQuery{Bucket: width})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, b := range report.SplitBlocks(buckets, h(23, 0).AddDate(0, 0, 1)) {
					if b.Gap {
						got = append(got, "gap "+b.Start.Format("15:04:05.000000")+"-"+b.End.Format("15:04:05.000000"))
						continue
					}
					if !b.End.Equal(b.Start.Add(report.BlockLength)) || b.Start.Minute() != 0 {
						t.Errorf("block %v-%v is not 5 h from a whole hour", b.Start, b.End)
					}
					got = append(got, fmt.Sprintf("%s+%d", b.Start.Format("15:04"), b.Requests))
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("SplitBlocks(calls at %s) (-want +got):\n%s", clocks(tt.calls), diff)
				}
			})
		}
	}
}

// TestActiveBlock checks when the last block is active and its burn rate
// and projection.
func TestActiveBlock(t *testing.T) {
	h := func(hour, min int) time.Time { return time.Date(2026, 3, 2, hour, min, 0, 0, time.UTC) }
	db := ledgerAt(t, []time.Time{h(10, 10), h(11, 10)}) // 2 calls of 30 tokens and 42 µ$
	buckets, err := db.Usage(context.Background(), tokenmeter.UsageQuery{Bucket: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now    time.Time
		active bool
	}{
		{h(11, 10), true},
		{h(14, 59), true},
		{h(15, 0), false}, // the block's end
		{h(16, 0), false},
	}
	for _, tt := range tests {
		blocks := report.SplitBlocks(buckets, tt.now)
		if len(blocks) != 1 || blocks[0].Active != tt.active {
			t.Errorf("SplitBlocks(now %s) = %+v; want one block, active %v", clocks([]time.Time{tt.now}), blocks, tt.active)
		}
	}
	// At 12:10, 60 tokens and 84 µ$ in the 120 minutes since the first
	// call: 0.5 tokens a minute, 42 µ$ an hour, for the 170 minutes left.
	b := report.SplitBlocks(buckets, h(12, 10))[0]
	wantRate := &report.BurnRate{TokensPerMinute: 0.5, CostMicrosPerHour: 42, CostUSDPerHour: 0.000042}
	wantProj := &report.Projection{TotalTokens: 60 + 85, CostMicros: 84 + 119, CostUSD: 0.000203, RemainingMinutes: 170}
	if diff := cmp.Diff(wantRate, b.BurnRate); diff != "" {
		t.Errorf("burn rate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantProj, b.Projection); diff != "" {
		t.Errorf("projection (-want +got):\n%s", diff)
	}
	// A single call has a pace once MinBurnSpan has passed since it.
	one := ledgerAt(t, []time.Time{h(10, 10)})
	buckets, _ = one.Usage(context.Background(), tokenmeter.UsageQuery{Bucket: 15 * time.Minute})
	if b := report.SplitBlocks(buckets, h(11, 0))[0]; !b.Active || b.BurnRate == nil || b.BurnRate.TokensPerMinute != 0.6 {
		t.Errorf("single-call block 50 minutes on = %+v; want active, 30 tokens over 50 minutes", b)
	}
}

// TestBurnRateMinimumSpan: a block of 370 tokens from calls milliseconds
// apart (issue 13: shown as 273.9k tok/min, $113/h and 75.66M tokens
// projected) has no burn rate and no projection until MinBurnSpan after
// its first call, and then the pace since that call.
func TestBurnRateMinimumSpan(t *testing.T) {
	first := time.Date(2026, 3, 2, 10, 20, 0, 0, time.UTC)
	var calls []time.Time
	for i := range 12 {
		calls = append(calls, first.Add(time.Duration(i)*7*time.Millisecond))
	}
	db := ledgerAt(t, calls) // 12 calls of 30 tokens: 360 tokens, 504 µ$
	buckets, err := db.Usage(context.Background(), tokenmeter.UsageQuery{Bucket: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, after := range []time.Duration{100 * time.Millisecond, time.Second, time.Minute, report.MinBurnSpan - time.Millisecond} {
		b := report.SplitBlocks(buckets, first.Add(after))[0]
		if !b.Active || b.BurnRate != nil || b.Projection != nil {
			t.Errorf("%s after the first call: active %v, burn rate %+v, projection %+v; want active, neither", after, b.Active, b.BurnRate, b.Projection)
		}
	}
	b := report.SplitBlocks(buckets, first.Add(report.MinBurnSpan))[0]
	// 360 tokens in 10 minutes: 36 a minute; 504 µ$ in 10 minutes: 3,024
	// µ$ an hour; 4h30m to the 15:00 reset: 360 + 36 × 270 tokens.
	wantRate := &report.BurnRate{TokensPerMinute: 36, CostMicrosPerHour: 3024, CostUSDPerHour: 0.003024}
	wantProj := &report.Projection{TotalTokens: 360 + 9720, CostMicros: 504 + 13608, CostUSD: 0.014112, RemainingMinutes: 270}
	if diff := cmp.Diff(wantRate, b.BurnRate); diff != "" {
		t.Errorf("burn rate at MinBurnSpan (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantProj, b.Projection); diff != "" {
		t.Errorf("projection at MinBurnSpan (-want +got):\n%s", diff)
	}
}

// ledgerAt returns a ledger with one call at each time, alternating two
// models: 10 input and 20 output tokens, 42 micro-dollars each.
func ledgerAt(t *testing.T, calls []time.Time) *sqlite.DB {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var events []tokenmeter.Event
	for n, at := range calls {
		ev := storetest.Event(fmt.Sprintf("call-%d", n), at, tokenmeter.Usage{InputTokens: 10, OutputTokens: 20})
		if n%2 == 1 {
			ev.Model = "claude-opus-5-5"
		}
		events = append(events, ev)
	}
	if _, err := db.Append(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	return db
}

func clocks(ts []time.Time) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.Format("15:04:05.000000"))
	}
	return strings.Join(s, ", ")
}
