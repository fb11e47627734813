package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/admin"
	"github.com/tokenmeter/tokenmeter/internal/counters"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// manualClock is a clock tests move by hand; the gateway and the fake
// upstream share it.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// counterGateway runs a gateway on clk in front of a fake upstream playing
// scenario.
func counterGateway(t *testing.T, clk *manualClock, scenario string) *gateway {
	t.Helper()
	fake := fakeupstream.New(fakeupstream.Options{Now: clk.Now, Scenario: scenario})
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	return startGateway(t, up.URL, func(s *Serve) {
		s.Now = clk.Now
		s.Config.AdminToken = testAdminToken
	})
}

const counterKey = "sk-ant-api03-counter-test-0123456789-WXYZ"

// send makes one Anthropic call through gw with the test credential.
func send(t *testing.T, gw *gateway, directives string) {
	t.Helper()
	resp, body := post(t, gw.URL()+"/anthropic/v1/messages", map[string]string{"X-Api-Key": counterKey, "Anthropic-Version": "2023-06-01"},
		`{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hello [[fake `+directives+`]]"}]}`)
	if resp.StatusCode != 200 && !strings.Contains(directives, "status=") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

func syncCounters(t *testing.T, gw *gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gw.counters.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestThrottlingEvidence: on real time, a burst of five 429s is one
// throttling anomaly whose ledger span holds all five calls (issue 19: the
// span ended at the last call's start, before it was recorded, dated by
// its end, and showed four).
func TestThrottlingEvidence(t *testing.T) {
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	t.Cleanup(up.Close)
	gw := startGateway(t, up.URL, nil)
	for range 5 {
		send(t, gw, "status=429 retry_after=30")
	}
	// Every call is recorded by the time its response is read in full.
	syncCounters(t, gw)
	list, err := gw.store.Anomalies(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Kind != tokenmeter.AnomalyThrottling {
		t.Fatalf("anomalies %+v; want one throttling anomaly", list)
	}
	var ev counters.Evidence
	if err := json.Unmarshal(list[0].Evidence, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Facts["responses"] != float64(5) || ev.Ledger == nil || ev.Ledger.Requests != 5 {
		t.Errorf("evidence: %v responses, ledger %+v; want 5 and 5 requests", ev.Facts["responses"], ev.Ledger)
	}
}

// TestCounterAnomaliesEndToEnd drives traffic through the gateway to the
// fake upstream's "all" scenario: a drift in the minute [T0+2m, T0+3m), a
// limit change at T0+10m, the 5-hour reset moved at T0+1h, an early reset
// of the 5-hour window at T0+2h, then a burst of 429s. Each is found once,
// with its evidence, and nothing else is.
func TestCounterAnomaliesEndToEnd(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 10, 0, time.UTC)
	clk := &manualClock{t: t0}
	gw := counterGateway(t, clk, fakeupstream.ScenarioAll)
	cred := tokenmeter.CredentialID(counterKey)

	// Every 20 s for six minutes (every per-minute window seen whole), then
	// every 5 minutes until T0+2h10m.
	for clk.Now().Before(t0.Add(6 * time.Minute)) {
		send(t, gw, "input=10000 output=10")
		clk.Advance(20 * time.Second)
	}
	for clk.Now().Before(t0.Add(2*time.Hour + 10*time.Minute)) {
		send(t, gw, "input=10000 output=10")
		clk.Advance(5 * time.Minute)
	}
	burst := clk.Now()
	for range 6 {
		send(t, gw, "status=429 retry_after=30")
		clk.Advance(time.Second)
	}
	syncCounters(t, gw)

	list, err := gw.store.Anomalies(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]tokenmeter.Anomaly{}
	for _, a := range list {
		byKind[a.Kind] = append(byKind[a.Kind], a)
		t.Logf("anomaly %d %s: %s", a.ID, a.Kind, a.Summary)
		if a.Credential != cred {
			t.Errorf("anomaly %d: credential %q, want %q", a.ID, a.Credential, cred)
		}
		if strings.Contains(string(a.Evidence), counterKey) || strings.Contains(a.Summary, counterKey) {
			t.Errorf("anomaly %d carries the credential", a.ID)
		}
	}
	want := map[string]string{
		tokenmeter.AnomalyEarlyReset:   "unified-5h",
		tokenmeter.AnomalyResetMoved:   "unified-5h",
		tokenmeter.AnomalyDrift:        "anthropic-ratelimit-tokens",
		tokenmeter.AnomalyLimitChanged: "anthropic-ratelimit-requests",
		tokenmeter.AnomalyThrottling:   "",
	}
	for kind, counter := range want {
		if got := byKind[kind]; len(got) != 1 || got[0].Counter != counter {
			t.Errorf("%s: %d anomalies %+v; want exactly one on %q", kind, len(got), got, counter)
		}
	}
	if len(list) != len(want) {
		t.Errorf("%d anomalies, want %d", len(list), len(want))
	}
	evidence := func(kind string) counters.Evidence {
		var ev counters.Evidence
		if as := byKind[kind]; len(as) == 1 {
			if err := json.Unmarshal(as[0].Evidence, &ev); err != nil {
				t.Fatalf("%s evidence: %v", kind, err)
			}
		}
		return ev
	}

	// The early reset: at the first call at or after T0+2h (12:01:10, the
	// calls are 5 minutes apart from 10:06:10), the 5-hour window (started
	// 10:00, reset moved from 15:00 to 16:00) went back to nearly nothing.
	early := evidence(tokenmeter.AnomalyEarlyReset)
	hour := t0.Truncate(time.Hour)
	at := t0.Add(2*time.Hour + time.Minute)
	if a := byKind[tokenmeter.AnomalyEarlyReset]; len(a) == 1 {
		if !a[0].Detected.Equal(at) || !a[0].Start.Equal(at.Add(-5*time.Minute)) {
			t.Errorf("early reset detected %s, start %s; want %s and %s", a[0].Detected, a[0].Start, at, at.Add(-5*time.Minute))
		}
	}
	if early.AdvertisedReset == nil || !early.AdvertisedReset.Equal(hour.Add(6*time.Hour)) {
		t.Errorf("early reset: advertised reset %v, want %s", early.AdvertisedReset, hour.Add(6*time.Hour))
	}
	if n := len(early.Before); n == 0 || early.Before[n-1].UtilizationBP == nil || *early.Before[n-1].UtilizationBP < 3000 {
		t.Errorf("early reset: samples before %+v, want the last at 30%% or more", early.Before)
	}
	if len(early.After) != 1 || early.After[0].UtilizationBP == nil || *early.After[0].UtilizationBP > 200 ||
		early.After[0].Reset == nil || !early.After[0].Reset.Equal(hour.Add(7*time.Hour)) {
		t.Errorf("early reset: sample after %+v, want utilization near 0 and the new reset %s", early.After, hour.Add(7*time.Hour))
	}
	if early.Ledger == nil || early.Ledger.Requests == 0 || len(early.Ledger.Principals) != 1 || early.Ledger.Principals[0] != cred {
		t.Errorf("early reset: ledger %+v, want the credential's calls", early.Ledger)
	}

	// The moved reset: 15:00 became 16:00 at the first call after T0+1h.
	moved := evidence(tokenmeter.AnomalyResetMoved)
	if moved.Facts["moved_seconds"] != float64(3600) || len(moved.After) != 1 || !moved.After[0].Time.Equal(t0.Add(time.Hour+time.Minute)) {
		t.Errorf("reset moved: facts %v, after %+v", moved.Facts, moved.After)
	}

	// The drift: the window 10:02-10:03 held three calls of 10,000+ tokens
	// and the provider charged 60,000 phantom tokens more.
	drift := evidence(tokenmeter.AnomalyDrift)
	if drift.ProviderCount == nil || drift.LedgerCount == nil || *drift.ProviderCount-*drift.LedgerCount != 3*fakeupstream.DriftPhantomTokens {
		t.Errorf("drift: provider %v, ledger %v; want a difference of %d", drift.ProviderCount, drift.LedgerCount, 3*fakeupstream.DriftPhantomTokens)
	}
	if a := byKind[tokenmeter.AnomalyDrift]; len(a) == 1 && (!a[0].Start.Equal(hour.Add(2*time.Minute)) || !a[0].End.Equal(hour.Add(3*time.Minute))) {
		t.Errorf("drift span %s to %s, want 10:02 to 10:03", a[0].Start, a[0].End)
	}
	if drift.Ledger == nil || drift.Ledger.Requests != 3 {
		t.Errorf("drift: ledger %+v, want 3 requests", drift.Ledger)
	}
	if a := byKind[tokenmeter.AnomalyThrottling]; len(a) == 1 && !a[0].Start.Equal(burst) {
		t.Errorf("throttling starts %s, want %s", a[0].Start, burst)
	}

	// The credential is known by its hash and hint only.
	creds, err := gw.store.Credentials(context.Background())
	if err != nil || len(creds) != 1 || creds[0].ID != cred || creds[0].Hint != "sk-ant-api03...WXYZ" || creds[0].Provider != "anthropic" ||
		!creds[0].FirstSeen.Equal(t0) {
		t.Errorf("Credentials = %+v, %v", creds, err)
	}

	// The CLI and the admin API show the same.
	out, _, err := run(t, "anomalies", "--data", gw.Config.Data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var cli struct{ Anomalies []admin.AnomalyJSON }
	if err := json.Unmarshal([]byte(out), &cli); err != nil || len(cli.Anomalies) != len(list) {
		t.Errorf("anomalies --json: %v\n%s", err, out)
	}
	// --server: the same list through the admin API.
	t.Setenv(EnvAdminToken, testAdminToken)
	remoteOut, _, err := run(t, "anomalies", "--server", gw.URL(), "--json")
	if err != nil || remoteOut != out {
		t.Errorf("anomalies --server --json differs from --data (%v):\n%s\n%s", err, remoteOut, out)
	}
	id := byKind[tokenmeter.AnomalyEarlyReset][0].ID
	remoteShow, _, err := run(t, "anomalies", "show", fmt.Sprint(id), "--server", gw.URL())
	localShow, _, _ := run(t, "anomalies", "show", fmt.Sprint(id), "--data", gw.Config.Data)
	if err != nil || remoteShow != localShow {
		t.Errorf("anomalies show --server differs from --data (%v):\n%s\n%s", err, remoteShow, localShow)
	}
	out, _, err = run(t, "anomalies", "show", fmt.Sprint(id), "--data", gw.Config.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"early_reset", "Advertised reset  " + hour.Add(6*time.Hour).Format(time.RFC3339), "Samples before", "Samples after", "Ledger,"} {
		if !strings.Contains(out, s) {
			t.Errorf("anomalies show lacks %q:\n%s", s, out)
		}
	}
	resp, body := apiCall(t, "GET", gw.URL()+fmt.Sprintf("/api/anomalies/%d", id), bearer(testAdminToken), "")
	var one admin.AnomalyJSON
	if resp.StatusCode != 200 || json.Unmarshal(body, &one) != nil || one.Kind != tokenmeter.AnomalyEarlyReset || len(one.Evidence) == 0 {
		t.Errorf("GET /api/anomalies/%d: %d %s", id, resp.StatusCode, body)
	}
	resp, body = apiCall(t, "GET", gw.URL()+"/api/counters?counter=unified-5h", bearer(testAdminToken), "")
	var series struct{ Samples []counters.SampleView }
	if resp.StatusCode != 200 || json.Unmarshal(body, &series) != nil || len(series.Samples) < 10 {
		t.Errorf("GET /api/counters: %d %s", resp.StatusCode, body)
	}
	resp, body = apiCall(t, "GET", gw.URL()+"/api/anomalies/0", bearer(testAdminToken), "")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /api/anomalies/0: %d %s", resp.StatusCode, body)
	}
}

// TestCounterSteadyNoFalseAlarm: the steady scenario over many per-minute
// windows and two 5-hour windows (resets at the advertised time, the
// 7-day window sliding by the hour) raises nothing.
func TestCounterSteadyNoFalseAlarm(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 8, 0, 10, 0, time.UTC)
	clk := &manualClock{t: t0}
	gw := counterGateway(t, clk, fakeupstream.ScenarioSteady)
	for i := 0; clk.Now().Before(t0.Add(12 * time.Hour)); i++ {
		send(t, gw, fmt.Sprintf("input=%d output=10", 5000+i%3*1000))
		if i%20 < 15 {
			clk.Advance(15 * time.Second) // whole per-minute windows: drift is judged
		} else {
			clk.Advance(10 * time.Minute)
		}
	}
	syncCounters(t, gw)
	list, err := gw.store.Anomalies(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		t.Errorf("false alarm %d %s: %s", a.ID, a.Kind, a.Summary)
	}
	samples, err := gw.store.Samples(context.Background(), tokenmeter.SampleQuery{Counter: "unified-5h"})
	if err != nil || len(samples) == 0 {
		t.Fatalf("samples %d, %v", len(samples), err)
	}
}

// TestStatuslineRecordsRateLimits: the rate_limits Claude Code hands its
// status line become samples of the unified-5h and unified-7d series (in
// the ledger of a running gateway), compacted, and a fall before the
// advertised reset is an early-reset anomaly.
func TestStatuslineRecordsRateLimits(t *testing.T) {
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, nil)
	reset := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	line := func(pct5h float64, reset5h time.Time) {
		t.Helper()
		hook := fmt.Sprintf(`{"session_id":"s1","model":{"id":"claude-sonnet-4-5","display_name":"Sonnet"},
			"rate_limits":{"five_hour":{"used_percentage":%g,"resets_at":%d},"seven_day":{"used_percentage":12,"resets_at":"%s"}}}`,
			pct5h, reset5h.Unix(), reset.Add(72*time.Hour).Format(time.RFC3339))
		var out, errb strings.Builder
		if err := Run(context.Background(), []string{"statusline", "--data", gw.Config.Data}, strings.NewReader(hook), &out, &errb); err != nil || errb.Len() > 0 {
			t.Fatalf("statusline: %v, stderr %q", err, errb.String())
		}
		if out.Len() == 0 {
			t.Fatal("statusline printed nothing")
		}
	}
	line(40, reset)
	line(40, reset) // unchanged: not stored again
	line(41.5, reset)
	line(2, reset.Add(5*time.Hour))
	ctx := context.Background()
	five, err := gw.store.Samples(ctx, tokenmeter.SampleQuery{Counter: "unified-5h"})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, s := range five {
		got = append(got, s.Utilization)
		if s.Source != tokenmeter.SampleStatusline || s.Credential != "" || s.Provider != "anthropic" {
			t.Errorf("sample %+v", s)
		}
	}
	if fmt.Sprint(got) != "[4000 4150 200]" {
		t.Errorf("unified-5h utilizations stored %v, want [4000 4150 200]", got)
	}
	seven, _ := gw.store.Samples(ctx, tokenmeter.SampleQuery{Counter: "unified-7d"})
	if len(seven) != 1 || seven[0].Utilization != 1200 || !seven[0].Reset.Equal(reset.Add(72*time.Hour)) {
		t.Errorf("unified-7d samples %+v, want one at 12%%", seven)
	}
	list, err := gw.store.Anomalies(ctx, time.Time{})
	if err != nil || len(list) != 1 || list[0].Kind != tokenmeter.AnomalyEarlyReset || list[0].Counter != "unified-5h" {
		t.Fatalf("anomalies %+v, %v; want one early reset of unified-5h", list, err)
	}
	var ev counters.Evidence
	if err := json.Unmarshal(list[0].Evidence, &ev); err != nil || ev.AdvertisedReset == nil || !ev.AdvertisedReset.Equal(reset) {
		t.Errorf("evidence %s", list[0].Evidence)
	}
}

// TestCounterDriftOpenAI: OpenAI's x-ratelimit-* headers (resets as
// durations) with the drift scenario chosen by the request's directive
// header: one drift anomaly on x-ratelimit-tokens, for the minute
// [T0+2m, T0+3m).
func TestCounterDriftOpenAI(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 5, 0, time.UTC)
	clk := &manualClock{t: t0}
	gw := counterGateway(t, clk, "")
	const key = "sk-proj-openai-counter-test-0123456789abcd"
	for clk.Now().Before(t0.Add(6 * time.Minute)) {
		resp, body := post(t, gw.URL()+"/openai/v1/chat/completions",
			map[string]string{"Authorization": "Bearer " + key, "X-Fake-Upstream": "scenario=drift input=3000 output=10"},
			`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		clk.Advance(15 * time.Second)
	}
	syncCounters(t, gw)
	list, err := gw.store.Anomalies(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Kind != tokenmeter.AnomalyDrift || list[0].Counter != "x-ratelimit-tokens" ||
		list[0].Provider != "openai" || list[0].Credential != tokenmeter.CredentialID(key) || !list[0].Start.Equal(t0.Truncate(time.Minute).Add(2*time.Minute)) {
		t.Fatalf("anomalies %+v; want one drift of x-ratelimit-tokens from 10:02", list)
	}
	var ev counters.Evidence
	if err := json.Unmarshal(list[0].Evidence, &ev); err != nil || *ev.ProviderCount-*ev.LedgerCount != 4*fakeupstream.DriftPhantomTokens {
		t.Errorf("evidence %s; want the provider 4 x %d tokens over the ledger", list[0].Evidence, fakeupstream.DriftPhantomTokens)
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 30 * 24 * time.Hour, "0": 0, "90d": 90 * 24 * time.Hour, "720h": 720 * time.Hour, "1h": time.Hour} {
		if got, err := parseRetention(in); err != nil || got != want {
			t.Errorf("parseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-1d", "0d", "d", "1m", "forever", "-5h", "1e9d"} {
		if _, err := parseRetention(in); err == nil {
			t.Errorf("parseRetention(%q) accepted", in)
		}
	}
	c := DefaultConfig()
	if err := c.LoadFile("testdata/config/valid.yaml"); err != nil || c.CountersRetention != "90d" {
		t.Errorf("valid.yaml: counters_retention %q, %v", c.CountersRetention, err)
	}
	c.CountersRetention = "soon"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "counters_retention") {
		t.Errorf("Validate with counters_retention soon = %v", err)
	}
}

// TestCounterHostileHeaders: an upstream sending malformed, huge and
// numerous rate-limit headers is relayed unchanged; the values are kept raw
// (bounded), nothing is detected, and the gateway goes on serving.
func TestCounterHostileHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("anthropic-ratelimit-tokens-limit", "lots")
		h.Set("anthropic-ratelimit-tokens-remaining", "-5")
		h.Set("anthropic-ratelimit-tokens-reset", "yesterday")
		h.Set("anthropic-ratelimit-unified-5h-utilization", "NaN")
		h.Set("anthropic-ratelimit-unified-5h-reset", "99999999999999999999")
		h.Set("x-ratelimit-reset-tokens", "-1s")
		h.Set("retry-after", "soon")
		h.Set("x-ratelimit-huge", strings.Repeat("A", 64<<10))
		for i := range 200 {
			h.Set(fmt.Sprintf("x-ratelimit-junk-%d", i), "1")
		}
		h.Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}`))
	}))
	t.Cleanup(up.Close)
	gw := startGateway(t, up.URL, nil)
	for range 3 {
		resp, _ := post(t, gw.URL()+"/anthropic/v1/messages", map[string]string{"X-Api-Key": counterKey},
			`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`)
		if resp.StatusCode != 200 || resp.Header.Get("Anthropic-Ratelimit-Tokens-Limit") != "lots" || len(resp.Header.Get("X-Ratelimit-Huge")) != 64<<10 {
			t.Fatalf("status %d, headers not relayed unchanged", resp.StatusCode)
		}
	}
	syncCounters(t, gw)
	samples, err := gw.store.Samples(context.Background(), tokenmeter.SampleQuery{})
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]bool{}
	for _, s := range samples {
		series[s.Counter] = true
		if len(s.Raw) > 20*counters.MaxRawValue {
			t.Errorf("%s: raw of %d bytes", s.Counter, len(s.Raw))
		}
		if s.Counter == "anthropic-ratelimit-tokens" && (s.Limit != tokenmeter.NoValue || !strings.Contains(s.Raw, "lots")) {
			t.Errorf("malformed limit: %+v", s)
		}
	}
	if len(series) > counters.MaxSamplesPerResponse || !series["anthropic-ratelimit-tokens"] {
		t.Errorf("%d series: %v", len(series), series)
	}
	if list, _ := gw.store.Anomalies(context.Background(), time.Time{}); len(list) != 0 {
		t.Errorf("anomalies from malformed headers: %+v", list)
	}
}

