package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// benchLimitsModel is the model of benchLimitsBody; one of the ten limits
// is scoped to it.
const benchLimitsModel = "claude-sonnet-4-5-20250929"

// benchLimitsBody is a Messages request like bench/loadgen's (about 1 KB),
// answered with 12 output tokens.
var benchLimitsBody = []byte(`{"model":"` + benchLimitsModel + `","max_tokens":1024,"system":"You are a careful senior Go engineer. Answer briefly, show code only when it helps, and explain trade-offs in plain words. Never invent APIs; say when you are unsure.","messages":[{"role":"user","content":"Our service writes usage events to SQLite in WAL mode. Under load we see p99 latency spikes of a few milliseconds. Which knobs matter: synchronous, wal_autocheckpoint, busy_timeout, or the batch size of our group commit? [[fake output=12]]"}]}`)

// benchTenLimits are the ten hard limits of issue 4's performance target:
// every one applies to every request made with the virtual key "bench"
// (project "bench", model benchLimitsModel), with maxima no benchmark can
// reach. They cover the four scopes, five metrics and every window kind.
var benchTenLimits = [][]string{
	{"g-tokens-day", "--scope", "global", "--metric", "tokens", "--max", "1000000000000", "--window", "day"},
	{"g-requests-hour", "--scope", "global", "--metric", "requests", "--max", "1000000000000", "--window", "hour"},
	{"g-cost-month", "--scope", "global", "--metric", "cost_usd", "--max", "1000000000", "--window", "month"},
	{"k-tokens-5h", "--scope", "key:bench", "--metric", "tokens", "--max", "1000000000000", "--window", "5h-block"},
	{"k-requests-rolling", "--scope", "key:bench", "--metric", "requests", "--max", "1000000000000", "--window", "rolling:1h"},
	{"k-cost-week", "--scope", "key:bench", "--metric", "cost_usd", "--max", "1000000000", "--window", "week"},
	{"p-input-day-ny", "--scope", "project:bench", "--metric", "input_tokens", "--max", "1000000000000", "--window", "day", "--reset-at", "09:00", "--tz", "America/New_York"},
	{"p-output-rolling", "--scope", "project:bench", "--metric", "output_tokens", "--max", "1000000000000", "--window", "rolling:24h"},
	{"m-tokens-month", "--scope", "model:" + benchLimitsModel, "--metric", "tokens", "--max", "1000000000000", "--window", "month"},
	{"m-requests-rolling", "--scope", "model:" + benchLimitsModel, "--metric", "requests", "--max", "1000000000000", "--window", "rolling:5h"},
}

// benchCLI runs one tokenmeter command in process, as the CLI would.
func benchCLI(b *testing.B, args ...string) string {
	b.Helper()
	var out, errb bytes.Buffer
	if err := Run(context.Background(), args, strings.NewReader(""), &out, &errb); err != nil {
		b.Fatalf("tokenmeter %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// benchLimitsGateway starts a gateway on a fresh data directory, creates the
// virtual key "bench" (project "bench") and, if hard, benchTenLimits with
// the CLI, and returns the gateway's Anthropic base URL and the key.
func benchLimitsGateway(b *testing.B, upstream string, hard bool) (base, key string) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.Data = "127.0.0.1:0", b.TempDir()
	cfg.Upstreams = map[string]string{"anthropic": upstream}
	s := &Serve{Config: cfg, Log: slog.New(slog.DiscardHandler),
		Getenv: func(k string) string {
			if k == "ANTHROPIC_API_KEY" {
				return "sk-ant-bench-upstream"
			}
			return ""
		}}
	if err := s.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(context.Background()) })
	var j keyJSON
	out := benchCLI(b, "keys", "create", "--json", "--name", "bench", "--project", "bench", "--data", cfg.Data)
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		b.Fatalf("keys create --json: %q: %v", out, err)
	}
	if hard {
		for _, l := range benchTenLimits {
			benchCLI(b, append(append([]string{"limits", "set"}, l...), "--mode", "hard", "--data", cfg.Data)...)
		}
		// The gateway caches the list of limits for up to a second.
		time.Sleep(1100 * time.Millisecond)
	}
	return s.URL() + "/anthropic", j.Key
}

