package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// openLedgerReadOnly opens the ledger in dir for reading, with a clear error
// when there is none.
func openLedgerReadOnly(dir string) (*sqlite.DB, error) {
	path := filepath.Join(dir, LedgerFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no ledger at %s (run tokenmeter serve first, or pass --data DIR)", path)
	}
	db := sqlite.NewDB(path)
	db.ReadOnly = true
	if err := db.Open(); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	return db, nil
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", stderr)
	data := fs.String("data", defaultDataDir(), "data `directory`")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	db, err := openLedgerReadOnly(*data)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := ledger.Verify(ctx, db)
	if ledger.IsVerifyError(err) {
		return &exitError{code: 3, msg: "verify FAILED: " + err.Error()}
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ledger OK: %d events, chain head %s\n", res.Events, res.Head)
	return nil
}
