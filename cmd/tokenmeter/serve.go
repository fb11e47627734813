package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/importer"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
	"github.com/tokenmeter/tokenmeter/internal/proxy"
	"github.com/tokenmeter/tokenmeter/internal/server"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// DefaultShutdownTimeout is how long serve lets in-flight streams finish
// after SIGINT/SIGTERM.
const DefaultShutdownTimeout = 30 * time.Second

// LedgerFile is the ledger's file name inside the data directory.
const LedgerFile = "ledger.db"

// Serve is a running gateway: the ledger, its writer and the HTTP server.
// Production (runServe) and end-to-end tests build it the same way.
type Serve struct {
	Config Config
	Log    *slog.Logger
	// Transport overrides the upstream transport (tests); nil = default.
	Transport http.RoundTripper
	// MaxPageCount caps the ledger size (tests of a full disk).
	MaxPageCount int64
	// Getenv reads the provider credentials' environment variables; nil
	// means os.Getenv.
	Getenv func(string) string

	lock   *os.File
	store  *sqlite.DB
	writer *ledger.Writer
	proxy  *proxy.Proxy
	server *server.Server

	stopImports context.CancelFunc // the importers' owner
	imports     sync.WaitGroup
}

// Open takes the data directory, recovers calls left open by a previous
// process, and starts serving.
func (s *Serve) Open(ctx context.Context) error {
	c := &s.Config
	if err := c.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDir(c.Data)
	if err != nil {
		return err
	}
	s.lock = lock

	s.store = sqlite.NewDB(filepath.Join(c.Data, LedgerFile))
	s.store.Sync = c.Sync
	s.store.MaxPageCount = s.MaxPageCount
	if err := s.store.Open(); err != nil {
		s.Close(ctx)
		return fmt.Errorf("open ledger: %w", err)
	}
	prices, err := loadPrices(c.Prices)
	if err != nil {
		s.Close(ctx)
		return err
	}
	price := func(ev *tokenmeter.Event) { ev.Cost, ev.CostKnown = prices.Cost(ev.Model, ev.Time, ev.Usage, false) }
	n, err := ledger.Recover(ctx, s.store, nil, time.Now(), price)
	if err != nil {
		s.Close(ctx)
		return err
	}
	if n > 0 {
		s.Log.Warn("recorded calls left open by a previous run as outcome unknown", "calls", n)
	}

	s.writer = ledger.NewWriter(s.store, s.Log)
	s.writer.Open()

	s.proxy = proxy.New(c.Routes(), s.writer, s.Log)
	s.proxy.Durability = c.Durability
	s.proxy.FailOpen = c.OnLedgerError == "fail-open"
	s.proxy.MaxRequestBody = c.MaxRequestBody
	s.proxy.Instance = newInstanceID()
	s.proxy.Price = price
	if s.Transport != nil {
		s.proxy.Transport = s.Transport
	}
	s.proxy.Keys = s.store
	s.proxy.RequireVirtualKey = c.RequireVirtualKey
	s.proxy.Credentials = s.credentials(ctx)

	s.server = server.New(s.Log)
	s.server.Addr = c.Listen
	s.server.Gateway = s.proxy
	s.server.Health = s.writer
	for _, r := range c.Routes() {
		s.server.Prefixes = append(s.server.Prefixes, r.Prefix+"/*")
	}
	if err := s.server.Open(); err != nil {
		s.Close(ctx)
		return err
	}
	s.startImports(prices)
	return nil
}

// credentials reads each route's provider credential from its environment
// variable (see Config.CredentialEnv), logging (by variable name only) the
// routes that have none: virtual keys are refused on those.
func (s *Serve) credentials(ctx context.Context) map[string]string {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	level := slog.LevelInfo
	if keys, err := s.store.Keys(ctx); err == nil && len(keys) > 0 {
		level = slog.LevelWarn
	}
	out := make(map[string]string)
	for _, r := range s.Config.Routes() {
		env := s.Config.CredentialEnv(r.Name)
		if v := strings.TrimSpace(getenv(env)); env != "" && v != "" {
			out[r.Name] = v
			continue
		}
		how := "set $" + env
		if env == "" {
			how = "name its variable under credentials: in the config file"
		}
		s.Log.Log(ctx, level, "no provider credential for route: virtual keys are refused on it", "route", r.Name, "fix", how)
	}
	return out
}

