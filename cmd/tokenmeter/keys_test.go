package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/v2/option"
	openaisdk "github.com/openai/openai-go/v3"
	openaiopt "github.com/openai/openai-go/v3/option"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// The provider credentials the test gateways send upstream.
const (
	upstreamAnthropicKey = "sk-ant-api03-UPSTREAM-secret-0001"
	upstreamOpenAIKey    = "sk-proj-UPSTREAM-secret-0002"
)

// credTap is the fake upstream, recording the credential headers of every
// request it receives.
type credTap struct {
	fake *fakeupstream.Server
	mu   sync.Mutex
	seen []http.Header
}

func (c *credTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.seen = append(c.seen, r.Header.Clone())
	c.mu.Unlock()
	c.fake.ServeHTTP(w, r)
}

func (c *credTap) headers() []http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]http.Header(nil), c.seen...)
}

// keysGateway runs a gateway in front of a credTap whose environment holds
// the provider credentials named in env (nil: both).
func keysGateway(t *testing.T, env map[string]string, edit func(*Serve)) (*gateway, *credTap) {
	t.Helper()
	if env == nil {
		env = map[string]string{"ANTHROPIC_API_KEY": upstreamAnthropicKey, "OPENAI_API_KEY": upstreamOpenAIKey}
	}
	tap := &credTap{fake: fakeupstream.New(fakeupstream.Options{})}
	up := httptest.NewServer(tap)
	t.Cleanup(up.Close)
	gw := startGateway(t, up.URL, func(s *Serve) {
		s.Getenv = func(k string) string { return env[k] }
		if edit != nil {
			edit(s)
		}
	})
	return gw, tap
}

// createKey runs keys create --json and returns the new key's secret.
func createKey(t *testing.T, data string, args ...string) string {
	t.Helper()
	out, stderr, err := run(t, append([]string{"keys", "create", "--json", "--data", data}, args...)...)
	if err != nil {
		t.Fatalf("keys create %s: %v\n%s", args, err, stderr)
	}
	var j keyJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil || !tokenmeter.IsKeySecret(j.Key) {
		t.Fatalf("keys create --json output %q (%v): want a key", out, err)
	}
	return j.Key
}

const anthropicBody = `{"model":"claude-haiku-5-5","max_tokens":50,"messages":[{"role":"user","content":"hi [[fake output=7]]"}]}`
const openaiBody = `{"model":"gpt-5","messages":[{"role":"user","content":"hi [[fake output=7]]"}]}`

// callWith sends one request on route ("anthropic" or "openai") with
// credential in the header that route's SDK uses.
func callWith(t *testing.T, gw *gateway, route, credential string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	h := map[string]string{}
	for k, v := range hdr {
		h[k] = v
	}
	if route == "anthropic" {
		h["x-api-key"], h["anthropic-version"] = credential, "2023-06-01"
		return post(t, gw.URL()+"/anthropic/v1/messages", h, anthropicBody)
	}
	h["Authorization"] = "Bearer " + credential
	return post(t, gw.URL()+"/openai/v1/chat/completions", h, openaiBody)
}

// checkNoKeyUpstream fails if any request the upstream received carried a
// virtual key, or a credential other than the provider's.
func checkUpstreamCredentials(t *testing.T, tap *credTap) {
	t.Helper()
	for _, h := range tap.headers() {
		for _, name := range []string{"X-Api-Key", "Authorization"} {
			for _, v := range h.Values(name) {
				if strings.Contains(v, tokenmeter.KeyPrefix) {
					t.Errorf("upstream received a virtual key in %s: %s…", name, v[:10])
				}
			}
		}
	}
}

