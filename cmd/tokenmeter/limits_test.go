package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/v2/option"
	openaisdk "github.com/openai/openai-go/v3"
	openaiopt "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// appendUsage appends completed proxied calls at now to the ledger in data.
func appendUsage(t *testing.T, data string, events ...tokenmeter.Event) {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(data, LedgerFile))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Append(context.Background(), events); err != nil {
		t.Fatal(err)
	}
}

func TestLimitsCLI(t *testing.T) {
	data := newLedger(t)
	if out, _, err := run(t, "limits", "list", "--json", "--data", data); err != nil || !strings.Contains(out, `"limits": []`) {
		t.Errorf("limits list of an empty ledger: %v %s", err, out)
	}
	for _, args := range [][]string{
		{"alice-day", "--scope", "key:alice", "--metric", "tokens", "--max", "1_000_000", "--window", "day", "--reset-at", "09:00", "--tz", "Europe/Berlin", "--mode", "hard"},
		{"web-cost", "--scope", "project:web", "--metric", "cost_usd", "--max", "2.50", "--window", "rolling:24h"},
		{"all-req", "--scope", "global", "--metric", "requests", "--max", "10", "--window", "5h-block"},
		{"sonnet-out", "--scope", "model:claude-sonnet-5-5", "--metric", "output_tokens", "--max", "100", "--window", "month", "--tz", "UTC"},
	} {
		out, stderr, err := run(t, append([]string{"limits", "set", "--data", data}, args...)...)
		if err != nil || !strings.Contains(out, "Set ") || !strings.Contains(out, "resets at") {
			t.Fatalf("limits set %s: %v %s %s", args, err, out, stderr)
		}
	}
	now := time.Now().UTC()
	a := storetest.Event("c1", now.Add(-time.Second), tokenmeter.Usage{InputTokens: 100, OutputTokens: 20, CacheReadTokens: 3, CacheWrite1hTokens: 4})
	a.Principal, a.Project, a.Cost = "key:alice", "web", 1_250_000
	b := storetest.Event("c2", now.Add(-time.Second), tokenmeter.Usage{InputTokens: 1, OutputTokens: 2})
	appendUsage(t, data, a, b)

	out, _, err := run(t, "limits", "list", "--json", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Limits []limitJSON }
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Limits) != 4 {
		t.Fatalf("limits list --json: %v\n%s", err, out)
	}
	want := map[string][3]float64{ // used, max, remaining
		"alice-day":  {127, 1_000_000, 1_000_000 - 127},
		"web-cost":   {1.25, 2.5, 1.25},
		"all-req":    {2, 10, 8},
		"sonnet-out": {22, 100, 78},
	}
	for _, l := range list.Limits {
		w := want[l.Name]
		if l.Used != w[0] || l.Max != w[1] || l.Remaining != w[2] {
			t.Errorf("limit %s: used %v, max %v, remaining %v; want %v", l.Name, l.Used, l.Max, l.Remaining, w)
		}
		start, err1 := time.Parse(time.RFC3339, l.WindowStart)
		reset, err2 := time.Parse(time.RFC3339, l.Reset)
		if err1 != nil || err2 != nil || !start.Before(now) || !reset.After(now) {
			t.Errorf("limit %s: window %s to %s does not hold now (%v)", l.Name, l.WindowStart, l.Reset, now)
		}
	}
	if l := list.Limits[0]; l.Name != "alice-day" || l.Window != "day 09:00 Europe/Berlin" || l.Mode != "hard" || l.Scope != "key:alice" ||
		!(strings.HasSuffix(l.Reset, "+01:00") || strings.HasSuffix(l.Reset, "+02:00")) || !strings.Contains(l.Reset, "T09:00:00") {
		t.Errorf("limits list: first limit %+v; want alice-day, day 09:00 Europe/Berlin, reset at 09:00 Berlin time", l)
	}
	if l := list.Limits[1]; l.Name != "all-req" || l.Window != "5h-block" || l.WindowStart != now.Add(-time.Second).Truncate(time.Hour).Format(time.RFC3339) {
		t.Errorf("5h-block limit %+v: want the block started by the calls (at the hour)", l)
	}

	out, _, err = run(t, "limits", "list", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "REMAINING") || !strings.Contains(lines[0], "RESET") ||
		!strings.Contains(out, "$1.25") || !strings.Contains(out, "999873") {
		t.Errorf("limits list:\n%s", out)
	}

	// set replaces a limit of the same name; delete removes it.
	if _, _, err := run(t, "limits", "set", "all-req", "--scope", "global", "--metric", "requests", "--max", "20", "--window", "hour", "--data", data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "limits", "delete", "web-cost", "--data", data); err != nil {
		t.Fatal(err)
	}
	out, _, _ = run(t, "limits", "list", "--json", "--data", data)
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Limits) != 3 || list.Limits[1].Max != 20 || list.Limits[1].Window != "hour "+localZone().String() {
		t.Errorf("after set and delete: %v\n%s", err, out)
	}
	if _, _, err := run(t, "limits", "delete", "web-cost", "--data", data); err == nil || !strings.Contains(message(err), `no limit named "web-cost"`) {
		t.Errorf("limits delete of a deleted limit: %v", err)
	}
}

