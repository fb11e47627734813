package proxy

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestFindVirtualKey: every form a virtual key can take in a header or a
// query parameter is found, and text that only looks like one is not.
func TestFindVirtualKey(t *testing.T) {
	k1, k2 := tokenmeter.NewKeySecret(), tokenmeter.NewKeySecret()
	body := strings.TrimPrefix(k1, tokenmeter.KeyPrefix)
	tests := []struct {
		name     string
		hdr      http.Header
		query    string
		want     string
		conflict bool
		headers  []string // headers that must be scrubbed
		keptQ    string   // the query once scrubbed
	}{
		{name: "none", hdr: http.Header{}},
		{name: "pass-through", hdr: http.Header{"X-Api-Key": {"sk-ant-x"}, "Authorization": {"Bearer sk-y"}}},
		{name: "x-api-key", hdr: http.Header{"X-Api-Key": {k1}}, want: k1, headers: []string{"X-Api-Key"}},
		{name: "bearer", hdr: http.Header{"Authorization": {"Bearer " + k1}}, want: k1, headers: []string{"Authorization"}},
		{name: "bearer any case and spaces", hdr: http.Header{"Authorization": {"bEaReR    " + k1 + "  "}}, want: k1, headers: []string{"Authorization"}},
		{name: "bearer tab", hdr: http.Header{"Authorization": {"Bearer\t" + k1}}, want: k1, headers: []string{"Authorization"}},
		{name: "no scheme", hdr: http.Header{"Authorization": {k1}}, want: k1, headers: []string{"Authorization"}},
		{name: "other scheme", hdr: http.Header{"Authorization": {"Token " + k1}}, want: k1, headers: []string{"Authorization"}},
		{name: "scheme with a colon", hdr: http.Header{"Authorization": {"Bearer: " + k1}}, want: k1, headers: []string{"Authorization"}},
		{name: "bearer=", hdr: http.Header{"Authorization": {"Bearer=" + k1}}, want: k1, headers: []string{"Authorization"}},
		{name: "upper-case prefix", hdr: http.Header{"X-Api-Key": {"TM-" + body}}, want: "TM-" + body, headers: []string{"X-Api-Key"}},
		{name: "malformed key in a credential header", hdr: http.Header{"Authorization": {"Bearer tm-short"}}, want: "tm-short", headers: []string{"Authorization"}},
		{name: "basic password", hdr: http.Header{"Authorization": {basic("user", k1)}}, want: k1, headers: []string{"Authorization"}},
		{name: "basic user", hdr: http.Header{"Authorization": {basic(k1, "")}}, want: k1, headers: []string{"Authorization"}},
		{name: "basic without padding", hdr: http.Header{"Authorization": {"basic\t" + base64.RawStdEncoding.EncodeToString([]byte("u:"+k1))}}, want: k1, headers: []string{"Authorization"}},
		{name: "basic pass-through", hdr: http.Header{"Authorization": {basic("user", "sk-x")}}},
		{name: "azure api-key", hdr: http.Header{"Api-Key": {k1}}, want: k1, headers: []string{"Api-Key"}},
		{name: "x-goog-api-key", hdr: http.Header{"X-Goog-Api-Key": {k1}}, want: k1, headers: []string{"X-Goog-Api-Key"}},
		{name: "any header", hdr: http.Header{"X-Whatever": {k1}}, want: k1, headers: []string{"X-Whatever"}},
		{name: "inside a cookie", hdr: http.Header{"Cookie": {"a=b; session=" + k1 + "; c=d"}}, want: k1, headers: []string{"Cookie"}},
		{name: "quoted inside a longer value", hdr: http.Header{"X-Note": {`key is "` + k1 + `" ok`}}, want: k1, headers: []string{"X-Note"}},
		{name: "second value of a header", hdr: http.Header{"X-Api-Key": {"sk-a", k1}}, want: k1, headers: []string{"X-Api-Key"}},
		{name: "same key twice", hdr: http.Header{"X-Api-Key": {k1}, "Authorization": {"Bearer " + k1}}, want: k1, headers: []string{"Authorization", "X-Api-Key"}},
		{name: "key next to a pass-through credential", hdr: http.Header{"X-Api-Key": {"sk-a"}, "Authorization": {"Bearer " + k1}}, want: k1, headers: []string{"Authorization"}},
		{name: "two keys", hdr: http.Header{"X-Api-Key": {k1}, "Authorization": {"Bearer " + k2}}, conflict: true, headers: []string{"Authorization", "X-Api-Key"}},
		{name: "two keys, header and query", hdr: http.Header{"X-Api-Key": {k1}}, query: "key=" + k2, conflict: true, headers: []string{"X-Api-Key"}},
		{name: "query key", hdr: http.Header{}, query: "key=" + k1, want: k1},
		{name: "query api_key among others", hdr: http.Header{}, query: "api-version=2024-10-21&api_key=" + k1 + "&x=%2F", want: k1, keptQ: "api-version=2024-10-21&x=%2F"},
		{name: "query percent-encoded", hdr: http.Header{}, query: "key=%74%6D%2D" + body + "&limit=5", want: k1, keptQ: "limit=5"},
		{name: "query bearer with plus", hdr: http.Header{}, query: "auth=Bearer+" + k1, want: k1},
		{name: "query key as a name", hdr: http.Header{}, query: k1 + "&limit=5", want: k1, keptQ: "limit=5"},
		{name: "query without a key", hdr: http.Header{}, query: "limit=5&after=item-tm-3"},
		{name: "own headers are ignored", hdr: http.Header{"X-Tokenmeter-Project": {"tm-project"}}},
		{name: "user agent is not a credential", hdr: http.Header{"User-Agent": {"tm-cli/1.0"}}},
		{name: "user agent with a whole key", hdr: http.Header{"User-Agent": {"tool " + k1}}, want: k1, headers: []string{"User-Agent"}},
		{name: "tm- inside a word", hdr: http.Header{"X-Note": {"atm-" + body}}},
		{name: "key run too long", hdr: http.Header{"X-Note": {"see " + k1 + "Z and more"}}},
		{name: "tm- word in a longer value", hdr: http.Header{"Anthropic-Beta": {"tm-test-2025, other"}}},
	}
	for _, tt := range tests {
		k := findVirtualKey(tt.hdr, tt.query)
		if tt.conflict {
			if !k.conflict {
				t.Errorf("%s: no conflict found between two keys", tt.name)
			}
		} else if k.secret != tt.want || k.conflict {
			t.Errorf("%s: findVirtualKey = %q (conflict %v), want %q", tt.name, tokenmeter.KeyDisplayPrefix(k.secret), k.conflict, tokenmeter.KeyDisplayPrefix(tt.want))
		}
		h := tt.hdr.Clone()
		u := &url.URL{Path: "/v1/x", RawQuery: tt.query}
		k.scrub(h, u)
		for _, name := range tt.headers {
			if _, ok := h[name]; ok {
				t.Errorf("%s: header %s not scrubbed", tt.name, name)
			}
		}
		if len(h) != len(tt.hdr)-len(tt.headers) {
			t.Errorf("%s: scrubbed headers %v, want only %v removed", tt.name, h, tt.headers)
		}
		if tt.query != "" && (tt.want != "" || tt.conflict) && u.RawQuery != tt.keptQ {
			t.Errorf("%s: scrubbed query %q, want %q", tt.name, u.RawQuery, tt.keptQ)
		}
		if tt.want == "" && !tt.conflict && u.RawQuery != tt.query {
			t.Errorf("%s: query changed to %q without a key", tt.name, u.RawQuery)
		}
		if again := findVirtualKey(h, u.RawQuery); again.secret != "" {
			t.Errorf("%s: a key survives scrubbing (%s)", tt.name, again.where)
		}
	}
}

