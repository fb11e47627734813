package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/alerts"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"go.yaml.in/yaml/v3"
)

// hookReceiver is a webhook endpoint run by a test: it checks the HMAC
// signature, answers 503 while down, and keeps what it accepted.
type hookReceiver struct {
	*httptest.Server
	secret []byte

	mu       sync.Mutex
	down     bool
	tries    int
	badSig   int
	accepted []alerts.Message
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	h := &hookReceiver{secret: []byte(secret)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.tries++
		if !alerts.Verify(h.secret, body, r.Header.Get(alerts.HeaderSignature)) {
			h.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if h.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var m alerts.Message
		if err := json.Unmarshal(body, &m); err != nil || m.IdempotencyKey != r.Header.Get(alerts.HeaderIdempotencyKey) {
			http.Error(w, "bad message", http.StatusBadRequest)
			return
		}
		h.accepted = append(h.accepted, m)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) messages() []alerts.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]alerts.Message(nil), h.accepted...)
}

func (h *hookReceiver) setDown(down bool) { h.mu.Lock(); h.down = down; h.mu.Unlock() }

func (h *hookReceiver) counts() (tries, badSig int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tries, h.badSig
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// alertGateway starts a gateway whose alert engine runs every 20 ms, with
// one webhook sink (HMAC secret from the environment) and the rules given.
func alertGateway(t *testing.T, upstream, data, hookURL string, rules ...tokenmeter.AlertRule) *gateway {
	t.Helper()
	off := false
	return startGateway(t, upstream, func(s *Serve) {
		if data != "" {
			s.Config.Data = data
		}
		s.Config.Alerts = AlertsConfig{Interval: tokenmeter.Duration(20 * time.Millisecond),
			RetryMin: tokenmeter.Duration(50 * time.Millisecond), RetryMax: tokenmeter.Duration(200 * time.Millisecond),
			DefaultRules: &off, Rules: rules,
			Sinks: []SinkConfig{{Name: "ops", Type: "webhook", URL: hookURL, SecretEnv: "TEST_ALERT_SECRET"}}}
		s.Getenv = func(k string) string {
			if k == "TEST_ALERT_SECRET" {
				return "hook-secret"
			}
			return ""
		}
	})
}

func callGateway(t *testing.T, g *gateway, n int) {
	t.Helper()
	for i := range n {
		resp, body := post(t, g.URL()+"/anthropic/v1/messages", nil,
			fmt.Sprintf(`{"model":"claude-haiku-5-5","max_tokens":100,"messages":[{"role":"user","content":"[[fake output=10 input=20]] %d"}]}`, i))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %d %s", resp.StatusCode, body)
		}
		g.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	}
}