// TestVirtualKeySDKs drives both routes with the official SDKs holding a
// virtual key: the upstream receives the gateway's provider credential
// (and never the key), the ledger records the call as key:NAME with the
// key's project.
func TestVirtualKeySDKs(t *testing.T) {
	gw, tap := keysGateway(t, nil, nil)
	secret := createKey(t, gw.Config.Data, "--name", "alice", "--project", "web")
	ctx := context.Background()

	ac := anthropicsdk.NewClient(anthropicopt.WithBaseURL(gw.URL()+"/anthropic"), anthropicopt.WithAPIKey(secret), anthropicopt.WithMaxRetries(0))
	params := anthropicsdk.MessageNewParams{Model: "claude-sonnet-5-5", MaxTokens: 100,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("hello [[fake output=5]]"))}}
	var raw *http.Response
	if _, err := ac.Messages.New(ctx, params, anthropicopt.WithResponseInto(&raw)); err != nil {
		t.Fatalf("anthropic SDK with a virtual key: %v", err)
	}
	ids := []string{raw.Header.Get(HeaderRequestIDForTest)}
	stream := ac.Messages.NewStreaming(ctx, params, anthropicopt.WithResponseInto(&raw))
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("anthropic SDK stream with a virtual key: %v", err)
	}
	ids = append(ids, raw.Header.Get(HeaderRequestIDForTest))

	oc := openaisdk.NewClient(openaiopt.WithBaseURL(gw.URL()+"/openai/v1"), openaiopt.WithAPIKey(secret), openaiopt.WithMaxRetries(0))
	chat := openaisdk.ChatCompletionNewParams{Model: "gpt-5", Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("hi [[fake output=4]]")}}
	if _, err := oc.Chat.Completions.New(ctx, chat, openaiopt.WithResponseInto(&raw)); err != nil {
		t.Fatalf("openai SDK with a virtual key: %v", err)
	}
	ids = append(ids, raw.Header.Get(HeaderRequestIDForTest))

	for _, id := range ids {
		ev := gw.waitCompleted(t, id)
		if ev.Principal != "key:alice" || ev.Project != "web" || ev.Outcome != tokenmeter.OutcomeOK || ev.Usage.OutputTokens == 0 {
			t.Errorf("event %s: principal %q, project %q, outcome %s, output %d; want key:alice, web, ok, some output",
				id, ev.Principal, ev.Project, ev.Outcome, ev.Usage.OutputTokens)
		}
	}
	hs := tap.headers()
	if len(hs) != 3 {
		t.Fatalf("upstream received %d requests, want 3", len(hs))
	}
	for i, want := range []struct{ name, value, absent string }{
		{"X-Api-Key", upstreamAnthropicKey, "Authorization"},
		{"X-Api-Key", upstreamAnthropicKey, "Authorization"},
		{"Authorization", "Bearer " + upstreamOpenAIKey, "X-Api-Key"},
	} {
		if got := hs[i].Values(want.name); len(got) != 1 || got[0] != want.value {
			t.Errorf("upstream request %d: %s = %q, want the gateway's provider credential", i, want.name, got)
		}
		if v := hs[i].Get(want.absent); v != "" {
			t.Errorf("upstream request %d carries %s, want none", i, want.absent)
		}
	}
	checkUpstreamCredentials(t, tap)
}

// TestVirtualKeyProject: a key's project is fixed; a key without one takes
// the x-tokenmeter-project header. Either way the header is not forwarded.
func TestVirtualKeyProject(t *testing.T) {
	gw, tap := keysGateway(t, nil, nil)
	pinned := createKey(t, gw.Config.Data, "--name", "pinned", "--project", "web")
	free := createKey(t, gw.Config.Data, "--name", "free")
	for _, tt := range []struct{ secret, header, want string }{
		{pinned, "other", "web"},
		{pinned, "", "web"},
		{free, "mobile", "mobile"},
		{free, "", ""},
	} {
		hdr := map[string]string{}
		if tt.header != "" {
			hdr["X-Tokenmeter-Project"] = tt.header
		}
		resp, body := callWith(t, gw, "anthropic", tt.secret, hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if ev := gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest)); ev.Project != tt.want {
			t.Errorf("key %s with project header %q: recorded project %q, want %q", tokenmeter.KeyDisplayPrefix(tt.secret), tt.header, ev.Project, tt.want)
		}
	}
	for _, h := range tap.headers() {
		if h.Get("X-Tokenmeter-Project") != "" {
			t.Errorf("upstream received x-tokenmeter-project")
		}
	}
}