// TestLimitsSetErrors: every invalid limits set gets a one-line error that
// names the bad flag (or argument), and nothing is stored.
func TestLimitsSetErrors(t *testing.T) {
	data := newLedger(t)
	ok := []string{"--scope", "global", "--metric", "tokens", "--max", "100", "--window", "day"}
	with := func(flag, value string) []string {
		out := []string{"limits", "set", "x", "--data", data}
		for i := 0; i < len(ok); i += 2 {
			if ok[i] != flag {
				out = append(out, ok[i], ok[i+1])
			}
		}
		if value != "\x00" {
			out = append(out, flag, value)
		}
		return out
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"limits"}, "limits: name one of set, list or delete"},
		{[]string{"limits", "show"}, `limits: unknown command "show"`},
		{append(with("--window", "day"), "--reset-at", "23:50"), `limits set: --reset-at: "23:50" must be on a quarter hour`},
		{[]string{"limits", "set", "--scope", "global"}, "limits set: name the limit"},
		{[]string{"limits", "set", "a b", "--scope", "global"}, `limits set: limit name "a b" must be`},
		{[]string{"limits", "set", "x", "y"}, `limits set: unexpected argument "y"`},
		{[]string{"limits", "set", "x", "--scpe", "global"}, "limits set: unknown flag --scpe (did you mean --scope?)"},
		{[]string{"limits", "set", "x", "--max"}, "limits set: flag needs an argument: -max"},
		{with("--scope", "\x00"), "limits set: --scope: missing"},
		{with("--scope", "team:x"), `limits set: --scope: "team:x" is not global, key:NAME, project:NAME or model:NAME`},
		{with("--scope", "key:"), `limits set: --scope: "key:" names no key`},
		{with("--scope", "key:a b"), `limits set: --scope: key name "a b" must be`},
		{with("--scope", "project:a\tb"), "limits set: --scope: project name must be"},
		{with("--scope", "global:x"), `limits set: --scope: "global:x" is not global`},
		{with("--metric", "\x00"), "limits set: --metric: missing"},
		{with("--metric", "bytes"), `limits set: --metric: unknown metric "bytes"`},
		{with("--max", "\x00"), "limits set: --max: missing"},
		{with("--max", "0"), "limits set: --max: 0 must be positive"},
		{with("--max", "-5"), "limits set: --max: -5 must be positive"},
		{with("--max", "1.5"), `limits set: --max: "1.5" is not a whole number of tokens`},
		{with("--max", "lots"), `limits set: --max: "lots" is not a whole number of tokens`},
		{with("--max", "99999999999999999999"), `limits set: --max: "99999999999999999999" is not a whole number`},
		{[]string{"limits", "set", "x", "--data", data, "--scope", "global", "--metric", "cost_usd", "--window", "day", "--max", "0.0000001"}, "limits set: --max: \"0.0000001\" has more than 6 decimals"},
		{[]string{"limits", "set", "x", "--data", data, "--scope", "global", "--metric", "cost_usd", "--window", "day", "--max", "ten"}, `limits set: --max: "ten" is not an amount of dollars`},
		{[]string{"limits", "set", "x", "--data", data, "--scope", "global", "--metric", "cost_usd", "--window", "day", "--max", "1e3"}, `limits set: --max: "1e3" is not an amount of dollars`},
		{[]string{"limits", "set", "x", "--data", data, "--scope", "global", "--metric", "cost_usd", "--window", "day", "--max", "-1"}, `limits set: --max: "-1" must be a positive amount`},
		{with("--window", "\x00"), "limits set: --window: missing"},
		{with("--window", "fortnight"), `limits set: --window: unknown window "fortnight"`},
		{with("--window", "rolling"), `limits set: --window: "rolling" needs a duration`},
		{with("--window", "rolling:10s"), "limits set: --window:"},
		{append(with("--window", "hour"), "--reset-at", "09:00"), "limits set: --reset-at: only day, week and month windows"},
		{append(with("--window", "5h-block"), "--tz", "UTC"), "limits set: --tz: 5h-block windows do not depend on a time zone"},
		{append(with("--window", "day"), "--reset-at", "25:00"), "limits set: --reset-at:"},
		{append(with("--window", "day"), "--reset-at", "mon 09:00"), "limits set: --reset-at: \"mon 09:00\" names a weekday"},
		{append(with("--window", "day"), "--tz", "Mars/Base"), "limits set: --tz:"},
		{append(with("--mode", "\x00"), "--mode", "strict"), `limits set: --mode: unknown mode "strict" (want soft or hard)`},
		{[]string{"limits", "delete"}, "limits delete: name the limit"},
		{[]string{"limits", "delete", "a", "b"}, `limits delete: unexpected argument "b"`},
		{[]string{"limits", "list", "x"}, `limits list: unexpected argument "x"`},
	} {
		_, _, err := run(t, tt.args...)
		if err == nil {
			t.Errorf("%q: no error, want %q", tt.args, tt.want)
			continue
		}
		msg := message(err)
		if !strings.HasPrefix(msg, tt.want) || strings.Contains(msg, "\n") {
			t.Errorf("%q: error %q, want one line starting %q", tt.args, msg, tt.want)
		}
	}
	if out, _, err := run(t, "limits", "list", "--json", "--data", data); err != nil || !strings.Contains(out, `"limits": []`) {
		t.Errorf("a refused limits set stored something: %v %s", err, out)
	}
}

