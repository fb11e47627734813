package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

func runFakeUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fake-upstream")
	listen := fs.String("listen", "127.0.0.1:8788", "listen `ADDR`")
	adminFaults := fs.String("admin-faults", "", "`FAULTS` the admin usage reports inject, e.g. drop_bucket=2026-11-25T11:00:00Z,inflate=MODEL:N,lag=10m,fail_page=2 (see go doc ./internal/fakeupstream ParseAdminFaults)")
	scenario := fs.String("scenario", "", "rate-limit `SCENARIO` of every request: steady, drift, reset-moved, early-reset, limit-change or all (docs/counters.md)")
	billingWindow := fs.Int("billing-window", fakeupstream.DefaultBillingWindow, "billing entries kept for GET "+fakeupstream.BillingPath+" (`N`, the most recent; totals cover all)")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("fake-upstream", "takes no arguments (got %q)", pos[0])
	}
	if err := checkListen(*listen); err != nil {
		return usageError("fake-upstream", "%v", err)
	}
	if *scenario != "" && !fakeupstream.ValidScenario(*scenario) {
		return usageError("fake-upstream", "--scenario %q: want steady, drift, reset-moved, early-reset, limit-change or all", *scenario)
	}
	if *billingWindow < 1 {
		return usageError("fake-upstream", "--billing-window %d: want at least 1", *billingWindow)
	}
	faults, err := fakeupstream.ParseAdminFaults(*adminFaults)
	if err != nil {
		return usageError("fake-upstream", "--admin-faults: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	log := newLogger(stderr, "info")
	fake := fakeupstream.New(fakeupstream.Options{Logger: log, Scenario: *scenario, BillingWindow: *billingWindow})
	fake.SetAdminFaults(faults)
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "tokenmeter fake-upstream on http://%s (Anthropic and OpenAI APIs; what it billed: GET %s; see `go doc ./internal/fakeupstream` for directives)\n", ln.Addr(), fakeupstream.BillingPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}