// refusal checks a refused request: 401 in the route's error shape, a
// message naming the key by its prefix only.
func checkRefusal(t *testing.T, route, secret string, resp *http.Response, body []byte, status int, wantMsg string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d: %s", route, resp.StatusCode, status, body)
	}
	if resp.Header.Get(HeaderRequestIDForTest) == "" {
		t.Errorf("%s: refusal without %s", route, HeaderRequestIDForTest)
	}
	var msg string
	if route == "anthropic" {
		var e struct {
			Type  string `json:"type"`
			Error struct{ Type, Message string }
		}
		wantType := map[int]string{401: "authentication_error", 500: "api_error"}[status]
		if err := json.Unmarshal(body, &e); err != nil || e.Type != "error" || e.Error.Type != wantType {
			t.Errorf("anthropic refusal %s: want {type:error, error:{type:%s}}", body, wantType)
		}
		msg = e.Error.Message
	} else {
		var e struct {
			Error struct {
				Type, Message string
				Code          *string
			}
		}
		wantType, wantCode := "invalid_request_error", "invalid_api_key"
		if status == 500 {
			wantType, wantCode = "server_error", ""
		}
		err := json.Unmarshal(body, &e)
		if err != nil || e.Error.Type != wantType || (wantCode != "" && (e.Error.Code == nil || *e.Error.Code != wantCode)) {
			t.Errorf("openai refusal %s: want {error:{type:%s, code:%s}}", body, wantType, wantCode)
		}
		msg = e.Error.Message
	}
	if !strings.Contains(msg, wantMsg) {
		t.Errorf("%s refusal message %q, want it to mention %q", route, msg, wantMsg)
	}
	if len(secret) > len(tokenmeter.KeyPrefix)+6 && (strings.Contains(string(body), secret) || strings.Contains(string(body), secret[len(tokenmeter.KeyPrefix)+6:])) {
		t.Errorf("%s refusal echoes the key beyond its prefix: %s", route, body)
	}
}

