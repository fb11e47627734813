package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/status"
)

// Status line limits: Claude Code runs the command on every update and
// shows whatever it prints, so it must answer fast and always print a line.
const (
	// hookReadTimeout bounds the wait for the hook's JSON on stdin (Claude
	// Code writes it at once and closes the pipe).
	hookReadTimeout = 200 * time.Millisecond
	// maxHook bounds the hook's JSON.
	maxHook = 1 << 20
	// statuslineTimeout bounds the ledger queries.
	statuslineTimeout = 2 * time.Second
)

// runStatusline prints one short line for Claude Code's statusLine hook
// from the hook's JSON on stdin and the ledger, which it reads, and to
// which it adds the hook's rate limits as counter samples. Whatever goes
// wrong, bad flags included, it prints a line and exits 0: a failing status
// line command only blanks the line, which tells the user nothing. Only -h
// prints its help instead.
func runStatusline(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("statusline")
	lf := addLedgerFlags(fs)
	tz := fs.String("tz", "", "time `ZONE` for today, e.g. Europe/Berlin (default local)")
	pos, ferr := parseFlags(ctx, fs, args)
	if errors.Is(ferr, flag.ErrHelp) || errors.Is(ferr, errProbe) {
		return ferr // the help was asked for; no status line
	}
	if ferr == nil && len(pos) > 0 {
		ferr = usageError("statusline", "takes no arguments (got %q)", pos[0])
	}
	var loc *time.Location
	var c ledgerChoice
	if ferr == nil {
		loc, ferr = loadZone("statusline", *tz)
	}
	if ferr == nil {
		c, ferr = lf.choose()
	}
	hook := status.ParseHook(readHook(stdin))
	if ferr != nil {
		// A wrong statusLine command in settings.json: say so on the
		// line itself, where the user looks, and on stderr. The status
		// is 0 all the same (see the doc comment).
		fmt.Fprintln(stderr, "tokenmeter", message(ferr))
		_, err := fmt.Fprintln(stdout, status.Line(nil, hook, "tokenmeter: bad statusline flags"))
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintln(stderr, "tokenmeter statusline:", p)
			fmt.Fprintln(stdout, status.Line(nil, hook, "tokenmeter: internal error"))
			err = nil
		}
	}()
	now := time.Now()
	line, err := statusline(ctx, c.Dir, loc, hook, now)
	if err != nil {
		fmt.Fprintln(stderr, "tokenmeter statusline:", err)
	}
	// The subscription's rate limits join the provider-counter series
	// (docs/counters.md).
	if err := recordStatusline(ctx, c.Dir, hook, now); err != nil {
		fmt.Fprintln(stderr, "tokenmeter statusline: rate limits not recorded:", err)
	}
	_, werr := fmt.Fprintln(stdout, line)
	return werr
}

// statusline computes the line. The error, if any, is for stderr: the
// line then says briefly what is wrong.
func statusline(ctx context.Context, data string, loc *time.Location, hook status.Hook, now time.Time) (string, error) {
	path := filepath.Join(data, LedgerFile)
	if _, err := os.Stat(path); err != nil {
		return status.Line(nil, hook, "no ledger: run tokenmeter import claude-code"), nil
	}
	db := sqlite.NewDB(path)
	db.ReadOnly = true
	if err := db.Open(); err != nil {
		return status.Line(nil, hook, "tokenmeter: ledger unreadable"), fmt.Errorf("open ledger: %w", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, statuslineTimeout)
	defer cancel()
	r := &status.Reader{Store: db, Loc: loc}
	st, err := r.Read(ctx, now, false)
	if err != nil {
		return status.Line(nil, hook, "tokenmeter: ledger unreadable"), err
	}
	return status.Line(st, hook, ""), nil
}

// readHook reads the hook's JSON, giving up after hookReadTimeout (a
// terminal, or a writer that never closes the pipe) and reading nothing
// from a terminal.
func readHook(stdin io.Reader) []byte {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return nil
		}
		// A pipe takes a deadline: the read ends by itself, and no
		// goroutine is left blocked on it.
		if f.SetReadDeadline(time.Now().Add(hookReadTimeout)) == nil {
			b, _ := io.ReadAll(io.LimitReader(f, maxHook))
			f.SetReadDeadline(time.Time{})
			return b
		}
	}
	// Other readers (a file, tests): read in a goroutine that ends with
	// the reader; the caller stops waiting after hookReadTimeout.
	done := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(stdin, maxHook))
		done <- b
	}()
	select {
	case b := <-done:
		return b
	case <-time.After(hookReadTimeout):
		return nil
	}
}