// refusal is what a client saw of a 429.
type refusal struct {
	status     int
	retryAfter string
	header     http.Header
}

// TestHardLimitConcurrency: 200 concurrent streaming requests through one
// virtual key against a hard limit, in tokens (Anthropic SDK) and in money
// (OpenAI SDK). The ledger stays within the limit, every refused request
// got 429 in the provider's shape with the retry-after of the window's
// reset, and every admitted request completed.
func TestHardLimitConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name   string
		metric string
		max    string
		limit  func(tokenmeter.Event) int64
		call   func(gw *gateway, secret string) (id string, ref *refusal, err error)
	}{
		{"tokens", "tokens", "6000", func(ev tokenmeter.Event) int64 { return ev.Usage.TotalTokens() }, anthropicStream},
		{"cost", "cost_usd", "0.05", func(ev tokenmeter.Event) int64 { return int64(ev.Cost) }, openaiStream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, _ := keysGateway(t, nil, nil)
			secret := createKey(t, gw.Config.Data, "--name", "alice")
			// A day window that resets about 12 hours from now, so that no
			// reset falls within the test, whenever it runs.
			begin := time.Now().UTC()
			reset := begin.Add(12 * time.Hour).Truncate(15 * time.Minute)
			if _, stderr, err := run(t, "limits", "set", "cap", "--scope", "key:alice", "--metric", tc.metric, "--max", tc.max,
				"--window", "day", "--reset-at", reset.Format("15:04"), "--tz", "UTC", "--mode", "hard", "--data", gw.Config.Data); err != nil {
				t.Fatalf("limits set: %v %s", err, stderr)
			}
			max, _ := limits.ParseMax(tokenmeter.LimitMetric(tc.metric), tc.max)
			const n = 200
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				admitted []string
				refused  []refusal
			)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id, ref, err := tc.call(gw, secret)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case ref != nil:
						refused = append(refused, *ref)
					case err != nil:
						t.Errorf("request failed without a 429: %v", err)
					default:
						admitted = append(admitted, id)
					}
				}()
			}
			wg.Wait()
			if len(admitted) == 0 || len(refused) == 0 || len(admitted)+len(refused) != n {
				t.Fatalf("%d admitted, %d refused of %d; want some of each", len(admitted), len(refused), n)
			}
			end := time.Now().UTC()
			for _, r := range refused {
				// Seconds until the reset, from some time between begin and end,
				// rounded up.
				secs, err := strconv.Atoi(r.retryAfter)
				lo, hi := int(reset.Sub(end).Seconds()), int(reset.Sub(begin).Seconds())+1
				if r.status != http.StatusTooManyRequests || err != nil || secs < lo || secs > hi {
					t.Errorf("refusal: status %d, retry-after %q; want 429 and %d to %d s (until the window's reset)", r.status, r.retryAfter, lo, hi)
				}
				if r.header.Get("X-Tokenmeter-Limit") != "cap" || r.header.Get("X-Tokenmeter-Reset") != reset.Format(time.RFC3339) ||
					r.header.Get("X-Tokenmeter-Remaining") == "" {
					t.Errorf("refusal headers: limit %q, reset %q, remaining %q; want cap, %s and a figure",
						r.header.Get("X-Tokenmeter-Limit"), r.header.Get("X-Tokenmeter-Reset"), r.header.Get("X-Tokenmeter-Remaining"), reset.Format(time.RFC3339))
				}
			}
			got := gw.completed(t)
			var total int64
			for _, ev := range got {
				total += tc.limit(ev)
			}
			for _, id := range admitted {
				if ev, ok := got[id]; !ok || ev.Outcome != tokenmeter.OutcomeOK || !ev.UsageKnown {
					t.Errorf("admitted call %s: %+v, want completed ok with its usage", id, ev)
				}
			}
			if len(got) != len(admitted) {
				t.Errorf("ledger holds %d calls, want the %d admitted (refusals are not forwarded)", len(got), len(admitted))
			}
			if total > max || total == 0 {
				t.Errorf("ledger total %d, limit %d", total, max)
			}
			t.Logf("%s: %d admitted, %d refused, ledger total %d of %d", tc.name, len(admitted), len(refused), total, max)
			if open := gw.store.OpenReservations(); open != 0 {
				t.Errorf("%d reservations left open, want none", open)
			}
		})
	}
}