// TestVirtualKeyRefused: unknown, revoked, expired and rotated-away keys
// get 401 on both routes, in the provider's shape; nothing reaches the
// upstream and nothing is recorded.
func TestVirtualKeyRefused(t *testing.T) {
	gw, tap := keysGateway(t, nil, nil)
	data := gw.Config.Data
	revoked := createKey(t, data, "--name", "gone")
	if _, _, err := run(t, "keys", "revoke", "gone", "--data", data); err != nil {
		t.Fatal(err)
	}
	old := createKey(t, data, "--name", "rotated")
	out, _, err := run(t, "keys", "rotate", "rotated", "--json", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var rotated keyJSON
	json.Unmarshal([]byte(out), &rotated)
	// An expired key: the CLI refuses a past expiry, so the store is told directly.
	expired := tokenmeter.NewKeySecret()
	if err := gw.store.CreateKey(context.Background(), tokenmeter.VirtualKey{Name: "expired", Prefix: tokenmeter.KeyDisplayPrefix(expired),
		Hash: tokenmeter.HashKey(expired), Created: time.Now().Add(-48 * time.Hour), Expires: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, secret, msg string
	}{
		{"unknown", tokenmeter.NewKeySecret(), "is not valid"},
		{"malformed", "tm-short", "is not valid"},
		{"revoked", revoked, "was revoked"},
		{"expired", expired, "expired at"},
		{"rotated-old", old, "is not valid"},
	}
	before := len(gw.completed(t))
	for _, tc := range cases {
		for _, route := range []string{"anthropic", "openai"} {
			t.Run(tc.name+"/"+route, func(t *testing.T) {
				resp, body := callWith(t, gw, route, tc.secret, nil)
				checkRefusal(t, route, tc.secret, resp, body, http.StatusUnauthorized, tokenmeter.KeyDisplayPrefix(tc.secret)+"…")
				if !strings.Contains(string(body), tc.msg) {
					t.Errorf("refusal %s, want it to say %q", body, tc.msg)
				}
			})
		}
	}
	// The SDKs see an authentication error, not a retryable one.
	ac := anthropicsdk.NewClient(anthropicopt.WithBaseURL(gw.URL()+"/anthropic"), anthropicopt.WithAPIKey(revoked), anthropicopt.WithMaxRetries(0))
	_, err = ac.Messages.New(context.Background(), anthropicsdk.MessageNewParams{Model: "claude-haiku-5-5", MaxTokens: 5,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("x"))}})
	var ae *anthropicsdk.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
		t.Errorf("anthropic SDK with a revoked key: %v; want a 401 API error", err)
	}
	oc := openaisdk.NewClient(openaiopt.WithBaseURL(gw.URL()+"/openai/v1"), openaiopt.WithAPIKey(old), openaiopt.WithMaxRetries(0))
	_, err = oc.Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{Model: "gpt-5",
		Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("x")}})
	var oe *openaisdk.Error
	if !errors.As(err, &oe) || oe.StatusCode != http.StatusUnauthorized || oe.Code != "invalid_api_key" {
		t.Errorf("openai SDK with a rotated-away key: %v; want a 401 invalid_api_key", err)
	}
	// Two different virtual keys in one request are refused too.
	resp, body := post(t, gw.URL()+"/anthropic/v1/messages", map[string]string{"x-api-key": rotated.Key, "Authorization": "Bearer " + revoked}, anthropicBody)
	checkRefusal(t, "anthropic", rotated.Key, resp, body, http.StatusUnauthorized, "two different virtual keys")

	if n := len(tap.headers()); n != 0 {
		t.Errorf("upstream received %d refused requests", n)
	}
	if after := len(gw.completed(t)); after != before {
		t.Errorf("refused requests recorded %d calls", after-before)
	}
	// The new key of the rotation works, on both routes.
	for _, route := range []string{"anthropic", "openai"} {
		if resp, body := callWith(t, gw, route, rotated.Key, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s with the rotated key: %d %s", route, resp.StatusCode, body)
		}
	}
	checkUpstreamCredentials(t, tap)
}

