package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/admin"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/textsafe"
	"github.com/tokenmeter/tokenmeter/internal/window"
)

// runLimits manages limits in the data directory's ledger.
func runLimits(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	l := &limitsCmd{stdout: stdout, stderr: stderr, now: time.Now}
	return dispatch(ctx, "limits", args, stdout, []subcommand{
		{"set", l.set}, {"list", l.list}, {"delete", l.delete}})
}

type limitsCmd struct {
	stdout, stderr io.Writer
	now            func() time.Time
}

func limitsError(cmd, format string, args ...any) error {
	return usageError("limits "+cmd, format, args...)
}

// flags returns the flag set of "limits name" with the ledger and --server
// flags.
func (l *limitsCmd) flags(name string) (*flag.FlagSet, *ledgerFlags) {
	fs := newFlagSet("limits " + name)
	lf := addLedgerFlags(fs)
	addServerFlag(fs)
	return fs, lf
}

// limitName returns the one positional argument naming a limit.
func limitName(cmd string, pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return "", limitsError(cmd, "name the limit (e.g. tokenmeter limits %s daily-tokens ...)", cmd)
	case len(pos) > 1:
		return "", limitsError(cmd, "unexpected argument %q (one limit at a time; flags start with --)", pos[1])
	}
	if err := tokenmeter.ValidateKeyName(pos[0]); err != nil {
		return "", limitsError(cmd, "limit name %q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", pos[0])
	}
	return pos[0], nil
}

func (l *limitsCmd) set(ctx context.Context, args []string) error {
	fs, lf := l.flags("set")
	scope := fs.String("scope", "", "what the limit counts: `SCOPE` global, key:NAME, project:NAME or model:NAME (required)")
	metric := fs.String("metric", "", "the `METRIC`: tokens, input_tokens, output_tokens, requests or cost_usd (required)")
	maxS := fs.String("max", "", "the most (`N`) the window may hold; dollars for cost_usd (required)")
	win := fs.String("window", "", "the `WINDOW`: 5h-block, rolling:DURATION, hour, day, week or month (required)")
	resetAt := fs.String("reset-at", "", "`HH:MM` (and weekday for week windows) at which day, week and month windows start")
	tz := fs.String("tz", "", "time `ZONE` of hour, day, week and month windows (default local)")
	mode := fs.String("mode", string(tokenmeter.LimitSoft), "`soft|hard`: soft alerts only, hard refuses with 429")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	name, err := limitName("set", pos)
	if err != nil {
		return err
	}
	def := limits.Definition{Name: name, Scope: *scope, Metric: *metric, Max: *maxS, Window: *win, ResetAt: *resetAt, TZ: *tz, Mode: *mode}
	lim, spec, err := limits.Define(limits.Definition{Name: def.Name, Scope: def.Scope, Metric: def.Metric, Max: def.Max, Window: def.Window,
		ResetAt: def.ResetAt, TZ: def.TZ, Mode: def.Mode, Canonical: pricing.Default().Canonical}, localZone(), l.now())
	if err != nil {
		return limitsError("set", "%s", tokenmeter.ErrorMessage(err))
	}
	rem, err := remoteFor("limits set", fs)
	if err != nil {
		return err
	} else if rem != nil {
		// Checked here for the flag errors; the gateway checks it again
		// (taking its own local zone when --tz is not given) and answers with the limit as limits list
		// shows it.
		var got admin.Limit
		if err := rem.call(ctx, "limits set", http.MethodPut, "/api/limits/"+url.PathEscape(name), nil, def, &got); err != nil {
			return err
		}
		shown := strconv.FormatFloat(got.Max, 'f', -1, 64)
		if got.Metric == string(tokenmeter.MetricCost) {
			shown = "$" + strconv.FormatFloat(got.Max, 'f', 2, 64)
		}
		fmt.Fprintf(l.stdout, "Set %s limit %q: %s %s per %s for %s; the current window resets at %s.\n",
			got.Mode, got.Name, shown, got.Metric, got.Window, got.Scope, got.Reset)
		var keys struct {
			Keys []keyJSON `json:"keys"`
		}
		if err := rem.call(ctx, "limits set", http.MethodGet, "/api/keys", nil, nil, &keys); err == nil {
			l.warn(limitWarnings(ctx, remoteKeys(keys.Keys), []tokenmeter.Limit{lim}))
		}
		return nil
	}
	m, n := lim.Metric, lim.Max
	db, c, err := lf.open(false)
	if err != nil {
		return err
	}
	wrote(l.stderr, c, false)
	defer db.Close()
	if err := db.SetLimit(ctx, lim); err != nil {
		return fmt.Errorf("limits set: %w", err)
	}
	_, reset, err := limits.Window(ctx, db, lim, spec, l.now())
	if err != nil {
		return err
	}
	fmt.Fprintf(l.stdout, "Set %s limit %q: %s %s per %s for %s; the current window resets at %s.\n",
		lim.Mode, lim.Name, formatAmount(m, n), m, lim.Window, lim.Scope, formatTime(reset, spec))
	l.warn(limitWarnings(ctx, db, []tokenmeter.Limit{lim}))
	return nil
}