// anthropicStream sends one streaming Messages request with the Anthropic
// SDK (no retries) and reads it to the end.
func anthropicStream(gw *gateway, secret string) (string, *refusal, error) {
	ac := anthropicsdk.NewClient(anthropicopt.WithBaseURL(gw.URL()+"/anthropic"), anthropicopt.WithAPIKey(secret), anthropicopt.WithMaxRetries(0))
	params := anthropicsdk.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 100,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("count to a hundred [[fake output=100 delay=1ms]]"))}}
	var raw *http.Response
	stream := ac.Messages.NewStreaming(context.Background(), params, anthropicopt.WithResponseInto(&raw))
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		var ae *anthropicsdk.Error
		if errors.As(err, &ae) && ae.StatusCode == http.StatusTooManyRequests {
			if ae.Type() != "rate_limit_error" {
				return "", nil, fmt.Errorf("429 of type %q, want rate_limit_error", ae.Type())
			}
			return "", &refusal{ae.StatusCode, ae.Response.Header.Get("Retry-After"), ae.Response.Header}, nil
		}
		return "", nil, err
	}
	if raw.Header.Get("X-Tokenmeter-Limit") != "cap" || raw.Header.Get("X-Tokenmeter-Remaining") == "" {
		return "", nil, fmt.Errorf("admitted response lacks the limit headers: %v", raw.Header)
	}
	return raw.Header.Get(HeaderRequestIDForTest), nil, nil
}

