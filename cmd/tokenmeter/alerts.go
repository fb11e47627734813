package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/alerts"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/textsafe"
)

// AlertsConfig is the config file's alerts: section (and serve's
// --alert-* flags). See docs/alerts.md.
type AlertsConfig struct {
	// Interval is how often rules are evaluated and the outbox delivered;
	// zero means 5s.
	Interval tokenmeter.Duration `yaml:"interval"`
	// RetryMin and RetryMax bound the back-off between delivery attempts
	// (zero: 5s and 1h).
	RetryMin tokenmeter.Duration `yaml:"retry_min"`
	RetryMax tokenmeter.Duration `yaml:"retry_max"`
	// DefaultRules turns the built-in rules off when false (default on).
	DefaultRules *bool `yaml:"default_rules"`
	// Rules are rules beyond (or replacing, by name) the defaults.
	Rules []tokenmeter.AlertRule `yaml:"rules"`
	// Sinks are where alerts go; the log always gets them too.
	Sinks []SinkConfig `yaml:"sinks"`

	// Webhooks, Slack and Commands are serve's --alert-webhook,
	// --alert-slack and --alert-command flags: sinks of every rule, named
	// by a hash of their target.
	Webhooks []string `yaml:"-"`
	Slack    []string `yaml:"-"`
	Commands []string `yaml:"-"`
}

// SinkConfig is one configured sink.
type SinkConfig struct {
	Name string `yaml:"name"`
	// Type is webhook, slack or command.
	Type string `yaml:"type"`
	// URL (or the environment variable URLEnv holding it, for URLs that
	// are secrets, as Slack's are) is where webhook and slack sinks post.
	URL    string `yaml:"url"`
	URLEnv string `yaml:"url_env"`
	// SecretEnv names the environment variable holding the webhook's HMAC
	// secret; the file never holds the secret itself.
	SecretEnv string `yaml:"secret_env"`
	// Command is the command sink's shell command. It runs with PATH,
	// HOME, LANG, LC_ALL and TZ of the gateway's environment
	// (alerts.CommandEnv), the variables Env names, and the message's
	// TOKENMETER_* variables: nothing else of the gateway's environment,
	// which holds provider keys and the admin token.
	Command string `yaml:"command"`
	// Env names further environment variables a command sink passes on.
	Env []string `yaml:"env"`
	// Timeout bounds one attempt (default 10s).
	Timeout tokenmeter.Duration `yaml:"timeout"`
	// secretOptional marks the sinks of --alert-webhook: signed when
	// SecretEnv is set, sent unsigned (and said so at start) when not. A
	// config sink that names a secret_env always needs it.
	secretOptional bool
}

// AlertSecretEnv holds the HMAC secret of the webhooks given as
// --alert-webhook flags (a flag value would show in the process list).
const AlertSecretEnv = "TOKENMETER_ALERT_SECRET"

// AlertSlackEnv holds Slack-compatible webhook URLs (separated by spaces)
// that serve sends every alert to, as --alert-slack does without showing
// the URL, itself a secret, in the process list.
const AlertSlackEnv = "TOKENMETER_ALERT_SLACK"

// flagSinks returns the sinks of the --alert-* flags.
func (a *AlertsConfig) flagSinks() []SinkConfig {
	name := func(kind, target string) string {
		h := sha256.Sum256([]byte(target))
		return kind + "-" + hex.EncodeToString(h[:4])
	}
	var out []SinkConfig
	for _, u := range a.Webhooks {
		out = append(out, SinkConfig{Name: name("webhook", u), Type: "webhook", URL: u, SecretEnv: AlertSecretEnv, secretOptional: true})
	}
	for _, u := range a.Slack {
		out = append(out, SinkConfig{Name: name("slack", u), Type: "slack", URL: u})
	}
	for _, c := range a.Commands {
		out = append(out, SinkConfig{Name: name("command", c), Type: "command", Command: c})
	}
	return out
}

// allSinks returns the configured sinks and those of the flags.
func (a *AlertsConfig) allSinks() []SinkConfig {
	return append(slices.Clone(a.Sinks), a.flagSinks()...)
}

