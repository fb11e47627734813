package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/proxy"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// Config is the serve configuration: defaults, then the config file, then
// flags. Keep testdata/config/ and docs/configuration.md in step with it.
type Config struct {
	// Listen is the gateway's address. Default 127.0.0.1:8787.
	Listen string `yaml:"listen"`
	// Data is the data directory holding the ledger. Every command given
	// --config FILE uses it (see ledgerFlags).
	Data string `yaml:"data"`
	// Database is a PostgreSQL URL for a shared ledger (team mode); this
	// build refuses it. $TOKENMETER_DATABASE and --database set it too.
	Database string `yaml:"database"`
	// Upstreams maps a route name to its base URL. "anthropic" speaks the
	// Anthropic Messages API; every other name the OpenAI API. Clients send
	// the API's own paths (/v1/...) under /NAME, so a base URL ending in
	// /v1 is used without it (see UpstreamBase; serve logs it).
	Upstreams map[string]string `yaml:"upstreams"`
	// Durability is "normal" or "strict" (see docs/durability.md).
	Durability string `yaml:"durability"`
	// Sync is "normal" (survives a process crash) or "full" (fsync: survives
	// a power loss).
	Sync string `yaml:"sync"`
	// OnLedgerError is "fail-closed" (refuse with 503) or "fail-open".
	OnLedgerError string `yaml:"on_ledger_error"`
	// MaxRequestBody bounds a client request body in bytes.
	MaxRequestBody int64 `yaml:"max_request_body"`
	// MaxInFlight caps the proxied requests served at once (503 with
	// retry-after beyond it); zero means the built-in default (1024).
	MaxInFlight int `yaml:"max_in_flight"`
	// RequestReadTimeout is the longest a request body may pause before
	// the request gets 408 (a duration; empty means the built-in 30s).
	RequestReadTimeout string `yaml:"request_read_timeout"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// Prices is a JSON price file (the format of internal/pricing's
	// prices.json) whose rows override or extend the embedded table.
	Prices string `yaml:"prices"`
	// Import lists the local logs serve imports continuously, as
	// `tokenmeter import KIND --watch` does: claude-code, codex.
	Import []string `yaml:"import"`
	// RequireVirtualKey refuses (401) requests that carry no tokenmeter
	// virtual key, so pass-through credentials stop working (team set-ups).
	RequireVirtualKey bool `yaml:"require_virtual_key"`
	// DefaultMaxOutput is the output a hard limit reserves for a request
	// that sets no max_tokens; zero means the built-in default (32,000).
	DefaultMaxOutput int64 `yaml:"default_max_output"`
	// BytesPerToken divides a request body's size into the input a hard
	// limit reserves; zero means the built-in default (3). 1 is the most
	// cautious (a token is never shorter than a byte of UTF-8 text).
	BytesPerToken int `yaml:"bytes_per_token"`
	// Credentials maps a route name to the name of the environment variable
	// holding the provider credential that replaces a virtual key on that
	// route. anthropic defaults to ANTHROPIC_API_KEY and openai to
	// OPENAI_API_KEY. The file names variables only, never secrets.
	Credentials map[string]string `yaml:"credentials"`
	// AdminKeys maps a provider (anthropic, openai) to the environment
	// variable holding its admin key, which reconcile reads the usage and
	// cost reports with; default ANTHROPIC_ADMIN_KEY and OPENAI_ADMIN_KEY.
	// Names only, never keys.
	AdminKeys map[string]string `yaml:"admin_keys"`
	// Reconcile lists the providers serve reconciles in the background
	// (anthropic, openai), every ReconcileEvery (a duration, default 1h),
	// with ReconcileTolerance (tokens or a percentage, default 0); each run
	// is stored (reconcile history) and discrepancies become anomalies.
	Reconcile          []string `yaml:"reconcile"`
	ReconcileEvery     string   `yaml:"reconcile_every"`
	ReconcileTolerance string   `yaml:"reconcile_tolerance"`
	// ReconcileSource is the ledger events scheduled runs compare: "proxy"
	// (the default: the gateway's calls, which the admin reports cover)
	// or "all" (imported Claude Code and Codex logs too, which are mostly
	// subscription usage no admin report covers).
	ReconcileSource string `yaml:"reconcile_source"`
	// AdminToken is the token that opens the admin API (/api/*); prefer
	// $TOKENMETER_ADMIN_TOKEN, which overrides it. Empty: a token is
	// generated at first start, shown once, and its hash kept in the data
	// directory (see docs/admin-api.md).
	AdminToken string `yaml:"admin_token"`
	// AdminTokenFile names a file holding the admin token (its first line;
	// for systemd credentials, Docker or Kubernetes secrets), read at
	// start; set it or AdminToken, not both.
	AdminTokenFile string `yaml:"admin_token_file"`
	// TLSCert and TLSKey are PEM files: with both set, serve speaks HTTPS
	// (the dashboard's cookie is then Secure). Without them, listening on
	// an address other than loopback logs a warning.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// PublicNames are the host names under which the dashboard, /api and
	// /metrics answer, besides localhost, names under .localhost, IP
	// addresses and the name in Listen; a request for another Host gets
	// 421 (DNS rebinding, see docs/dashboard.md). The gateway routes
	// answer under any name.
	PublicNames []string `yaml:"public_names"`
	// CountersRetention is how long provider-counter samples are kept: a
	// duration (720h) or days (30d); "0" keeps them forever; empty means
	// 30 days (see docs/counters.md).
	CountersRetention string `yaml:"counters_retention"`
	// Alerts holds the alert rules and sinks (see docs/alerts.md).
	Alerts AlertsConfig `yaml:"alerts"`
}

// DefaultCredentialEnv names the environment variables that hold the
// provider credentials of the built-in routes.
var DefaultCredentialEnv = map[string]string{"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// CredentialEnv returns the environment variable holding route's provider
// credential, or "" if none is configured.
func (c *Config) CredentialEnv(route string) string {
	if v, ok := c.Credentials[route]; ok {
		return v
	}
	return DefaultCredentialEnv[route]
}

// Default upstream base URLs.
const (
	DefaultAnthropicURL = "https://api.anthropic.com"
	DefaultOpenAIURL    = "https://api.openai.com"
)

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		Listen:         "127.0.0.1:8787",
		Data:           defaultDataDir(),
		Upstreams:      map[string]string{"anthropic": DefaultAnthropicURL, "openai": DefaultOpenAIURL},
		Durability:     proxy.DurabilityNormal,
		Sync:           sqlite.SyncNormal,
		OnLedgerError:  "fail-closed",
		MaxRequestBody: proxy.DefaultMaxRequestBody,
		LogLevel:       "info",
	}
}

// defaultDataDir is $TOKENMETER_DATA, else $XDG_DATA_HOME/tokenmeter, else
// ~/.local/share/tokenmeter.
func defaultDataDir() string {
	if d := os.Getenv("TOKENMETER_DATA"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "tokenmeter")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "tokenmeter")
	}
	return "tokenmeter-data"
}

// LoadFile reads a YAML config file over c. Unknown keys and values of
// the wrong kind are errors, each named by its line and key path (see
// decodeConfig).
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := decodeConfig(b, c); err != nil {
		if strings.Contains(err.Error(), "\n") {
			return fmt.Errorf("config %s:\n%w", path, err)
		}
		return fmt.Errorf("config %s %w", path, err)
	}
	return nil
}

// checkListen checks a listen address: HOST:PORT, or :PORT for every
// interface.
func checkListen(addr string) error {
	if addr == "" {
		return errors.New("an address like 127.0.0.1:8787 is required")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p := "8787"
		if _, err := strconv.Atoi(addr); err == nil {
			p = addr // a bare port
		}
		return fmt.Errorf("want HOST:PORT, e.g. 127.0.0.1:%s (or :%s for every interface)", p, p)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	return nil
}

var routeName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// hostName is a DNS name as public_names lists it.
var hostName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*\.?$`)

