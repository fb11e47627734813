package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// rawPost sends the head of a POST with a declared length and the first
// bytes of its body on a new connection to the server at base, and leaves
// the rest unsent.
func rawPost(t *testing.T, base, path string, declared int, first []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nX-Api-Key: sk-ant-client\r\nContent-Length: %d\r\n\r\n", path, declared)
	if _, err := conn.Write(first); err != nil {
		t.Fatal(err)
	}
	return conn
}

// get sends a GET with an exact request target (no client-side cleaning).
func (g *gatewayFixture) send(t *testing.T, method, target, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, g.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = target // sent as written: %2e, //, .. and all
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-client")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestPathAdmission: a path with dot segments (written plainly or
// percent-encoded), empty segments, backslashes, ';' or control bytes, or
// longer than MaxEndpointLength after the prefix, is refused with 400 in
// the provider's shape before routing: never forwarded, nothing recorded.
// Escaped slashes inside a segment pass as the client wrote them, and the
// ledger's endpoint is the decoded path the upstream routes on.
func TestPathAdmission(t *testing.T) {
	g := newGatewayFixture(t)
	chat := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	for _, target := range []string{
		"/openai/v1/%2e%2e/%2e%2e/admin",
		"/openai/v1/%2E%2e/chat/completions",
		"/openai/v1/embeddings/%2E./chat/completions",
		"/openai/v1/chat/completions/..",
		"/openai/v1/./chat/completions",
		"/openai/v1/chat/completions/%2e",
		"/openai/../anthropic/v1/messages",
		"/openai/v1%2F%2Fchat/completions",
		"/openai//v1/chat/completions",
		"/openai/v1/chat%5Ccompletions",
		"/openai/v1/chat/completions;x=1",
		"/openai/v1/chat/completions%00",
		"/openai/v1/chat/completions%0d%0aX-Injected:%201",
		"/openai/v1/" + strings.Repeat("a", MaxEndpointLength-len("/v1/")+1),
	} {
		resp, b := g.send(t, http.MethodPost, target, chat)
		var shape struct {
			Error struct{ Type, Message string } `json:"error"`
		}
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(b, &shape) != nil || shape.Error.Message == "" {
			t.Errorf("POST %.80s: %d %s; want 400 in OpenAI's error shape", target, resp.StatusCode, b)
		}
		if n := len(g.up.take()); n != 0 {
			t.Errorf("POST %.80s was forwarded", target)
		}
		if evs := g.rec.take(); len(evs) != 0 {
			t.Errorf("POST %.80s recorded %d events", target, len(evs))
		}
	}

	for _, c := range []struct {
		target, upstream, endpoint string
		status                     int
	}{
		// An escaped slash inside a segment is kept for the upstream.
		{"/openai/v1/models/ft%2Fmine", "/v1/models/ft%2Fmine", "/v1/models/ft/mine", http.StatusNotFound},
		// An escaped letter in the route prefix: routed and forwarded on
		// the decoded path, in its canonical escaping.
		{"/open%61i/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions", http.StatusOK},
		// Exactly MaxEndpointLength bytes after the prefix pass.
		{"/openai/v1/" + strings.Repeat("a", MaxEndpointLength-len("/v1/")), "", "", http.StatusNotFound},
	} {
		resp, b := g.send(t, http.MethodPost, c.target, chat)
		if resp.StatusCode != c.status {
			t.Errorf("POST %.80s: %d %s, want %d", c.target, resp.StatusCode, b, c.status)
		}
		seen := g.up.take()
		if len(seen) != 1 || c.upstream != "" && seen[0].uri != c.upstream {
			t.Errorf("POST %.80s reached the upstream as %+v, want %s", c.target, seen, c.upstream)
		}
		var done []tokenmeter.Event
		for _, ev := range g.rec.take() {
			if ev.Kind == tokenmeter.KindCompleted {
				done = append(done, ev)
			}
		}
		if len(done) != 1 || c.endpoint != "" && done[0].Endpoint != c.endpoint || len(done[0].Endpoint) > MaxEndpointLength {
			t.Errorf("POST %.80s recorded %d completions (endpoint %.80q), want endpoint %s", c.target, len(done), done[0].Endpoint, c.endpoint)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, c := range []struct {
		rest string
		ok   bool
	}{
		{"", true}, {"/", true}, {"/v1/messages", true}, {"/v1/models/", true}, {"/v1/a.b/..c/.d", true},
		{"/.", false}, {"/..", false}, {"/v1/../x", false}, {"/v1/./x", false}, {"//v1", false}, {"/v1//x", false},
		{"/v1\\x", false}, {"/v1;x", false}, {"/v1/\x7f", false}, {"/v1/\t", false},
	} {
		if got := checkPath(c.rest); (got == "") != c.ok {
			t.Errorf("checkPath(%q) = %q, want ok %v", c.rest, got, c.ok)
		}
	}
}

// TestRequestReadTimeout: a body that stalls longer than
// RequestReadTimeout gets 408 in the provider's shape and is never
// forwarded; a body that keeps coming, however slowly, is read in full;
// and the timeout ends with the body (a slow upstream is not cut).
func TestRequestReadTimeout(t *testing.T) {
	g := newGatewayFixture(t)
	g.p.RequestReadTimeout = 700 * time.Millisecond
	body := `{"model":"claude-test","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`

	conn := rawPost(t, g.url, "/anthropic/v1/messages", len(body), []byte(body[:10]))
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("stalled body: no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	var shape struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if resp.StatusCode != http.StatusRequestTimeout || json.Unmarshal(b, &shape) != nil || shape.Type != "error" || !strings.Contains(shape.Error.Message, "stalled") {
		t.Errorf("stalled body: %d %s; want 408 in Anthropic's error shape", resp.StatusCode, b)
	}
	if n := len(g.up.take()); n != 0 {
		t.Error("a stalled request was forwarded")
	}
	if evs := g.rec.take(); len(evs) != 0 {
		t.Errorf("a stalled request recorded %d events", len(evs))
	}

	// A slow but steady body: 8 bytes every 100 ms, about 1 s in all, each
	// gap far below the timeout.
	slow := rawPost(t, g.url, "/anthropic/v1/messages", len(body), nil)
	go func() {
		for i := 0; i < len(body); i += 8 {
			time.Sleep(100 * time.Millisecond)
			slow.Write([]byte(body[i:min(i+8, len(body))]))
		}
	}()
	slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("slow body: %v", err)
	}
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("slow but steady body: %d %s, want 200", resp.StatusCode, b)
	}

	// An upstream slower than the timeout: the deadline was cleared.
	hdr := http.Header{"X-Api-Key": {"sk-ant-client"}, "X-Fake-Upstream": {"ttfb=1500ms"}}
	if resp, b := g.do(t, "anthropic", hdr, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("slow upstream: %d %s, want 200", resp.StatusCode, b)
	}
	g.up.take()
	g.rec.take()
}

// TestMaxInFlight: beyond MaxInFlight requests at once, a request gets 503
// with retry-after in the provider's shape; slots come back as calls end.
func TestMaxInFlight(t *testing.T) {
	g := newGatewayFixture(t)
	g.p.MaxInFlight = 2
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	a := rawPost(t, g.url, "/openai/v1/chat/completions", len(body), []byte(body[:5]))
	b := rawPost(t, g.url, "/openai/v1/chat/completions", len(body), []byte(body[:5]))
	waitUntil(t, "two requests in flight", func() bool { return g.p.InFlight() == 2 })

	resp, out := g.do(t, "openai", http.Header{"Authorization": {"Bearer sk-client"}}, "")
	var shape struct {
		Error struct{ Type, Message string }
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		json.Unmarshal(out, &shape) != nil || !strings.Contains(shape.Error.Message, "maximum of 2 requests") {
		t.Errorf("third request: %d retry-after %q %s; want 503 with retry-after in OpenAI's shape", resp.StatusCode, resp.Header.Get("Retry-After"), out)
	}
	if n := len(g.up.take()); n != 0 {
		t.Error("a request over the cap was forwarded")
	}
	// Refused with its body stalled: the answer still comes (the server's
	// wait for the rest of the body is bounded), then the connection ends.
	c := rawPost(t, g.url, "/openai/v1/chat/completions", len(body), []byte(body[:5]))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("refused request with a stalled body: %v %v, want 503", resp, err)
	} else {
		io.Copy(io.Discard, resp.Body)
		if _, err := br.ReadByte(); err == nil || strings.Contains(err.Error(), "timeout") {
			t.Errorf("the connection of a refused stalled request stays open (%v)", err)
		}
	}

	// The stalled ones finish; their slots come back.
	a.Write([]byte(body[5:]))
	b.Close()
	if resp, err := http.ReadResponse(bufio.NewReader(a), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v %v", resp, err)
	}
	waitUntil(t, "the slots to come back", func() bool { return g.p.InFlight() == 0 })
	if resp, out := g.do(t, "openai", http.Header{"Authorization": {"Bearer sk-client"}}, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("after the cap: %d %s", resp.StatusCode, out)
	}
}

// TestStalledBodiesMemory: 20 connections that declare 32 MiB bodies and
// stall after 1 KiB cost the gateway little heap: the buffer grows with
// the bytes that arrive, not with the declared length (before, each
// allocated its 32 MiB at once: 640 MiB).
func TestStalledBodiesMemory(t *testing.T) {
	g := newGatewayFixture(t)
	g.p.RequestReadTimeout = time.Minute
	const conns = 20
	declared := int(DefaultMaxRequestBody)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		rawPost(t, g.url, "/anthropic/v1/messages", declared, bytes.Repeat([]byte("x"), 1024))
	}
	waitUntil(t, "every connection in flight", func() bool { return g.p.InFlight() == conns })
	time.Sleep(200 * time.Millisecond) // let each handler reach its read
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d stalled connections declaring %d bytes: heap grew %d KiB", conns, declared, grown>>10)
	if limit := int64(16 << 20); grown > limit {
		t.Errorf("%d stalled connections grew the heap by %d MiB, want under %d MiB", conns, grown>>20, limit>>20)
	}
}