// openaiStream sends one streaming chat completion with the OpenAI SDK
// (no retries) and reads it to the end.
func openaiStream(gw *gateway, secret string) (string, *refusal, error) {
	oc := openaisdk.NewClient(openaiopt.WithBaseURL(gw.URL()+"/openai/v1"), openaiopt.WithAPIKey(secret), openaiopt.WithMaxRetries(0))
	chat := openaisdk.ChatCompletionNewParams{Model: "gpt-5", MaxCompletionTokens: openaisdk.Int(400),
		Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("count to four hundred [[fake output=400 delay=1ms]]")}}
	var raw *http.Response
	stream := oc.Chat.Completions.NewStreaming(context.Background(), chat, openaiopt.WithResponseInto(&raw))
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		var oe *openaisdk.Error
		if errors.As(err, &oe) && oe.StatusCode == http.StatusTooManyRequests {
			if oe.Code != "rate_limit_exceeded" {
				return "", nil, fmt.Errorf("429 with code %q, want rate_limit_exceeded", oe.Code)
			}
			return "", &refusal{oe.StatusCode, oe.Response.Header.Get("Retry-After"), oe.Response.Header}, nil
		}
		return "", nil, err
	}
	if raw.Header.Get("X-Tokenmeter-Limit") != "cap" {
		return "", nil, fmt.Errorf("admitted response lacks the limit headers: %v", raw.Header)
	}
	return raw.Header.Get(HeaderRequestIDForTest), nil, nil
}

