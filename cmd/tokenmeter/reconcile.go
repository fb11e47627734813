package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/reconcile"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/textsafe"
)

// DefaultAdminKeyEnv names the environment variables holding the
// providers' admin keys (reconcile reads the usage and cost reports with
// them). They are never taken from a flag, which would land in shell
// history and ps.
var DefaultAdminKeyEnv = map[string]string{"anthropic": "ANTHROPIC_ADMIN_KEY", "openai": "OPENAI_ADMIN_KEY"}

// AdminKeyEnv returns the environment variable holding provider's admin
// key: the config's admin_keys entry, else the default.
func (c *Config) AdminKeyEnv(provider string) string {
	if v, ok := c.AdminKeys[provider]; ok {
		return v
	}
	return DefaultAdminKeyEnv[provider]
}

// reconcileClient returns the report client for provider under cfg,
// reading its admin key from the environment through getenv.
func reconcileClient(cfg *Config, provider string, getenv func(string) string, log *slog.Logger) *reconcile.Client {
	base := cfg.Upstreams[provider]
	if base == "" {
		base = map[string]string{"anthropic": DefaultAnthropicURL, "openai": DefaultOpenAIURL}[provider]
	}
	env := cfg.AdminKeyEnv(provider)
	return &reconcile.Client{Provider: provider, BaseURL: base, AdminKey: strings.TrimSpace(getenv(env)), AdminKeyEnv: env, Log: log}
}

// routeCredential returns the ID of the credential the gateway forwards
// for virtual keys on provider's route, "" if none is set.
func routeCredential(cfg *Config, provider string, getenv func(string) string) string {
	if env := cfg.CredentialEnv(provider); env != "" {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			return tokenmeter.CredentialID(v)
		}
	}
	return ""
}

// credentialsOf returns the credentials the gateway noted, for matching,
// and the ID of the one it noted as provider's route credential (the one
// forwarded in place of virtual keys; the most recently seen, if it
// changed), "" if none.
func credentialsOf(ctx context.Context, db *sqlite.DB, provider string) ([]reconcile.Credential, string, error) {
	creds, err := db.Credentials(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("read credentials: %w", err)
	}
	out := make([]reconcile.Credential, 0, len(creds))
	var route tokenmeter.Credential
	for _, c := range creds {
		out = append(out, reconcile.Credential{ID: c.ID, Hint: c.Hint})
		if c.VirtualKeys && c.Provider == provider && c.LastSeen.After(route.LastSeen) {
			route = c
		}
	}
	return out, route.ID, nil
}

// parseBucket reads --bucket.
func parseBucket(s string) (time.Duration, error) {
	switch s {
	case "1h":
		return time.Hour, nil
	case "1d":
		return 24 * time.Hour, nil
	}
	return 0, usageError("reconcile", "--bucket %q: want 1h or 1d", s)
}

// parseUTC reads a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time.
func parseUTC(flagName, s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, usageError("reconcile", "--%s %q: want YYYY-MM-DD (UTC) or an RFC 3339 time", flagName, s)
}

// Reconcile is the reconcile command's clock and environment, so tests
// can fix them.
type reconcileEnv struct {
	now    func() time.Time
	getenv func(string) string
	sleep  func(context.Context, time.Duration) error
}

func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return reconcileCmd(ctx, args, stdout, stderr, reconcileEnv{now: time.Now, getenv: os.Getenv})
}