// okWriter is a ResponseWriter whose read deadlines can be set, as a
// server's are.
type okWriter struct{ httptest.ResponseRecorder }

func (w *okWriter) SetReadDeadline(time.Time) error { return nil }

// BenchmarkReadBody measures reading request bodies of typical sizes with
// deadlines set per read, against the former single exact allocation.
func BenchmarkReadBody(b *testing.B) {
	p := New(nil, nil, nil)
	for _, size := range []int{2 << 10, 200 << 10, 2 << 20} {
		data := bytes.Repeat([]byte("x"), size)
		b.Run(fmt.Sprintf("grown/%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			w := &okWriter{}
			for b.Loop() {
				r := &http.Request{Body: io.NopCloser(bytes.NewReader(data)), ContentLength: int64(size)}
				if _, _, err := p.readBody(w, r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("declared/%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				r := bytes.NewReader(data)
				buf := make([]byte, size)
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestReasonHasNoPromptBytes: a body that does not parse is recorded with
// the position and the problem, never with bytes of the prompt around it.
func TestReasonHasNoPromptBytes(t *testing.T) {
	g := newGatewayFixture(t)
	for _, c := range []struct{ route, path, body string }{
		{"anthropic", "/anthropic/v1/messages", `{"model":"claude-test","max_tokens":5,"messages":[{"role":"user","content":"the secret plan"},]}`},
		{"openai", "/openai/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"the secret plan"}] "x":1}`},
		{"openai", "/openai/v1/responses", `{"model":"gpt-test","input":"the secret plan`},
	} {
		resp, b := g.send(t, http.MethodPost, c.path, c.body)
		g.up.take()
		var reasons []string
		for _, ev := range g.rec.take() {
			if ev.Kind == tokenmeter.KindCompleted {
				reasons = append(reasons, ev.Reason)
			}
		}
		if len(reasons) != 1 || !strings.Contains(reasons[0], "request body") {
			t.Errorf("%s: %d %s; recorded reasons %q, want one naming the request body", c.path, resp.StatusCode, b, reasons)
		}
		for _, r := range reasons {
			if strings.Contains(r, "secret") || strings.Contains(r, "plan") || strings.Contains(r, "content") {
				t.Errorf("%s: reason %q holds bytes of the prompt", c.path, r)
			}
		}
	}
}