// TestReservationsReleasedOnRestart: reservations left by a crashed gateway
// are released at the next start, and its open call is charged as outcome
// unknown; the limit then admits what the ledger allows.
func TestReservationsReleasedOnRestart(t *testing.T) {
	ctx := context.Background()
	data := newLedger(t)
	secret := createKey(t, data, "--name", "alice")
	if _, stderr, err := run(t, "limits", "set", "two", "--scope", "key:alice", "--metric", "requests", "--max", "2",
		"--window", "rolling:24h", "--mode", "hard", "--data", data); err != nil {
		t.Fatalf("limits set: %v %s", err, stderr)
	}
	db := sqlite.NewDB(filepath.Join(data, LedgerFile))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	lims, _ := db.Limits(ctx)
	checks := []tokenmeter.LimitCheck{{Limit: lims[0], Since: time.Now().Add(-24 * time.Hour)}}
	// A crashed process: one call started and reserved, one reserved only.
	for _, key := range []string{"crashed", "ghost"} {
		r := tokenmeter.Reservation{RequestKey: key, Instance: "gone", Time: time.Now(), Principal: "key:alice"}
		if _, ok, err := db.Reserve(ctx, r, checks); err != nil || !ok {
			t.Fatalf("Reserve(%s) = %v, %v", key, ok, err)
		}
	}
	started := storetest.Event("crashed", time.Now(), tokenmeter.Usage{})
	started.Kind, started.Key, started.Principal, started.Instance = tokenmeter.KindStarted, tokenmeter.EventKey("crashed", tokenmeter.KindStarted), "key:alice", "gone"
	if _, err := db.Append(ctx, []tokenmeter.Event{started}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	gw, _ := keysGateway(t, nil, func(s *Serve) { s.Config.Data = data })
	// The recovered call counts 1 of 2; the reservations are gone, so one
	// more request is admitted and the next refused.
	resp, body := callWith(t, gw, "anthropic", secret, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first request after restart: %d %s; want 200", resp.StatusCode, body)
	}
	gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	resp, body = callWith(t, gw, "anthropic", secret, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "rate_limit_error") {
		t.Errorf("second request after restart: %d %s; want 429 rate_limit_error with retry-after", resp.StatusCode, body)
	}
	if ev := gw.completed(t)["crashed"]; ev.Outcome != tokenmeter.OutcomeUnknown {
		t.Errorf("crashed call: %+v, want completed with outcome unknown", ev)
	}
}

// BenchmarkHardLimits compares calls through the gateway with no limits
// and with ten hard limits that apply to every call (one reservation
// transaction before forwarding). -cpu 1 shows the added latency, -cpu 8
// the throughput on one credential.
func BenchmarkHardLimits(b *testing.B) {
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	defer up.Close()
	for _, n := range []int{0, 10} {
		b.Run(fmt.Sprintf("limits-%d", n), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.Data = "127.0.0.1:0", b.TempDir()
			cfg.Upstreams = map[string]string{"anthropic": up.URL}
			s := &Serve{Config: cfg, Log: slog.New(slog.DiscardHandler)}
			if err := s.Open(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer s.Close(b.Context())
			windows := []string{"hour UTC", "day 00:00 UTC", "week mon 00:00 UTC", "month 00:00 UTC", "rolling:1h", "rolling:24h", "5h-block"}
			metrics := []tokenmeter.LimitMetric{tokenmeter.MetricTokens, tokenmeter.MetricRequests, tokenmeter.MetricCost, tokenmeter.MetricOutputTokens}
			for i := range n {
				l := tokenmeter.Limit{Name: fmt.Sprintf("l%d", i), Scope: "global", Metric: metrics[i%len(metrics)], Max: 1 << 50,
					Window: windows[i%len(windows)], Mode: tokenmeter.LimitHard, Created: time.Now()}
				if err := s.store.SetLimit(b.Context(), l); err != nil {
					b.Fatal(err)
				}
			}
			benchCalls(b, s.URL()+"/anthropic", false)
		})
	}
}

// TestHardLimitCacheWriteCost: a money limit holds when the input turns
// out to be 1-hour cache writes, which cost twice the input rate. Four
// concurrent calls, each writing about as many tokens to the cache as its
// body can hold: priced as plain input their worst cases would all fit
// under the limit and their actual cost would not; priced at the cache
// write rate only two are admitted.
func TestHardLimitCacheWriteCost(t *testing.T) {
	gw, _ := keysGateway(t, nil, nil)
	secret := createKey(t, gw.Config.Data, "--name", "alice")
	if _, stderr, err := run(t, "limits", "set", "cap", "--scope", "key:alice", "--metric", "cost_usd", "--max", "0.013",
		"--window", "rolling:24h", "--mode", "hard", "--data", gw.Config.Data); err != nil {
		t.Fatalf("limits set: %v %s", err, stderr)
	}
	ac := anthropicsdk.NewClient(anthropicopt.WithBaseURL(gw.URL()+"/anthropic"), anthropicopt.WithAPIKey(secret), anthropicopt.WithMaxRetries(0))
	text := strings.Repeat("a", 3000) + " [[fake input=1 cache_write_1h=1000 output=10 ttfb=500ms]]"
	params := anthropicsdk.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 100,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock(text))}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, refused := 0, 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := ac.Messages.New(context.Background(), params)
			var ae *anthropicsdk.Error
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				admitted++
			case errors.As(err, &ae) && ae.StatusCode == http.StatusTooManyRequests:
				refused++
			default:
				t.Errorf("call: %v", err)
			}
		}()
	}
	wg.Wait()
	var total tokenmeter.Micros
	for _, ev := range gw.completed(t) {
		if ev.Usage.CacheWrite1hTokens != 1000 {
			t.Errorf("call recorded with %+v; want the fake's 1000 cache-write tokens", ev.Usage)
		}
		total += ev.Cost
	}
	if admitted != 2 || refused != 2 || total > 13_000 {
		t.Errorf("%d admitted, %d refused, ledger cost %d µ$; want 2 and 2, within the limit of 13000 µ$", admitted, refused, total)
	}
}