// validate returns every problem of the alerts section.
func (a *AlertsConfig) validate() []error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("alerts.%s = %v: %s", field, value, why))
	}
	dur := func(field string, d tokenmeter.Duration, lo, hi time.Duration) {
		if d != 0 && (time.Duration(d) < lo || time.Duration(d) > hi) {
			bad(field, time.Duration(d), fmt.Sprintf("must be between %s and %s", lo, hi))
		}
	}
	dur("interval", a.Interval, 10*time.Millisecond, time.Hour)
	dur("retry_min", a.RetryMin, 10*time.Millisecond, time.Hour)
	dur("retry_max", a.RetryMax, 10*time.Millisecond, 24*time.Hour)
	if a.RetryMin != 0 && a.RetryMax != 0 && a.RetryMax < a.RetryMin {
		bad("retry_max", time.Duration(a.RetryMax), "must not be less than retry_min")
	}
	names := map[string]bool{alerts.LogName: true}
	for i, s := range a.allSinks() {
		field := fmt.Sprintf("sinks[%d]", i)
		if i >= len(a.Sinks) {
			field = "--alert-" + s.Type
		}
		if err := tokenmeter.ValidateKeyName(s.Name); err != nil {
			bad(field+".name", strconv.Quote(s.Name), "must be 1 to 64 letters, digits, '.', '_' or '-'")
		} else if names[s.Name] {
			bad(field+".name", s.Name, "is taken (log is built in)")
		}
		names[s.Name] = true
		switch s.Type {
		case "webhook", "slack":
			switch {
			case s.URL != "" && s.URLEnv != "":
				bad(field, s.Name, "set url or url_env, not both")
			case s.URLEnv != "":
				if !envName.MatchString(s.URLEnv) {
					bad(field+".url_env", "(redacted)", "must name an environment variable")
				}
			default:
				if err := checkSinkURL(s.URL); err != nil {
					bad(field+".url", "(redacted)", err.Error())
				}
			}
			if s.Command != "" {
				bad(field+".command", "(redacted)", "applies to command sinks only")
			}
			if len(s.Env) > 0 {
				bad(field+".env", s.Name, "applies to command sinks only")
			}
		case "command":
			if strings.TrimSpace(s.Command) == "" {
				bad(field+".command", `""`, "a command sink needs a command")
			}
			if s.URL != "" || s.URLEnv != "" || s.SecretEnv != "" {
				bad(field, s.Name, "url, url_env and secret_env apply to webhook sinks only")
			}
			for _, e := range s.Env {
				if !envName.MatchString(e) {
					bad(field+".env", "(redacted)", "must list names of environment variables, not values")
				}
			}
		default:
			bad(field+".type", strconv.Quote(s.Type), "must be webhook, slack or command")
		}
		if s.SecretEnv != "" && !envName.MatchString(s.SecretEnv) {
			bad(field+".secret_env", "(redacted)", "must be the name of an environment variable holding the secret, not the secret")
		}
		if s.SecretEnv != "" && s.Type == "slack" {
			bad(field+".secret_env", s.SecretEnv, "slack sinks are not signed")
		}
		dur(field+".timeout", s.Timeout, 100*time.Millisecond, 5*time.Minute)
	}
	rules := map[string]bool{}
	for i, r := range a.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("alerts.%s: %s", field, tokenmeter.ErrorMessage(err)))
			continue
		}
		if rules[r.Name] {
			bad(field+".name", r.Name, "is listed twice")
		}
		rules[r.Name] = true
		for _, s := range r.Sinks {
			if !names[s] {
				bad(field+".sinks", s, "no sink has this name")
			}
		}
	}
	return errs
}

// checkSinkURL checks a webhook URL without echoing it (it may be a
// secret).
func checkSinkURL(u string) error {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return errors.New("must be an http or https URL")
	}
	return nil
}

