package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/report"
)

// reportKinds lists the reports for messages.
const reportKinds = "daily, weekly, monthly, session, blocks or models"

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report")
	ledger := addLedgerFlags(fs)
	since := fs.String("since", "", "first `DATE` (YYYY-MM-DD, inclusive)")
	until := fs.String("until", "", "last `DATE` (YYYY-MM-DD, inclusive)")
	by := fs.String("by", "", "group rows by `model|key|project|tag` (not blocks; tag: the x-tokenmeter-tags of each call)")
	tz := fs.String("tz", "", "time `ZONE` for periods, e.g. Europe/Berlin (default local)")
	asJSON := fs.Bool("json", false, "write JSON")
	asCSV := fs.Bool("csv", false, "write CSV")
	addServerFlag(fs)
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError("report", "name the report: %s", reportKinds)
	}
	if len(pos) > 1 {
		return usageError("report", "unexpected argument %q (one report at a time: tokenmeter report %s ...)", pos[1], pos[0])
	}
	if *asJSON && *asCSV {
		return usageError("report", "choose one of --json and --csv")
	}
	loc, err := loadZone("report", *tz)
	if err != nil {
		return err
	}
	q := report.Query{Kind: pos[0], By: *by, Loc: loc}
	if *since != "" {
		if q.Since, err = report.ParseDate(*since, loc); err != nil {
			return usageError("report", "--since: %s", tokenmeter.ErrorMessage(err))
		}
	}
	if *until != "" {
		if q.Until, err = report.ParseDate(*until, loc); err != nil {
			return usageError("report", "--until: %s", tokenmeter.ErrorMessage(err))
		}
	}
	if err := report.CheckQuery(q); err != nil {
		return usageError("report", "%s", tokenmeter.ErrorMessage(err))
	}
	rem, err := remoteFor("report", fs)
	if err != nil {
		return err
	}
	var rep *report.Report
	if rem != nil {
		// The gateway builds the report; it is printed as if built here.
		p := url.Values{"kind": {q.Kind}}
		for k, v := range map[string]string{"since": *since, "until": *until, "by": *by, "tz": zoneParam(loc)} {
			if v != "" {
				p.Set(k, v)
			}
		}
		rep = new(report.Report)
		if err := rem.call(ctx, "report", http.MethodGet, "/api/usage", p, nil, rep); err != nil {
			return err
		}
	} else {
		db, _, err := ledger.open(true)
		if err != nil {
			return err
		}
		defer db.Close()
		if rep, err = report.Build(ctx, db, q, time.Now()); err != nil {
			return err
		}
	}
	switch {
	case *asJSON:
		return report.JSON(stdout, rep)
	case *asCSV:
		return report.CSV(stdout, rep)
	}
	return report.Table(stdout, rep)
}
