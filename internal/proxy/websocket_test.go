package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	openaisdk "github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
)

// wsRecorder is a Recorder safe for the relay's two goroutines. With hold
// set, each completed event's commit waits until the test releases it.
type wsRecorder struct {
	mu      sync.Mutex
	events  []tokenmeter.Event
	hold    bool
	fail    error                 // returned by every completed event's commit
	held    chan func(error)      // the release of each held commit
	durable map[string]bool       // request keys whose completed commit returned
	signal  chan tokenmeter.Event // every completed event, if set
}

func (r *wsRecorder) Submit(ev tokenmeter.Event) *ledger.Pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if ev.Kind != tokenmeter.KindCompleted {
		return ledger.Done(nil)
	}
	if r.signal != nil {
		r.signal <- ev
	}
	if r.fail != nil {
		return ledger.Done(r.fail)
	}
	if !r.hold {
		r.markDurable(ev.RequestKey)
		return ledger.Done(nil)
	}
	p, done := ledger.NewPending()
	r.held <- func(err error) {
		r.mu.Lock()
		r.markDurable(ev.RequestKey)
		r.mu.Unlock()
		done(err)
	}
	return p
}

func (r *wsRecorder) markDurable(key string) {
	if r.durable == nil {
		r.durable = map[string]bool{}
	}
	r.durable[key] = true
}

func (r *wsRecorder) Healthy() bool { return true }

func (r *wsRecorder) isDurable(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.durable[key]
}

// byKind returns the events of kind, in order.
func (r *wsRecorder) byKind(kind tokenmeter.Kind) []tokenmeter.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []tokenmeter.Event
	for _, ev := range r.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// waitCompleted waits for n completed events.
func (r *wsRecorder) waitCompleted(t *testing.T, n int) []tokenmeter.Event {
	t.Helper()
	for range 1000 {
		if got := r.byKind(tokenmeter.KindCompleted); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("fewer than %d completed events: %+v", n, r.byKind(tokenmeter.KindCompleted))
	return nil
}

// wsFixture is a gateway in front of fake-upstream, both over real HTTP.
type wsFixture struct {
	p     *Proxy
	gw    *httptest.Server
	rec   *wsRecorder
	mu    sync.Mutex
	calls []fakeupstream.Call
}

func newWSFixture(t *testing.T, rec *wsRecorder) *wsFixture {
	t.Helper()
	f := &wsFixture{rec: rec}
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{Observe: func(c fakeupstream.Call) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, c)
	}}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	f.p = New([]Route{{Name: "openai", Prefix: "/openai", Wire: OpenAI, Upstream: u}}, rec, slog.New(slog.DiscardHandler))
	f.gw = httptest.NewServer(f.p)
	t.Cleanup(f.gw.Close)
	return f
}

func (f *wsFixture) upstreamCalls() []fakeupstream.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeupstream.Call(nil), f.calls...)
}

func (f *wsFixture) dial(t *testing.T, header http.Header) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if header == nil {
		header = http.Header{"Authorization": {"Bearer sk-test-websocket"}}
	}
	conn, resp, err := websocket.Dial(ctx, f.gw.URL+"/openai/v1/responses", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial the gateway: %v (response %+v)", err, resp)
	}
	if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") || resp.Header.Get("X-Ratelimit-Limit-Requests") == "" {
		t.Errorf("101 headers %v: want the upstream's x-request-id and rate-limit headers", resp.Header)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// readUntil reads messages until one of type typ (or an error with a
// status) and returns their types and the last message.
func readUntil(t *testing.T, conn *websocket.Conn, typ string) ([]string, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var types []string
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read after %v: %v", types, err)
		}
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("message %q: %v", data, err)
		}
		types = append(types, v["type"].(string))
		if v["type"] == typ || (v["type"] == "error" && v["status"] != nil) {
			return types, v
		}
	}
}