// sinks builds the sinks; getenv reads url_env and secret_env. unsigned
// names the --alert-webhook sinks that go out unsigned because
// $TOKENMETER_ALERT_SECRET is empty.
func (a *AlertsConfig) sinks(getenv func(string) string) (out []alerts.Sink, unsigned []string, err error) {
	for _, s := range a.allSinks() {
		switch s.Type {
		case "webhook", "slack":
			u := s.URL
			if s.URLEnv != "" {
				if u = strings.TrimSpace(getenv(s.URLEnv)); u == "" {
					return nil, nil, fmt.Errorf("alert sink %s: $%s is empty", s.Name, s.URLEnv)
				}
				if err := checkSinkURL(u); err != nil {
					return nil, nil, fmt.Errorf("alert sink %s: $%s %w", s.Name, s.URLEnv, err)
				}
			}
			w := &alerts.Webhook{SinkName: s.Name, URL: u, Slack: s.Type == "slack", Timeout: time.Duration(s.Timeout)}
			if s.SecretEnv != "" {
				w.Secret = []byte(getenv(s.SecretEnv))
				switch {
				case len(w.Secret) > 0:
				case s.secretOptional:
					unsigned = append(unsigned, s.Name)
				default:
					// A config sink that names its secret but finds it empty
					// would send unsigned alerts to a receiver that expects a
					// signature: refused, as an empty URL is.
					return nil, nil, fmt.Errorf("alert sink %s: $%s (its HMAC secret) is empty", s.Name, s.SecretEnv)
				}
			}
			out = append(out, w)
		case "command":
			lookup := func(k string) (string, bool) { v := getenv(k); return v, v != "" }
			out = append(out, &alerts.Command{SinkName: s.Name, Shell: s.Command, Timeout: time.Duration(s.Timeout),
				Env: alerts.InheritEnv(lookup, s.Env)})
		}
	}
	return out, unsigned, nil
}

// newAlertEngine returns the alert engine of cfg on store.
func newAlertEngine(cfg *AlertsConfig, store alerts.Store, log *slog.Logger, getenv func(string) string) (*alerts.Engine, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	e := alerts.New(store, log)
	e.Rules = cfg.Rules
	e.Defaults = cfg.DefaultRules == nil || *cfg.DefaultRules
	if cfg.Interval != 0 {
		e.Interval = time.Duration(cfg.Interval)
	}
	if cfg.RetryMin != 0 {
		e.RetryMin = time.Duration(cfg.RetryMin)
	}
	if cfg.RetryMax != 0 {
		e.RetryMax = time.Duration(cfg.RetryMax)
	}
	sinks, unsigned, err := cfg.sinks(getenv)
	if err != nil {
		return nil, err
	}
	if len(unsigned) > 0 {
		log.Warn("alert webhooks of --alert-webhook are sent unsigned: set $"+AlertSecretEnv+" to sign them (X-Tokenmeter-Signature)", "sinks", unsigned)
	}
	for _, s := range sinks {
		e.AddSink(s)
	}
	return e, nil
}

// runAlerts lists alerts and manages alert rules.
func runAlerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := &alertsCmd{stdout: stdout, stderr: stderr, now: time.Now}
	rules := func(ctx context.Context, rest []string) error {
		if len(rest) > 0 && rest[0] == "set" {
			return a.set(ctx, rest[1:])
		}
		if len(rest) > 0 && rest[0] == "delete" {
			return a.delete(ctx, rest[1:])
		}
		return a.rules(ctx, rest)
	}
	return dispatch(ctx, "alerts", args, stdout, []subcommand{
		{"list", a.list}, {"rules", rules}, {"test", a.test}})
}

type alertsCmd struct {
	stdout, stderr io.Writer
	now            func() time.Time
}

func alertsError(cmd, format string, args ...any) error {
	return usageError("alerts "+cmd, format, args...)
}

// flags returns the flag set of "alerts name" with the ledger flags.
func (a *alertsCmd) flags(name string) (*flag.FlagSet, *ledgerFlags) {
	fs := newFlagSet("alerts " + name)
	return fs, addLedgerFlags(fs)
}

// openLedger opens the chosen ledger for writing; it must exist.
func (a *alertsCmd) openLedger(lf *ledgerFlags) (*sqlite.DB, error) {
	db, c, err := lf.open(false)
	if err == nil {
		wrote(a.stderr, c, false)
	}
	return db, err
}

// AlertsJSON is alerts list --json and GET /api/alerts.
type AlertsJSON struct {
	Alerts []tokenmeter.Alert `json:"alerts"`
}

