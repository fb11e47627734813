package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// MustOpenDB opens a new SQLite ledger in a temporary directory.
func MustOpenDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db := sqlite.NewDB(filepath.Join(tb.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		tb.Fatalf("open: %v", err)
	}
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokenmeter.Store { return MustOpenDB(t) })
}

// TestCheckpoint checks that commits leave the WAL to the background
// checkpointer, which copies it into the database file.
func TestCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := sqlite.NewDB(path)
	db.CheckpointInterval = 20 * time.Millisecond
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	before := size(path)
	for i := range 50 {
		events := make([]tokenmeter.Event, 20)
		for j := range events {
			events[j] = storetest.Event(fmt.Sprintf("r%d-%d", i, j), time.Now(), tokenmeter.Usage{InputTokens: 1})
		}
		if _, err := db.Append(context.Background(), events); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		if size(path) > before+100_000 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("database file stayed at %d bytes (WAL %d): the checkpointer never copied the WAL", size(path), size(path+"-wal"))
}

// TestUpgradeFromV1 opens a ledger written before the importers (schema
// version 1): readers are told to upgrade it, a writer migrates it, and the
// usage rollups then hold the events written before.
func TestUpgradeFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	v1, err := os.ReadFile("migrations/0001_events.sql")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(string(v1) + `; PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	// An event as a version-1 ledger holds it, sealed as it would have been.
	ev := storetest.Event("old", time.Date(2026, 11, 1, 9, 20, 0, 0, time.UTC), tokenmeter.Usage{InputTokens: 7, OutputTokens: 9})
	tokenmeter.Seal(&ev, 1, tokenmeter.GenesisHash)
	if _, err := raw.Exec(`INSERT INTO events (seq, key, request_key, kind, time_us, source, provider, endpoint, model, principal,
		status, outcome, input_tokens, output_tokens, usage_known, raw_usage, latency_us, cost_micros, cost_known, prev_hash, hash)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, ev.Seq, ev.Key, ev.RequestKey, ev.Kind, ev.Time.UnixMicro(), ev.Source,
		ev.Provider, ev.Endpoint, ev.Model, ev.Principal, ev.Status, ev.Outcome, ev.Usage.InputTokens, ev.Usage.OutputTokens,
		ev.UsageKnown, string(ev.RawUsage), ev.Latency.Microseconds(), ev.Cost, ev.CostKnown, ev.PrevHash, ev.Hash); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	ro := sqlite.NewDB(path)
	ro.ReadOnly = true
	if err := ro.Open(); err == nil || !strings.Contains(err.Error(), "schema version 1") {
		t.Errorf("read-only open of a v1 ledger: %v; want a request to upgrade", err)
	}
	ro.Close()

	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer db.Close()
	got, err := db.Usage(context.Background(), tokenmeter.UsageQuery{Bucket: time.Hour})
	if err != nil || len(got) != 1 || got[0].Requests != 1 || got[0].Usage.OutputTokens != 9 || !got[0].Start.Equal(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("usage after upgrade = %+v, %v; want the old event in the 09:00 bucket", got, err)
	}
	if _, err := ledger.Verify(context.Background(), db); err != nil {
		t.Errorf("verify after upgrade: %v", err)
	}
}
