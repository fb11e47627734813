package fakeupstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
)

// observed is a fake upstream whose calls are collected.
type observed struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []fakeupstream.Call
}

func serveObserved(t *testing.T) *observed {
	t.Helper()
	o := &observed{}
	o.srv = httptest.NewServer(fakeupstream.New(fakeupstream.Options{Now: func() time.Time { return t0 }, Observe: func(c fakeupstream.Call) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.calls = append(o.calls, c)
	}}))
	t.Cleanup(o.srv.Close)
	return o
}

// waitCalls waits until n calls were observed and returns them.
func (o *observed) waitCalls(t *testing.T, n int) []fakeupstream.Call {
	t.Helper()
	for range 500 {
		o.mu.Lock()
		got := append([]fakeupstream.Call(nil), o.calls...)
		o.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("fewer than %d calls observed", n)
	return nil
}

func dialFake(t *testing.T, srv *httptest.Server, header http.Header) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, srv.URL+"/v1/responses", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial: %v (response %+v)", err, resp)
	}
	if !strings.HasPrefix(resp.Header.Get("x-request-id"), "req_") || resp.Header.Get("x-ratelimit-limit-requests") == "" {
		t.Errorf("handshake headers %v: want x-request-id and rate-limit headers", resp.Header)
	}
	conn.SetReadLimit(1 << 24)
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// exchange sends msg and reads messages until one ends the response
// (response.completed, incomplete or failed, or an error with a status).
func exchange(t *testing.T, conn *websocket.Conn, msg string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	var out []map[string]any
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d messages: %v", len(out), err)
		}
		if typ != websocket.MessageText {
			t.Fatalf("message type %v, want text", typ)
		}
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("message %q is not a JSON object: %v", data, err)
		}
		out = append(out, v)
		switch v["type"] {
		case "response.completed", "response.incomplete", "response.failed":
			return out
		case "error":
			if _, ok := v["status"]; ok {
				return out
			}
		}
	}
}

func types(msgs []map[string]any) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m["type"].(string))
	}
	return out
}

// TestResponsesWebSocketMatchesSSE: a response.create over the WebSocket
// gets the events, text and usage of the SSE stream of the same body,
// one event per message, and is one observed call.
func TestResponsesWebSocketMatchesSSE(t *testing.T) {
	o := serveObserved(t)
	body := `{"model":"gpt-5.4","input":"hello [[fake output=5 reasoning=2 cache_read=3]]","stream":true}`
	_, sseBody := mustDo(t, o.srv, request{path: "/v1/responses", body: body})
	sse := parseSSE(t, sseBody)

	conn := dialFake(t, o.srv, nil)
	msg := `{"type":"response.create",` + body[1:]
	ws := exchange(t, conn, msg)
	if diff := cmp.Diff(names(sse), types(ws)); diff != "" {
		t.Errorf("event types differ between SSE and WebSocket (-sse +ws):\n%s", diff)
	}
	last := ws[len(ws)-1]
	resp := last["response"].(map[string]any)
	usage, _ := json.Marshal(resp["usage"])
	want, err := fakeupstream.ExpectedUsage("/v1/responses", "", []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	var u responses.ResponseUsage
	if err := json.Unmarshal(usage, &u); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, responseUsage(u)); diff != "" {
		t.Errorf("WebSocket usage (-ExpectedUsage of the message +got):\n%s", diff)
	}
	calls := o.waitCalls(t, 2) // the POST, then the message (a handshake that succeeds is no call)
	c := calls[len(calls)-1]
	if c.Method != http.MethodGet || c.Path != "/v1/responses" || !c.Stream || c.Status != 200 || c.Model != "gpt-5.4" {
		t.Errorf("observed call %+v: want GET /v1/responses, stream, 200, gpt-5.4", c)
	}
	if diff := cmp.Diff(want, c.Usage); diff != "" {
		t.Errorf("observed usage (-want +got):\n%s", diff)
	}
	if id := resp["id"].(string); id != "resp_"+strings.TrimPrefix(c.RequestID, "req_") || c.ResponseID != id {
		t.Errorf("response id %q, observed request id %q and response id %q: want resp_X, req_X and resp_X", id, c.RequestID, c.ResponseID)
	}
	if c.Billed != want || c.BillSeq == 0 {
		t.Errorf("billed %+v (entry %d), want the planned usage %+v in an entry of the account", c.Billed, c.BillSeq, want)
	}
}

