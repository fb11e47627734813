package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	openaisdk "github.com/openai/openai-go/v3"
	openaiopt "github.com/openai/openai-go/v3/option"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/dashboard"
	"github.com/tokenmeter/tokenmeter/internal/report"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// sdkTraffic makes calls through the gateway with the official SDKs: n
// Anthropic messages (every other one streamed) and n OpenAI chat
// completions (streamed), with apiKey (a virtual key or a pass-through
// credential). It returns the number of calls made.
func sdkTraffic(t *testing.T, gw *gateway, apiKey string, n int) int {
	t.Helper()
	ctx := context.Background()
	ac := anthropicsdk.NewClient(anthropicopt.WithBaseURL(gw.URL()+"/anthropic"), anthropicopt.WithAPIKey(apiKey), anthropicopt.WithMaxRetries(0))
	oc := openaisdk.NewClient(openaiopt.WithBaseURL(gw.URL()+"/openai/v1"), openaiopt.WithAPIKey(apiKey), openaiopt.WithMaxRetries(0))
	for i := range n {
		prompt := fmt.Sprintf("hello %d [[fake input=%d output=%d cache_read=%d cache_write=%d]]", i, 100+i, 20+i, 7*i, 3)
		params := anthropicsdk.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 512,
			Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock(prompt))}}
		if i%2 == 0 {
			if _, err := ac.Messages.New(ctx, params); err != nil {
				t.Fatalf("anthropic SDK call %d: %v", i, err)
			}
		} else {
			s := ac.Messages.NewStreaming(ctx, params)
			for s.Next() {
			}
			if err := s.Err(); err != nil {
				t.Fatalf("anthropic SDK stream %d: %v", i, err)
			}
		}
		cs := oc.Chat.Completions.NewStreaming(ctx, openaisdk.ChatCompletionNewParams{Model: "gpt-5",
			Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage(prompt)}})
		for cs.Next() {
		}
		if err := cs.Err(); err != nil {
			t.Fatalf("openai SDK stream %d: %v", i, err)
		}
	}
	return 2 * n
}