// TestHardLimitBoundsOutput: under a hard limit, an OpenAI request that
// sets no output maximum is forwarded with the one its reservation
// assumed (default_max_output), so the model cannot write more than was
// reserved; with the bound it sets itself, or without a hard limit, the
// request goes upstream unchanged.
func TestHardLimitBoundsOutput(t *testing.T) {
	gw, _ := keysGateway(t, nil, func(s *Serve) { s.Config.DefaultMaxOutput = 300 })
	capped := createKey(t, gw.Config.Data, "--name", "capped")
	free := createKey(t, gw.Config.Data, "--name", "free")
	if _, stderr, err := run(t, "limits", "set", "cap", "--scope", "key:capped", "--metric", "tokens", "--max", "1000000",
		"--window", "day", "--mode", "hard", "--data", gw.Config.Data); err != nil {
		t.Fatalf("limits set: %v %s", err, stderr)
	}
	for _, tc := range []struct {
		name, key, api string
		bound          int64 // the request's own maximum; 0 for none
		want           int64 // output tokens recorded
	}{
		{"chat under a hard limit", capped, "chat", 0, 300},
		{"responses under a hard limit", capped, "responses", 0, 300},
		{"chat with its own bound", capped, "chat", 700, 700},
		{"chat without a hard limit", free, "chat", 0, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oc := openaisdk.NewClient(openaiopt.WithBaseURL(gw.URL()+"/openai/v1"), openaiopt.WithAPIKey(tc.key), openaiopt.WithMaxRetries(0))
			prompt := "write [[fake output=1000]]"
			var raw *http.Response
			into := openaiopt.WithResponseInto(&raw)
			if tc.api == "chat" {
				params := openaisdk.ChatCompletionNewParams{Model: "gpt-4o", Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage(prompt)}}
				if tc.bound > 0 {
					params.MaxCompletionTokens = openaisdk.Int(tc.bound)
				}
				r, err := oc.Chat.Completions.New(context.Background(), params, into)
				if err != nil {
					t.Fatal(err)
				}
				if r.Usage.CompletionTokens != tc.want {
					t.Errorf("upstream wrote %d output tokens; want %d", r.Usage.CompletionTokens, tc.want)
				}
			} else {
				r, err := oc.Responses.New(context.Background(), responses.ResponseNewParams{Model: "gpt-5",
					Input: responses.ResponseNewParamsInputUnion{OfString: openaisdk.String(prompt)}}, into)
				if err != nil {
					t.Fatal(err)
				}
				if r.Usage.OutputTokens != tc.want {
					t.Errorf("upstream wrote %d output tokens; want %d", r.Usage.OutputTokens, tc.want)
				}
			}
			if ev, ok := gw.completed(t)[raw.Header.Get(HeaderRequestIDForTest)]; !ok || ev.Usage.OutputTokens != tc.want {
				t.Errorf("ledger: %+v (found %v); want %d output tokens", ev.Usage, ok, tc.want)
			}
		})
	}
}

// TestHardLimitRefusalExplains: a small request refused by a hard limit is
// told why: what its worst case reserved (32,000 output tokens when it sets
// no bound), what the window has left, and how to ask for less.
func TestHardLimitRefusalExplains(t *testing.T) {
	gw, _ := keysGateway(t, nil, nil)
	if _, stderr, err := run(t, "limits", "set", "small", "--scope", "global", "--metric", "tokens", "--max", "10000",
		"--window", "day", "--mode", "hard", "--data", gw.Config.Data); err != nil {
		t.Fatalf("limits set: %v %s", err, stderr)
	}
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	resp, b := post(t, gw.URL()+"/openai/v1/chat/completions", map[string]string{"Authorization": "Bearer sk-pass-through-0123456789"}, body)
	msg := string(b)
	for _, want := range []string{
		`hard limit \"small\" (tokens, day`, "would be exceeded by this request: it reserves its worst case, 320",
		"output up to 32000 tokens", "and the window has 10000 tokens left",
		"the request sets no output bound, so the default of 32000 tokens was reserved: set max_tokens",
	} {
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(msg, want) {
			t.Errorf("429 does not say %q: %d %s", want, resp.StatusCode, msg)
		}
	}
	resp, b = post(t, gw.URL()+"/openai/v1/chat/completions", map[string]string{"Authorization": "Bearer sk-pass-through-0123456789"},
		`{"model":"gpt-4o","max_completion_tokens":100,"messages":[{"role":"user","content":"hi [[fake output=5]]"}]}`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with max_completion_tokens 100: %d %s", resp.StatusCode, b)
	}
}