func (a *alertsCmd) list(ctx context.Context, args []string) error {
	fs, lf := a.flags("list")
	asJSON := fs.Bool("json", false, "write JSON")
	all := fs.Bool("all", false, "every alert, not only those of the last 7 days")
	addServerFlag(fs)
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return alertsError("list", "unexpected argument %q", pos[0])
	}
	rem, err := remoteFor("alerts list", fs)
	if err != nil {
		return err
	}
	var list []tokenmeter.Alert
	if rem != nil {
		q := url.Values{}
		if *all {
			q.Set("all", "1")
		}
		var out AlertsJSON
		if err := rem.call(ctx, "alerts list", http.MethodGet, "/api/alerts", q, nil, &out); err != nil {
			return err
		}
		list = out.Alerts
	} else {
		db, _, err := lf.open(true)
		if err != nil {
			return err
		}
		defer db.Close()
		q := tokenmeter.AlertQuery{}
		if !*all {
			q.Since = a.now().Add(-7 * 24 * time.Hour)
		}
		if list, err = db.Alerts(ctx, q); err != nil {
			return err
		}
	}
	if *asJSON {
		if list == nil {
			list = []tokenmeter.Alert{}
		}
		return writeJSON(a.stdout, AlertsJSON{Alerts: list})
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "No alerts.")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSEVERITY\tFIRED\tRESOLVED\tRULE\tSUMMARY")
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	}
	for _, al := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", al.ID, al.State, al.Severity, ts(al.Fired), ts(al.Resolved), al.Rule, textsafe.Terminal(al.Summary))
		if al.State == tokenmeter.AlertResolved && len(al.History) > 1 {
			fmt.Fprintf(tw, "\t\t\t\t\t\t  resolved: %s\n", textsafe.Terminal(al.History[len(al.History)-1].Summary))
		}
	}
	return tw.Flush()
}

// alertsConfig returns the config file of lf with its alerts: section
// checked.
func alertsConfig(lf *ledgerFlags) (*Config, error) {
	cfg, err := lf.loadConfig()
	if err != nil {
		return nil, err
	}
	if errs := cfg.Alerts.validate(); len(errs) > 0 {
		return nil, usageError(lf.cmd, "invalid configuration %s:\n%v", lf.config, errors.Join(errs...))
	}
	return cfg, nil
}

func (a *alertsCmd) rules(ctx context.Context, args []string) error {
	fs, lf := a.flags("rules")
	asJSON := fs.Bool("json", false, "write JSON")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return alertsError("rules", "unexpected argument %q (want set or delete, or no argument)", pos[0])
	}
	cfg, err := alertsConfig(lf)
	if err != nil {
		return err
	}
	db, _, err := lf.open(true)
	if err != nil {
		return err
	}
	defer db.Close()
	e := alerts.New(db, slog.New(slog.DiscardHandler))
	e.Rules, e.Defaults = cfg.Alerts.Rules, cfg.Alerts.DefaultRules == nil || *cfg.Alerts.DefaultRules
	rules, err := e.EffectiveRules(ctx)
	if err != nil {
		return err
	}
	sinks := []string{alerts.LogName}
	for _, s := range cfg.Alerts.allSinks() {
		sinks = append(sinks, s.Name)
	}
	if *asJSON {
		return writeJSON(a.stdout, struct {
			Rules []tokenmeter.AlertRule `json:"rules"`
			Sinks []string               `json:"sinks"`
		}{rules, sinks})
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSOURCE\tSETTINGS\tSINKS")
	for _, r := range rules {
		to := "all"
		if len(r.Sinks) > 0 {
			to = strings.Join(r.Sinks, ",") + ",log"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, r.Source, ruleSettings(r), to)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nSinks: %s\n", strings.Join(sinks, ", "))
	known := sinks
	if lf.config == "" {
		known = nil // the gateway's config may define more
	}
	ws, err := ruleWarnings(ctx, db, rules, known)
	printWarnings(a.stderr, ws, err)
	return nil
}

// ruleSettings describes a rule's settings with the defaults filled in.
func ruleSettings(r tokenmeter.AlertRule) string {
	var parts []string
	switch r.Kind {
	case tokenmeter.AlertThreshold, tokenmeter.AlertBurnRate:
		limit := "every limit"
		if r.Limit != "" {
			limit = "limit " + r.Limit
		}
		parts = append(parts, limit)
		if r.Kind == tokenmeter.AlertThreshold {
			th := r.Thresholds
			if len(th) == 0 {
				th = tokenmeter.DefaultThresholds
			}
			parts = append(parts, "at "+joinInts(th, "/")+" %")
		} else {
			span := time.Duration(r.Span)
			if span == 0 {
				span = alerts.DefaultBurnSpan
			}
			parts = append(parts, "rate over "+span.String())
		}
	case tokenmeter.AlertAnomaly:
		if len(r.AnomalyKinds) == 0 {
			parts = append(parts, "every anomaly kind")
		} else {
			parts = append(parts, strings.Join(r.AnomalyKinds, ","))
		}
	case tokenmeter.AlertErrorRate, tokenmeter.AlertRateLimited:
		span, minReq, pct := time.Duration(r.Span), r.MinRequests, int64(r.Percent)
		if span == 0 {
			span = alerts.DefaultRateSpan
		}
		if r.Kind == tokenmeter.AlertErrorRate {
			minReq, pct = orInt(minReq, alerts.DefaultErrorMinRequests), orInt(pct, alerts.DefaultErrorPercent)
		} else {
			minReq, pct = orInt(minReq, alerts.DefaultRateLimitedMinRequests), orInt(pct, alerts.DefaultRateLimitedPercent)
		}
		parts = append(parts, fmt.Sprintf(">= %d%% of >= %d calls over %s", pct, minReq, span))
	}
	return strings.Join(parts, ", ")
}

func orInt(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

func joinInts(v []int, sep string) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, sep)
}