func send(t *testing.T, conn *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestWebSocketMetersEachResponse: through the gateway, with the official
// SDK's WebSocket client, each response.create is one call in the ledger
// with the upstream's usage and model, started before completed; the
// warm-up (generate:false) is a call of zero usage; and the credential is
// recorded as its hash.
func TestWebSocketMetersEachResponse(t *testing.T) {
	rec := &wsRecorder{}
	f := newWSFixture(t, rec)
	client := openaisdk.NewClient(openaioption.WithBaseURL(f.gw.URL+"/openai/v1"), openaioption.WithAPIKey("sk-test-websocket"), openaioption.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Responses.Connect(ctx, responses.ResponseConnectionOptions{},
		openaioption.WithHeader(HeaderProject, "websockets"))
	if err != nil {
		t.Fatalf("Connect through the gateway: %v", err)
	}
	defer conn.Close()
	create := func(p responses.ResponsesClientEventResponseCreateParam) string {
		if err := conn.Create(ctx, p); err != nil {
			t.Fatalf("Create: %v", err)
		}
		for {
			ev, err := conn.Recv(ctx)
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			if ev.Type == "response.completed" || ev.Type == "response.incomplete" {
				return ev.Type
			}
		}
	}
	in := func(s string) responses.ResponsesClientEventResponseCreateInputUnionParam {
		return responses.ResponsesClientEventResponseCreateInputUnionParam{OfString: openaisdk.String(s)}
	}
	create(responses.ResponsesClientEventResponseCreateParam{Model: "gpt-5.4", Input: in("prepare"), Generate: openaisdk.Bool(false)})
	create(responses.ResponsesClientEventResponseCreateParam{Model: "gpt-5.4", Input: in("one [[fake output=5 cache_read=7 reasoning=2]]")})
	if got := create(responses.ResponsesClientEventResponseCreateParam{Model: "gpt-5.4-mini", Input: in("two [[fake output=40]]"),
		MaxOutputTokens: openaisdk.Int(16), StreamID: openaisdk.String("lane-b")}); got != "response.incomplete" {
		t.Errorf("capped response ended with %s, want response.incomplete", got)
	}

	completed := rec.waitCompleted(t, 3)
	started := rec.byKind(tokenmeter.KindStarted)
	calls := f.upstreamCalls()
	if len(started) != 3 || len(calls) != 3 {
		t.Fatalf("%d started events and %d upstream calls for 3 requests", len(started), len(calls))
	}
	for i, ev := range completed {
		c := calls[i]
		if started[i].RequestKey != ev.RequestKey {
			t.Errorf("call %d: started %s, completed %s", i, started[i].RequestKey, ev.RequestKey)
		}
		if ev.Outcome != tokenmeter.OutcomeOK || !ev.UsageKnown || ev.Status != 200 || ev.Endpoint != "/v1/responses" || !ev.Stream {
			t.Errorf("call %d recorded as %+v; want ok, usage known, 200, /v1/responses, stream", i, ev)
		}
		if ev.Model != c.Model {
			t.Errorf("call %d: model %q, upstream %q", i, ev.Model, c.Model)
		}
		if want := "resp_" + strings.TrimPrefix(c.RequestID, "req_"); ev.ResponseID != want {
			t.Errorf("call %d: response id %q, want the upstream's %q", i, ev.ResponseID, want)
		}
		if diff := cmp.Diff(c.Usage, ev.Usage); diff != "" {
			t.Errorf("call %d: usage (-upstream +ledger):\n%s", i, diff)
		}
		if ev.Principal != CredentialHash("sk-test-websocket") || ev.Project != "websockets" {
			t.Errorf("call %d: principal %q project %q; want the credential's hash and the handshake's project", i, ev.Principal, ev.Project)
		}
	}
	if completed[0].Usage != (tokenmeter.Usage{}) || completed[1].Usage.OutputTokens != 7 || completed[2].Usage.OutputTokens != 16 {
		t.Errorf("usages %+v / %+v / %+v: want zero, 7 output, 16 output", completed[0].Usage, completed[1].Usage, completed[2].Usage)
	}
}

// TestWebSocketTerminalHeldUntilRecorded: the message that ends a
// response reaches the client only once the completed event is durable,
// and when the ledger fails it never does: the connection closes with
// 1011 instead.
func TestWebSocketTerminalHeldUntilRecorded(t *testing.T) {
	rec := &wsRecorder{hold: true, held: make(chan func(error), 4)}
	f := newWSFixture(t, rec)
	conn := f.dial(t, nil)
	send(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"[[fake output=3]]"}`)
	got, _ := readUntil(t, conn, "response.output_item.done")
	release := <-rec.held // the completed event was submitted and is held
	go func() {
		// Whatever the client manages to read now must not be the end.
		time.Sleep(20 * time.Millisecond)
		release(nil)
	}()
	more, last := readUntil(t, conn, "response.completed")
	key := rec.byKind(tokenmeter.KindCompleted)[0].RequestKey
	if !rec.isDurable(key) {
		t.Fatalf("client read response.completed (after %v, %v) before the completed event was durable", got, more)
	}
	if last["type"] != "response.completed" || len(more) != 1 {
		t.Errorf("after the commit the client read %v, want only response.completed", more)
	}

	t.Run("LedgerFails", func(t *testing.T) {
		rec := &wsRecorder{fail: errors.New("disk full")}
		f := newWSFixture(t, rec)
		conn := f.dial(t, nil)
		send(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"x"}`)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.StatusInternalError || !strings.Contains(ce.Reason, "ledger") {
					t.Errorf("connection ended with %v, want close 1011 naming the ledger", err)
				}
				break
			}
			if strings.Contains(string(data), `"response.completed"`) {
				t.Fatal("response.completed relayed although its completed event could not be recorded")
			}
		}
	})
}