// TestVirtualKeyRevocationTakesEffect: a key revoked or rotated by another
// process (the CLI, with its own database handle) stops working at a
// gateway that has just used it within about a second.
func TestVirtualKeyRevocationTakesEffect(t *testing.T) {
	gw, _ := keysGateway(t, nil, nil)
	for _, action := range []string{"revoke", "rotate"} {
		t.Run(action, func(t *testing.T) {
			secret := createKey(t, gw.Config.Data, "--name", "k-"+action)
			for range 3 { // warm the gateway's cache
				if resp, body := callWith(t, gw, "openai", secret, nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("before %s: %d %s", action, resp.StatusCode, body)
				}
			}
			if _, stderr, err := run(t, "keys", action, "k-"+action, "--data", gw.Config.Data); err != nil {
				t.Fatalf("keys %s: %v %s", action, err, stderr)
			}
			start := time.Now()
			for {
				resp, _ := callWith(t, gw, "anthropic", secret, nil)
				if resp.StatusCode == http.StatusUnauthorized {
					break
				}
				if time.Since(start) > 1500*time.Millisecond {
					t.Fatalf("key still accepted %v after keys %s", time.Since(start), action)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if d := time.Since(start); d > time.Second+200*time.Millisecond {
				t.Errorf("keys %s took %v to reach the gateway, want about a second at most", action, d)
			}
		})
	}
}

// TestRequireVirtualKey: with require_virtual_key, pass-through credentials
// and requests without any are refused with 401; virtual keys work.
func TestRequireVirtualKey(t *testing.T) {
	gw, tap := keysGateway(t, nil, func(s *Serve) { s.Config.RequireVirtualKey = true })
	for _, route := range []string{"anthropic", "openai"} {
		resp, body := callWith(t, gw, route, "sk-ant-api03-passthrough", nil)
		checkRefusal(t, route, "", resp, body, http.StatusUnauthorized, "requires a tokenmeter virtual key")
		resp, body = post(t, gw.URL()+"/"+route+"/v1/models", nil, "")
		checkRefusal(t, route, "", resp, body, http.StatusUnauthorized, "requires a tokenmeter virtual key")
	}
	if n := len(tap.headers()); n != 0 {
		t.Fatalf("upstream received %d refused requests", n)
	}
	secret := createKey(t, gw.Config.Data, "--name", "team")
	for _, route := range []string{"anthropic", "openai"} {
		if resp, body := callWith(t, gw, route, secret, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s with a virtual key under require_virtual_key: %d %s", route, resp.StatusCode, body)
		}
	}
	checkUpstreamCredentials(t, tap)

	// Without it, pass-through keeps working next to virtual keys.
	gw2, tap2 := keysGateway(t, nil, nil)
	resp, body := callWith(t, gw2, "anthropic", "sk-ant-api03-passthrough", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pass-through: %d %s", resp.StatusCode, body)
	}
	if got := tap2.headers()[0].Get("X-Api-Key"); got != "sk-ant-api03-passthrough" {
		t.Errorf("pass-through credential reached the upstream as %q", got)
	}
	if ev := gw2.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest)); ev.Principal != "cred:"+tokenHash("sk-ant-api03-passthrough") {
		t.Errorf("pass-through principal %q", ev.Principal)
	}
}

// TestVirtualKeyNoProviderCredential: a route whose provider credential is
// not configured refuses virtual keys with 500 and says why in the log,
// without any secret; other routes still work.
func TestVirtualKeyNoProviderCredential(t *testing.T) {
	gw, tap := keysGateway(t, map[string]string{"ANTHROPIC_API_KEY": upstreamAnthropicKey}, nil)
	secret := createKey(t, gw.Config.Data, "--name", "k")
	resp, body := callWith(t, gw, "openai", secret, nil)
	checkRefusal(t, "openai", secret, resp, body, http.StatusInternalServerError, "no provider credential is configured for route openai")
	if resp, body := callWith(t, gw, "anthropic", secret, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("anthropic route: %d %s", resp.StatusCode, body)
	}
	logs := gw.logs.String()
	if !strings.Contains(logs, "route=openai fix=\"set $OPENAI_API_KEY in the gateway's environment and restart it\"") ||
		!strings.Contains(logs, "no provider credential configured for route openai (set $OPENAI_API_KEY") {
		t.Errorf("log does not explain the missing credential, at start and with the refusal (docs/keys.md):\n%s", logs)
	}
	if len(tap.headers()) != 1 {
		t.Errorf("upstream received %d requests, want the anthropic one only", len(tap.headers()))
	}
	// An unknown key (one created in another ledger, say) is refused with
	// a log line that says where the gateway looked.
	other := createKey(t, newLedger(t), "--name", "elsewhere")
	if resp, _ := callWith(t, gw, "anthropic", other, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a key of another ledger: %d", resp.StatusCode)
	}
	if want := "not in the ledger at " + filepath.Join(gw.Config.Data, LedgerFile) + ": created with another --data or --config?"; !strings.Contains(gw.logs.String(), want) {
		t.Errorf("the unknown key's log line lacks %q:\n%s", want, gw.logs.String())
	}
}