// ParseThresholds reads a comma-separated list of percentages
// ("50,80,95,100", "80%").
func ParseThresholds(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSuffix(strings.TrimSpace(f), "%")
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("%q is not a percentage between 1 and 1000", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (a *alertsCmd) set(ctx context.Context, args []string) error {
	fs, lf := a.flags("rules set")
	kind := fs.String("kind", "", "the rule's `KIND`: threshold, burn_rate, anomaly, error_rate or rate_limited (required)")
	limit := fs.String("limit", "", "the `LIMIT` a threshold or burn_rate rule watches (default every limit)")
	thresholds := fs.String("thresholds", "", "`PERCENTS` of the limit, e.g. 50,80,95,100 (threshold rules)")
	anomalyKinds := fs.String("anomaly-kinds", "", "anomaly `KINDS`, e.g. early_reset,drift (default every kind)")
	span := fs.Duration("span", 0, "how far back (`DURATION`) burn_rate, error_rate and rate_limited rules look")
	minReq := fs.Int64("min-requests", 0, "calls (`N`) needed in the span before error_rate and rate_limited rules judge")
	pct := fs.Int("percent", 0, "share of calls in `PERCENT` (error_rate, rate_limited) at which the rule fires")
	sinks := fs.String("sinks", "", "`SINKS` (names) the rule's alerts go to (default every sink)")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return alertsError("rules set", "name one rule (e.g. tokenmeter alerts rules set budget --kind threshold)")
	}
	r := tokenmeter.AlertRule{Name: pos[0], Kind: tokenmeter.AlertKind(*kind), Limit: *limit, AnomalyKinds: splitList(*anomalyKinds),
		Span: tokenmeter.Duration(*span), MinRequests: *minReq, Percent: *pct, Sinks: splitList(*sinks)}
	if *thresholds != "" {
		if r.Thresholds, err = ParseThresholds(*thresholds); err != nil {
			return alertsError("rules set", "--thresholds: %v", err)
		}
	}
	if err := r.Validate(); err != nil {
		return alertsError("rules set", "%s", tokenmeter.ErrorMessage(err))
	}
	var known []string // the sinks are known only from the config file
	if lf.config != "" {
		if known, err = configSinks(lf); err != nil {
			return err
		}
	}
	db, err := a.openLedger(lf)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SetAlertRule(ctx, r); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Set alert rule %s (%s, %s); a running gateway applies it at its next evaluation.\n", r.Name, r.Kind, ruleSettings(r))
	ws, err := ruleWarnings(ctx, db, []tokenmeter.AlertRule{r}, known)
	printWarnings(a.stderr, ws, err)
	return nil
}

// configSinks returns the names of the sinks of lf's config file, log
// included.
func configSinks(lf *ledgerFlags) ([]string, error) {
	cfg, err := alertsConfig(lf)
	if err != nil {
		return nil, err
	}
	names := []string{alerts.LogName}
	for _, s := range cfg.Alerts.allSinks() {
		names = append(names, s.Name)
	}
	return names, nil
}

func (a *alertsCmd) delete(ctx context.Context, args []string) error {
	fs, lf := a.flags("rules delete")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return alertsError("rules delete", "name one rule")
	}
	db, err := a.openLedger(lf)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.DeleteAlertRule(ctx, pos[0]); tokenmeter.ErrorCode(err) == tokenmeter.ENOTFOUND {
		if slices.ContainsFunc(alerts.DefaultRules(), func(r tokenmeter.AlertRule) bool { return r.Name == pos[0] }) {
			return alertsError("rules delete", "%s is a built-in rule and cannot be deleted: replace it with a rule of the same name "+
				"(tokenmeter alerts rules set %s --kind KIND ...), or turn every built-in rule off with alerts: {default_rules: false} in the config file",
				pos[0], pos[0])
		}
		if cfg, cerr := lf.loadConfig(); cerr == nil && slices.ContainsFunc(cfg.Alerts.Rules, func(r tokenmeter.AlertRule) bool { return r.Name == pos[0] }) {
			return alertsError("rules delete", "%s comes from the config file %s: remove it there", pos[0], lf.config)
		}
		return err
	} else if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Deleted alert rule %s.\n", pos[0])
	return nil
}