func reconcileCmd(ctx context.Context, args []string, stdout, stderr io.Writer, env reconcileEnv) error {
	if len(args) > 0 && args[0] == "history" {
		return reconcileHistory(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("reconcile")
	lf := addLedgerFlags(fs)
	since := fs.String("since", "", "first `DATE`: YYYY-MM-DD (UTC) or an RFC 3339 time (required)")
	until := fs.String("until", "", "end `DATE` (exclusive; default: the end of the current bucket)")
	bucket := fs.String("bucket", "1h", "bucket width `1h|1d`")
	by := fs.String("by", "model", "compare by `model|key` (key: API key)")
	tol := fs.String("tolerance", "0", "allowed difference `TOKENS|PCT`: tokens per bucket and category, or a percentage such as 2%")
	lag := fs.Duration("lag", reconcile.DefaultLag, "the provider's reporting delay (`DURATION`): buckets ending later than now minus it are not final")
	ups := upstreamFlag{}
	fs.Var(ups, "upstream", "provider base `NAME=URL` (as for serve; default the provider's own API)")
	asJSON := fs.Bool("json", false, "print JSON")
	asCSV := fs.Bool("csv", false, "print CSV: one line per bucket and model, provider and ledger side by side")
	htmlFile := fs.String("html", "", "also write a self-contained HTML report to `FILE`")
	noCost := fs.Bool("no-cost", false, "do not read the cost report")
	save := fs.Bool("save", false, "store the run in the ledger (reconcile history shows it)")
	source := fs.String("source", "all", "ledger events to compare: `all|proxy` (proxy leaves out imported Claude Code and Codex logs)")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	providers := []string{reconcile.Anthropic, reconcile.OpenAI, "history"}
	switch {
	case len(pos) == 0:
		return usageError("reconcile", "name the provider: anthropic or openai (or history)")
	case len(pos) > 1:
		return usageError("reconcile", "unexpected argument %q (one provider at a time)", pos[1])
	case pos[0] != reconcile.Anthropic && pos[0] != reconcile.OpenAI:
		hint := ""
		if s := closest(pos[0], providers); s != "" {
			hint = "; did you mean " + s + "?"
		}
		return usageError("reconcile", "unknown provider %q (want anthropic or openai, or history%s)", pos[0], hint)
	}
	provider := pos[0]
	if *asJSON && *asCSV {
		return usageError("reconcile", "choose one of --json and --csv")
	}
	if *by != "model" && *by != "key" {
		return usageError("reconcile", "--by %q: want model or key", *by)
	}
	if *source != "all" && *source != "proxy" {
		return usageError("reconcile", "--source %q: want all or proxy", *source)
	}
	if *lag < 0 {
		return usageError("reconcile", "--lag must not be negative")
	}
	if *since == "" {
		return usageError("reconcile", "--since DATE is required")
	}
	cfgp, err := lf.loadConfig()
	if err != nil {
		return err
	}
	cfg := *cfgp
	cfg.Upstreams = maps.Clone(cfg.Upstreams)
	for n, u := range ups {
		cfg.Upstreams[n] = u
	}
	width, err := parseBucket(*bucket)
	if err != nil {
		return err
	}
	tolerance, err := reconcile.ParseTolerance(*tol)
	if err != nil {
		return usageError("reconcile", "--%s", tokenmeter.ErrorMessage(err))
	}
	now := env.now().UTC()
	in := reconcile.Input{Options: reconcile.Options{Provider: provider, Bucket: width, By: *by, Tolerance: tolerance, Lag: *lag, Now: now,
		ProxyOnly: *source == "proxy"},
		Costs: !*noCost}
	if in.Since, err = parseUTC("since", *since); err != nil {
		return err
	}
	in.Until = now.Truncate(width).Add(width)
	if *until != "" {
		if in.Until, err = parseUTC("until", *until); err != nil {
			return err
		}
	}
	if in.Since.Truncate(width) != in.Since || in.Until.Truncate(width) != in.Until {
		return usageError("reconcile", "--since and --until must be on the %s grid (UTC)", *bucket)
	}
	db, choice, err := lf.open(!*save)
	if err != nil {
		return err
	}
	defer db.Close()
	in.Ledger = db
	in.Client = reconcileClient(&cfg, provider, env.getenv, newLogger(stderr, "warn"))
	in.Client.Sleep = env.sleep
	if *by == "key" {
		var noted string
		if in.Credentials, noted, err = credentialsOf(ctx, db, provider); err != nil {
			return err
		}
		// The gateway noted which credential it forwarded for virtual
		// keys; the environment's, when set here too, is the same or newer.
		in.RouteCredential = routeCredential(&cfg, provider, env.getenv)
		if in.RouteCredential == "" {
			in.RouteCredential = noted
		}
	}
	rep, err := reconcile.Run(ctx, in)
	if err != nil {
		return fmt.Errorf("reconcile %s: %w", provider, err)
	}
	if *save {
		id, err := db.AddReconcileRun(ctx, rep.ReconcileRun)
		if err != nil {
			return fmt.Errorf("store the run: %w", err)
		}
		rep.ID = id
		fmt.Fprintf(stderr, "stored as reconcile run %d in the ledger at %s\n", id, choice.Path())
	}
	if *htmlFile != "" {
		if err := writeFileAtomic(*htmlFile, func(w io.Writer) error { return reconcile.WriteHTML(w, rep) }); err != nil {
			return fmt.Errorf("write %s: %w", *htmlFile, err)
		}
	}
	switch {
	case *asJSON:
		err = reconcile.WriteJSON(stdout, rep)
	case *asCSV:
		err = reconcile.WriteCSV(stdout, rep)
	default:
		err = reconcile.WriteTable(stdout, rep)
		if err == nil && *htmlFile != "" {
			fmt.Fprintf(stdout, "HTML report: %s\n", *htmlFile)
		}
	}
	if err != nil {
		return err
	}
	if rep.Status != tokenmeter.ReconcileOK {
		return &exitError{code: 3}
	}
	return nil
}

// writeFileAtomic writes path through a temporary file renamed into place.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(dirOf(path), ".reconcile-*.html")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		if i == 0 {
			return "/"
		}
		return path[:i]
	}
	return "."
}