// TestRequireVirtualKeyWithoutCredential: --require-virtual-key with a
// route that has no provider credential refuses everything on it; the
// gateway says so at start, as a warning, even with no key in the ledger.
func TestRequireVirtualKeyWithoutCredential(t *testing.T) {
	gw, _ := keysGateway(t, map[string]string{"ANTHROPIC_API_KEY": upstreamAnthropicKey}, func(s *Serve) { s.Config.RequireVirtualKey = true })
	logs := gw.logs.String()
	want := `level=WARN msg="no provider credential for route: with --require-virtual-key every request on it is refused" route=openai`
	if !strings.Contains(logs, want) {
		t.Errorf("start-up log lacks %q:\n%s", want, logs)
	}
	if strings.Contains(logs, "route=anthropic") {
		t.Errorf("the route with a credential is warned about:\n%s", logs)
	}
}

// TestCredentialConfig: the config file names environment variables for
// the provider credentials and may require virtual keys; a credential
// written into the file is refused without being echoed.
func TestCredentialConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", time.Now().UnixNano()))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := DefaultConfig()
	if err := c.LoadFile(write("upstreams:\n  groq: https://api.groq.com/openai\nrequire_virtual_key: true\ncredentials:\n  groq: GROQ_API_KEY\n  openai: TEAM_OPENAI_KEY\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.RequireVirtualKey || c.CredentialEnv("groq") != "GROQ_API_KEY" || c.CredentialEnv("openai") != "TEAM_OPENAI_KEY" ||
		c.CredentialEnv("anthropic") != "ANTHROPIC_API_KEY" {
		t.Errorf("config %+v", c)
	}
	c = DefaultConfig()
	if err := c.LoadFile(write("credentials:\n  anthropic: sk-ant-api03-oops-secret\n  nosuch: X\n  other: sk-proj-oops-secret\n")); err != nil {
		t.Fatal(err)
	}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "credentials.anthropic = (redacted)") || !strings.Contains(err.Error(), "credentials.nosuch = X: no upstream") ||
		!strings.Contains(err.Error(), "credentials.other = (redacted)") {
		t.Errorf("Validate = %v; want the inline secret and the unknown route refused", err)
	}
	if err != nil && strings.Contains(err.Error(), "oops-secret") {
		t.Errorf("Validate echoes the credential: %v", err)
	}
}