func (a *alertsCmd) test(ctx context.Context, args []string) error {
	fs := newFlagSet("alerts test")
	cfgPath := fs.String("config", "", "YAML config `FILE` naming the sink")
	slack := fs.Bool("slack", false, "send to the URL as a Slack-compatible incoming webhook")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return alertsError("test", "name one sink (a sink of the config file, log, or a URL)")
	}
	target := pos[0]
	var sink alerts.Sink
	switch {
	case strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://"):
		if err := checkSinkURL(target); err != nil {
			return alertsError("test", "the URL %v", err)
		}
		if *slack {
			fmt.Fprintln(a.stderr, "note: a Slack webhook URL is a secret, and as an argument it shows in the process list; name a sink of the config file (url_env) instead")
		}
		w := &alerts.Webhook{SinkName: "test", URL: target, Slack: *slack}
		if s := os.Getenv(AlertSecretEnv); s != "" && !*slack {
			w.Secret = []byte(s)
		}
		sink = w
	case target == alerts.LogName:
		sink = &alerts.Log{Logger: slog.New(slog.NewTextHandler(a.stdout, nil))}
	default:
		cfg, err := alertsConfig(&ledgerFlags{cmd: "alerts test", config: *cfgPath, getenv: os.Getenv})
		if err != nil {
			return err
		}
		sinks, _, err := cfg.Alerts.sinks(os.Getenv)
		if err != nil {
			return err
		}
		for _, s := range sinks {
			if s.Name() == target {
				sink = s
			}
		}
		if sink == nil {
			return alertsError("test", "no sink named %q in %s (name a sink of alerts.sinks, log, or a URL)", target, orDefault(*cfgPath, "the configuration"))
		}
	}
	m := alerts.Sample(a.now())
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := sink.Send(ctx, m, payload); err != nil {
		return fmt.Errorf("alerts test: %s: %w", sink.Name(), err)
	}
	fmt.Fprintf(a.stdout, "Sent a test alert to %s.\n", sink.Name())
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

var _ alerts.Store = (*sqlite.DB)(nil)

// warnReferences logs what the rules in effect and the limits name that
// does not exist: a limit, a sink, a virtual key.
func (s *Serve) warnReferences(e *alerts.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rules, err := e.EffectiveRules(ctx)
	if err != nil {
		s.Log.Warn("cannot check the alert rules' references", "err", err)
		return
	}
	sinks := []string{alerts.LogName}
	for _, c := range s.Config.Alerts.allSinks() {
		sinks = append(sinks, c.Name)
	}
	ws, err := ruleWarnings(ctx, s.store, rules, sinks)
	if err == nil {
		var lims []tokenmeter.Limit
		if lims, err = s.store.Limits(ctx); err == nil {
			var lw []string
			lw, err = limitWarnings(ctx, s.store, lims)
			ws = append(ws, lw...)
		}
	}
	if err != nil {
		s.Log.Warn("cannot check the references of rules and limits", "err", err)
	}
	for _, w := range ws {
		s.Log.Warn(w)
	}
}

// startAlerts runs the alert engine until Close (stopAlerts stops it and
// waits for its goroutine).
func (s *Serve) startAlerts() error {
	e, err := newAlertEngine(&s.Config.Alerts, s.store, s.Log.With("component", "alerts"), s.Getenv)
	if err != nil {
		return err
	}
	if s.Now != nil {
		e.Now = s.Now
	}
	s.Alerts = e
	s.warnReferences(e)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	s.stopAlerts = func() {
		cancel()
		<-done
		s.stopAlerts = nil
	}
	return nil
}