// TestWebSocketConnectionEnds: calls open when the connection ends are
// recorded as cancelled when the client leaves and as failed when the
// upstream breaks; the client sees the upstream's break as close 1014.
func TestWebSocketConnectionEnds(t *testing.T) {
	t.Run("ClientDrops", func(t *testing.T) {
		rec := &wsRecorder{}
		f := newWSFixture(t, rec)
		conn := f.dial(t, nil)
		send(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"[[fake output=50 delay=20ms]]"}`)
		readUntil(t, conn, "response.output_text.delta")
		conn.CloseNow()
		ev := rec.waitCompleted(t, 1)[0]
		if ev.Outcome != tokenmeter.OutcomeCancelled || ev.Model != "gpt-5.4" {
			t.Errorf("recorded %+v, want cancelled gpt-5.4", ev)
		}
	})
	t.Run("ClientCloses", func(t *testing.T) {
		rec := &wsRecorder{}
		f := newWSFixture(t, rec)
		conn := f.dial(t, nil)
		send(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"[[fake output=50 delay=20ms]]"}`)
		readUntil(t, conn, "response.output_text.delta")
		go conn.Close(websocket.StatusNormalClosure, "bye")
		ev := rec.waitCompleted(t, 1)[0]
		if ev.Outcome != tokenmeter.OutcomeCancelled || !strings.Contains(ev.Reason, "client closed") {
			t.Errorf("recorded %+v, want cancelled: client closed", ev)
		}
	})
	t.Run("UpstreamCut", func(t *testing.T) {
		rec := &wsRecorder{}
		f := newWSFixture(t, rec)
		conn := f.dial(t, nil)
		send(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"[[fake fault=cut after=4]]"}`)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n := 0
		var err error
		for err == nil {
			_, _, err = conn.Read(ctx)
			n++
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusBadGateway {
			t.Errorf("after %d messages the connection ended with %v, want close 1014 (bad gateway)", n-1, err)
		}
		ev := rec.waitCompleted(t, 1)[0]
		if ev.Outcome != tokenmeter.OutcomeFailed || ev.UsageKnown {
			t.Errorf("recorded %+v, want failed with usage unknown", ev)
		}
	})
	t.Run("ModelTooLong", func(t *testing.T) {
		rec := &wsRecorder{}
		f := newWSFixture(t, rec)
		conn := f.dial(t, nil)
		send(t, conn, `{"type":"response.create","model":"`+strings.Repeat("m", 300)+`","input":"x"}`)
		_, last := readUntil(t, conn, "error")
		if last["status"] != float64(400) || len(f.upstreamCalls()) != 0 || len(rec.byKind(tokenmeter.KindStarted)) != 0 {
			t.Errorf("a 300-byte model: %v, %d upstream calls; want a 400 error message, nothing forwarded or recorded", last, len(f.upstreamCalls()))
		}
	})
	t.Run("UpstreamErrorMessage", func(t *testing.T) {
		rec := &wsRecorder{}
		f := newWSFixture(t, rec)
		conn := f.dial(t, nil)
		send(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"[[fake status=429]]"}`)
		_, last := readUntil(t, conn, "error")
		if last["status"] != float64(429) {
			t.Errorf("error message %v, want status 429", last)
		}
		send(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"[[fake fault=error_event]]"}`)
		readUntil(t, conn, "response.failed")
		evs := rec.waitCompleted(t, 2)
		if evs[0].Status != 429 || evs[0].Outcome != tokenmeter.OutcomeError || !evs[0].UsageKnown || !evs[0].Usage.IsZero() {
			t.Errorf("refused request recorded as %+v, want status 429, error, known zero usage", evs[0])
		}
		if evs[1].Outcome != tokenmeter.OutcomeError || evs[1].Status != 200 {
			t.Errorf("failed response recorded as %+v, want an error outcome with status 200", evs[1])
		}
	})
}

// TestWebSocketRefusals: what the gateway will not relay is refused at the
// handshake in the provider's error shape.
func TestWebSocketRefusals(t *testing.T) {
	rec := &wsRecorder{}
	f := newWSFixture(t, rec)
	for _, tt := range []struct {
		name, path string
		header     http.Header
		status     int
	}{
		{"OtherPath", "/openai/v1/realtime", nil, http.StatusNotImplemented},
		{"UnknownVirtualKey", "/openai/v1/responses", http.Header{"Authorization": {"Bearer tm-nosuchkey"}}, http.StatusUnauthorized},
		{"KeyAsSubprotocol", "/openai/v1/responses", http.Header{"Sec-Websocket-Protocol": {"json, tm-abc"}}, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := websocket.Dial(context.Background(), f.gw.URL+tt.path, &websocket.DialOptions{HTTPHeader: tt.header})
			if err == nil || resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("dial: response %+v, error %v; want %d", resp, err, tt.status)
			}
			if len(f.upstreamCalls()) != 0 {
				t.Errorf("the upstream was called")
			}
		})
	}
	// The upstream's own refusal of the handshake is passed on.
	_, resp, err := websocket.Dial(context.Background(), f.gw.URL+"/openai/v1/responses", &websocket.DialOptions{
		HTTPHeader: http.Header{fakeupstream.DirectiveHeader: {"status=403"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("upstream refusing the handshake with 403: response %+v, error %v", resp, err)
	}
	if n := len(rec.byKind(tokenmeter.KindStarted)); n != 0 {
		t.Errorf("%d calls recorded for refused handshakes, want none", n)
	}
}

// TestWebSocketShutdown: Wait closes idle relayed connections with 1001
// and records nothing for them.
func TestWebSocketShutdown(t *testing.T) {
	rec := &wsRecorder{}
	f := newWSFixture(t, rec)
	conn := f.dial(t, nil)
	send(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"x"}`)
	readUntil(t, conn, "response.completed")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- f.p.Wait(ctx) }()
	_, _, err := conn.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Errorf("at shutdown the connection ended with %v, want close 1001", err)
	}
	if err := <-waited; err != nil {
		t.Errorf("Wait: %v", err)
	}
	if n := len(rec.byKind(tokenmeter.KindCompleted)); n != 1 {
		t.Errorf("%d completed events, want 1", n)
	}
}