// TestCredentialSecret: the pass-through credential (the principal's
// source) is never a virtual key.
func TestCredentialSecret(t *testing.T) {
	k := tokenmeter.NewKeySecret()
	for _, tt := range []struct {
		hdr  http.Header
		want string
	}{
		{http.Header{"X-Api-Key": {"sk-ant-1"}}, "sk-ant-1"},
		{http.Header{"Authorization": {"Bearer sk-2"}}, "sk-2"},
		{http.Header{"Authorization": {"Custom abc"}}, "Custom abc"},
		{http.Header{"X-Api-Key": {k}}, ""},
		{http.Header{"Authorization": {k}}, ""},
		{http.Header{"Authorization": {"Bearer\t" + k}}, ""},
		{http.Header{"Authorization": {basic("u", k)}}, ""},
		{http.Header{"X-Api-Key": {"tm-short"}}, ""},
	} {
		if got := credentialSecret(tt.hdr); got != tt.want {
			t.Errorf("credentialSecret(%v) = %q, want %q", tt.hdr, tokenmeter.KeyDisplayPrefix(got), tt.want)
		}
		if p := principal(tt.hdr); (p == "") != (tt.want == "") {
			t.Errorf("principal(%v) = %q", tt.hdr, p)
		}
	}
}

// syncRecorder keeps events in memory for tests whose handlers run on
// the server's goroutines.
type syncRecorder struct {
	mu     sync.Mutex
	events []tokenmeter.Event
}