// TestCounterCredentials: a virtual-key call's counters and credential are
// the route's configured credential's (the one sent upstream), a
// pass-through call's the client's own; both are noted by hash and hint.
func TestCounterCredentials(t *testing.T) {
	gw, _ := keysGateway(t, nil, nil)
	secret := createKey(t, gw.Config.Data, "--name", "alice")
	for _, key := range []string{secret, counterKey} {
		resp, body := post(t, gw.URL()+"/anthropic/v1/messages", map[string]string{"X-Api-Key": key},
			`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	syncCounters(t, gw)
	ctx := context.Background()
	creds, err := gw.store.Credentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range creds {
		got[c.ID] = c.Hint
	}
	want := map[string]string{
		tokenmeter.CredentialID(upstreamAnthropicKey): tokenmeter.CredentialHint(upstreamAnthropicKey),
		tokenmeter.CredentialID(counterKey):           "sk-ant-api03...WXYZ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("credentials %v, want %v", got, want)
	}
	for id := range want {
		if s, err := gw.store.Samples(ctx, tokenmeter.SampleQuery{Credential: id, Counter: "anthropic-ratelimit-requests"}); err != nil || len(s) != 1 {
			t.Errorf("samples of %s: %d, %v", id, len(s), err)
		}
	}
	if s, _ := gw.store.Samples(ctx, tokenmeter.SampleQuery{Credential: tokenmeter.CredentialID(secret)}); len(s) != 0 {
		t.Errorf("samples under the virtual key's hash: %+v", s)
	}
}

func FuzzParseRetention(f *testing.F) {
	f.Add("30d")
	f.Add("720h")
	f.Fuzz(func(t *testing.T, v string) {
		d, err := parseRetention(v)
		if err == nil && d != 0 && d < time.Hour {
			t.Fatalf("parseRetention(%q) = %v: under an hour", v, d)
		}
		if err == nil && d < 0 {
			t.Fatalf("parseRetention(%q) = %v", v, d)
		}
	})
}