// TestResponsesWebSocketBillsWhatWasGenerated: a client that leaves a
// paced response after a few deltas is billed the input and the output
// generated until then, like an SSE stream; the next connection's calls
// are billed in full.
func TestResponsesWebSocketBillsWhatWasGenerated(t *testing.T) {
	o := serveObserved(t)
	conn := dialFake(t, o.srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Write(ctx, websocket.MessageText, []byte(`{"type":"response.create","model":"gpt-5.4","input":"[[fake output=400 delay=5ms]]"}`))
	deltas := 0
	for deltas < 5 {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `"response.output_text.delta"`) {
			deltas++
		}
	}
	conn.CloseNow()
	c := o.waitCalls(t, 1)[0]
	if c.Billed.OutputTokens < 5 || c.Billed.OutputTokens >= 400 || c.Billed.InputTokens != c.Usage.InputTokens {
		t.Errorf("left after 5 deltas of 400: billed %+v, planned %+v; want the input and 5..399 output tokens", c.Billed, c.Usage)
	}
}

// TestResponsesWebSocketSDK drives the transport with the official SDK's
// WebSocket client: two responses on one connection, each decoded as the
// SDK's event types.
func TestResponsesWebSocketSDK(t *testing.T) {
	o := serveObserved(t)
	client := openaisdk.NewClient(openaioption.WithBaseURL(o.srv.URL+"/v1"), openaioption.WithAPIKey("test"), openaioption.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Responses.Connect(ctx, responses.ResponseConnectionOptions{})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer conn.Close()
	for i, prompt := range []string{"first [[fake output=3]]", "second [[fake output=7]]"} {
		err := conn.Create(ctx, responses.ResponsesClientEventResponseCreateParam{
			Model: "gpt-5.4",
			Input: responses.ResponsesClientEventResponseCreateInputUnionParam{OfString: openaisdk.String(prompt)},
		})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		var text strings.Builder
		for {
			ev, err := conn.Recv(ctx)
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			if ev.Type == "response.output_text.delta" {
				text.WriteString(ev.AsResponseOutputTextDelta().Delta)
			}
			if ev.Type == "response.completed" {
				r := ev.AsResponseCompleted().Response
				if want := int64([]int{3, 7}[i]); r.Usage.OutputTokens != want {
					t.Errorf("response %d: output_tokens %d, want %d", i, r.Usage.OutputTokens, want)
				}
				break
			}
		}
		if want := fakeupstream.OutputText([]int{3, 7}[i]); text.String() != want {
			t.Errorf("response %d: text %q, want %q", i, text.String(), want)
		}
	}
	if calls := o.waitCalls(t, 2); len(calls) != 2 {
		t.Errorf("observed %d calls, want 2", len(calls))
	}
}

// TestResponsesWebSocketLanesAndWarmup: a stream_id is echoed in every
// event of its response, and generate:false completes at once with zero
// usage.
func TestResponsesWebSocketLanesAndWarmup(t *testing.T) {
	o := serveObserved(t)
	conn := dialFake(t, o.srv, nil)
	ws := exchange(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"x","stream_id":"lane-7"}`)
	for _, m := range ws {
		if m["stream_id"] != "lane-7" {
			t.Errorf("event %v lacks stream_id lane-7", m)
		}
	}
	ws = exchange(t, conn, `{"type":"response.create","model":"gpt-5.4","input":"prepare","generate":false}`)
	if diff := cmp.Diff([]string{"response.created", "response.completed"}, types(ws)); diff != "" {
		t.Errorf("generate:false events (-want +got):\n%s", diff)
	}
	calls := o.waitCalls(t, 2)
	if got := calls[1].Usage; got != (tokenmeter.Usage{}) {
		t.Errorf("generate:false usage %+v, want zero", got)
	}
	if _, ok := ws[1]["stream_id"]; ok {
		t.Errorf("event of a request without stream_id has one: %v", ws[1])
	}
}

// TestResponsesWebSocketErrors: refusals come as the transport's error
// message and leave the connection usable; a status directive in the
// handshake refuses the handshake.
func TestResponsesWebSocketErrors(t *testing.T) {
	o := serveObserved(t)
	conn := dialFake(t, o.srv, nil)
	for _, tt := range []struct {
		name, msg string
		status    float64
		typ       string
	}{
		{"StatusDirective", `{"type":"response.create","model":"m","input":"[[fake status=429 retry_after=7]]","stream_id":"a"}`, 429, "requests"},
		{"UnknownType", `{"type":"response.cancel"}`, 400, "invalid_request_error"},
		{"Background", `{"type":"response.create","model":"m","input":"x","background":true}`, 400, "invalid_request_error"},
		{"NoModel", `{"type":"response.create","input":"x"}`, 400, "invalid_request_error"},
		{"NotJSON", `not json`, 400, "invalid_request_error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ws := exchange(t, conn, tt.msg)
			if len(ws) != 1 || ws[0]["type"] != "error" || ws[0]["status"] != tt.status {
				t.Fatalf("got %v, want one error message with status %v", ws, tt.status)
			}
			if typ := ws[0]["error"].(map[string]any)["type"]; typ != tt.typ {
				t.Errorf("error.type %v, want %s", typ, tt.typ)
			}
			if tt.status == 429 {
				if ws[0]["stream_id"] != "a" || ws[0]["headers"].(map[string]any)["retry-after"] != "7" {
					t.Errorf("429 message %v: want stream_id a and headers.retry-after 7", ws[0])
				}
			}
		})
	}
	// The connection still answers.
	if ws := exchange(t, conn, `{"type":"response.create","model":"m","input":"ok"}`); ws[len(ws)-1]["type"] != "response.completed" {
		t.Errorf("after the errors: %v", types(ws))
	}

	_, resp, err := websocket.Dial(context.Background(), o.srv.URL+"/v1/responses", &websocket.DialOptions{
		HTTPHeader: http.Header{fakeupstream.DirectiveHeader: {"status=401"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("handshake with status=401: response %v, error %v; want a 401 refusal", resp, err)
	}

	// Without Upgrade, GET /v1/responses is still a 404.
	r, _ := mustDo(t, o.srv, request{method: http.MethodGet, path: "/v1/responses"})
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("plain GET /v1/responses: %d, want 404", r.StatusCode)
	}
}

// TestResponsesWebSocketFaults: error_event, malformed and cut as on SSE.
func TestResponsesWebSocketFaults(t *testing.T) {
	o := serveObserved(t)
	conn := dialFake(t, o.srv, nil)
	ws := exchange(t, conn, `{"type":"response.create","model":"m","input":"[[fake fault=error_event after=3]]"}`)
	if diff := cmp.Diff([]string{"response.created", "response.in_progress", "response.output_item.added", "error", "response.failed"}, types(ws)); diff != "" {
		t.Errorf("error_event (-want +got):\n%s", diff)
	}
	if _, ok := ws[3]["status"]; ok {
		t.Errorf("an in-stream error has a status: %v", ws[3])
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Write(ctx, websocket.MessageText, []byte(`{"type":"response.create","model":"m","input":"[[fake fault=malformed]]"}`))
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if json.Valid(data) {
			continue
		}
		if !strings.HasPrefix(string(data), `{"type":"response.completed"`) {
			t.Errorf("malformed message %.60q, want the truncated response.completed", data)
		}
		break
	}

	conn.Write(ctx, websocket.MessageText, []byte(`{"type":"response.create","model":"m","input":"[[fake fault=cut after=2]]"}`))
	n := 0
	for {
		_, _, err := conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				t.Errorf("cut: got a close frame %v, want the connection dropped", ce)
			}
			break
		}
		n++
	}
	if n != 2 {
		t.Errorf("cut after=2: %d messages before the drop, want 2", n)
	}
}