func (s *syncRecorder) Submit(ev tokenmeter.Event) *ledger.Pending {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
	return ledger.Done(nil)
}

func (s *syncRecorder) Healthy() bool { return true }

func (s *syncRecorder) take() []tokenmeter.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

// seenRequest is what the upstream received.
type seenRequest struct {
	uri    string
	header http.Header
}

// upstreamTap is the fake upstream behind a tap that keeps each request's
// URI and headers.
type upstreamTap struct {
	fake *fakeupstream.Server
	mu   sync.Mutex
	seen []seenRequest
}

func (u *upstreamTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, seenRequest{r.RequestURI, r.Header.Clone()})
	u.mu.Unlock()
	u.fake.ServeHTTP(w, r)
}

func (u *upstreamTap) take() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.seen
	u.seen = nil
	return out
}

// gatewayFixture is a gateway on a real listener in front of the fake
// upstream, with one virtual key, "ci", whose secret is key.
type gatewayFixture struct {
	url  string
	p    *Proxy
	up   *upstreamTap
	rec  *syncRecorder
	key  string
	keys *countingKeys
}

func newGatewayFixture(t *testing.T) *gatewayFixture {
	t.Helper()
	tap := &upstreamTap{fake: fakeupstream.New(fakeupstream.Options{})}
	upSrv := httptest.NewServer(tap)
	t.Cleanup(upSrv.Close)
	u, _ := url.Parse(upSrv.URL)
	rec := &syncRecorder{}
	p := New([]Route{
		{Name: "anthropic", Prefix: "/anthropic", Wire: Anthropic, Upstream: u},
		{Name: "openai", Prefix: "/openai", Wire: OpenAI, Upstream: u},
	}, rec, slog.New(slog.DiscardHandler))
	secret := tokenmeter.NewKeySecret()
	keys := &countingKeys{key: tokenmeter.VirtualKey{Name: "ci", Prefix: tokenmeter.KeyDisplayPrefix(secret), Hash: tokenmeter.HashKey(secret), Created: time.Now()}}
	p.Keys = keys
	p.Credentials = map[string]string{"anthropic": "sk-ant-upstream-credential", "openai": "sk-upstream-credential"}
	gw := httptest.NewServer(p)
	t.Cleanup(gw.Close)
	return &gatewayFixture{url: gw.URL, p: p, up: tap, rec: rec, key: secret, keys: keys}
}