// TestKeysCLI checks the keys commands' output and their one-line errors.
func TestKeysCLI(t *testing.T) {
	data := newLedger(t)
	out, _, err := run(t, "keys", "create", "--name", "alice", "--project", "web", "--expires", "2099-01-01", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var secret string
	for _, f := range strings.Fields(out) {
		if tokenmeter.IsKeySecret(f) {
			secret = f
		}
	}
	if secret == "" || !strings.Contains(out, "shown this once") || !strings.Contains(out, "ANTHROPIC_BASE_URL=") {
		t.Fatalf("keys create output lacks the key or the hint:\n%s", out)
	}
	createKey(t, data, "--name", "bob")
	if _, _, err := run(t, "keys", "revoke", "bob", "--data", data); err != nil {
		t.Fatal(err)
	}

	out, _, err = run(t, "keys", "list", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	prefix := tokenmeter.KeyDisplayPrefix(secret)
	if len(lines) != 3 || !strings.Contains(lines[0], "STATUS") ||
		!strings.Contains(lines[1], "alice") || !strings.Contains(lines[1], prefix+"…") || !strings.Contains(lines[1], "web") ||
		!strings.Contains(lines[1], "2099-01-01T00:00:00Z") || !strings.HasSuffix(lines[1], "active") ||
		!strings.Contains(lines[2], "bob") || !strings.HasSuffix(lines[2], "revoked") {
		t.Errorf("keys list:\n%s", out)
	}
	out, _, err = run(t, "keys", "list", "--json", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Keys) != 2 {
		t.Fatalf("keys list --json: %v\n%s", err, out)
	}
	for _, k := range list.Keys {
		if _, ok := k["key"]; ok {
			t.Errorf("keys list --json shows a key: %v", k)
		}
		if _, ok := k["hash"]; ok {
			t.Errorf("keys list --json shows a hash: %v", k)
		}
	}
	if list.Keys[0]["name"] != "alice" || list.Keys[0]["prefix"] != prefix || list.Keys[0]["status"] != "active" || list.Keys[1]["status"] != "revoked" {
		t.Errorf("keys list --json: %s", out)
	}
	if strings.Contains(out, secret[len(prefix):]) || strings.Contains(out, tokenmeter.HashKey(secret)) {
		t.Errorf("keys list --json shows key material: %s", out)
	}
	empty := t.TempDir()
	if out, _, err := run(t, "keys", "list", "--json", "--data", empty); err == nil || !strings.Contains(message(err), "no ledger at") {
		t.Errorf("keys list of an empty data dir: %v %s; want no ledger at ...", err, out)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"keys"}, "keys: name one of create, list, revoke or rotate"},
		{[]string{"keys", "delete"}, `keys: unknown command "delete"`},
		{[]string{"keys", "create"}, "keys create: --name is required"},
		{[]string{"keys", "create", "--nme", "x"}, "keys create: unknown flag --nme (did you mean --name?)"},
		{[]string{"keys", "create", "--name"}, "keys create: flag needs an argument: -name"},
		{[]string{"keys", "create", "--name", "a b"}, "keys create: --name: key name \"a b\" must be"},
		{[]string{"keys", "create", "--name", "x", "extra"}, `keys create: unexpected argument "extra"`},
		{[]string{"keys", "create", "--name", "x", "--expires", "2026-13-01"}, "keys create: --expires: expiry \"2026-13-01\": want YYYY-MM-DD"},
		{[]string{"keys", "create", "--name", "x", "--expires", "2020-01-01"}, "keys create: --expires 2020-01-01 is in the past"},
		{[]string{"keys", "create", "--name", "x", "--project", "a\tb"}, "keys create: --project: project must be"},
		{[]string{"keys", "create", "--name", "x", "--json=maybe"}, "keys create: invalid boolean value"},
		{[]string{"keys", "create", "--name", "alice"}, `a key named "alice" exists already`},
		{[]string{"keys", "list", "--yaml"}, "keys list: unknown flag --yaml"},
		{[]string{"keys", "list", "x"}, `keys list: unexpected argument "x"`},
		{[]string{"keys", "revoke"}, "keys revoke: name the key"},
		{[]string{"keys", "revoke", "a", "b"}, `keys revoke: unexpected argument "b"`},
		{[]string{"keys", "revoke", "nobody"}, `no key named "nobody"`},
		{[]string{"keys", "revoke", "tm-abcdefghij"}, `keys revoke: tm-abcdef… looks like a virtual key, not a key name`},
		{[]string{"keys", "create", "--name", "tm-ci"}, `keys create: --name: tm-ci… looks like a virtual key`},
		{[]string{"keys", "revoke", "bob"}, `key "bob" was revoked already`},
		{[]string{"keys", "rotate"}, "keys rotate: name the key"},
		{[]string{"keys", "rotate", "bob"}, `key "bob" is revoked and cannot be rotated`},
		{[]string{"keys", "rotate", "-x", "alice"}, "keys rotate: unknown flag --x"},
		{[]string{"keys", "revoke", "x", "--data", empty}, "no ledger at"},
	} {
		args := tt.args
		if args[len(args)-1] != empty && len(args) > 1 && args[1] != "delete" {
			args = append(append([]string(nil), args...), "--data", data)
		}
		if tt.args[len(tt.args)-1] == "--name" {
			args = tt.args // the flag must stay last
		}
		_, stderr, err := run(t, args...)
		if err == nil {
			t.Errorf("%v: no error", tt.args)
			continue
		}
		var msg string
		var ex *exitError
		if errors.As(err, &ex) {
			msg = ex.msg
			if ex.code != 2 {
				t.Errorf("%v: exit code %d, want 2", tt.args, ex.code)
			}
		} else {
			msg = message(err)
		}
		if !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: error %q, want one line containing %q", tt.args, msg, tt.want)
		}
		if strings.Contains(stderr, "Flags of") || strings.Contains(stderr, "Usage of") {
			t.Errorf("%v: a bad flag printed the flag list:\n%s", tt.args, stderr)
		}
	}
}