// waitCalls waits until the ledger holds n completed calls.
func waitCalls(t *testing.T, gw *gateway, n int) {
	t.Helper()
	for i := 0; len(gw.completed(t)) < n; i++ {
		if i == 500 {
			t.Fatalf("%d of %d calls completed in the ledger", len(gw.completed(t)), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reportJSON runs tokenmeter report --json on the gateway's data dir.
func reportJSON(t *testing.T, gw *gateway, args ...string) report.Report {
	t.Helper()
	out, stderr, err := run(t, append(append([]string{"report"}, args...), "--json", "--data", gw.Config.Data)...)
	if err != nil {
		t.Fatalf("report %v: %v\n%s", args, err, stderr)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report %v --json: %v\n%s", args, err, out)
	}
	return r
}

// browserClient is an HTTP client with a cookie jar that does not follow
// redirects, as a browser's fetches see the dashboard.
type browserClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowserClient(t *testing.T, base string) *browserClient {
	return &browserClient{t: t, base: base, c: &http.Client{Jar: newJar(), CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type jar struct {
	mu sync.Mutex
	c  map[string]*http.Cookie
}

func newJar() *jar { return &jar{c: map[string]*http.Cookie{}} }

func (j *jar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(j.c, c.Name)
		} else {
			j.c[c.Name] = c
		}
	}
}

func (j *jar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.c {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func (b *browserClient) do(method, path string, hdr map[string]string, body string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// login posts the log-in form with cred and returns the answer.
func (b *browserClient) login(cred string, hdr map[string]string) (*http.Response, string) {
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range hdr {
		h[k] = v
	}
	return b.do("POST", "/ui/login", h, url.Values{"token": {cred}}.Encode())
}

func (b *browserClient) csrf() string {
	b.t.Helper()
	resp, body := b.do("GET", "/ui/session", nil, "")
	var s struct {
		CSRF string `json:"csrf_token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &s) != nil || s.CSRF == "" {
		b.t.Fatalf("GET /ui/session = %d %s; want a session with a CSRF token", resp.StatusCode, body)
	}
	return s.CSRF
}

// TestDashboardAccess: without a session every page and API route is
// refused; log-in sets an HttpOnly, SameSite=Strict cookie without the
// token in it; every mutation needs the CSRF token; a virtual key's
// session sees only its own data; a revoked key's session ends.
func TestDashboardAccess(t *testing.T) {
	gw, alice, _ := adminGateway(t)
	anon := newBrowserClient(t, gw.URL())
	apiRoutes := []string{"/api/keys", "/api/usage", "/api/status", "/api/limits", "/api/me", "/api/requests",
		"/api/me/requests", "/api/hourly", "/api/me/hourly", "/api/overview", "/api/me/overview",
		"/api/anomalies", "/api/anomalies/1", "/api/counters", "/api/alerts", "/api/alerts/1", "/api/reconcile", "/api/reconcile/1"}
	for _, p := range apiRoutes {
		if resp, body := anon.do("GET", p, nil, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session = %d %s; want 401", p, resp.StatusCode, body)
		}
	}
	for _, m := range []struct{ method, path string }{{"POST", "/api/keys"}, {"POST", "/api/keys/alice/revoke"},
		{"POST", "/api/keys/alice/rotate"}, {"PUT", "/api/limits/x"}, {"DELETE", "/api/limits/x"}, {"POST", "/ui/logout"}} {
		if resp, body := anon.do(m.method, m.path, map[string]string{"Content-Type": "application/json"}, `{"name":"x"}`); resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Errorf("%s %s without a session = %d %s; want 401 or 403", m.method, m.path, resp.StatusCode, body)
		}
	}
	if resp, _ := anon.do("GET", "/", nil, ""); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("GET / without a session = %d to %q; want 303 to /ui/login", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := anon.do("GET", "/ui/session", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /ui/session without a session = %d; want 401", resp.StatusCode)
	}
	if resp, body := anon.do("GET", "/ui/login", nil, ""); resp.StatusCode != 200 || !strings.Contains(body, `name="token"`) {
		t.Errorf("GET /ui/login = %d; want the log-in form\n%s", resp.StatusCode, body)
	}
	if resp, _ := anon.do("GET", "/ui/assets/index.html", nil, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/assets/index.html = %d; want 404 (pages only through their routes)", resp.StatusCode)
	}

	// Wrong credentials: no session.
	for _, cred := range []string{"wrong-token-0123456789", "tm-notakey", alice + "x"} {
		resp, body := anon.login(cred, nil)
		if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
			t.Errorf("log-in with a wrong credential = %d, cookies %v; want 401 without a cookie", resp.StatusCode, resp.Cookies())
		}
		if strings.Contains(body, cred) {
			t.Errorf("log-in page echoes the credential it refused")
		}
	}
	// A log-in posted from another site is refused (login CSRF).
	if resp, _ := anon.login(testAdminToken, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin log-in = %d; want 403", resp.StatusCode)
	}

	adm := newBrowserClient(t, gw.URL())
	resp, _ := adm.login(testAdminToken, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin log-in = %d; want 303", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == dashboard.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" ||
		strings.Contains(cookie.Value, testAdminToken) || strings.Contains(resp.Header.Get("Set-Cookie"), "tma-") {
		t.Fatalf("session cookie %+v; want HttpOnly, SameSite=Strict, Path=/, without the token", cookie)
	}
	for _, p := range append(apiRoutes[:4:4], "/api/requests", "/api/hourly", "/api/overview", "/", "/ui/session") {
		if resp, body := adm.do("GET", p, nil, ""); resp.StatusCode != 200 {
			t.Errorf("admin session: GET %s = %d %s; want 200", p, resp.StatusCode, body)
		}
	}
	csrf := adm.csrf()
	jsonHdr := func(token, origin string) map[string]string {
		h := map[string]string{"Content-Type": "application/json"}
		if token != "" {
			h[dashboard.CSRFHeader] = token
		}
		if origin != "" {
			h["Origin"] = origin
		}
		return h
	}
	mutations := []struct{ method, path, body string }{
		{"POST", "/api/keys", `{"name":"carol"}`}, {"POST", "/api/keys/bob/rotate", ""}, {"POST", "/api/keys/bob/revoke", ""},
		{"PUT", "/api/limits/team", `{"scope":"global","metric":"tokens","max":"1000","window":"day"}`}, {"DELETE", "/api/limits/team", ""},
	}
	for _, m := range mutations {
		for _, bad := range []map[string]string{jsonHdr("", ""), jsonHdr("wrong", ""), jsonHdr(csrf, "https://evil.example")} {
			if resp, body := adm.do(m.method, m.path, bad, m.body); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s with session, headers %v = %d %s; want 403", m.method, m.path, bad, resp.StatusCode, body)
			}
		}
	}
	if keys := listKeyNames(t, adm); strings.Contains(keys, "carol") || strings.Contains(keys, "bob(revoked)") {
		t.Errorf("refused mutations changed the keys: %s", keys)
	}
	wantStatus := []int{201, 200, 200, 200, 204}
	for i, m := range mutations {
		if resp, body := adm.do(m.method, m.path, jsonHdr(csrf, gw.URL()), m.body); resp.StatusCode != wantStatus[i] {
			t.Errorf("%s %s with session and CSRF token = %d %s; want %d", m.method, m.path, resp.StatusCode, body, wantStatus[i])
		}
	}
	// The admin bearer token still needs no CSRF token (no cookie involved).
	if resp, body := apiCall(t, "POST", gw.URL()+"/api/keys", bearer(testAdminToken), `{"name":"dave"}`); resp.StatusCode != 201 {
		t.Errorf("POST /api/keys with the bearer token = %d %s; want 201", resp.StatusCode, body)
	}

	// A virtual key's session: its own usage only.
	key := newBrowserClient(t, gw.URL())
	if resp, body := key.login(alice, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("key log-in = %d %s; want 303", resp.StatusCode, body)
	}
	for _, p := range []string{"/api/keys", "/api/usage", "/api/status", "/api/limits", "/api/requests", "/api/hourly", "/api/overview",
		"/api/anomalies", "/api/counters", "/api/alerts", "/api/reconcile"} {
		if resp, _ := key.do("GET", p, nil, ""); resp.StatusCode != http.StatusForbidden {
			t.Errorf("key session: GET %s = %d; want 403", p, resp.StatusCode)
		}
	}
	if resp, _ := key.do("POST", "/api/keys", jsonHdr(key.csrf(), ""), `{"name":"eve"}`); resp.StatusCode != http.StatusForbidden {
		t.Errorf("key session: POST /api/keys = %d; want 403", resp.StatusCode)
	}
	_, body := key.do("GET", "/api/me/requests", nil, "")
	var reqs struct {
		Requests []struct{ Key string } `json:"requests"`
	}
	if err := json.Unmarshal([]byte(body), &reqs); err != nil || len(reqs.Requests) != 3 {
		t.Fatalf("key session: /api/me/requests = %s; want alice's 3 calls", body)
	}
	for _, r := range reqs.Requests {
		if r.Key != "key:alice" {
			t.Errorf("key session: /api/me/requests shows a call of %q", r.Key)
		}
	}
	_, body = key.do("GET", "/api/me/overview", nil, "")
	var ov struct {
		Today report.Figures `json:"today"`
	}
	if err := json.Unmarshal([]byte(body), &ov); err != nil || ov.Today.Requests != 3 {
		t.Errorf("key session: /api/me/overview today = %+v (%v); want alice's 3 calls", ov.Today, err)
	}
	_, body = key.do("GET", "/api/me/hourly", nil, "")
	var hourly report.Report
	if err := json.Unmarshal([]byte(body), &hourly); err != nil || hourly.Totals.Requests != 3 {
		t.Errorf("key session: /api/me/hourly totals = %+v (%v); want alice's 3 calls", hourly.Totals, err)
	}
	adminAll := reportJSON(t, gw, "daily", "--by", "key")
	for _, row := range adminAll.Rows {
		if row.Key == "key:alice" && row.Requests != 3 {
			t.Errorf("report says alice made %d calls; want 3", row.Requests)
		}
	}
	// Revoking the key ends its session.
	if resp, body := apiCall(t, "POST", gw.URL()+"/api/keys/alice/revoke", bearer(testAdminToken), ""); resp.StatusCode != 200 {
		t.Fatalf("revoke alice = %d %s", resp.StatusCode, body)
	}
	if resp, _ := key.do("GET", "/api/me", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked key's session: GET /api/me = %d; want 401", resp.StatusCode)
	}

	// Log-out needs the CSRF token, then ends the session.
	if resp, _ := adm.do("POST", "/ui/logout", nil, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("log-out without CSRF token = %d; want 403", resp.StatusCode)
	}
	if resp, _ := adm.do("POST", "/ui/logout", map[string]string{dashboard.CSRFHeader: csrf}, ""); resp.StatusCode != 200 {
		t.Errorf("log-out = %d; want 200", resp.StatusCode)
	}
	if resp, _ := adm.do("GET", "/api/keys", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after log-out: GET /api/keys = %d; want 401", resp.StatusCode)
	}

	// The whole page, assets included, stays under 500 KB.
	total := 0
	for _, p := range []string{"/ui/login", "/ui/assets/app.js", "/ui/assets/app.css", "/ui/assets/vendor/uPlot.iife.min.js", "/ui/assets/vendor/uPlot.min.css"} {
		resp, body := anon.do("GET", p, nil, "")
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", p, resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q; want default-src 'self'", p, csp)
		}
		total += len(body)
	}
	if total > 500<<10 {
		t.Errorf("dashboard page and assets = %d bytes; want under 500 KB", total)
	}
	// No secret in the logs.
	for _, s := range []string{testAdminToken, alice, csrf, cookie.Value} {
		if strings.Contains(gw.logs.String(), s) {
			t.Errorf("the gateway log holds a secret (%.8s…)", s)
		}
	}
}

func listKeyNames(t *testing.T, b *browserClient) string {
	t.Helper()
	_, body := b.do("GET", "/api/keys", nil, "")
	var ks struct {
		Keys []struct{ Name, Status string } `json:"keys"`
	}
	json.Unmarshal([]byte(body), &ks)
	var out []string
	for _, k := range ks.Keys {
		out = append(out, k.Name+"("+k.Status+")")
	}
	return strings.Join(out, " ")
}

// scrapeMetrics reads /metrics and parses it with the Prometheus text parser.
func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sumMetric sums the series of fam whose labels include want.
func sumMetric(fams map[string]*dto.MetricFamily, fam string, want map[string]string) float64 {
	f, sum := fams[fam], 0.0
	if f == nil {
		return 0
	}
next:
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// TestMetricsMatchLedger drives traffic with the SDKs (a virtual key and
// a pass-through credential), scrapes /metrics and checks its counters
// against tokenmeter report --json on the same ledger.
func TestMetricsMatchLedger(t *testing.T) {
	gw, alice, _ := adminGateway(t) // 5 calls: alice 3, bob 2
	n := 5 + sdkTraffic(t, gw, alice, 3) + sdkTraffic(t, gw, "sk-ant-api03-passthrough", 2)
	waitCalls(t, gw, n)
	if _, stderr, err := run(t, "limits", "set", "alice-day", "--data", gw.Config.Data, "--scope", "key:alice",
		"--metric", "tokens", "--max", "100000", "--window", "day"); err != nil {
		t.Logf("limits set: %v %s (limit metrics not checked)", err, stderr)
	}
	rep := reportJSON(t, gw, "daily")
	byKey := reportJSON(t, gw, "daily", "--by", "key")
	fams := scrapeMetrics(t, gw.URL())

	tot := rep.Totals
	for _, c := range []struct {
		kind string
		want int64
	}{
		{"input", tot.InputTokens}, {"output", tot.OutputTokens}, {"cache_read", tot.CacheReadInputTokens},
		{"cache_write_5m", tot.CacheCreation5mTokens}, {"cache_write_1h", tot.CacheCreation1hTokens}, {"reasoning", tot.ReasoningTokens},
	} {
		if got := sumMetric(fams, "tokenmeter_tokens_total", map[string]string{"kind": c.kind}); int64(got) != c.want {
			t.Errorf("tokenmeter_tokens_total{kind=%q} = %v; report says %d", c.kind, got, c.want)
		}
	}
	if got := sumMetric(fams, "tokenmeter_requests_total", nil); int64(got) != tot.Requests {
		t.Errorf("tokenmeter_requests_total = %v; report says %d", got, tot.Requests)
	}
	if got := sumMetric(fams, "tokenmeter_request_duration_seconds", nil); int64(got) != tot.Requests {
		t.Errorf("request duration histogram count = %v; want %d", got, tot.Requests)
	}
	if got := sumMetric(fams, "tokenmeter_time_to_first_byte_seconds", nil); int64(got) != tot.Requests {
		t.Errorf("time-to-first-byte histogram count = %v; want %d", got, tot.Requests)
	}
	for _, row := range byKey.Rows {
		label := strings.TrimPrefix(row.Key, "key:")
		if !strings.HasPrefix(row.Key, "key:") {
			continue
		}
		in := sumMetric(fams, "tokenmeter_tokens_total", map[string]string{"kind": "input", "key": label})
		if int64(in) != row.InputTokens {
			t.Errorf("input tokens of key %s = %v; report says %d", label, in, row.InputTokens)
		}
	}
	var passIn int64
	for _, row := range byKey.Rows {
		if !strings.HasPrefix(row.Key, "key:") {
			passIn += row.InputTokens
		}
	}
	if got := sumMetric(fams, "tokenmeter_tokens_total", map[string]string{"kind": "input", "key": "passthrough"}); int64(got) != passIn {
		t.Errorf("input tokens of passthrough = %v; report says %d", got, passIn)
	}
	if got := sumMetric(fams, "tokenmeter_cost_dollars_total", nil); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", tot.CostUSD) {
		t.Errorf("tokenmeter_cost_dollars_total = %.6f; report says %.6f", got, tot.CostUSD)
	}
	if got := sumMetric(fams, "tokenmeter_ledger_commit_duration_seconds", nil); got < 1 {
		t.Errorf("ledger commit histogram count = %v; want commits", got)
	}
	if _, ok := fams["tokenmeter_ledger_queue_depth"]; !ok {
		t.Errorf("tokenmeter_ledger_queue_depth missing")
	}
	if f := fams["tokenmeter_limit_used"]; f != nil {
		var aliceTok int64
		for _, row := range byKey.Rows {
			if row.Key == "key:alice" {
				aliceTok = row.TotalTokens
			}
		}
		if got := sumMetric(fams, "tokenmeter_limit_used", map[string]string{"limit": "alice-day"}); int64(got) != aliceTok {
			t.Errorf("tokenmeter_limit_used{limit=alice-day} = %v; alice's tokens today %d", got, aliceTok)
		}
	}
	// No label carries a credential, and only the provider-counter gauges
	// carry a credential's hash ID (their credential label, by design:
	// docs/dashboard.md). Those gauges appear once the counter watcher has
	// stored a sample, which races with this scrape.
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				hashOK := strings.HasPrefix(name, "tokenmeter_provider_ratelimit_") && l.GetName() == "credential"
				if (strings.HasPrefix(l.GetValue(), "cred:") && !hashOK) || strings.Contains(l.GetValue(), "sk-") || strings.Contains(l.GetValue(), "tm-") {
					t.Errorf("%s has label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestDashboardBrowser drives the dashboard in headless Chromium (Debian's
// chromium, at $TOKENMETER_TEST_CHROMIUM): log in, check the overview
// against tokenmeter report --json, watch it update live, change grouping
// and range, download the CSV and compare it with report --csv, open the
// other pages, with no console errors. TestDashboardScreenshots makes the
// pictures in docs/.
func TestDashboardBrowser(t *testing.T) {
	chrome := os.Getenv("TOKENMETER_TEST_CHROMIUM")
	if chrome == "" {
		t.Skip("TOKENMETER_TEST_CHROMIUM is not set (path to a Chromium binary; .ci/run sets it)")
	}
	gw, alice, _ := adminGateway(t)
	n := 5 + sdkTraffic(t, gw, alice, 3) + sdkTraffic(t, gw, "sk-ant-api03-passthrough", 3)
	// A model name a spreadsheet would take for a formula: the CSV
	// download must neutralise it exactly as report --csv does.
	if resp, body := post(t, gw.URL()+"/anthropic/v1/messages", map[string]string{"x-api-key": "sk-ant-api03-passthrough", "anthropic-version": "2023-06-01"},
		`{"model":"=1+2","max_tokens":20,"messages":[{"role":"user","content":"[[fake output=3]] hi"}]}`); resp.StatusCode != 200 {
		t.Fatalf("call with a formula for a model: %d %s", resp.StatusCode, body)
	}
	n++
	waitCalls(t, gw, n)
	if _, stderr, err := run(t, "limits", "set", "alice-day", "--data", gw.Config.Data, "--scope", "key:alice",
		"--metric", "tokens", "--max", "9000", "--window", "day"); err != nil {
		t.Fatalf("limits set: %v %s", err, stderr)
	}
	anomalyID := seedCounters(t, gw)

	br := newBrowser(t, chrome)
	ctx, must, eval, poll := br.ctx, br.must, br.eval, br.poll
	// click clicks the element sel selects at the moment of the click: the
	// live pages re-render every few seconds, and a click through a DOM
	// node id resolved a moment earlier can miss a node just replaced.
	click := func(sel string) chromedp.Action[chromedp.Void] {
		return eval(fmt.Sprintf(`(document.querySelector(%q).click(), true)`, sel))
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	dl := t.TempDir()
	must("allow downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl})
		return err
	}))

	// Log in.
	must("log in", chromedp.Navigate(gw.URL()+"/"), chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), testAdminToken), chromedp.Click(css("#login")),
		chromedp.WaitVisible(css(`[data-testid="period-today"]`)))

	// The overview equals tokenmeter report --json for the same spans.
	zone := localZone()
	today := time.Now().In(zone).Format(time.DateOnly)
	cards := func() map[string]map[string]string {
		out, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]map[string]string](`Object.fromEntries([...document.querySelectorAll('[data-testid^="period-"]')].map(e => [e.dataset.testid, Object.assign({}, e.dataset)]))`))
		if err != nil {
			t.Fatalf("read the overview's cards: %v", err)
		}
		return out
	}
	check := func(card map[string]string, f report.Figures, what string) {
		t.Helper()
		for attr, want := range map[string]int64{"totalTokens": f.TotalTokens, "inputTokens": f.InputTokens, "outputTokens": f.OutputTokens,
			"cacheCreationTokens": f.CacheCreationInputTokens, "cacheReadTokens": f.CacheReadInputTokens, "requests": f.Requests, "costMicros": f.CostMicros} {
			if card[attr] != strconv.FormatInt(want, 10) {
				t.Errorf("%s card %s = %q; report says %d", what, attr, card[attr], want)
			}
		}
	}
	c := cards()
	check(c["period-today"], reportJSON(t, gw, "daily", "--since", today, "--until", today).Totals, "today")
	monday := report.WeekStart(time.Now(), zone).Format(time.DateOnly)
	check(c["period-week"], reportJSON(t, gw, "weekly", "--since", monday, "--until", today).Totals, "week")
	check(c["period-month"], reportJSON(t, gw, "monthly", "--since", today[:8]+"01", "--until", today).Totals, "month")
	if c["period-today"]["requests"] != strconv.Itoa(n) {
		t.Errorf("today's requests = %s; want the %d calls made", c["period-today"]["requests"], n)
	}
	must("limits on the overview", chromedp.WaitVisible(css(`tr[data-limit="alice-day"]`)))

	// The trend: the last 24 hours by hour and the last 30 days by day,
	// tokens and cost, stacked by model (issue 13 item 5).
	type chartInfo struct {
		ID      string   `json:"id"`
		Labels  []string `json:"labels"`
		Stacked bool     `json:"stacked"`
		Bands   int      `json:"bands"`
		Points  int      `json:"points"`
		Last    float64  `json:"last"`
	}
	charts := func(prefix string) map[string]chartInfo {
		t.Helper()
		list, err := chromedp.Run(ctx, chromedp.Evaluate[[]chartInfo](`window.tokenmeter.charts()`))
		if err != nil {
			t.Fatalf("read the charts: %v", err)
		}
		out := map[string]chartInfo{}
		for _, c := range list {
			if strings.HasPrefix(c.ID, prefix) {
				out[c.ID] = c
			}
		}
		return out
	}
	must("trend charts", poll(`window.tokenmeter.charts().filter(c => c.id.startsWith('trend-')).length === 4`, 20*time.Second))
	trend := charts("trend-")
	for id, points := range map[string]int{"trend-hourly-tokens": 24, "trend-hourly-cost": 24, "trend-daily-tokens": 30, "trend-daily-cost": 30} {
		c := trend[id]
		if c.Points != points || !c.Stacked || len(c.Labels) < 3 || c.Bands != len(c.Labels)-1 {
			t.Errorf("%s: %+v; want %d points, stacked, one band per model above the first (3 models or more)", id, c, points)
		}
	}
	if c, want := trend["trend-daily-tokens"], cards()["period-today"]["totalTokens"]; strconv.FormatFloat(c.Last, 'f', -1, 64) != want {
		t.Errorf("the daily trend's stack reaches %v tokens today; the today card says %s", c.Last, want)
	}

	// Live: new traffic shows without a reload.
	n += sdkTraffic(t, gw, alice, 1)
	waitCalls(t, gw, n)
	must("overview updates live", poll(fmt.Sprintf(`document.querySelector('[data-testid="period-today"]').dataset.requests === %q`, strconv.Itoa(n)), 30*time.Second))

	// Usage: group by model over the last week, compare the CSV with the report.
	since := time.Now().In(zone).AddDate(0, 0, -6).Format(time.DateOnly)
	setField := func(id, v string) chromedp.Action[chromedp.Void] {
		return eval(fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event('change')); return true; })(document.getElementById(%q))`, v, id))
	}
	must("usage page", chromedp.Navigate(gw.URL()+"/#/usage"), chromedp.WaitVisible(css("#usage-table")))
	must("group by model", setField("by", "model"), chromedp.WaitVisible(css(`#chart-tokens .uplot`)),
		poll(`document.querySelectorAll('#usage-table thead th').length === 10`, 20*time.Second))
	// The usage charts stack their series instead of overlaying them.
	for id, c := range charts("chart-") {
		if !c.Stacked || len(c.Labels) < 3 || c.Bands != len(c.Labels)-1 {
			t.Errorf("usage chart %s by model: %+v; want stacked bands", id, c)
		}
	}
	must("change range", setField("since", since),
		poll(fmt.Sprintf(`document.getElementById('since').value === %q && document.getElementById('by').value === 'model' && window.tokenmeter.csv().includes(',claude-sonnet-5-5,')`, since), 20*time.Second))
	must("download CSV", click("#csv"))
	var csvFile string
	for i := 0; i < 400 && csvFile == ""; i++ {
		ents, _ := os.ReadDir(dl)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".csv") {
				csvFile = filepath.Join(dl, e.Name())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if csvFile == "" {
		t.Fatal("the CSV download never arrived")
	}
	got, err := os.ReadFile(csvFile)
	if err != nil {
		t.Fatal(err)
	}
	wantCSV, stderr, err := run(t, "report", "daily", "--by", "model", "--since", since, "--until", today, "--csv", "--data", gw.Config.Data)
	if err != nil {
		t.Fatalf("report --csv: %v %s", err, stderr)
	}
	if string(got) != wantCSV {
		t.Errorf("downloaded CSV differs from report daily --by model --csv:\n got: %s\nwant: %s", got, wantCSV)
	}
	// Hourly, grouped by key.
	must("by hour and key", setField("grain", "hour"), setField("by", "key"),
		poll(`[...document.querySelectorAll('#usage-table tbody td')].some(td => td.textContent === 'key:alice') && /T\d\d:00/.test(document.querySelector('#usage-table tbody td').textContent)`, 20*time.Second))

	// Requests: the latest calls, filterable.
	must("requests page", chromedp.Navigate(gw.URL()+"/#/requests"), chromedp.WaitVisible(css("#requests-table tbody tr")),
		poll(fmt.Sprintf(`document.querySelectorAll('#requests-table tbody tr').length === %d`, n), 20*time.Second))
	must("filter requests", setField("f-key", "key:bob"), poll(`document.querySelectorAll('#requests-table tbody tr').length === 2`, 20*time.Second))
	// Older calls, a page at a time, with the live refresh paused.
	var older []tokenmeter.Event
	for i := range 120 {
		older = append(older, storetest.Event(fmt.Sprintf("older-%d", i), time.Now().Add(-24*time.Hour-time.Duration(i)*time.Minute), tokenmeter.Usage{InputTokens: 1}))
	}
	if _, err := gw.store.Append(context.Background(), older); err != nil {
		t.Fatal(err)
	}
	must("first page", setField("f-key", ""), poll(`document.querySelectorAll('#requests-table tbody tr').length === 100 && !!document.getElementById('older')`, 20*time.Second))
	must("older calls", click("#older"),
		poll(fmt.Sprintf(`document.querySelectorAll('#requests-table tbody tr').length === %d && !document.getElementById('older')`, n+120), 20*time.Second),
		poll(`!!document.getElementById('latest') && document.querySelector('#main').dataset.refreshed > 0`, 20*time.Second))
	must("still paged after a refresh", poll(fmt.Sprintf(`document.querySelectorAll('#requests-table tbody tr').length === %d`, n+120), 5*time.Second))
	must("back to the latest", click("#latest"), poll(`document.querySelectorAll('#requests-table tbody tr').length === 100`, 20*time.Second))

	// Limits and keys pages.
	must("limits page", chromedp.Navigate(gw.URL()+"/#/limits"), chromedp.WaitVisible(css(`tr[data-limit="alice-day"] .bar`)))
	must("keys page: create", chromedp.Navigate(gw.URL()+"/#/keys"), chromedp.WaitVisible(css("#keys-table")),
		chromedp.SendKeys(css("#k-name"), "browser-made"), chromedp.Click(css(`#key-create button[type="submit"]`)),
		chromedp.WaitVisible(css("#new-secret")), chromedp.WaitVisible(css(`tr[data-key="browser-made"]`)))
	secret, err := chromedp.Run(ctx, chromedp.Text(css("#new-secret")))
	if err != nil || !strings.HasPrefix(secret, "tm-") {
		t.Errorf("new key's secret shown as %q (%v); want tm-…", secret, err)
	}
	must("keys page: revoke", click(`button[data-action="revoke"][data-key="browser-made"]`),
		click(`button[data-action="revoke"][data-key="browser-made"]`),
		chromedp.WaitVisible(css(`tr[data-key="browser-made"] .pill.bad`)))

	// Follow an anomaly from the overview to its evidence on the Provider
	// counters page, with the counter charted.
	must("anomaly to evidence", chromedp.Navigate(gw.URL()+"/#/overview"),
		chromedp.WaitVisible(css(fmt.Sprintf(`#anomalies a[data-anomaly="%d"]`, anomalyID))),
		click(fmt.Sprintf(`#anomalies a[data-anomaly="%d"]`, anomalyID)),
		chromedp.WaitVisible(css("#anomaly-evidence")), chromedp.WaitVisible(css(`[data-series="anthropic-ratelimit-tokens"] .uplot`)))
	evidence, err := chromedp.Run(ctx, chromedp.Text(css("#anomaly-evidence")))
	if err != nil || !strings.Contains(evidence, "45 min before the advertised reset") || !strings.Contains(evidence, `"remaining": 27000`) {
		t.Errorf("anomaly evidence shows %q (%v); want its summary and evidence", evidence, err)
	}
	must("alerts page", chromedp.Navigate(gw.URL()+"/#/alerts"), chromedp.WaitVisible(css(`#main[data-loaded^="alerts:"]`)))
	must("reconciliation page", chromedp.Navigate(gw.URL()+"/#/reconcile"), chromedp.WaitVisible(css(`#main[data-loaded^="reconcile:"]`)))

	if v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.tokenmeter.cspViolations`)); err != nil || len(v) != 0 {
		t.Errorf("Content-Security-Policy violations in the admin's session: %v (%v)", v, err)
	}

	// A virtual key's session: its own usage, no admin pages.
	must("log out", chromedp.Navigate(gw.URL()+"/#/overview"), chromedp.WaitVisible(css(`[data-testid="period-today"]`)),
		chromedp.Click(css("#logout")), chromedp.WaitVisible(css("#token")))
	must("log in with a key", chromedp.SendKeys(css("#token"), alice), chromedp.Click(css("#login")),
		chromedp.WaitVisible(css(`[data-testid="period-today"]`)))
	var aliceToday report.Figures
	for _, row := range reportJSON(t, gw, "daily", "--since", today, "--until", today, "--by", "key").Rows {
		if row.Key == "key:alice" {
			aliceToday = row.Figures
		}
	}
	check(cards()["period-today"], aliceToday, "alice's today")
	keyView, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('who').textContent + '|' + [...document.querySelectorAll('#nav a')].map(a => a.dataset.page).join(',')`))
	if err != nil || keyView != "key alice|overview,usage,requests,limits" {
		t.Errorf("key session shows %q (%v); want key alice with overview, usage, requests, limits", keyView, err)
	}
	must("key's requests", chromedp.Navigate(gw.URL()+"/#/requests"),
		poll(fmt.Sprintf(`document.querySelectorAll('#requests-table tbody tr').length === %d && [...document.querySelectorAll('#requests-table tbody tr td:nth-child(4)')].every(td => td.textContent === 'key:alice')`, aliceToday.Requests), 20*time.Second))

	// Phone width: the overview still fits.
	must("phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(gw.URL()+"/#/overview"),
		chromedp.WaitVisible(css(`[data-testid="period-today"]`)))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil || overflow {
		t.Errorf("the overview overflows a 390 px wide screen (%v)", err)
	}

	if v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.tokenmeter.cspViolations`)); err != nil || len(v) != 0 {
		t.Errorf("Content-Security-Policy violations: %v (%v)", v, err)
	}
	br.checkConsole()
}

// BenchmarkOverviewData times the API calls one refresh of the dashboard's
// overview makes (today, this week and this month; status; limits; firing
// alerts; recent anomalies), the Requests page's first page and, for
// comparison, the monthly report the overview does not use, against a
// gateway over a ledger of 1,000,000 calls spread over 60 days. Target:
// under 100 ms for the overview's calls together. /api/overview caches
// the sums of past days for a minute; overview-cold is its first answer.
func BenchmarkOverviewData(b *testing.B) {
	dir := b.TempDir()
	now := time.Now()
	fillLedger(b, filepath.Join(dir, LedgerFile), now, 1_000_000, 60*24*time.Hour)
	cfg := DefaultConfig()
	cfg.Listen, cfg.Data, cfg.AdminToken = "127.0.0.1:0", dir, testAdminToken
	cfg.Upstreams = map[string]string{"anthropic": "http://127.0.0.1:9", "openai": "http://127.0.0.1:9"}
	s := &Serve{Config: cfg, Log: newLogger(io.Discard, "error")}
	if err := s.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	for _, l := range [][]string{{"day-tokens", "--scope", "global", "--metric", "tokens", "--max", "1000000000", "--window", "day"},
		{"week-cost", "--scope", "project:project-1", "--metric", "cost_usd", "--max", "500", "--window", "week"}} {
		if err := Run(context.Background(), append(append([]string{"limits", "set"}, l...), "--data", dir), strings.NewReader(""), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	today := now.In(localZone()).Format(time.DateOnly)
	week := now.Add(-7 * 24 * time.Hour).UTC().Format(time.RFC3339)
	paths := []string{"/api/overview", "/api/status", "/api/limits", "/api/alerts?state=firing", "/api/anomalies?since=" + week,
		"/api/requests?limit=100", "/api/usage?kind=monthly&since=" + today[:8] + "01&until=" + today,
		// The overview's trend, read once a minute: 48 hours by hour and 30
		// days by day, by model.
		"/api/hourly?by=model", "/api/usage?kind=daily&by=model&since=" + now.In(localZone()).AddDate(0, 0, -29).Format(time.DateOnly) + "&until=" + today}
	client := &http.Client{}
	get := func(p string) {
		req, _ := http.NewRequest("GET", s.URL()+p, nil)
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s = %d", p, resp.StatusCode)
		}
	}
	t0 := time.Now()
	get(paths[0]) // the overview with nothing cached: every day of the month read
	cold := time.Since(t0)
	for _, p := range paths { // warm up
		get(p)
	}
	per := make([]time.Duration, len(paths))
	b.ResetTimer()
	for b.Loop() {
		for i, p := range paths {
			t0 := time.Now()
			get(p)
			per[i] += time.Since(t0)
		}
	}
	b.ReportMetric(float64(cold.Microseconds())/1000, "ms/overview-cold")
	for i, p := range paths {
		b.ReportMetric(float64(per[i].Microseconds())/float64(b.N)/1000, "ms/"+strings.SplitN(strings.TrimPrefix(p, "/api/"), "?", 2)[0]+strconv.Itoa(i))
	}
}

// TestServeTLS: with --tls-cert/--tls-key the gateway speaks HTTPS and the
// session cookie is Secure; without TLS, listening beyond loopback logs a
// warning; one of the two files alone is a configuration error.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, func(s *Serve) {
		s.Config.TLSCert, s.Config.TLSKey, s.Config.AdminToken = certFile, keyFile, testAdminToken
	})
	if !strings.HasPrefix(gw.URL(), "https://") {
		t.Fatalf("URL() = %s; want https", gw.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(gw.URL()+"/ui/login", url.Values{"token": {testAdminToken}})
	if err != nil {
		t.Fatalf("log in over HTTPS: %v", err)
	}
	resp.Body.Close()
	if len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure || !resp.Cookies()[0].HttpOnly {
		t.Errorf("session cookie over HTTPS = %v; want Secure and HttpOnly", resp.Cookies())
	}
	if strings.Contains(gw.logs.String(), "without TLS") {
		t.Errorf("warned about TLS while serving HTTPS")
	}

	exposed := startGateway(t, up.URL, func(s *Serve) { s.Config.Listen = "0.0.0.0:0" })
	if !strings.Contains(exposed.logs.String(), "listening beyond this machine without TLS") {
		t.Errorf("no warning when listening on 0.0.0.0 without TLS; log:\n%s", exposed.logs)
	}
	local := startGateway(t, up.URL, nil)
	if strings.Contains(local.logs.String(), "without TLS") {
		t.Errorf("warned about TLS on loopback")
	}
	for _, l := range []struct {
		addr string
		want bool
	}{{"127.0.0.1:8787", true}, {"[::1]:80", true}, {"localhost:1", true}, {"0.0.0.0:8787", false}, {":8787", false}, {"10.1.2.3:80", false}, {"bad", false}} {
		if got := loopback(l.addr); got != l.want {
			t.Errorf("loopback(%q) = %v; want %v", l.addr, got, l.want)
		}
	}

	cfg := DefaultConfig()
	cfg.Data, cfg.TLSCert = t.TempDir(), certFile
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "tls_cert/tls_key") {
		t.Errorf("Validate with a certificate and no key = %v; want a tls_cert/tls_key error", err)
	}
}

// headless is a headless Chromium tab for a test, with every console
// error, warning and uncaught exception recorded.
type headless struct {
	t    *testing.T
	ctx  context.Context
	must func(what string, steps ...chromedp.Action[chromedp.Void])
	eval func(expr string) chromedp.Action[chromedp.Void]
	poll func(expr string, d time.Duration) chromedp.Action[chromedp.Void]

	mu          sync.Mutex
	consoleErrs []string
	stop        func()
}

// newBrowser starts chrome (the path of Debian's chromium) for t; it is
// stopped at the end of the test.
func newBrowser(t *testing.T, chrome string) *headless {
	t.Helper()
	br := &headless{t: t}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	bctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(cancelC)
	// The first Run starts the browser; it must not carry the test's
	// deadline (that would stop the browser), later ones do.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(cancel)
	br.ctx = ctx

	consoleDone := make(chan struct{})
	cctx, stopConsole := context.WithCancel(bctx)
	msgs := chromedp.Console(cctx)
	go func() {
		defer close(consoleDone)
		for m, err := range msgs {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				br.mu.Lock()
				br.consoleErrs = append(br.consoleErrs, m.String()+" "+m.URL)
				br.mu.Unlock()
			}
		}
	}()
	var once sync.Once
	br.stop = func() { once.Do(func() { stopConsole(); <-consoleDone }) }
	t.Cleanup(br.stop)
	br.must = func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
			br.mu.Lock()
			errs := strings.Join(br.consoleErrs, "\n")
			br.mu.Unlock()
			t.Fatalf("%s: %v (at %s)\npage text: %s\nconsole: %s", what, err, loc, html, errs)
		}
	}
	br.eval = func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[any](expr)(ctx, tg)
			return err
		})
	}
	br.poll = func(expr string, d time.Duration) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[any](expr, chromedp.WithPollingTimeout(d))(ctx, tg)
			return err
		})
	}
	return br
}

// checkConsole fails the test if the page logged an error or a warning.
func (br *headless) checkConsole() {
	br.t.Helper()
	br.stop()
	br.mu.Lock()
	defer br.mu.Unlock()
	if len(br.consoleErrs) > 0 {
		br.t.Errorf("console errors:\n%s", strings.Join(br.consoleErrs, "\n"))
	}
}

// seedCounters stores a provider counter that resets 45 minutes early, and
// the anomaly the counter watch finds in it; it returns the anomaly's id.
func seedCounters(t *testing.T, gw *gateway) int64 {
	t.Helper()
	// Provider counters with an early reset, as the counter watch stores them.
	now := time.Now()
	var samples []tokenmeter.Sample
	for i := range 12 {
		rem := int64(90000 - 7000*i)
		if i >= 9 {
			rem = 100000 - 1000*int64(i-9)
		}
		samples = append(samples, tokenmeter.Sample{Time: now.Add(time.Duration(i-12) * 5 * time.Minute), Provider: "anthropic",
			Credential: "cred-1a2b3c", Counter: "anthropic-ratelimit-tokens", Limit: 100000, Remaining: rem,
			Utilization: tokenmeter.NoValue, Reset: now.Add(time.Hour), Source: "gateway"})
	}
	if err := gw.store.AddSamples(context.Background(), samples); err != nil {
		t.Fatal(err)
	}
	anomalyID, err := gw.store.AddAnomaly(context.Background(), tokenmeter.Anomaly{Kind: tokenmeter.AnomalyEarlyReset, Provider: "anthropic",
		Credential: "cred-1a2b3c", Counter: "anthropic-ratelimit-tokens", Detected: now.Add(-15 * time.Minute), Start: now.Add(-20 * time.Minute),
		End: now.Add(-15 * time.Minute), Summary: "tokens remaining rose from 27000 to 100000 45 min before the advertised reset",
		Evidence: json.RawMessage(`{"before":{"remaining":27000},"after":{"remaining":100000},"advertised_reset":"in 45 min"}`)})
	if err != nil {
		t.Fatal(err)
	}

	return anomalyID
}

// TestDashboardScreenshots makes the pictures in docs/ from a gateway with
// two weeks of history: the overview (light, dark, phone), usage by model
// and the provider counters. It runs only with TOKENMETER_TEST_CHROMIUM
// and TOKENMETER_UPDATE_SCREENSHOTS=1, and fails on console errors.
func TestDashboardScreenshots(t *testing.T) {
	chrome := os.Getenv("TOKENMETER_TEST_CHROMIUM")
	if chrome == "" || os.Getenv("TOKENMETER_UPDATE_SCREENSHOTS") != "1" {
		t.Skip("set TOKENMETER_TEST_CHROMIUM and TOKENMETER_UPDATE_SCREENSHOTS=1 to rewrite docs/dashboard*.png")
	}
	gw, alice, bob := adminGateway(t)
	// Two weeks of calls before today, by model, key and project.
	zone := localZone()
	today := report.DayStart(time.Now(), zone)
	models := []string{"claude-sonnet-5-5", "claude-haiku-5-5", "gpt-5", "claude-opus-5-5"}
	keys := []string{"key:alice", "key:bob", "key:ci-nightly", "cred:5f3944927a83214b"}
	var evs []tokenmeter.Event
	for d := 14; d >= 1; d-- {
		day := today.AddDate(0, 0, -d)
		calls := 30 + (d*37)%40
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			calls /= 3
		}
		for i := range calls {
			at := day.Add(8*time.Hour + time.Duration(i*600/calls)*time.Minute)
			m := models[(i+d)%len(models)]
			in, out := int64(2000+(i*d*131)%9000), int64(300+(i*d*71)%2500)
			ev := storetest.Event(fmt.Sprintf("hist-%d-%d", d, i), at, tokenmeter.Usage{InputTokens: in, OutputTokens: out,
				CacheReadTokens: in * 3, CacheWrite5mTokens: in / 4})
			ev.Model, ev.Principal, ev.Project = m, keys[(i*7+d)%len(keys)], []string{"web", "ci", "research"}[(i+d)%3]
			if m == "gpt-5" {
				ev.Provider, ev.Endpoint = "openai", "/v1/chat/completions"
			}
			ev.Cost = tokenmeter.Micros(in*3 + out*15 + in*3*3/10)
			evs = append(evs, ev)
		}
	}
	if _, err := gw.store.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	n := 5 + sdkTraffic(t, gw, alice, 4) + sdkTraffic(t, gw, bob, 2) + sdkTraffic(t, gw, "sk-ant-api03-passthrough", 2)
	waitCalls(t, gw, n)
	for _, l := range [][]string{
		{"alice-day", "--scope", "key:alice", "--metric", "tokens", "--max", "12000", "--window", "day"},
		{"team-week", "--scope", "global", "--metric", "cost_usd", "--max", "50", "--window", "week"},
		{"ci-block", "--scope", "project:ci", "--metric", "tokens", "--max", "400000", "--window", "5h-block", "--mode", "hard"},
	} {
		if _, stderr, err := run(t, append(append([]string{"limits", "set"}, l...), "--data", gw.Config.Data)...); err != nil {
			t.Fatalf("limits set %v: %v %s", l, err, stderr)
		}
	}
	anomalyID := seedCounters(t, gw)

	br := newBrowser(t, chrome)
	ctx, must := br.ctx, br.must
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err == nil {
			err = os.WriteFile(filepath.Join("..", "..", "docs", name), png, 0o644)
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}
	set := func(id, v string) chromedp.Action[chromedp.Void] {
		return br.eval(fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event('change')); return true; })(document.getElementById(%q))`, v, id))
	}
	must("log in", chromedp.Navigate(gw.URL()+"/"), chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), testAdminToken), chromedp.Click(css("#login")),
		chromedp.WaitVisible(css(`[data-testid="period-today"]`)), chromedp.WaitVisible(css(`tr[data-limit="alice-day"]`)),
		chromedp.WaitVisible(css("#trend-daily-cost .uplot")))
	// Tall enough for the cards, the block, the limits and the trend.
	must("overview height", chromedp.EmulateViewport(1280, 1500))
	shot("dashboard.png")
	must("usual height", chromedp.EmulateViewport(1280, 1000))
	must("usage by model", chromedp.Navigate(gw.URL()+"/#/usage"), chromedp.WaitVisible(css("#usage-table")),
		set("since", today.AddDate(0, 0, -14).Format(time.DateOnly)), br.poll(`document.getElementById('since').value.length > 0 && document.querySelectorAll('#usage-table tbody tr').length > 10`, 20*time.Second),
		set("by", "model"), br.poll(`document.querySelectorAll('#usage-table thead th').length === 10`, 20*time.Second),
		chromedp.WaitVisible(css("#chart-tokens .uplot")))
	shot("dashboard-usage.png")
	must("counters", chromedp.Navigate(gw.URL()+fmt.Sprintf("/#/counters?anomaly=%d", anomalyID)), chromedp.WaitVisible(css("#anomaly-evidence")),
		chromedp.WaitVisible(css(`[data-series="anthropic-ratelimit-tokens"] .uplot`)))
	shot("dashboard-counters.png")
	must("dark mode", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}), chromedp.Navigate(gw.URL()+"/#/usage"), chromedp.WaitVisible(css("#chart-tokens .uplot")))
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if err != nil || bg != "rgb(18, 21, 27)" {
		t.Errorf("dark mode background = %q (%v); want the dark theme's rgb(18, 21, 27)", bg, err)
	}
	shot("dashboard-dark.png")
	must("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(gw.URL()+"/#/overview"),
		chromedp.WaitVisible(css(`[data-testid="period-today"]`)))
	shot("dashboard-phone.png")
	br.checkConsole()
}