// do sends a metered call on route with the headers and query given.
func (g *gatewayFixture) do(t *testing.T, route string, hdr http.Header, query string) (*http.Response, []byte) {
	t.Helper()
	path, body := "/openai/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	if route == "anthropic" {
		path, body = "/anthropic/v1/messages", `{"model":"claude-test","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`
	}
	if query != "" {
		path += "?" + query
	}
	req, err := http.NewRequest(http.MethodPost, g.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// keyForms returns, for secret, each way a client may send it.
func keyForms(secret string) []struct {
	name  string
	hdr   http.Header
	query string
} {
	type form = struct {
		name  string
		hdr   http.Header
		query string
	}
	return []form{
		{"x-api-key", http.Header{"X-Api-Key": {secret}}, ""},
		{"bearer", http.Header{"Authorization": {"Bearer " + secret}}, ""},
		{"authorization without scheme", http.Header{"Authorization": {secret}}, ""},
		{"bearer tab", http.Header{"Authorization": {"Bearer\t" + secret}}, ""},
		{"BEARER", http.Header{"Authorization": {"BEARER  " + secret}}, ""},
		{"basic", http.Header{"Authorization": {basic("x", secret)}}, ""},
		{"api-key", http.Header{"Api-Key": {secret}}, ""},
		{"x-goog-api-key", http.Header{"X-Goog-Api-Key": {secret}}, ""},
		{"query key", nil, "key=" + secret},
		{"query api_key", nil, "beta=true&api_key=" + url.QueryEscape(secret)},
		{"cookie", http.Header{"Cookie": {"s=" + secret}}, ""},
		{"next to a pass-through key", http.Header{"X-Api-Key": {"sk-client-own"}, "Authorization": {"Bearer " + secret}}, ""},
	}
}

// TestVirtualKeyNeverForwarded: through real HTTP, a valid virtual key in
// any form is authenticated, recorded as its name and replaced by the
// route's credential; no trace of it reaches the upstream. An unknown key
// in any form is refused with 401 in the provider's shape, never
// forwarded, and nothing is recorded.
func TestVirtualKeyNeverForwarded(t *testing.T) {
	g := newGatewayFixture(t)
	keyBody := strings.TrimPrefix(g.key, tokenmeter.KeyPrefix)
	for _, route := range []string{"anthropic", "openai"} {
		for _, f := range keyForms(g.key) {
			resp, b := g.do(t, route, f.hdr, f.query)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s: %d %s", route, f.name, resp.StatusCode, b)
				continue
			}
			seen := g.up.take()
			if len(seen) != 1 {
				t.Fatalf("%s %s: upstream got %d requests", route, f.name, len(seen))
			}
			s := seen[0]
			if strings.Contains(s.uri, keyBody) || strings.Contains(strings.ToLower(s.uri), "tm-") {
				t.Errorf("%s %s: the key reached the upstream in the URI %q", route, f.name, s.uri)
			}
			if f.query == "beta=true&api_key="+url.QueryEscape(g.key) && !strings.HasSuffix(s.uri, "?beta=true") {
				t.Errorf("%s %s: upstream URI %q, want the other parameter kept", route, f.name, s.uri)
			}
			for name, vs := range s.header {
				for _, v := range vs {
					if strings.Contains(v, keyBody) || strings.Contains(v, base64.StdEncoding.EncodeToString([]byte("x:"+g.key))) || strings.Contains(strings.ToLower(v), "tm-") {
						t.Errorf("%s %s: the key reached the upstream in header %s", route, f.name, name)
					}
				}
			}
			if route == "anthropic" && (s.header.Get("X-Api-Key") != "sk-ant-upstream-credential" || s.header.Get("Authorization") != "") {
				t.Errorf("%s %s: upstream credential headers %q / %q", route, f.name, s.header.Get("X-Api-Key"), s.header.Get("Authorization"))
			}
			if route == "openai" && (s.header.Get("Authorization") != "Bearer sk-upstream-credential" || s.header.Get("X-Api-Key") != "") {
				t.Errorf("%s %s: upstream credential headers %q / %q", route, f.name, s.header.Get("Authorization"), s.header.Get("X-Api-Key"))
			}
			var done []tokenmeter.Event
			for _, ev := range g.rec.take() {
				if ev.Kind == tokenmeter.KindCompleted {
					done = append(done, ev)
				}
			}
			if len(done) != 1 || done[0].Principal != "key:ci" || done[0].Usage.OutputTokens == 0 {
				t.Errorf("%s %s: recorded %+v, want one call by key:ci with its usage", route, f.name, done)
			}
		}

		unknown := tokenmeter.NewKeySecret()
		for _, f := range append(keyForms(unknown), struct {
			name  string
			hdr   http.Header
			query string
		}{"two keys", http.Header{"X-Api-Key": {g.key}}, "key=" + unknown}) {
			resp, b := g.do(t, route, f.hdr, f.query)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s unknown key as %s: %d %s, want 401", route, f.name, resp.StatusCode, b)
			}
			var shape struct {
				Type  string `json:"type"`
				Error struct {
					Type, Code, Message string
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &shape); err != nil {
				t.Errorf("%s unknown key as %s: answer is not JSON: %s", route, f.name, b)
			}
			if route == "anthropic" && (shape.Type != "error" || shape.Error.Type != "authentication_error") ||
				route == "openai" && shape.Error.Code != "invalid_api_key" {
				t.Errorf("%s unknown key as %s: answer %s is not the provider's 401 shape", route, f.name, b)
			}
			if strings.Contains(string(b), strings.TrimPrefix(unknown, tokenmeter.KeyPrefix)[:10]) {
				t.Errorf("%s unknown key as %s: the answer shows more than the key's prefix: %s", route, f.name, b)
			}
			if n := len(g.up.take()); n != 0 {
				t.Errorf("%s unknown key as %s: forwarded", route, f.name)
			}
			if evs := g.rec.take(); len(evs) != 0 {
				t.Errorf("%s unknown key as %s: %d events recorded", route, f.name, len(evs))
			}
		}
	}

	// A pass-through call is hashed from its own credential; a product
	// named tm-something in User-Agent is not a key.
	resp, b := g.do(t, "openai", http.Header{"Authorization": {"Bearer sk-client-own"}, "User-Agent": {"tm-cli/1.0"}}, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pass-through: %d %s", resp.StatusCode, b)
	}
	if s := g.up.take(); len(s) != 1 || s[0].header.Get("Authorization") != "Bearer sk-client-own" || s[0].header.Get("User-Agent") != "tm-cli/1.0" {
		t.Errorf("pass-through reached upstream as %+v", s)
	}
	for _, ev := range g.rec.take() {
		if ev.Kind == tokenmeter.KindCompleted && ev.Principal != CredentialHash("sk-client-own") {
			t.Errorf("pass-through principal %q, want the hash of the client's credential", ev.Principal)
		}
	}
}

