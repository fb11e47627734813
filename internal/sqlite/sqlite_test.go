package sqlite_test

import (
	"path/filepath"
	"testing"

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
