package ledger_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func mustOpen(t *testing.T) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := sqlite.NewDB(path)
	db.HeadInterval = 0 // record the head with every commit, so every removal shows
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func count(t *testing.T, db tokenmeter.Store) int {
	t.Helper()
	n := 0
	if err := db.Scan(context.Background(), 0, func(*tokenmeter.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriterConcurrent(t *testing.T) {
	db, _ := mustOpen(t)
	w := ledger.NewWriter(db, discard)
	w.Open()
	const n = 2000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := storetest.Event(fmt.Sprintf("r%d", i%1500), time.Now(), tokenmeter.Usage{InputTokens: 1})
			errs <- w.Submit(ev).Wait(context.Background())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	w.Close()
	st := w.Stats()
	if got := count(t, db); got != 1500 {
		t.Errorf("ledger holds %d events, want 1500 (500 duplicates skipped)", got)
	}
	if st.Events != 1500 || st.Skipped != 500 {
		t.Errorf("Stats = %+v, want 1500 events and 500 skipped", st)
	}
	if st.Batches >= n {
		t.Errorf("Stats.Batches = %d for %d concurrent events: no group commit happened", st.Batches, n)
	}
	if _, err := ledger.Verify(context.Background(), db); err != nil {
		t.Errorf("Verify after concurrent writes: %v", err)
	}
	if err := w.Submit(storetest.Event("late", time.Now(), tokenmeter.Usage{})).Wait(context.Background()); err != ledger.ErrClosed {
		t.Errorf("Submit after Close: err = %v, want ErrClosed", err)
	}
}

func TestWriterFullDisk(t *testing.T) {
	fresh := sqlite.NewDB(filepath.Join(t.TempDir(), "fresh.db"))
	if err := fresh.Open(); err != nil {
		t.Fatal(err)
	}
	schema, err := fresh.PageCount()
	fresh.Close()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := sqlite.NewDB(path)
	db.MaxPageCount = schema + 4 // a few rows' worth beyond the schema
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := ledger.NewWriter(db, discard)
	w.Open()
	defer w.Close()
	err = nil
	for i := 0; i < 10000 && err == nil; i++ {
		ev := storetest.Event(fmt.Sprintf("r%d", i), time.Now(), tokenmeter.Usage{})
		ev.Reason = strings.Repeat("x", 500)
		err = w.Submit(ev).Wait(context.Background())
	}
	if err == nil {
		t.Fatalf("ledger capped at %d pages accepted 10000 events", db.MaxPageCount)
	}
	if code := tokenmeter.ErrorCode(err); code != tokenmeter.EUNAVAILABLE {
		t.Errorf("full ledger error %v has code %q, want %q", err, code, tokenmeter.EUNAVAILABLE)
	}
	if w.Healthy() {
		t.Error("Healthy() = true after a failed commit")
	}
	if _, verr := ledger.Verify(context.Background(), db); verr != nil {
		t.Errorf("Verify after a full disk: %v (a failed commit must leave the chain intact)", verr)
	}
}

func TestRecover(t *testing.T) {
	db, _ := mustOpen(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	started := func(req string) tokenmeter.Event {
		return tokenmeter.Event{Key: tokenmeter.EventKey(req, tokenmeter.KindStarted), RequestKey: req,
			Kind: tokenmeter.KindStarted, Time: t0, Source: tokenmeter.SourceProxy, Provider: "anthropic", Model: "m"}
	}
	prog := started("b")
	prog.Kind, prog.Key = tokenmeter.KindProgress, tokenmeter.EventKey("b", tokenmeter.KindProgress)
	// b reserved 2000 input and 1000 output tokens, $0.50, under a hard limit.
	prog.Hold = tokenmeter.Hold{Tokens: 3000, InputTokens: 2000, OutputTokens: 1000, Cost: 500_000}
	prog.Usage, prog.UsageKnown, prog.UpstreamRequestID = tokenmeter.Usage{InputTokens: 500, CacheReadTokens: 7}, true, "req_b"
	if _, err := db.Append(ctx, []tokenmeter.Event{started("a"), started("b"), prog}); err != nil {
		t.Fatal(err)
	}
	priced := 0
	n, err := ledger.Recover(ctx, db, nil, t0.Add(time.Minute), func(ev *tokenmeter.Event) { priced++; ev.Cost, ev.CostKnown = 9, true })
	if err != nil || n != 2 {
		t.Fatalf("Recover = %d, %v; want 2 calls closed", n, err)
	}
	if n, _ := ledger.Recover(ctx, db, nil, t0.Add(2*time.Minute), nil); n != 0 {
		t.Errorf("second Recover closed %d calls, want 0", n)
	}
	got := map[string]tokenmeter.Event{}
	db.Scan(ctx, 0, func(ev *tokenmeter.Event) error {
		if ev.Kind == tokenmeter.KindCompleted {
			got[ev.RequestKey] = *ev
		}
		return nil
	})
	a, b := got["a"], got["b"]
	if a.Outcome != tokenmeter.OutcomeUnknown || a.UsageKnown || a.Latency != time.Minute {
		t.Errorf("call a recovered as %+v; want outcome unknown, usage unknown, latency 1m", a)
	}
	if b.Outcome != tokenmeter.OutcomeUnknown || b.UsageKnown || b.Usage.InputTokens != 500 || b.UpstreamRequestID != "req_b" || b.Cost != 9 {
		t.Errorf("call b recovered as %+v; want outcome unknown, usage not known, with input 500 from message_start as its floor, priced", b)
	}
	// G5/G8: the reservation keeps charging what the floor does not cover.
	if want := (tokenmeter.Hold{Tokens: 3000 - 507, InputTokens: 1500, OutputTokens: 1000, Cost: 500_000 - 9}); b.Hold != want || !a.Hold.IsZero() {
		t.Errorf("holds after recovery: a %+v, b %+v; want none and %+v", a.Hold, b.Hold, want)
	}
	if priced != 1 {
		t.Errorf("price called %d times, want 1 (only calls with a floor)", priced)
	}
}

// TestVerifyTamper edits, deletes, swaps and appends rows behind the
// ledger's back and checks that Verify names the first bad event.
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
		{"Swap", `UPDATE events SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 END WHERE seq IN (2, 3)`, 2, "does not link"},
		{"SwapContent", `UPDATE events SET key = key || 'x' WHERE seq = 1`, 1, "altered"},
		{"EditRollup", `UPDATE usage_rollup SET output_tokens = output_tokens + 1`, 0, "aggregates were altered"},
		{"DeleteRollup", `DELETE FROM usage_rollup`, 0, "missing from the aggregated usage"},
		{"EditDailyRollup", `UPDATE usage_rollup_day SET input_tokens = input_tokens + 1`, 0, "aggregates were altered"},
		{"DeleteDailyRollup", `DELETE FROM usage_rollup_day`, 0, "missing from the aggregated usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, path := mustOpen(t)
			ctx := context.Background()
			for i := range 5 {
				if _, err := db.Append(ctx, []tokenmeter.Event{storetest.Event(fmt.Sprintf("r%d", i), time.Now(), tokenmeter.Usage{OutputTokens: int64(i)})}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ledger.Verify(ctx, db); err != nil {
				t.Fatalf("Verify before tampering: %v", err)
			}
			raw, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "Swap" {
				_, err = raw.Exec(`UPDATE events SET seq = -2 WHERE seq = 2; UPDATE events SET seq = 2 WHERE seq = 3; UPDATE events SET seq = 3 WHERE seq = -2`)
			} else {
				_, err = raw.Exec(tt.sql)
			}
			raw.Close()
			if err != nil {
				t.Fatal(err)
			}
			_, err = ledger.Verify(ctx, db)
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
