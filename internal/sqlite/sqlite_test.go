package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
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