// startImports runs the configured importers until Close. An importer that
// stops on an error (the ledger failed) is logged; the gateway goes on.
func (s *Serve) startImports(prices *pricing.Table) {
	ictx, cancel := context.WithCancel(context.Background())
	s.stopImports = cancel
	for _, kind := range s.Config.Import {
		format, dirs, _ := importFormat(kind) // validated
		log := s.Log.With("import", kind)
		s.imports.Add(1)
		go func() {
			defer s.imports.Done()
			if found := existing(dirs); len(found) < len(dirs) {
				log.Info("watching for logs", "dirs", dirs, "present", found)
			}
			opts := importer.Options{Store: s.store, Prices: prices, Dirs: dirs, Workers: 1,
				Warn: func(w importer.Warning) { log.Warn("skipped", "where", w.String()) }}
			err := importer.Watch(ictx, format, opts, func(st importer.Stats) {
				if st.Added > 0 {
					log.Info("imported", "calls", st.Added, "files", st.Read, "already_recorded", st.Recorded)
				}
			})
			if err != nil {
				log.Error("importer stopped", "err", err)
			}
		}()
	}
}

// URL returns the gateway's base URL.
func (s *Serve) URL() string { return s.server.URL() }

// Close stops the server (letting in-flight calls finish until ctx ends),
// then commits what the writer holds, then closes the ledger.
func (s *Serve) Close(ctx context.Context) error {
	var errs []error
	if s.stopImports != nil {
		s.stopImports()
		s.imports.Wait()
	}
	if s.server != nil {
		errs = append(errs, s.server.Close(ctx))
	}
	if s.proxy != nil {
		// Handlers of connections cut above still finish their calls; give
		// them a moment so their completions reach the ledger.
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.proxy.Wait(wctx))
		cancel()
	}
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// loadPrices returns the embedded price table, with the rows of the file
// at path (if any) overriding or extending it.
func loadPrices(path string) (*pricing.Table, error) {
	if path == "" {
		return pricing.Default(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("price file: %w", err)
	}
	defer f.Close()
	override, err := pricing.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("price file %s: %w", path, err)
	}
	return pricing.Default().Merge(override), nil
}

// lockDir takes an exclusive lock on the data directory, so that two
// gateways never write one ledger (each would close the other's calls).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "serve.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another tokenmeter serve (%v)", dir, err)
	}
	return f, nil
}

func newInstanceID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	cfgPath := fs.String("config", "", "YAML config `file`")
	listen := fs.String("listen", "", "listen `address` (default 127.0.0.1:8787)")
	data := fs.String("data", "", "data `directory` (default $TOKENMETER_DATA or the XDG data dir)")
	ups := upstreamFlag{}
	fs.Var(ups, "upstream", "upstream `NAME=URL` (repeatable; anthropic, openai, or any OpenAI-compatible name)")
	durability := fs.String("durability", "", "normal: started record durable before the response; strict: before forwarding")
	sync := fs.String("sync", "", "normal: commits survive a process crash; full: fsync, survive a power loss")
	onErr := fs.String("on-ledger-error", "", "fail-closed (503) or fail-open when the ledger cannot record")
	maxBody := fs.Int64("max-request-body", 0, "largest client request body in `bytes`")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	prices := fs.String("prices", "", "JSON price `file` overriding or extending the embedded table")
	requireKey := fs.Bool("require-virtual-key", false, "refuse requests without a tokenmeter virtual key (tm-...)")
	var imports stringList
	fs.Var(&imports, "import", "also import these local logs continuously: claude-code or codex (repeatable)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := DefaultConfig()
	if *cfgPath != "" {
		if err := cfg.LoadFile(*cfgPath); err != nil {
			return err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = *listen
		case "data":
			cfg.Data = *data
		case "durability":
			cfg.Durability = *durability
		case "sync":
			cfg.Sync = *sync
		case "on-ledger-error":
			cfg.OnLedgerError = *onErr
		case "max-request-body":
			cfg.MaxRequestBody = *maxBody
		case "log-level":
			cfg.LogLevel = *logLevel
		case "prices":
			cfg.Prices = *prices
		case "import":
			cfg.Import = imports
		case "require-virtual-key":
			cfg.RequireVirtualKey = *requireKey
		}
	})
	for n, u := range ups {
		cfg.Upstreams[n] = u
	}
	s := &Serve{Config: cfg, Log: newLogger(stderr, cfg.LogLevel)}
	if err := s.Open(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tokenmeter: gateway on %s, ledger %s\n", s.URL(), filepath.Join(cfg.Data, LedgerFile))
	for _, r := range cfg.Routes() {
		fmt.Fprintf(stdout, "  %s%s/* -> %s\n", s.URL(), r.Prefix, r.Upstream)
	}
	fmt.Fprintf(stdout, "  try: export ANTHROPIC_BASE_URL=%s/anthropic OPENAI_BASE_URL=%s/openai/v1\n", s.URL(), s.URL())
	<-ctx.Done()
	// A second SIGINT or SIGTERM now ends the process at once.
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	s.Log.Info("shutting down; waiting for in-flight calls", "timeout", DefaultShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	return s.Close(sctx)
}