// warn prints the warnings of a reference check.
func (l *limitsCmd) warn(ws []string, err error) {
	printWarnings(l.stderr, ws, err)
}

// limitJSON is a limit as limits list --json writes it. Amounts of
// cost_usd are dollars.
type limitJSON struct {
	Name        string  `json:"name"`
	Scope       string  `json:"scope"`
	Metric      string  `json:"metric"`
	Mode        string  `json:"mode"`
	Window      string  `json:"window"`
	Max         float64 `json:"max"`
	Used        float64 `json:"used"`
	Remaining   float64 `json:"remaining"`
	WindowStart string  `json:"window_start"`
	Reset       string  `json:"reset"`
	Created     string  `json:"created"`
}

func amount(m tokenmeter.LimitMetric, n int64) float64 {
	if m == tokenmeter.MetricCost {
		return tokenmeter.Micros(n).USD()
	}
	return float64(n)
}

// formatAmount prints n in the metric's unit: dollars for cost_usd.
func formatAmount(m tokenmeter.LimitMetric, n int64) string {
	if m == tokenmeter.MetricCost {
		return "$" + tokenmeter.Micros(n).String()
	}
	return strconv.FormatInt(n, 10)
}

// formatTime prints t in the window's zone (UTC for rolling windows and
// 5-hour blocks).
func formatTime(t time.Time, spec window.Spec) string {
	if spec.Kind.Fixed() && spec.Location != nil {
		t = t.In(spec.Location)
	} else {
		t = t.UTC()
	}
	return t.Format(time.RFC3339)
}

func (l *limitsCmd) list(ctx context.Context, args []string) error {
	fs, lf := l.flags("list")
	asJSON := fs.Bool("json", false, "write JSON")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return limitsError("list", "unexpected argument %q", pos[0])
	}
	out := struct {
		Limits []limitJSON `json:"limits"`
	}{Limits: []limitJSON{}}
	rem, err := remoteFor("limits list", fs)
	if err != nil {
		return err
	}
	if rem != nil {
		if err := rem.call(ctx, "limits list", http.MethodGet, "/api/limits", nil, nil, &out); err != nil {
			return err
		}
		if out.Limits == nil {
			out.Limits = []limitJSON{}
		}
	} else {
		db, _, err := lf.open(true)
		if err != nil {
			return err
		}
		defer db.Close()
		all, err := db.Limits(ctx)
		if err != nil {
			return fmt.Errorf("limits list: %w", err)
		}
		now := l.now()
		for _, lim := range all {
			spec, err := limits.Compile(lim)
			if err != nil {
				return err
			}
			start, reset, err := limits.Window(ctx, db, lim, spec, now)
			if err != nil {
				return err
			}
			used, err := limits.Used(ctx, db, lim, start, now)
			if err != nil {
				return err
			}
			out.Limits = append(out.Limits, limitJSON{Name: lim.Name, Scope: lim.Scope, Metric: string(lim.Metric),
				Mode: string(lim.Mode), Window: lim.Window, Max: amount(lim.Metric, lim.Max), Used: amount(lim.Metric, used),
				Remaining: amount(lim.Metric, max(0, lim.Max-used)), WindowStart: formatTime(start, spec),
				Reset: formatTime(reset, spec), Created: lim.Created.UTC().Format(time.RFC3339)})
		}
	}
	if *asJSON {
		return writeJSON(l.stdout, out)
	}
	if len(out.Limits) == 0 {
		fmt.Fprintln(l.stdout, "no limits (set one with: tokenmeter limits set NAME --scope ... --metric ... --max ... --window ...)")
		return nil
	}
	tw := tabwriter.NewWriter(l.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPE\tMETRIC\tMODE\tWINDOW\tUSED\tMAX\tREMAINING\tWINDOW START\tRESET")
	for _, j := range out.Limits {
		m := tokenmeter.LimitMetric(j.Metric)
		f := func(v float64) string {
			if m == tokenmeter.MetricCost {
				return fmt.Sprintf("$%.2f", v)
			}
			return strconv.FormatFloat(v, 'f', 0, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", textsafe.Terminal(j.Name), textsafe.Terminal(j.Scope), j.Metric, j.Mode, j.Window,
			f(j.Used), f(j.Max), f(j.Remaining), j.WindowStart, j.Reset)
	}
	return tw.Flush()
}

func (l *limitsCmd) delete(ctx context.Context, args []string) error {
	fs, lf := l.flags("delete")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	name, err := limitName("delete", pos)
	if err != nil {
		return err
	}
	if rem, err := remoteFor("limits delete", fs); err != nil {
		return err
	} else if rem != nil {
		if err := rem.call(ctx, "limits delete", http.MethodDelete, "/api/limits/"+url.PathEscape(name), nil, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(l.stdout, "Deleted limit %q; the gateway stops enforcing it within a second.\n", name)
		return nil
	}
	db, c, err := lf.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	wrote(l.stderr, c, false)
	if err := db.DeleteLimit(ctx, name); err != nil {
		return fmt.Errorf("limits delete: %w", err)
	}
	fmt.Fprintf(l.stdout, "Deleted limit %q; running gateways stop enforcing it within a second.\n", name)
	return nil
}
