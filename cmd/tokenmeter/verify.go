package main

import (
	"context"
	"fmt"
	"io"

	"github.com/tokenmeter/tokenmeter/internal/ledger"
)

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify")
	lf := addLedgerFlags(fs)
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("verify", "takes no arguments (got %q)", pos[0])
	}
	db, c, err := lf.open(true)
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
	fmt.Fprintf(stdout, "ledger OK: %d events, chain head %s (%s)\n", res.Events, res.Head, c.Path())
	return nil
}