// TestAlertsThroughGateway: real traffic through the gateway to the fake
// upstream crosses a soft limit's thresholds; each fires once (however
// many evaluations and calls follow), reaches the webhook signed, shows in
// alerts list and /api/alerts, and resolves when the limit goes.
func TestAlertsThroughGateway(t *testing.T) {
	up, _ := newUpstream(t)
	hook := newHookReceiver(t, "hook-secret")
	g := alertGateway(t, up.URL, "", hook.URL,
		tokenmeter.AlertRule{Name: "budget", Kind: tokenmeter.AlertThreshold, Thresholds: []int{50, 100}})
	ctx := context.Background()
	lim := tokenmeter.Limit{Name: "team-day", Scope: "global", Metric: tokenmeter.MetricTokens, Max: 100, Window: "day 00:00 UTC",
		Mode: tokenmeter.LimitSoft, Created: time.Now()}
	if err := g.store.SetLimit(ctx, lim); err != nil {
		t.Fatal(err)
	}
	callGateway(t, g, 1) // 30 tokens: 30 %
	time.Sleep(100 * time.Millisecond)
	if ms := hook.messages(); len(ms) != 0 {
		t.Fatalf("at 30%%: %+v", ms)
	}
	callGateway(t, g, 1) // 60 %
	waitFor(t, "the 50% alert", func() bool { return len(hook.messages()) == 1 })
	callGateway(t, g, 1) // 90 %
	time.Sleep(100 * time.Millisecond)
	callGateway(t, g, 2) // 150 %
	waitFor(t, "the 100% alert", func() bool { return len(hook.messages()) >= 2 })
	time.Sleep(200 * time.Millisecond) // several more evaluations
	ms := hook.messages()
	if len(ms) != 2 || ms[0].Event != "firing" || !strings.Contains(ms[0].Alert.Summary, "limit team-day (soft global, day 00:00 UTC) reached 50%: 60 tokens of 100 tokens") ||
		!strings.Contains(ms[1].Alert.Summary, "reached 100%: ") || ms[1].Alert.Severity != tokenmeter.SeverityCritical {
		t.Fatalf("webhook got %+v; want 50%% then 100%%, once each", ms)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if !ms[0].Alert.WindowStart.Equal(today) || !ms[0].Alert.WindowEnd.Equal(today.Add(24*time.Hour)) {
		t.Errorf("window %v to %v; want today UTC", ms[0].Alert.WindowStart, ms[0].Alert.WindowEnd)
	}
	if _, bad := hook.counts(); bad != 0 {
		t.Errorf("%d requests with a bad signature", bad)
	}

	// alerts list and the admin API show them.
	out, stderr, err := run(t, "alerts", "list", "--json", "--data", g.Config.Data)
	if err != nil {
		t.Fatalf("alerts list: %v %s", err, stderr)
	}
	var list AlertsJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Alerts) != 2 || list.Alerts[0].State != "firing" || len(list.Alerts[0].History) != 1 {
		t.Fatalf("alerts list --json: %v\n%s", err, out)
	}
	if out, _, _ := run(t, "alerts", "list", "--data", g.Config.Data); !strings.Contains(out, "reached 100%") || !strings.Contains(out, "SEVERITY") {
		t.Errorf("alerts list:\n%s", out)
	}
	token := g.adminTokenForTest(t)
	t.Setenv(EnvAdminToken, token)
	if remote, stderr, err := run(t, "alerts", "list", "--json", "--all", "--server", g.URL()); err != nil || remote != out {
		t.Errorf("alerts list --server: %v %s\n%s\nwant what the local list wrote:\n%s", err, stderr, remote, out)
	}
	req, _ := http.NewRequest("GET", g.URL()+"/api/alerts?state=firing", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var api AlertsJSON
	if resp.StatusCode != 200 || json.Unmarshal(body, &api) != nil || len(api.Alerts) != 2 {
		t.Fatalf("GET /api/alerts: %d %s", resp.StatusCode, body)
	}
	req, _ = http.NewRequest("GET", fmt.Sprintf("%s/api/alerts/%d", g.URL(), api.Alerts[1].ID), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"sink": "ops"`) || !strings.Contains(string(body), `"delivered"`) {
		t.Errorf("GET /api/alerts/ID: %d %s", resp.StatusCode, body)
	}

	for path, want := range map[string]int{"/api/alerts/999": 404, "/api/alerts/x": 400, "/api/alerts?state=open": 400, "/api/alerts?since=yesterday": 400, "/api/alerts?all=1": 200} {
		req, _ := http.NewRequest("GET", g.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	// The limit goes: both resolve, once.
	if err := g.store.DeleteLimit(ctx, "team-day"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resolutions", func() bool { return len(hook.messages()) >= 4 })
	time.Sleep(100 * time.Millisecond)
	ms = hook.messages()
	if len(ms) != 4 || ms[2].Event != "resolved" || ms[3].Event != "resolved" || ms[2].IdempotencyKey == ms[0].IdempotencyKey {
		t.Fatalf("after deleting the limit: %+v", ms)
	}
	if !strings.Contains(g.logs.String(), "alert firing") || strings.Contains(g.logs.String(), "hook-secret") {
		t.Errorf("log: want the alerts, never the secret")
	}
}

// TestAlertsEarlyResetEndToEnd: traffic through the gateway to the fake
// upstream's early-reset scenario (the gateway, the fake and the alert
// engine on one test clock) yields exactly one early-reset anomaly and
// exactly one alert about it at the webhook, signed, naming the anomaly.
func TestAlertsEarlyResetEndToEnd(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 10, 0, time.UTC)
	clk := &manualClock{t: t0}
	hook := newHookReceiver(t, "hook-secret")
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{Now: clk.Now, Scenario: fakeupstream.ScenarioEarlyReset}))
	t.Cleanup(up.Close)
	off := false
	gw := startGateway(t, up.URL, func(s *Serve) {
		s.Now = clk.Now
		s.Config.Alerts = AlertsConfig{Interval: tokenmeter.Duration(20 * time.Millisecond), DefaultRules: &off,
			Rules: []tokenmeter.AlertRule{{Name: "counters", Kind: tokenmeter.AlertAnomaly}},
			Sinks: []SinkConfig{{Name: "ops", Type: "webhook", URL: hook.URL, SecretEnv: "TEST_ALERT_SECRET"}}}
		s.Getenv = func(k string) string {
			if k == "TEST_ALERT_SECRET" {
				return "hook-secret"
			}
			return ""
		}
	})
	for clk.Now().Before(t0.Add(2*time.Hour + 10*time.Minute)) {
		send(t, gw, "input=10000 output=10")
		clk.Advance(5 * time.Minute)
	}
	syncCounters(t, gw)
	waitFor(t, "the anomaly alert", func() bool { return len(hook.messages()) >= 1 })
	time.Sleep(200 * time.Millisecond) // more passes of the engine
	ctx := context.Background()
	anomalies, err := gw.store.Anomalies(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var early []tokenmeter.Anomaly
	for _, a := range anomalies {
		if a.Kind == tokenmeter.AnomalyEarlyReset {
			early = append(early, a)
		}
	}
	ms := hook.messages()
	if len(early) != 1 || len(anomalies) != 1 || len(ms) != 1 {
		t.Fatalf("%d anomalies (%d early resets), %d messages %+v; want one early reset and one message", len(anomalies), len(early), len(ms), ms)
	}
	m := ms[0]
	var d struct {
		AnomalyID   int64  `json:"anomaly_id"`
		AnomalyKind string `json:"anomaly_kind"`
		Counter     string `json:"counter"`
		Detected    time.Time
	}
	if err := json.Unmarshal(m.Alert.Details, &d); err != nil || d.AnomalyID != early[0].ID || d.AnomalyKind != "early_reset" || d.Counter != "unified-5h" ||
		m.Event != "firing" || m.Alert.Kind != tokenmeter.AlertAnomaly ||
		!strings.Contains(m.Alert.Summary, fmt.Sprintf("early_reset anomaly on anthropic unified-5h: %s (tokenmeter anomalies show %d)", early[0].Summary, early[0].ID)) {
		t.Errorf("message %+v (details %s); want the early reset %+v", m, m.Alert.Details, early[0])
	}
	if !d.Detected.Equal(early[0].Detected.UTC()) || d.Detected.Before(t0.Add(2*time.Hour)) {
		t.Errorf("alert says detected %v; the anomaly %v (the reset came at T0+2h)", d.Detected, early[0].Detected)
	}
	if tries, bad := hook.counts(); tries != 1 || bad != 0 {
		t.Errorf("webhook saw %d requests, %d badly signed; want 1, 0", tries, bad)
	}
}

// adminTokenForTest returns the admin token a test gateway generated.
func (g *gateway) adminTokenForTest(t *testing.T) string {
	t.Helper()
	if g.AdminToken == "" {
		t.Fatal("the test gateway generated no admin token")
	}
	return g.AdminToken
}

// TestAlertsDeliveredAcrossRestart: the webhook is down when the alert
// fires; the gateway restarts; once the webhook is up the alert reaches it
// exactly once, from the outbox in the ledger.
func TestAlertsDeliveredAcrossRestart(t *testing.T) {
	up, _ := newUpstream(t)
	hook := newHookReceiver(t, "hook-secret")
	hook.setDown(true)
	data := t.TempDir()
	rule := tokenmeter.AlertRule{Name: "budget", Kind: tokenmeter.AlertThreshold, Thresholds: []int{50}}
	g := alertGateway(t, up.URL, data, hook.URL, rule)
	ctx := context.Background()
	if err := g.store.SetLimit(ctx, tokenmeter.Limit{Name: "team-day", Scope: "global", Metric: tokenmeter.MetricTokens, Max: 100,
		Window: "day 00:00 UTC", Mode: tokenmeter.LimitSoft, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	callGateway(t, g, 2)
	waitFor(t, "two failed attempts", func() bool { tries, _ := hook.counts(); return tries >= 2 })
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.Close(cctx); err != nil {
		t.Fatal(err)
	}
	hook.setDown(false)
	g2 := alertGateway(t, up.URL, data, hook.URL, rule)
	waitFor(t, "the delivery after restart", func() bool { return len(hook.messages()) == 1 })
	time.Sleep(300 * time.Millisecond) // more passes, retries due
	if ms := hook.messages(); len(ms) != 1 || ms[0].Event != "firing" || !strings.Contains(ms[0].Alert.Summary, "reached 50%") {
		t.Fatalf("webhook got %+v; want the one firing", ms)
	}
	ds, err := g2.store.Deliveries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Delivered.IsZero() || (d.Sink == "ops" && d.Attempts < 3) {
			t.Errorf("delivery %+v: want delivered, the webhook's after at least two failures", d)
		}
	}
	if all, _ := g2.store.Alerts(ctx, tokenmeter.AlertQuery{}); len(all) != 1 {
		t.Errorf("alerts: %+v; want one (not fired again by the new process)", all)
	}
}

// TestAlertsCLI: rules (defaults, config, set, delete), test to a URL
// (signed with $TOKENMETER_ALERT_SECRET) and to a configured sink, and
// errors.
func TestAlertsCLI(t *testing.T) {
	data := newLedger(t)
	out, _, err := run(t, "alerts", "rules", "--data", data)
	if err != nil || !strings.Contains(out, "limits") || !strings.Contains(out, "at 50/80/95/100 %") || !strings.Contains(out, "every anomaly kind") ||
		!strings.Contains(out, "Sinks: log") {
		t.Fatalf("alerts rules (defaults): %v\n%s", err, out)
	}
	if out, _, err := run(t, "alerts", "rules", "set", "budget", "--kind", "threshold", "--limit", "team", "--thresholds", "75,90%", "--data", data); err != nil || !strings.Contains(out, "Set alert rule budget") {
		t.Fatalf("rules set: %v %s", err, out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--kind", "nope"}, `kind "nope" is not`},
		{[]string{"--kind", "threshold", "--thresholds", "50,x"}, "--thresholds"},
		{[]string{"--kind", "anomaly", "--thresholds", "50"}, "thresholds apply to threshold rules only"},
		{[]string{"--kind", "error_rate", "--percent", "150"}, "percent"},
		{[]string{"--kind", "error_rate", "--span", "1s"}, "span"},
	} {
		_, _, err := run(t, append([]string{"alerts", "rules", "set", "x", "--data", data}, tt.args...)...)
		if err == nil || !strings.Contains(message(err), tt.want) {
			t.Errorf("rules set %v: %v; want an error mentioning %q", tt.args, err, tt.want)
		}
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	hook := newHookReceiver(t, "s3")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`alerts:
  rules:
    - name: errors
      kind: error_rate
      span: 10m
      percent: 30
      sinks: [ops]
  sinks:
    - name: ops
      type: webhook
      url: %s
      secret_env: TEST_CLI_SECRET
`, hook.URL)), 0o600)
	out, _, err = run(t, "alerts", "rules", "--json", "--config", cfg, "--data", data)
	var rules struct {
		Rules []tokenmeter.AlertRule
		Sinks []string
	}
	if err != nil || json.Unmarshal([]byte(out), &rules) != nil {
		t.Fatalf("alerts rules --json: %v\n%s", err, out)
	}
	src := map[string]string{}
	for _, r := range rules.Rules {
		src[r.Name] = r.Source
	}
	if src["budget"] != "ledger" || src["errors"] != "config" || src["limits"] != "default" || len(rules.Rules) != 6 || fmt.Sprint(rules.Sinks) != "[log ops]" {
		t.Errorf("effective rules %+v, sinks %v", src, rules.Sinks)
	}
	if _, _, err := run(t, "alerts", "rules", "delete", "budget", "--data", data); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "alerts", "rules", "delete", "budget", "--data", data); err == nil || !strings.Contains(message(err), "no alert rule") {
		t.Errorf("deleting a deleted rule: %v", err)
	}

	t.Setenv("TEST_CLI_SECRET", "s3")
	if out, _, err := run(t, "alerts", "test", "ops", "--config", cfg); err != nil || !strings.Contains(out, "Sent a test alert to ops") {
		t.Fatalf("alerts test ops: %v %s", err, out)
	}
	t.Setenv(AlertSecretEnv, "s3")
	if _, _, err := run(t, "alerts", "test", hook.URL+"/by-url"); err != nil {
		t.Fatalf("alerts test URL: %v", err)
	}
	ms := hook.messages()
	if len(ms) != 2 || !ms[0].Test || ms[0].Version != 1 || !strings.Contains(ms[0].Text, "test alert") {
		t.Errorf("test messages: %+v", ms)
	}
	if _, bad := hook.counts(); bad != 0 {
		t.Errorf("%d test messages with a bad signature", bad)
	}
	if _, _, err := run(t, "alerts", "test", "nope", "--config", cfg); err == nil || !strings.Contains(message(err), `no sink named "nope"`) {
		t.Errorf("alerts test of an unknown sink: %v", err)
	}
	hook.setDown(true)
	_, _, err = run(t, "alerts", "test", hook.URL+"/secret-path")
	if err == nil || !strings.Contains(err.Error(), "503") || strings.Contains(err.Error(), "secret-path") {
		t.Errorf("alerts test to a failing URL: %v; want the status, not the URL", err)
	}
	if out, _, err := run(t, "alerts", "test", "log"); err != nil || !strings.Contains(out, "alert firing") {
		t.Errorf("alerts test log: %v %s", err, out)
	}
	if out, _, err := run(t, "alerts", "list", "--data", data); err != nil || !strings.Contains(out, "No alerts.") {
		t.Errorf("alerts list of a ledger without alerts: %v %s", err, out)
	}
}

// TestAlertsConfig: the alerts section of the config file is validated
// field by field, without echoing URLs or secrets.
func TestAlertsConfig(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want []string // substrings of the error; nil: valid
	}{
		{yaml: "alerts:\n  interval: 10s\n  rules:\n    - {name: b, kind: burn_rate, limit: day, span: 2h}\n  sinks:\n    - {name: chat, type: slack, url_env: SLACK_URL}\n    - {name: page, type: command, command: /bin/true, timeout: 5s}\n"},
		{yaml: "alerts:\n  interval: 1ns\n", want: []string{"alerts.interval = 1ns"}},
		{yaml: "alerts:\n  sinks:\n    - {name: a, type: webhook, url: 'ftp://x/token-123'}\n", want: []string{"alerts.sinks[0].url = (redacted)"}},
		{yaml: "alerts:\n  sinks:\n    - {name: a, type: email}\n", want: []string{`alerts.sinks[0].type = "email"`}},
		{yaml: "alerts:\n  sinks:\n    - {name: a, type: webhook, url: 'http://x', secret_env: 'not a name'}\n", want: []string{"secret_env = (redacted)"}},
		{yaml: "alerts:\n  sinks:\n    - {name: log, type: command, command: x}\n", want: []string{"is taken"}},
		{yaml: "alerts:\n  rules:\n    - {name: r, kind: threshold, sinks: [nope]}\n", want: []string{"alerts.rules[0].sinks = nope: no sink has this name"}},
		{yaml: "alerts:\n  rules:\n    - {name: r, kind: threshold, thresholds: [0]}\n", want: []string{"threshold 0"}},
		{yaml: "alerts:\n  rules:\n    - {name: r, kind: threshold}\n    - {name: r, kind: anomaly}\n", want: []string{"listed twice"}},
		{yaml: "alerts:\n  retry_min: 1m\n  retry_max: 10s\n", want: []string{"retry_max"}},
		{yaml: "alerts:\n  sinks:\n    - {name: p, type: command, command: page, env: [PAGER_TOKEN, LANGUAGE]}\n"},
		{yaml: "alerts:\n  sinks:\n    - {name: p, type: command, command: page, env: ['PAGER=token-123']}\n", want: []string{"alerts.sinks[0].env = (redacted)"}},
		{yaml: "alerts:\n  sinks:\n    - {name: w, type: webhook, url: 'http://x', env: [PAGER_TOKEN]}\n", want: []string{"applies to command sinks only"}},
	} {
		c := DefaultConfig()
		dec := yaml.NewDecoder(strings.NewReader(tt.yaml))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Errorf("decode %q: %v", tt.yaml, err)
			continue
		}
		err := c.Validate()
		if tt.want == nil && err != nil {
			t.Errorf("Validate(%q): %v", tt.yaml, err)
		}
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Validate(%q) = %v; want it to mention %q", tt.yaml, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), "token-123") {
			t.Errorf("Validate echoes a sink URL: %v", err)
		}
	}
	// Flag sinks get stable names from their target.
	a := AlertsConfig{Webhooks: []string{"https://example.com/hook"}, Slack: []string{"https://hooks.slack.com/services/T/B/X"}, Commands: []string{"logger"}}
	var names []string
	for _, s := range a.flagSinks() {
		names = append(names, s.Name)
	}
	if len(names) != 3 || !strings.HasPrefix(names[0], "webhook-") || !strings.HasPrefix(names[1], "slack-") || !strings.HasPrefix(names[2], "command-") ||
		strings.Contains(strings.Join(names, ""), "example") {
		t.Errorf("flag sink names %v", names)
	}
	if errs := a.validate(); len(errs) != 0 {
		t.Errorf("flag sinks: %v", errs)
	}
}

func TestParseThresholds(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{
		{"50,80,95,100", "[50 80 95 100]"},
		{" 75% , 90 ", "[75 90]"},
		{"0", "error"},
		{"1001", "error"},
		{"", "error"},
		{"50,,80", "error"},
		{"5e1", "error"},
	} {
		got, err := ParseThresholds(tt.in)
		s := fmt.Sprint(got)
		if err != nil {
			s = "error"
		}
		if s != tt.want {
			t.Errorf("ParseThresholds(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// FuzzAlertsConfig: any alerts: section either fails to decode or
// validate with an error, or yields rules that pass AlertRule.Validate and
// sinks that build; nothing panics.
func FuzzAlertsConfig(f *testing.F) {
	f.Add("alerts:\n  rules:\n    - {name: b, kind: threshold, thresholds: [50, 80]}\n  sinks:\n    - {name: o, type: webhook, url: 'http://x'}\n")
	f.Add("alerts:\n  rules:\n    - {name: e, kind: error_rate, span: 5m, min_requests: 3, percent: 20}\n")
	f.Add("alerts:\n  interval: 1s\n  sinks:\n    - {name: c, type: command, command: 'cat', timeout: 1s}\n")
	f.Fuzz(func(t *testing.T, doc string) {
		c := DefaultConfig()
		dec := yaml.NewDecoder(strings.NewReader(doc))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return
		}
		if errs := c.Alerts.validate(); len(errs) > 0 {
			return
		}
		for _, r := range c.Alerts.Rules {
			if err := r.Validate(); err != nil {
				t.Fatalf("rule %+v passed the config check but not Validate: %v", r, err)
			}
		}
		if _, _, err := c.Alerts.sinks(func(string) string { return "http://example.com" }); err != nil {
			t.Fatalf("valid sinks failed to build: %v", err)
		}
	})
}

// FuzzParseThresholds: a parsed list holds only percentages in range.
func FuzzParseThresholds(f *testing.F) {
	for _, s := range []string{"50,80,95,100", "75%", "", ",", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseThresholds(s)
		if err != nil {
			return
		}
		for _, n := range got {
			if n < 1 || n > 1000 {
				t.Fatalf("ParseThresholds(%q) = %v", s, got)
			}
		}
	})
}

// TestServeAlertFlags: serve's --alert-webhook and --alert-command send
// every alert (here a default threshold rule on a soft limit set with the
// CLI while serve runs), the webhook signed with $TOKENMETER_ALERT_SECRET.
func TestServeAlertFlags(t *testing.T) {
	up, _ := newUpstream(t)
	hook := newHookReceiver(t, "flag-secret")
	t.Setenv(AlertSecretEnv, "flag-secret")
	data := t.TempDir()
	out := t.TempDir() // one file per message: deliveries run in parallel
	// Secrets from files, not flags (issue 13 item 10): the Slack URL and
	// the admin token.
	var slackMu sync.Mutex
	var slackTexts []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		json.NewDecoder(r.Body).Decode(&m)
		slackMu.Lock()
		slackTexts = append(slackTexts, m.Text)
		slackMu.Unlock()
	}))
	defer slack.Close()
	secrets := t.TempDir()
	slackFile, tokenFile := filepath.Join(secrets, "slack-urls"), filepath.Join(secrets, "admin-token")
	os.WriteFile(slackFile, []byte("# the team channel\n"+slack.URL+"/services/T0/B0/secret-path\n"), 0o600)
	os.WriteFile(tokenFile, []byte("token-from-a-file-0123456789\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data", data, "--upstream", "anthropic=" + up.URL,
			"--alert-webhook", hook.URL + "/hook", "--alert-command", "cat > " + out + "/$TOKENMETER_IDEMPOTENCY_KEY.json",
			"--alert-slack-file", slackFile, "--admin-token-file", tokenFile}, strings.NewReader(""), stdout, stderr)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, stderr.String())
		}
	}()
	var base string
	waitFor(t, "serve to listen", func() bool {
		_, rest, ok := strings.Cut(stdout.String(), "gateway on ")
		base, _, _ = strings.Cut(rest, ",")
		return ok && strings.HasPrefix(base, "http://")
	})
	if _, stderr, err := run(t, "limits", "set", "day", "--scope", "global", "--metric", "tokens", "--max", "100", "--window", "day", "--data", data); err != nil {
		t.Fatalf("limits set: %v %s", err, stderr)
	}
	for i := range 2 {
		resp, body := post(t, base+"/anthropic/v1/messages", nil,
			fmt.Sprintf(`{"model":"claude-haiku-5-5","max_tokens":100,"messages":[{"role":"user","content":"[[fake output=10 input=20]] %d"}]}`, i))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %d %s", resp.StatusCode, body)
		}
	}
	// 60 tokens of 100: the default rule's 50 % (burn-rate may fire too).
	has50 := func(ms []alerts.Message) bool {
		for _, m := range ms {
			if strings.Contains(m.Alert.Summary, "reached 50%") {
				return true
			}
		}
		return false
	}
	waitFor(t, "the webhook", func() bool { return has50(hook.messages()) })
	waitFor(t, "the command", func() bool {
		files, _ := filepath.Glob(filepath.Join(out, "tm-alert-*.json"))
		var ms []alerts.Message
		for _, f := range files {
			b, _ := os.ReadFile(f)
			var m alerts.Message
			if json.Unmarshal(b, &m) == nil && filepath.Base(f) == m.IdempotencyKey+".json" {
				ms = append(ms, m)
			}
		}
		return has50(ms)
	})
	if _, bad := hook.counts(); bad != 0 {
		t.Errorf("%d webhook requests badly signed", bad)
	}
	if strings.Contains(stderr.String(), "flag-secret") {
		t.Error("the log shows the webhook secret")
	}
	waitFor(t, "the Slack webhook of --alert-slack-file", func() bool {
		slackMu.Lock()
		defer slackMu.Unlock()
		for _, text := range slackTexts {
			if strings.Contains(text, "reached 50%") {
				return true
			}
		}
		return false
	})
	if resp, body := apiCall(t, "GET", base+"/api/status", bearer("token-from-a-file-0123456789"), ""); resp.StatusCode != 200 {
		t.Errorf("the admin token of --admin-token-file: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(stdout.String(), "admin token (shown once") {
		t.Error("serve generated an admin token although --admin-token-file named one")
	}
	if s := stderr.String(); strings.Contains(s, "secret was given as a flag") || strings.Contains(s, "secret-path") || strings.Contains(s, "token-from-a-file") {
		t.Errorf("serve's log warns of a flag secret or shows a secret:\n%s", s)
	}
}

// TestAlertWebhookFlagUnsigned: serve --alert-webhook without
// $TOKENMETER_ALERT_SECRET starts, says once that the sink is unsigned,
// and sends without a signature (issue 13 item 1); a config sink whose
// secret_env is empty is still refused.
func TestAlertWebhookFlagUnsigned(t *testing.T) {
	up, _ := newUpstream(t)
	var mu sync.Mutex
	var sigs []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sigs = append(sigs, r.Header.Get(alerts.HeaderSignature))
		mu.Unlock()
	}))
	defer hook.Close()
	g := startGateway(t, up.URL, func(s *Serve) {
		s.Config.Alerts = AlertsConfig{Webhooks: []string{hook.URL + "/hook"}}
		s.Getenv = func(string) string { return "" }
	})
	if n := strings.Count(g.logs.String(), "sent unsigned"); n != 1 || !strings.Contains(g.logs.String(), AlertSecretEnv) {
		t.Errorf("start-up log says %d times that the flag's webhook is unsigned (want once, naming $%s):\n%s", n, AlertSecretEnv, g.logs.String())
	}
	var sink alerts.Sink
	for name, s := range g.Alerts.Sinks {
		if strings.HasPrefix(name, "webhook-") {
			sink = s
		}
	}
	if sink == nil {
		t.Fatalf("no webhook sink among %v", g.Alerts.Sinks)
	}
	m := alerts.Sample(time.Now())
	payload, _ := json.Marshal(m)
	if err := sink.Send(context.Background(), m, payload); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(sigs) != 1 || sigs[0] != "" {
		t.Errorf("signatures sent: %q; want one request, unsigned", sigs)
	}
	mu.Unlock()

	// A config sink that names its secret's variable needs it.
	a := AlertsConfig{Sinks: []SinkConfig{{Name: "ops", Type: "webhook", URL: hook.URL, SecretEnv: "OPS_SECRET"}}}
	if _, err := newAlertEngine(&a, nil, slog.New(slog.DiscardHandler), func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "$OPS_SECRET (its HMAC secret) is empty") {
		t.Errorf("config sink with an empty secret_env: %v", err)
	}
}