// reconcileHistory lists the stored runs (serve --reconcile stores them),
// newest first.
func reconcileHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reconcile history")
	lf := addLedgerFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 50, "show at most `N` runs")
	run := fs.Int64("run", 0, "show run `ID` with its discrepancies")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("reconcile history", "unexpected argument %q (one run: --run ID)", pos[0])
	}
	if *limit < 1 || *run < 0 {
		return usageError("reconcile history", "--limit and --run want positive numbers")
	}
	db, _, err := lf.open(true)
	if err != nil {
		return err
	}
	defer db.Close()
	if *run > 0 {
		r, err := db.ReconcileRun(ctx, *run)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		return reconcile.WriteTable(stdout, reconcile.Report{ReconcileRun: r})
	}
	runs, err := db.ReconcileRuns(ctx, "", *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		if runs == nil {
			runs = []tokenmeter.ReconcileRun{}
		}
		for i := range runs {
			runs[i].Discrepancies = nil
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Runs []tokenmeter.ReconcileRun `json:"runs"`
		}{runs})
	}
	if len(runs) == 0 {
		fmt.Fprintln(stdout, "no reconciliation runs stored (serve --reconcile PROVIDER stores them)")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tRAN (UTC)\tPROVIDER\tSPAN\tBY\tSTATUS\tROWS\tBEYOND\tNOT FINAL\tERROR")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s..%s/%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.ID, r.Ran.UTC().Format("2006-01-02 15:04"), r.Provider,
			r.Since.UTC().Format("01-02 15:04"), r.Until.UTC().Format("01-02 15:04"), reconcile.Describe(r.Bucket), r.By, r.Status,
			r.Summary.Rows, r.Summary.Beyond, r.Summary.NotFinal, textsafe.Terminal(r.Error))
	}
	return tw.Flush()
}

// DefaultReconcileEvery is how often serve --reconcile runs.
const DefaultReconcileEvery = time.Hour

// reconcileEvery returns the configured period of scheduled runs.
func (c *Config) reconcileEvery() (time.Duration, error) {
	if c.ReconcileEvery == "" {
		return DefaultReconcileEvery, nil
	}
	d, err := time.ParseDuration(c.ReconcileEvery)
	if err != nil || d < time.Minute {
		return 0, fmt.Errorf("reconcile_every = %s: must be a duration of at least 1m, e.g. 1h", c.ReconcileEvery)
	}
	return d, nil
}

// validateReconcile checks the reconcile settings.
func (c *Config) validateReconcile() error {
	var errs []error
	for _, p := range c.Reconcile {
		if p != reconcile.Anthropic && p != reconcile.OpenAI {
			errs = append(errs, fmt.Errorf("reconcile = %s: must be anthropic or openai", p))
		}
	}
	if _, err := c.reconcileEvery(); err != nil {
		errs = append(errs, err)
	}
	if _, err := reconcile.ParseTolerance(c.ReconcileTolerance); err != nil {
		errs = append(errs, fmt.Errorf("reconcile_tolerance = %s: %s", c.ReconcileTolerance, tokenmeter.ErrorMessage(err)))
	}
	switch c.ReconcileSource {
	case "", "proxy", "all":
	default:
		errs = append(errs, fmt.Errorf("reconcile_source = %s: must be proxy (the gateway's calls, the default) or all", c.ReconcileSource))
	}
	return errors.Join(errs...)
}

// startReconcile runs the configured scheduled reconciliations until
// Close, each in a goroutine owned by s.
func (s *Serve) startReconcile() {
	if len(s.Config.Reconcile) == 0 {
		return
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.stopReconcile = cancel
	every, _ := s.Config.reconcileEvery()                                 // validated
	tolerance, _ := reconcile.ParseTolerance(s.Config.ReconcileTolerance) // validated
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, p := range s.Config.Reconcile {
		log := s.Log.With("reconcile", p)
		client := reconcileClient(&s.Config, p, getenv, log)
		if client.AdminKey == "" {
			log.Warn("no admin key: scheduled reconciliation runs will fail", "fix", "set $"+s.Config.AdminKeyEnv(p))
		}
		sched := &reconcile.Schedule{
			// Imported logs are mostly subscription usage that no admin
			// report covers: unless asked, scheduled runs leave them out,
			// or every run would be an anomaly.
			Input: reconcile.Input{Options: reconcile.Options{Provider: p, Bucket: time.Hour, By: "model", Tolerance: tolerance,
				Lag: reconcile.DefaultLag, ProxyOnly: s.Config.ReconcileSource != "all"}, Client: client, Ledger: s.store, Costs: true},
			Every: every, Store: s.store, Anomalies: s.store, Now: s.Now, Log: log,
		}
		sched.Tick = s.ReconcileTick
		if runs := s.ReconcileRuns; runs != nil {
			sched.Stored = func(run tokenmeter.ReconcileRun) {
				select {
				case runs <- run:
				case <-rctx.Done():
				}
			}
		}
		s.reconciles.Add(1)
		go func() {
			defer s.reconciles.Done()
			sched.Run(rctx)
		}()
	}
}
