package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/admin"
	"github.com/tokenmeter/tokenmeter/internal/counters"
	"github.com/tokenmeter/tokenmeter/internal/report"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/status"
	"github.com/tokenmeter/tokenmeter/internal/textsafe"
)

// DefaultCountersRetention is how long counter samples are kept when the
// config sets no counters_retention.
const DefaultCountersRetention = counters.DefaultRetention

// parseRetention reads counters_retention: a Go duration (720h) or a
// number of days (30d); "0" keeps samples forever.
func parseRetention(v string) (time.Duration, error) {
	if v == "" {
		return DefaultCountersRetention, nil
	}
	if v == "0" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 36500 {
			return 0, fmt.Errorf("want a number of days from 1 to 36500, like 30d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Hour {
		return 0, fmt.Errorf("want a duration of an hour or more (720h), a number of days (30d), or 0 to keep samples forever")
	}
	return d, nil
}

// openCounters starts the provider-counter watch (docs/counters.md): the
// gateway hands every upstream response's rate-limit headers to it.
func (s *Serve) openCounters() {
	retention, _ := parseRetention(s.Config.CountersRetention) // validated
	w := counters.NewWatcher(s.store, s.Log.With("component", "counters"))
	w.Retention = retention
	if s.Now != nil {
		w.Now = s.Now
	}
	w.RouteCredentials = map[string]string{}
	for route, secret := range s.proxy.Credentials {
		w.RouteCredentials[route] = tokenmeter.CredentialID(secret)
	}
	w.OnAnomaly = s.OnAnomaly
	w.Open()
	s.counters = w
	s.proxy.Counters = w
}

// runAnomalies runs `tokenmeter anomalies [show ID] ...`.
func runAnomalies(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "show" {
		return anomalyShow(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "list" {
		args = args[1:]
	}
	fs := newFlagSet("anomalies")
	lf := addLedgerFlags(fs)
	since := fs.String("since", "", "only anomalies detected since `DATE`: YYYY-MM-DD (local time) or an RFC 3339 time")
	asJSON := fs.Bool("json", false, "write JSON")
	addServerFlag(fs)
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("anomalies", "unexpected argument %q (anomalies [list] or anomalies show ID)", pos[0])
	}
	var from time.Time
	if *since != "" {
		if from, err = time.Parse(time.RFC3339, *since); err != nil {
			if from, err = report.ParseDate(*since, localZone()); err != nil {
				return usageError("anomalies", "--since %q: want YYYY-MM-DD or an RFC 3339 time", *since)
			}
		}
	}
	rem, err := remoteFor("anomalies", fs)
	if err != nil {
		return err
	}
	var list []admin.AnomalyJSON
	if rem != nil {
		var out struct {
			Anomalies []admin.AnomalyJSON `json:"anomalies"`
		}
		q := url.Values{}
		if !from.IsZero() {
			q.Set("since", from.UTC().Format(time.RFC3339))
		}
		if err := rem.call(ctx, "anomalies", http.MethodGet, "/api/anomalies", q, nil, &out); err != nil {
			return err
		}
		list = out.Anomalies
	} else {
		db, _, err := lf.open(true)
		if err != nil {
			return err
		}
		defer db.Close()
		as, err := db.Anomalies(ctx, from)
		if err != nil {
			return fmt.Errorf("anomalies: %w", err)
		}
		for _, a := range as {
			list = append(list, admin.ToAnomaly(a, false))
		}
	}
	if *asJSON {
		if list == nil {
			list = []admin.AnomalyJSON{}
		}
		return writeJSON(stdout, struct {
			Anomalies []admin.AnomalyJSON `json:"anomalies"`
		}{list})
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no anomalies: the providers' counters agreed with the ledger")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDETECTED\tKIND\tPROVIDER\tCOUNTER\tSUMMARY")
	for _, a := range list {
		counter := a.Counter
		if counter == "" {
			counter = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Detected.Local().Format("2006-01-02 15:04:05"), a.Kind, a.Provider,
			textsafe.Terminal(counter), textsafe.Terminal(a.Summary))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nthe evidence of one: tokenmeter anomalies show ID")
	return nil
}

func anomalyShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("anomalies show")
	lf := addLedgerFlags(fs)
	asJSON := fs.Bool("json", false, "write JSON")
	addServerFlag(fs)
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("anomalies show", "want one anomaly ID")
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return usageError("anomalies show", "%q is not an anomaly ID (a positive integer)", pos[0])
	}
	rem, err := remoteFor("anomalies show", fs)
	if err != nil {
		return err
	}
	var a admin.AnomalyJSON
	if rem != nil {
		if err := rem.call(ctx, "anomalies show", http.MethodGet, "/api/anomalies/"+strconv.FormatInt(id, 10), nil, nil, &a); err != nil {
			return err
		}
	} else {
		db, _, err := lf.open(true)
		if err != nil {
			return err
		}
		defer db.Close()
		an, err := db.Anomaly(ctx, id)
		if err != nil {
			return &exitError{code: 1, msg: "anomalies show: " + tokenmeter.ErrorMessage(err)}
		}
		a = admin.ToAnomaly(an, true)
	}
	if *asJSON {
		return writeJSON(stdout, a)
	}
	return writeEvidence(stdout, a)
}

// writeEvidence prints an anomaly's evidence as a report for people.
func writeEvidence(w io.Writer, a admin.AnomalyJSON) error {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	fmt.Fprintf(w, "Anomaly %d: %s\n", a.ID, a.Kind)
	fmt.Fprintf(w, "  %s\n\n", textsafe.Terminal(a.Summary))
	fmt.Fprintf(w, "Provider    %s\n", a.Provider)
	if a.Credential != "" {
		fmt.Fprintf(w, "Credential  %s\n", a.Credential)
	}
	if a.Counter != "" {
		fmt.Fprintf(w, "Counter     %s\n", textsafe.Terminal(a.Counter))
	}
	fmt.Fprintf(w, "Detected    %s\n", ts(a.Detected))
	fmt.Fprintf(w, "Span        %s to %s\n", ts(a.Start), ts(a.End))
	var ev counters.Evidence
	if len(a.Evidence) == 0 || json.Unmarshal(a.Evidence, &ev) != nil {
		fmt.Fprintf(w, "\nEvidence (raw):\n%s\n", textsafe.Terminal(string(a.Evidence)))
		return nil
	}
	if ev.AdvertisedReset != nil {
		fmt.Fprintf(w, "Advertised reset  %s\n", ts(*ev.AdvertisedReset))
	}
	samples := func(title string, ss []counters.SampleView) {
		if len(ss) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tLIMIT\tREMAINING\tUTILIZATION\tRESET\tSTATUS\tSOURCE")
		for _, s := range ss {
			num := func(p *int64) string {
				if p == nil {
					return "-"
				}
				return strconv.FormatInt(*p, 10)
			}
			util := "-"
			if s.UtilizationBP != nil {
				util = fmt.Sprintf("%d.%02d%%", *s.UtilizationBP/100, *s.UtilizationBP%100)
			}
			reset := "-"
			if s.Reset != nil {
				reset = ts(*s.Reset)
			}
			status := s.Status
			if status == "" {
				status = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", ts(s.Time), num(s.Limit), num(s.Remaining), util, reset, status, s.Source)
		}
		tw.Flush()
	}
	samples("Samples before", ev.Before)
	samples("Samples after", ev.After)
	if l := ev.Ledger; l != nil {
		who := textsafe.Terminal(strings.Join(l.Principals, ", "))
		if who == "" {
			who = "no calls"
		}
		fmt.Fprintf(w, "\nLedger, %s to %s (%s):\n", ts(l.Since), ts(l.Until), who)
		fmt.Fprintf(w, "  requests %d, input %d, output %d, cache write %d, cache read %d\n",
			l.Requests, l.InputTokens, l.OutputTokens, l.CacheWriteTokens, l.CacheReadTokens)
	}
	if ev.Metric != "" && ev.ProviderCount != nil && ev.LedgerCount != nil {
		fmt.Fprintf(w, "\nDrift in %s: provider %d, ledger %d, difference %+d (allowed %d)\n",
			ev.Metric, *ev.ProviderCount, *ev.LedgerCount, *ev.ProviderCount-*ev.LedgerCount, deref(ev.Allowed))
	}
	if len(ev.Facts) > 0 {
		fmt.Fprintln(w, "\nDetector:")
		b, _ := json.MarshalIndent(ev.Facts, "  ", "  ")
		fmt.Fprintf(w, "  %s\n", b)
	}
	return nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// statuslineRecordTimeout bounds what statusline spends recording the
// hook's rate limits.
const statuslineRecordTimeout = time.Second

// statuslineSamples turns the rate_limits of Claude Code's status-line JSON
// (used_percentage 0-100, resets_at) into samples of the subscription
// windows "unified-5h" and "unified-7d", the series the gateway keeps
// from the unified headers; the hook names no credential, so they are kept
// under an empty one.
func statuslineSamples(h status.Hook, now time.Time) []tokenmeter.Sample {
	var out []tokenmeter.Sample
	for _, w := range []struct {
		counter string
		rl      *status.RateLimit
	}{{"unified-5h", h.RateLimits.FiveHour}, {"unified-7d", h.RateLimits.SevenDay}} {
		if w.rl == nil || w.rl.UsedPercentage == nil {
			continue
		}
		pct := *w.rl.UsedPercentage
		if math.IsNaN(pct) || pct < 0 || pct > 10000 {
			continue
		}
		out = append(out, tokenmeter.Sample{Time: now, Provider: "anthropic", Counter: w.counter,
			Limit: tokenmeter.NoValue, Remaining: tokenmeter.NoValue, Utilization: int64(math.Round(pct * 100)),
			Reset: w.rl.Resets(), Source: tokenmeter.SampleStatusline})
	}
	return out
}

// recordStatusline stores the hook's rate limits in the ledger at data as
// counter samples, compacted like the gateway's (a sample when a value
// changed, else one a minute), and runs the detectors against the series'
// last stored sample, storing what they find. It opens the ledger for
// writing, as keys create does, also while serve runs.
func recordStatusline(ctx context.Context, data string, h status.Hook, now time.Time) error {
	samples := statuslineSamples(h, now)
	if len(samples) == 0 {
		return nil
	}
	path := filepath.Join(data, LedgerFile)
	if _, err := os.Stat(path); err != nil {
		return nil // no ledger, nothing to keep them with
	}
	ctx, cancel := context.WithTimeout(ctx, statuslineRecordTimeout)
	defer cancel()
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		return fmt.Errorf("open the ledger at %s: %w", path, err)
	}
	defer db.Close()
	d := counters.NewDetector()
	var keep []tokenmeter.Sample
	for _, s := range samples {
		last, err := db.Samples(ctx, tokenmeter.SampleQuery{Provider: s.Provider, Credential: s.Credential, Counter: s.Counter, Limit: 1})
		if err != nil {
			return err
		}
		var found []counters.Finding
		if len(last) == 1 && last[0].Time.Before(s.Time) {
			d.Seed(last[0])
			found = d.Sample(s)
		}
		if len(last) == 0 || len(found) > 0 || !last[0].SameValues(s) || s.Time.Sub(last[0].Time) >= counters.DefaultHeartbeat {
			keep = append(keep, s)
		}
		for _, f := range found {
			a, ok, err := counters.Judge(ctx, db, f, "")
			if err != nil {
				return err
			}
			if ok {
				if _, err := db.AddAnomaly(ctx, a); err != nil {
					return err
				}
			}
		}
	}
	return db.AddSamples(ctx, keep)
}