// benchLimitsCall sends one Messages request with the virtual key and reads
// the whole response; with wantLimit, the response must carry the tightest
// limit's header (proof that the limits were reserved against).
func benchLimitsCall(client *http.Client, base, key string, wantLimit bool) error {
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", bytes.NewReader(benchLimitsBody))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("x-api-key", key)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Tokenmeter-Limit") != ""; got != wantLimit {
		return fmt.Errorf("x-tokenmeter-limit %q, want one: %v", resp.Header.Get("X-Tokenmeter-Limit"), wantLimit)
	}
	return nil
}

// BenchmarkGatewayLimits measures issue 4's performance target: calls
// through a virtual key on a gateway with no limits (NoLimits) and with the
// ten hard limits of benchTenLimits applying to every call (TenLimits).
//
//   - seq: one connection, sequential calls; reports p50-µs and p99-µs of the
//     call (send to last byte) besides the mean (ns/op).
//   - c64: 64 goroutines on one key; reports req/s.
//
// Both gateways run side by side on one fake-upstream, each on a fresh data
// directory; with -count every sub-benchmark runs that many times against
// the same two gateways, so compare the medians. With -v the benchmark also
// logs the differences of the last runs (TenLimits − NoLimits p50,
// TenLimits / NoLimits req/s). It is not run by plain go test:
//
//	go test -run '^$' -bench GatewayLimits -count 5 -benchtime 3000x ./cmd/tokenmeter
func BenchmarkGatewayLimits(b *testing.B) {
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	defer up.Close()
	type figures struct{ p50, rps float64 }
	got := map[string]*figures{}
	for _, mode := range []struct {
		name string
		hard bool
	}{{"NoLimits", false}, {"TenLimits", true}} {
		base, key := benchLimitsGateway(b, up.URL, mode.hard)
		f := &figures{}
		got[mode.name] = f
		b.Run(mode.name+"/seq", func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for range 200 { // warm-up: connection, caches, statements
				if err := benchLimitsCall(client, base, key, mode.hard); err != nil {
					b.Fatal(err)
				}
			}
			lats := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				if err := benchLimitsCall(client, base, key, mode.hard); err != nil {
					b.Fatal(err)
				}
				lats = append(lats, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lats)
			f.p50 = float64(lats[len(lats)/2].Nanoseconds()) / 1e3
			b.ReportMetric(f.p50, "p50-µs")
			b.ReportMetric(float64(lats[len(lats)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
		b.Run(mode.name+"/c64", func(b *testing.B) {
			const conns = 64
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				ferr error
			)
			work := make(chan struct{}, conns)
			b.ResetTimer()
			start := time.Now()
			for range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						if err := benchLimitsCall(client, base, key, mode.hard); err != nil {
							mu.Lock()
							ferr = err
							mu.Unlock()
						}
					}
				}()
			}
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if ferr != nil {
				b.Fatal(ferr)
			}
			f.rps = float64(b.N) / elapsed.Seconds()
			b.ReportMetric(f.rps, "req/s")
		})
	}
	no, ten := got["NoLimits"], got["TenLimits"]
	if no.p50 > 0 && ten.p50 > 0 && no.rps > 0 && ten.rps > 0 {
		b.Logf("ten hard limits vs none: p50 %+.0f µs (%.0f vs %.0f µs; target ≤ +50 µs), throughput %.1f %% (%.0f vs %.0f req/s; target ≥ 90 %%)",
			ten.p50-no.p50, ten.p50, no.p50, 100*ten.rps/no.rps, ten.rps, no.rps)
	}
}
