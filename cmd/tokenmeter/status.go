package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/status"
)

// runStatus prints the live view: the active 5-hour block, today and this
// week.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	data := fs.String("data", defaultDataDir(), "data `directory`")
	tz := fs.String("tz", "", "time `zone` for today and this week, e.g. Europe/Berlin (default local)")
	asJSON := fs.Bool("json", false, "write JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("status takes no arguments (got %q)", pos[0])}
	}
	loc, err := loadZone(*tz)
	if err != nil {
		return err
	}
	db, err := openLedgerReadOnly(*data)
	if err != nil {
		return err
	}
	defer db.Close()
	r := &status.Reader{Store: db, Loc: loc}
	st, err := r.Read(ctx, time.Now(), true)
	if err != nil {
		return err
	}
	if *asJSON {
		return status.JSON(stdout, st)
	}
	return status.Text(stdout, st)
}

// loadZone loads a --tz flag value; empty means the local zone.
func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("unknown time zone %q", name)}
	}
	return loc, nil
}