// publicNames returns the names the dashboard, /api and /metrics answer
// to besides loopback names and addresses: PublicNames and the host of
// Listen when it is a name.
func (c *Config) publicNames() []string {
	names := append([]string{}, c.PublicNames...)
	if h, _, err := net.SplitHostPort(c.Listen); err == nil && h != "" {
		if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err != nil {
			names = append(names, h)
		}
	}
	return names
}

// reserved are path segments tokenmeter serves itself.
var reserved = map[string]bool{"healthz": true, "metrics": true, "api": true, "static": true, "login": true, "ui": true}

// Validate checks c and returns every problem found.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("%s = %v: %s", field, value, why))
	}
	if err := checkListen(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen = %q: %w", c.Listen, err))
	}
	if c.Database != "" {
		if err := checkDatabaseURL(c.Database); err != nil {
			bad("database", "(redacted)", err.Error())
		} else {
			bad("database", "(redacted)", errTeamMode)
		}
	}
	if c.Data == "" {
		bad("data", `""`, "a data directory is required")
	}
	if c.AdminToken != "" && c.AdminTokenFile != "" {
		bad("admin_token/admin_token_file", "both", "set the token or the file holding it, not both")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert/tls_key", "one of them", "set both the certificate and the key file, or neither")
	}
	for _, n := range c.PublicNames {
		if !hostName.MatchString(n) {
			bad("public_names", fmt.Sprintf("%q", n), "must be a host name such as tokenmeter.example.com (no scheme, no port)")
		}
	}
	if len(c.Upstreams) == 0 {
		bad("upstreams", "{}", "at least one upstream is required")
	}
	for name, u := range c.Upstreams {
		if !routeName.MatchString(name) || reserved[name] {
			bad("upstreams."+name, u, "a route name must be lowercase letters, digits, - or _, and not one of healthz, metrics, api, static, login, ui")
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("upstreams."+name, u, "must be an http or https URL")
		} else if pu.User != nil {
			bad("upstreams."+name, "(redacted)", "must not carry credentials in the URL")
		}
	}
	switch c.Durability {
	case proxy.DurabilityNormal, proxy.DurabilityStrict:
	default:
		bad("durability", c.Durability, "must be normal or strict")
	}
	switch c.Sync {
	case sqlite.SyncNormal, sqlite.SyncFull:
	default:
		bad("sync", c.Sync, "must be normal or full")
	}
	switch c.OnLedgerError {
	case "fail-closed", "fail-open":
	default:
		bad("on_ledger_error", c.OnLedgerError, "must be fail-closed or fail-open")
	}
	if c.DefaultMaxOutput < 0 || c.DefaultMaxOutput > 10_000_000 {
		bad("default_max_output", c.DefaultMaxOutput, "must be between 0 (built-in default) and 10000000 tokens")
	}
	if c.BytesPerToken < 0 || c.BytesPerToken > 16 {
		bad("bytes_per_token", c.BytesPerToken, "must be between 0 (built-in default) and 16")
	}
	if c.MaxRequestBody <= 0 {
		bad("max_request_body", c.MaxRequestBody, "must be a positive number of bytes")
	}
	if c.MaxInFlight < 0 {
		bad("max_in_flight", c.MaxInFlight, "must be a positive number of requests (0: the built-in default)")
	}
	if _, err := c.readTimeout(); err != nil {
		bad("request_read_timeout", c.RequestReadTimeout, err.Error())
	}
	for _, kind := range c.Import {
		if _, _, err := importFormat(kind); err != nil {
			bad("import", kind, "must be claude-code or codex")
		}
	}
	for p, env := range c.AdminKeys {
		if !envName.MatchString(env) {
			bad("admin_keys."+p, "(redacted)", "must be the name of an environment variable holding the admin key, not the key")
		} else if DefaultAdminKeyEnv[p] == "" {
			bad("admin_keys."+p, env, "must be anthropic or openai")
		}
	}
	if err := c.validateReconcile(); err != nil {
		errs = append(errs, err)
	}
	for route, env := range c.Credentials {
		if !envName.MatchString(env) {
			// Never echo it: it may be the secret itself.
			bad("credentials."+route, "(redacted)", "must be the name of an environment variable holding the credential, not the credential")
		} else if _, ok := c.Upstreams[route]; !ok {
			bad("credentials."+route, env, "no upstream has this name")
		}
	}
	errs = append(errs, c.Alerts.validate()...)
	if _, err := parseRetention(c.CountersRetention); err != nil {
		bad("counters_retention", c.CountersRetention, err.Error())
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", c.LogLevel, "must be debug, info, warn or error")
	}
	return errors.Join(errs...)
}

