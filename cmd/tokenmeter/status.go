package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/status"
)

// runStatus prints the live view: the active 5-hour block, today and this
// week.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status")
	ledger := addLedgerFlags(fs)
	tz := fs.String("tz", "", "time `ZONE` for today and this week, e.g. Europe/Berlin (default local)")
	asJSON := fs.Bool("json", false, "write JSON")
	addServerFlag(fs)
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("status", "takes no arguments (got %q)", pos[0])
	}
	loc, err := loadZone("status", *tz)
	if err != nil {
		return err
	}
	rem, err := remoteFor("status", fs)
	if err != nil {
		return err
	}
	var st *status.Status
	if rem != nil {
		p := url.Values{}
		if tz := zoneParam(loc); tz != "" {
			p.Set("tz", tz)
		}
		st = new(status.Status)
		if err := rem.call(ctx, "status", http.MethodGet, "/api/status", p, nil, st); err != nil {
			return err
		}
	} else {
		db, _, err := ledger.open(true)
		if err != nil {
			return err
		}
		defer db.Close()
		r := &status.Reader{Store: db, Loc: loc}
		if st, err = r.Read(ctx, time.Now(), true); err != nil {
			return err
		}
	}
	if *asJSON {
		return status.JSON(stdout, st)
	}
	return status.Text(stdout, st)
}

// localZone is the system's zone under its IANA name when it can be
// found ($TZ, /etc/timezone, the /etc/localtime link), so reports say
// "Europe/Berlin" rather than "Local"; else time.Local.
func localZone() *time.Location {
	name := os.Getenv("TZ")
	if name == "" {
		if b, err := os.ReadFile("/etc/timezone"); err == nil {
			name = strings.TrimSpace(string(b))
		}
	}
	if name == "" {
		if target, err := os.Readlink("/etc/localtime"); err == nil {
			if i := strings.Index(target, "zoneinfo/"); i >= 0 {
				name = target[i+len("zoneinfo/"):]
			}
		}
	}
	if name != "" && !strings.HasPrefix(name, ":") {
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	return time.Local
}

// loadZone loads the --tz flag value of the command path; empty means the
// local zone. An unknown zone is a usage error.
func loadZone(path, name string) (*time.Location, error) {
	if name == "" {
		return localZone(), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, usageError(path, "--tz: unknown time zone %q (want an IANA name such as Europe/Berlin)", name)
	}
	return loc, nil
}