// BenchmarkFindVirtualKey measures the credential scan on the headers of
// typical SDK requests: the cost every proxied request pays.
func BenchmarkFindVirtualKey(b *testing.B) {
	key := tokenmeter.NewKeySecret()
	common := http.Header{
		"Accept":                      {"application/json"},
		"Content-Type":                {"application/json"},
		"User-Agent":                  {"Anthropic/Python 0.69.0"},
		"Anthropic-Version":           {"2023-06-01"},
		"Anthropic-Beta":              {"claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"},
		"X-Stainless-Lang":            {"python"},
		"X-Stainless-Package-Version": {"0.69.0"},
		"X-Stainless-Os":              {"Linux"},
		"X-Stainless-Arch":            {"x64"},
		"X-Stainless-Runtime":         {"CPython"},
		"X-Stainless-Runtime-Version": {"3.12.3"},
		"X-Stainless-Retry-Count":     {"0"},
		"X-Stainless-Timeout":         {"600"},
		"X-Claude-Code-Session-Id":    {"0b3c1f7e-5d41-4b7a-9f9e-2f0f3f1f2a10"},
	}
	for _, c := range []struct {
		name, hdr, val string
	}{
		{"pass-through x-api-key", "X-Api-Key", "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGH"},
		{"pass-through bearer", "Authorization", "Bearer sk-proj-0123456789abcdefghijklmnopqrstuvwxyz"},
		{"virtual x-api-key", "X-Api-Key", key},
		{"virtual bearer", "Authorization", "Bearer " + key},
	} {
		h := common.Clone()
		h.Set(c.hdr, c.val)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				findVirtualKey(h, "")
			}
		})
	}
}

// FuzzFindVirtualKey: the credential parser never panics; once scrubbed,
// a request carries no key in any form; and a well-formed key added to
// any value or query is always found.
func FuzzFindVirtualKey(f *testing.F) {
	key := "tm-" + strings.Repeat("A1b2C3d4E5", 4) + "xyz"
	for _, s := range [][3]string{
		{"X-Api-Key", key, ""},
		{"Authorization", "Bearer\t" + key, ""},
		{"Authorization", "tm-short", "key=tm-x"},
		{"Authorization", basic("u", key), ""},
		{"Authorization", "Basic", ""},
		{"Api-Key", "TM-" + key[3:], "api-version=1&key=%74m-" + key[3:]},
		{"Cookie", "a=b; s=" + key, "tm-" + key[3:] + "=1"},
		{"User-Agent", "tm-cli/1.0", "after=item-tm-3"},
		{"X-Tokenmeter-Project", key, ""},
		{"Anthropic-Beta", "oauth-2025-04-20,tm-x", "q=%zz&r=Bearer+" + key},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, name, value, query string) {
		h := http.Header{name: {value}}
		k := findVirtualKey(h, query)
		if k.secret == "" && !k.conflict && (len(k.headers) > 0 || k.queryHit) {
			t.Fatalf("places marked without a key: %+v", k)
		}
		u := &url.URL{RawQuery: query}
		k.scrub(h, u)
		if again := findVirtualKey(h, u.RawQuery); again.secret != "" {
			t.Fatalf("a key survives scrubbing in %s: header %q=%q query %q", again.where, name, h.Get(name), u.RawQuery)
		}
		if ownHeader(name) {
			return
		}
		if k := findVirtualKey(http.Header{name: {value + " " + key + " "}}, ""); k.secret == "" && !k.conflict {
			t.Fatalf("a key appended to header %q=%q is not found", name, value)
		}
		if k := findVirtualKey(http.Header{}, query+"&k="+key); k.secret == "" && !k.conflict {
			t.Fatalf("a key appended to query %q is not found", query)
		}
	})
}