// Routes returns the gateway routes of c, sorted by name.
func (c *Config) Routes() []proxy.Route {
	names := make([]string, 0, len(c.Upstreams))
	for n := range c.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []proxy.Route
	for _, n := range names {
		u, _, _ := UpstreamBase(c.Upstreams[n])
		wire := proxy.OpenAI
		if n == "anthropic" {
			wire = proxy.Anthropic
		}
		out = append(out, proxy.Route{Name: n, Prefix: "/" + n, Wire: wire, Upstream: u})
	}
	return out
}

// UpstreamBase parses a configured upstream URL into the base the
// gateway appends client paths to. Clients send an API's own paths
// (/v1/messages, /v1/chat/completions) under the route, so a base that ends
// in /v1, as provider documentation often writes it
// (https://api.groq.com/openai/v1), would make every call /v1/v1/... or,
// for a client configured without /v1, an unmetered path: the trailing /v1
// (and any trailing slash) is dropped, and stripped reports it.
func UpstreamBase(raw string) (u *url.URL, stripped bool, err error) {
	u, err = url.Parse(raw)
	if err != nil {
		return nil, false, err
	}
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/"), ""
	if p, ok := strings.CutSuffix(u.Path, "/v1"); ok {
		u.Path, stripped = p, true
	}
	return u, stripped, nil
}