// TestKeysNoSecretLeaks is G6 for virtual keys: after creating, using
// (accepted and refused), rotating and revoking keys, neither a key nor the
// provider credentials appear anywhere in the data directory, the gateway's
// log or any command's output, except the key in the one output of keys
// create or rotate that made it.
func TestKeysNoSecretLeaks(t *testing.T) {
	gw, tap := keysGateway(t, nil, nil)
	data := gw.Config.Data
	var outputs bytes.Buffer
	runOut := func(args ...string) string {
		t.Helper()
		out, stderr, err := run(t, args...)
		outputs.WriteString(out + stderr)
		if err != nil {
			outputs.WriteString(err.Error())
		}
		return out
	}
	a := createKey(t, data, "--name", "alice", "--project", "web")
	b := createKey(t, data, "--name", "bob")
	var secrets = []string{a, b}
	for _, s := range []string{a, b} {
		for _, route := range []string{"anthropic", "openai"} {
			callWith(t, gw, route, s, nil)
		}
	}
	out, _, err := run(t, "keys", "rotate", "alice", "--json", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	var rot keyJSON
	json.Unmarshal([]byte(out), &rot)
	secrets = append(secrets, rot.Key)
	runOut("keys", "revoke", "bob", "--data", data)
	time.Sleep(600 * time.Millisecond) // past the key cache
	for _, s := range secrets {
		for _, route := range []string{"anthropic", "openai"} {
			resp, body := callWith(t, gw, route, s, nil)
			outputs.Write(body)
			outputs.WriteString(fmt.Sprint(resp.Header))
		}
	}
	// Bad CLI input that carries a key where a name belongs.
	runOut("keys", "revoke", a, "--data", data)
	runOut("keys", "rotate", rot.Key, "--data", data)
	runOut("keys", "list", "--data", data)
	runOut("keys", "list", "--json", "--data", data)
	runOut("report", "daily", "--json", "--by", "key", "--data", data)
	runOut("report", "daily", "--data", data)
	runOut("verify", "--data", data)
	checkUpstreamCredentials(t, tap)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gw.Close(ctx) // flush everything to the files
	var files bytes.Buffer
	filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			files.Write(b)
		}
		return nil
	})
	if files.Len() == 0 {
		t.Fatal("data directory is empty")
	}
	logs := gw.logs.String()
	if !strings.Contains(logs, "request refused") {
		t.Errorf("the refusals were not logged:\n%s", logs)
	}
	for _, s := range secrets {
		body := s[len(tokenmeter.KeyPrefix)+6:] // all but the displayable prefix
		for where, text := range map[string]string{"data directory": files.String(), "gateway log": logs, "command output": outputs.String()} {
			if strings.Contains(text, body) {
				t.Errorf("the %s holds virtual key %s…", where, tokenmeter.KeyDisplayPrefix(s))
			}
		}
		for where, text := range map[string]string{"gateway log": logs, "command output": outputs.String()} {
			if strings.Contains(text, tokenmeter.HashKey(s)) {
				t.Errorf("the %s holds the hash of virtual key %s…", where, tokenmeter.KeyDisplayPrefix(s))
			}
		}
	}
	for _, cred := range []string{upstreamAnthropicKey, upstreamOpenAIKey} {
		for where, text := range map[string]string{"data directory": files.String(), "gateway log": logs, "command output": outputs.String()} {
			if strings.Contains(text, cred) {
				t.Errorf("the %s holds the provider credential %s…", where, cred[:8])
			}
		}
	}
}