// readTimeout returns RequestReadTimeout as a duration; zero when unset.
func (c *Config) readTimeout() (time.Duration, error) {
	if c.RequestReadTimeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.RequestReadTimeout)
	if err != nil || d < time.Second {
		return 0, errors.New("must be a duration of at least 1s, e.g. 30s")
	}
	return d, nil
}

// upstreamFlag collects repeated --upstream NAME=URL flags.
type upstreamFlag map[string]string

func (f upstreamFlag) String() string { return "" }

func (f upstreamFlag) Set(v string) error {
	name, u, ok := strings.Cut(v, "=")
	if !ok || name == "" || u == "" {
		return fmt.Errorf("want NAME=URL, got %q", v)
	}
	f[name] = u
	return nil
}

// readSecret returns the contents of the file at path that holds a
// secret kept out of flags (flags show in the process list), at most
// 64 KiB. A file that other users may read is reported through warn.
func readSecret(what, path string, warn func(msg string, args ...any)) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s file: %w", what, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 && warn != nil {
		warn("a secret's file can be read by other users: chmod 600 it", "secret", what, "file", path, "mode", st.Mode().Perm().String())
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("%s file %s: %w", what, path, err)
	}
	return string(b), nil
}

// readSecretFile returns the first line of the file at path (see
// readSecret), without surrounding space; an empty one is an error.
func readSecretFile(what, path string, warn func(msg string, args ...any)) (string, error) {
	b, err := readSecret(what, path, warn)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(b, "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	return line, nil
}

// readSecretLines returns the lines of the file at path (see readSecret)
// that are neither empty nor comments (#); none is an error.
func readSecretLines(what, path string, warn func(msg string, args ...any)) ([]string, error) {
	b, err := readSecret(what, path, warn)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(b, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s file %s holds nothing", what, path)
	}
	return out, nil
}
