package fakeupstream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

func TestInputTokens(t *testing.T) {
	tests := []struct {
		body string
		want int64
	}{
		{"", 1},
		{"abc", 1},
		{"abcdefgh", 2},
		{"abcdefghi", 2},
		{strings.Repeat("x", 400), 100},
	}
	for _, tt := range tests {
		if got := fakeupstream.InputTokens([]byte(tt.body)); got != tt.want {
			t.Errorf("InputTokens(%d bytes) = %d, want %d", len(tt.body), got, tt.want)
		}
	}
}

func TestOutputText(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, ""},
		{1, "lorem"},
		{3, "lorem ipsum dolor"},
	}
	for _, tt := range tests {
		if got := fakeupstream.OutputText(tt.n); got != tt.want {
			t.Errorf("OutputText(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := len(strings.Fields(fakeupstream.OutputText(500))); got != 500 {
		t.Errorf("OutputText(500) has %d words, want 500", got)
	}
}

const (
	messagesBody  = `{"model":"claude-sonnet-5-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]%s}`
	chatBody      = `{"model":"gpt-5.4","messages":[{"role":"user","content":"hi"}]%s}`
	responsesBody = `{"model":"gpt-5.4","input":"hi"%s}`
)

func TestExpectedUsage(t *testing.T) {
	body := func(format, extra string) []byte { return []byte(fmt.Sprintf(format, extra)) }
	in := func(b []byte) int64 { return fakeupstream.InputTokens(b) }
	mb := body(messagesBody, `,"system":"[[fake output=7 cache_read=3 cache_write_5m=1 cache_write_1h=2 web_search=1]]"`)
	cb := body(chatBody, `,"max_tokens":5`)
	cbc := body(chatBody, `,"max_tokens":5,"max_completion_tokens":9`)
	rb := body(responsesBody, `,"max_output_tokens":4`)
	tests := []struct {
		path, header string
		body         []byte
		want         tokenmeter.Usage
	}{
		{"/v1/messages", "", mb, tokenmeter.Usage{InputTokens: in(mb), OutputTokens: 7, CacheReadTokens: 3, CacheWrite5mTokens: 1, CacheWrite1hTokens: 2, WebSearchRequests: 1}},
		{"/v1/messages?beta=true", "reasoning=4", mb, tokenmeter.Usage{InputTokens: in(mb), OutputTokens: 11, ReasoningTokens: 4, CacheReadTokens: 3, CacheWrite5mTokens: 1, CacheWrite1hTokens: 2, WebSearchRequests: 1}},
		{"/v1/chat/completions", "", cb, tokenmeter.Usage{InputTokens: in(cb), OutputTokens: 5}},
		{"/v1/chat/completions", "", cbc, tokenmeter.Usage{InputTokens: in(cbc), OutputTokens: 9}},
		{"/v1/responses", "cache_read=10", rb, tokenmeter.Usage{InputTokens: in(rb), OutputTokens: 4, CacheReadTokens: 10}},
	}
	for _, tt := range tests {
		got, err := fakeupstream.ExpectedUsage(tt.path, tt.header, tt.body)
		if err != nil {
			t.Errorf("ExpectedUsage(%q, %q, %s): %v", tt.path, tt.header, tt.body, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ExpectedUsage(%q, %q, %s) mismatch (-want +got):\n%s", tt.path, tt.header, tt.body, diff)
		}
	}

	errCases := []struct{ path, header, body string }{
		{"/v1/models", "", `{}`},
		{"/v1/messages", "", `{"model":"m"}`}, // no max_tokens
		{"/v1/messages", "status=429", fmt.Sprintf(messagesBody, "")},
		{"/v1/chat/completions", "output=x", fmt.Sprintf(chatBody, "")},
	}
	for _, tt := range errCases {
		if got, err := fakeupstream.ExpectedUsage(tt.path, tt.header, []byte(tt.body)); err == nil {
			t.Errorf("ExpectedUsage(%q, %q, %s) = %+v, want an error", tt.path, tt.header, tt.body, got)
		}
	}
}

func FuzzExpectedUsage(f *testing.F) {
	f.Add("/v1/messages", "output=3", []byte(fmt.Sprintf(messagesBody, `,"stream":true`)))
	f.Add("/v1/chat/completions", "", []byte(`{"model":"m","messages":[],"max_tokens":2} [[fake output=9 fault=cut]]`))
	f.Add("/v1/responses", "delay=1ms,ttfb=2ms", []byte(`{"model":"m","input":"[[fake]] [[fake reasoning=1"}`))
	f.Add("/v1/chat/completions", "reasoning=2", []byte(`{"model":"m","n":4,"messages":[]}`))
	f.Add("/v1/responses", "background_delay=200ms", []byte(`{"model":"m","background":true,"instructions":"be brief","input":"hi"}`))
	f.Add("/v1/completions", "output=30", []byte(`{"model":"m","prompt":"x","n":2,"best_of":5}`))
	f.Add("/v1/embeddings", "", []byte(`{"model":"m","input":["a",[1,2]]}`))
	f.Add("/v1/embeddings", "input=9", []byte(`{"model":"m","input":[[1,2],[3]],"dimensions":8}`))
	f.Add("/v1/images/generations", "output=5", []byte(`{"prompt":"p","n":3}`))
	f.Add("/v1/audio/transcriptions", "", []byte("--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nxx\r\n--b--\r\n"))
	f.Add("/v1/batches", "", []byte(`{"input_file_id":"f","endpoint":"/v1/chat/completions","completion_window":"24h"}`))
	f.Add("/v1/responses", "", append([]byte{0xEF, 0xBB, 0xBF}, `{"model":"m","input":"bom"}`...))
	f.Add("/v1/chat/completions", "", []byte{0xFF, 0xFE, '{', 0, '}', 0})
	f.Fuzz(func(t *testing.T, path, header string, body []byte) {
		billed, berr := fakeupstream.ExpectedBilled(path, header, body)
		u, err := fakeupstream.ExpectedUsage(path, header, body)
		if err == nil && (berr != nil || billed != u) {
			t.Errorf("ExpectedUsage(%q, %q, %q) = %+v but ExpectedBilled = %+v, %v", path, header, body, u, billed, berr)
		}
		if berr != nil {
			return
		}
		if billed.InputTokens < 0 || billed.OutputTokens < billed.ReasoningTokens || billed.ReasoningTokens < 0 || billed.CacheReadTokens < 0 {
			t.Errorf("ExpectedBilled(%q, %q, %q) = %+v: negative or inconsistent counts", path, header, body, billed)
		}
	})
}

// streamRoute is a streaming route with a request body template and the
// labels of its complete stream for output=3.
type streamRoute struct {
	name, path, body string
	header           map[string]string
	labels           []string
	usage            func(t *testing.T, events []event) tokenmeter.Usage
}

var streamRoutes = []streamRoute{
	{
		name: "Messages", path: "/v1/messages", body: fmt.Sprintf(messagesBody, `,"stream":true`),
		header: map[string]string{"anthropic-version": "2023-06-01"},
		labels: []string{"message_start", "ping", "content_block_start",
			"content_block_delta", "content_block_delta", "content_block_delta",
			"content_block_stop", "message_delta", "message_stop"},
		usage: anthropicStreamUsage,
	},
	{
		name: "Chat", path: "/v1/chat/completions", body: fmt.Sprintf(chatBody, `,"stream":true,"stream_options":{"include_usage":true}`),
		labels: []string{"role", "content", "content", "content", "finish", "usage", "[DONE]"},
		usage:  chatStreamUsage,
	},
	{
		name: "ChatNoUsage", path: "/v1/chat/completions", body: fmt.Sprintf(chatBody, `,"stream":true`),
		labels: []string{"role", "content", "content", "content", "finish", "[DONE]"},
		usage:  chatStreamUsage,
	},
	{
		name: "Responses", path: "/v1/responses", body: fmt.Sprintf(responsesBody, `,"stream":true`),
		labels: []string{"response.created", "response.in_progress", "response.output_item.added",
			"response.content_part.added", "response.output_text.delta", "response.output_text.delta",
			"response.output_text.delta", "response.output_text.done", "response.content_part.done",
			"response.output_item.done", "response.completed"},
		usage: responsesStreamUsage,
	},
}

// label names an event for comparison: its SSE event name, or for Chat
// Completions chunks their kind; events with invalid JSON data get a
// "!malformed" suffix.
func label(e event) string {
	if e.data == "[DONE]" {
		return "[DONE]"
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(e.data), &v); err != nil {
		return e.name + "!malformed"
	}
	if e.name != "" {
		return e.name
	}
	if _, ok := v["error"]; ok {
		return "error"
	}
	choices, _ := v["choices"].([]any)
	if len(choices) == 0 {
		return "usage"
	}
	choice := choices[0].(map[string]any)
	delta := choice["delta"].(map[string]any)
	switch {
	case delta["role"] != nil:
		return "role"
	case choice["finish_reason"] != nil:
		return "finish"
	}
	return "content"
}

func labels(events []event) []string {
	var out []string
	for _, e := range events {
		out = append(out, label(e))
	}
	return out
}

func TestStreams(t *testing.T) {
	for _, rt := range streamRoutes {
		t.Run(rt.name, func(t *testing.T) {
			_, srv := mustServe(t)
			header := map[string]string{fakeupstream.DirectiveHeader: "output=3 cache_read=5 reasoning=2"}
			for k, v := range rt.header {
				header[k] = v
			}
			resp, body := mustDo(t, srv, request{path: rt.path, body: rt.body, header: header})
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/event-stream") {
				t.Errorf("Content-Type = %q, want text/event-stream", got)
			}
			events := parseSSE(t, body)
			if diff := cmp.Diff(rt.labels, labels(events)); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
			if rt.name == "ChatNoUsage" {
				if strings.Contains(string(body), `"usage"`) {
					t.Errorf("stream without include_usage mentions usage:\n%s", body)
				}
				return
			}
			if rt.name == "Chat" {
				for _, e := range events[:len(events)-2] {
					if !strings.Contains(e.data, `"usage":null`) {
						t.Errorf("chunk before the usage chunk has no \"usage\":null: %s", e.data)
					}
				}
			}
			want, err := fakeupstream.ExpectedUsage(rt.path, header[fakeupstream.DirectiveHeader], []byte(rt.body))
			if err != nil {
				t.Fatalf("ExpectedUsage: %v", err)
			}
			if diff := cmp.Diff(want, rt.usage(t, events)); diff != "" {
				t.Errorf("stream usage mismatch (-want +got):\n%s", diff)
			}
			if want.InputTokens != fakeupstream.InputTokens([]byte(rt.body)) || want.OutputTokens != 5 || want.CacheReadTokens != 5 {
				t.Errorf("ExpectedUsage = %+v, want input %d, output 3+2, cache read 5", want, fakeupstream.InputTokens([]byte(rt.body)))
			}
		})
	}
}

func TestStreamFaults(t *testing.T) {
	errorLabels := map[string][]string{
		"Messages":    {"error"},
		"Chat":        {"error"},
		"ChatNoUsage": {"error"},
		"Responses":   {"error", "response.failed"},
	}
	usageAt := map[string]int{"Messages": 7, "Chat": 5, "ChatNoUsage": 4, "Responses": 10}
	for _, rt := range streamRoutes {
		n := len(rt.labels)
		malformed := func(i int) []string {
			out := append([]string(nil), rt.labels...)
			if strings.HasPrefix(rt.name, "Chat") {
				out[i] = "" // a broken chunk has no kind
			}
			out[i] += "!malformed"
			return out
		}
		tests := []struct {
			directive  string
			wantLabels []string
			wantCut    bool
		}{
			{"fault=error_event", append(append([]string(nil), rt.labels[:2]...), errorLabels[rt.name]...), false},
			{"fault=error_event after=0", errorLabels[rt.name], false},
			{"fault=error_event after=4", append(append([]string(nil), rt.labels[:4]...), errorLabels[rt.name]...), false},
			{"fault=error_event after=999", append(append([]string(nil), rt.labels[:n-1]...), errorLabels[rt.name]...), false},
			{"fault=cut", rt.labels[:2], true},
			{"fault=cut after=0", nil, true},
			{"fault=cut after=999", rt.labels[:n-1], true},
			{"fault=malformed", malformed(usageAt[rt.name]), false},
			{"fault=malformed after=0", malformed(0), false},
			{"fault=malformed after=3", malformed(3), false},
		}
		for _, tt := range tests {
			t.Run(rt.name+"/"+tt.directive, func(t *testing.T) {
				_, srv := mustServe(t)
				header := map[string]string{fakeupstream.DirectiveHeader: "output=3 " + tt.directive}
				for k, v := range rt.header {
					header[k] = v
				}
				resp, body, err := do(t, srv, request{path: rt.path, body: rt.body, header: header})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d, want 200", resp.StatusCode)
				}
				if gotCut := err != nil; gotCut != tt.wantCut {
					t.Errorf("read error = %v, want cut connection %t", err, tt.wantCut)
				}
				if diff := cmp.Diff(tt.wantLabels, labels(parseSSE(t, body))); diff != "" {
					t.Errorf("events mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestNonStreamFaults(t *testing.T) {
	routes := []struct {
		name, path, body string
		header           map[string]string
		errorStatus      int
	}{
		{"Messages", "/v1/messages", fmt.Sprintf(messagesBody, ""), map[string]string{"anthropic-version": "2023-06-01"}, 529},
		{"Chat", "/v1/chat/completions", fmt.Sprintf(chatBody, ""), nil, 500},
		{"Responses", "/v1/responses", fmt.Sprintf(responsesBody, ""), nil, 500},
	}
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			_, srv := mustServe(t)
			header := map[string]string{}
			for k, v := range rt.header {
				header[k] = v
			}

			header[fakeupstream.DirectiveHeader] = "fault=cut"
			resp, body, err := do(t, srv, request{path: rt.path, body: rt.body, header: header})
			if err == nil || resp.StatusCode != http.StatusOK {
				t.Errorf("fault=cut: status %d, read error %v; want 200 and a cut body", resp.StatusCode, err)
			}
			if json.Valid(body) {
				t.Errorf("fault=cut: body %s is complete JSON", body)
			}

			header[fakeupstream.DirectiveHeader] = "fault=malformed"
			resp, body = mustDo(t, srv, request{path: rt.path, body: rt.body, header: header})
			if resp.StatusCode != http.StatusOK || json.Valid(body) || len(body) == 0 {
				t.Errorf("fault=malformed: status %d, body %s; want 200 and truncated JSON", resp.StatusCode, body)
			}

			header[fakeupstream.DirectiveHeader] = "fault=error_event"
			resp, body = mustDo(t, srv, request{path: rt.path, body: rt.body, header: header})
			if resp.StatusCode != rt.errorStatus || !json.Valid(body) {
				t.Errorf("fault=error_event: status %d, body %s; want %d and an error body", resp.StatusCode, body, rt.errorStatus)
			}
		})
	}
}

// errorShape decodes an error body and returns "anthropic TYPE" or
// "openai TYPE", checking the fields of each shape.
func errorShape(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	var a struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &a); err == nil && a.Type == "error" {
		if a.Error.Message == "" || a.RequestID == "" || a.RequestID != resp.Header.Get("request-id") {
			t.Errorf("Anthropic error %s: want a message and request_id equal to request-id %q", body, resp.Header.Get("request-id"))
		}
		return "anthropic " + a.Error.Type
	}
	var o map[string]map[string]any
	if err := json.Unmarshal(body, &o); err != nil || o["error"] == nil {
		t.Fatalf("error body %s is neither shape", body)
	}
	e := o["error"]
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e[k]; !ok {
			t.Errorf("OpenAI error %s has no %q", body, k)
		}
	}
	if !strings.HasPrefix(resp.Header.Get("x-request-id"), "req_") {
		t.Errorf("OpenAI error has x-request-id %q, want req_...", resp.Header.Get("x-request-id"))
	}
	return fmt.Sprintf("openai %v", e["type"])
}

func TestErrors(t *testing.T) {
	av := map[string]string{"anthropic-version": "2023-06-01"}
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantShape  string
	}{
		{"UnknownOpenAIPath", request{path: "/v1/moderations", body: "{}"}, 404, "openai invalid_request_error"},
		{"UnknownPathAnthropicHeader", request{path: "/v1/files", header: av}, 404, "anthropic not_found_error"},
		{"UnknownMessagesPath", request{path: "/v1/messages/batches", body: "{}"}, 404, "anthropic not_found_error"},
		{"WrongMethodMessages", request{method: http.MethodGet, path: "/v1/messages"}, 404, "anthropic not_found_error"},
		{"WrongMethodChat", request{method: http.MethodGet, path: "/v1/chat/completions"}, 404, "openai invalid_request_error"},
		{"Root", request{method: http.MethodGet, path: "/"}, 404, "openai invalid_request_error"},
		{"MalformedMessages", request{path: "/v1/messages", body: `{"model":`}, 400, "anthropic invalid_request_error"},
		{"MessagesNotObject", request{path: "/v1/messages", body: `null`}, 400, "anthropic invalid_request_error"},
		{"MessagesNoMaxTokens", request{path: "/v1/messages", body: `{"model":"m","messages":[]}`}, 400, "anthropic invalid_request_error"},
		{"MessagesNoModel", request{path: "/v1/messages", body: `{"max_tokens":5}`}, 400, "anthropic invalid_request_error"},
		{"MessagesZeroMaxTokens", request{path: "/v1/messages", body: `{"model":"m","max_tokens":0}`}, 400, "anthropic invalid_request_error"},
		{"MalformedCountTokens", request{path: "/v1/messages/count_tokens", body: `[`}, 400, "anthropic invalid_request_error"},
		{"MalformedChat", request{path: "/v1/chat/completions", body: `[1]`}, 400, "openai invalid_request_error"},
		{"MalformedResponses", request{path: "/v1/responses", body: ``}, 400, "openai invalid_request_error"},
		{"WrongTypeResponses", request{path: "/v1/responses", body: `{"model":"m","stream":"yes"}`}, 400, "openai invalid_request_error"},
		{"BadDirective", request{path: "/v1/chat/completions", body: fmt.Sprintf(chatBody, ""), header: map[string]string{fakeupstream.DirectiveHeader: "output=lots"}}, 400, "openai invalid_request_error"},
		{"BadPromptDirective", request{path: "/v1/messages", body: `{"model":"m","max_tokens":5,"system":"[[fake fault=explode]]"}`}, 400, "anthropic invalid_request_error"},
		{"BadStatusDirective", request{path: "/v1/responses", body: `{"model":"m"} [[fake status=200]]`}, 400, "openai invalid_request_error"},
		{"Status429Anthropic", request{path: "/v1/messages", body: "{}", header: map[string]string{fakeupstream.DirectiveHeader: "status=429"}}, 429, "anthropic rate_limit_error"},
		{"Status529Anthropic", request{path: "/v1/messages", body: "not even json [[fake status=529]]"}, 529, "anthropic overloaded_error"},
		{"Status401Anthropic", request{path: "/v1/messages/count_tokens", body: "{}", header: map[string]string{fakeupstream.DirectiveHeader: "status=401"}}, 401, "anthropic authentication_error"},
		{"Status500Anthropic", request{path: "/v1/messages", body: "{}", header: map[string]string{fakeupstream.DirectiveHeader: "status=500"}}, 500, "anthropic api_error"},
		{"Status413Anthropic", request{path: "/v1/messages", body: "{}", header: map[string]string{fakeupstream.DirectiveHeader: "status=413"}}, 413, "anthropic request_too_large"},
		{"Status429Chat", request{path: "/v1/chat/completions", body: "{}", header: map[string]string{fakeupstream.DirectiveHeader: "status=429"}}, 429, "openai requests"},
		{"Status500Responses", request{path: "/v1/responses", body: "{}", header: map[string]string{fakeupstream.DirectiveHeader: "status=500"}}, 500, "openai server_error"},
		{"Status404ModelsOpenAI", request{method: http.MethodGet, path: "/v1/models", header: map[string]string{fakeupstream.DirectiveHeader: "status=404"}}, 404, "openai invalid_request_error"},
		{"Status503ModelsAnthropic", request{method: http.MethodGet, path: "/v1/models", header: map[string]string{fakeupstream.DirectiveHeader: "status=503", "anthropic-version": "2023-06-01"}}, 503, "anthropic api_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := mustServe(t)
			resp, body := mustDo(t, srv, tt.req)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("%s %s: status = %d, want %d; body %s", tt.req.method, tt.req.path, resp.StatusCode, tt.wantStatus, body)
			}
			if got := errorShape(t, resp, body); got != tt.wantShape {
				t.Errorf("%s %s: error = %q, want %q; body %s", tt.req.method, tt.req.path, got, tt.wantShape, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			wantRetry := ""
			if tt.wantStatus == 429 {
				wantRetry = "1"
			}
			if got := resp.Header.Get("retry-after"); got != wantRetry {
				t.Errorf("retry-after = %q, want %q", got, wantRetry)
			}
		})
	}
}

func TestRetryAfterDirective(t *testing.T) {
	_, srv := mustServe(t)
	resp, _ := mustDo(t, srv, request{path: "/v1/chat/completions", body: "{}", header: map[string]string{fakeupstream.DirectiveHeader: "status=429 retry_after=30"}})
	if got := resp.Header.Get("retry-after"); got != "30" {
		t.Errorf("retry-after = %q, want 30", got)
	}
}

func TestModelsShape(t *testing.T) {
	_, srv := mustServe(t)
	_, body := mustDo(t, srv, request{method: http.MethodGet, path: "/v1/models", header: map[string]string{"anthropic-version": "2023-06-01"}})
	if got := field(t, string(body), "has_more"); got != false {
		t.Errorf("Anthropic models list has_more = %v, want false: %s", got, body)
	}
	_, body = mustDo(t, srv, request{method: http.MethodGet, path: "/v1/models"})
	if got := field(t, string(body), "object"); got != "list" {
		t.Errorf("OpenAI models list object = %v, want list: %s", got, body)
	}
}

func TestRequestIDsUnique(t *testing.T) {
	fs, srv := mustServe(t)
	reqs := []request{
		{path: "/v1/messages", body: fmt.Sprintf(messagesBody, "")},
		{path: "/v1/messages", body: fmt.Sprintf(messagesBody, `,"stream":true`)},
		{path: "/v1/messages/count_tokens", body: "{}"},
		{path: "/v1/chat/completions", body: fmt.Sprintf(chatBody, "")},
		{path: "/v1/responses", body: fmt.Sprintf(responsesBody, `,"stream":true`)},
		{method: http.MethodGet, path: "/v1/models"},
		{path: "/v1/nowhere", body: "{}"},
		{path: "/v1/messages", body: `{`},
	}
	const rounds = 5
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for range rounds {
		for _, req := range reqs {
			wg.Go(func() {
				resp, _, err := send(srv, req)
				if err != nil {
					t.Errorf("%s %s: %v", req.method, req.path, err)
					return
				}
				id := resp.Header.Get("request-id") + resp.Header.Get("x-request-id")
				mu.Lock()
				defer mu.Unlock()
				if !strings.HasPrefix(id, "req_") || len(id) != len("req_")+24 {
					t.Errorf("%s %s: request id %q, want req_ and 24 hex digits", req.method, req.path, id)
				}
				if prev, ok := seen[id]; ok {
					t.Errorf("%s %s: request id %q already given to %s", req.method, req.path, id, prev)
				}
				seen[id] = req.path
			})
		}
	}
	wg.Wait()
	if got, want := fs.Requests(), int64(rounds*len(reqs)); got != want {
		t.Errorf("Requests() = %d, want %d", got, want)
	}

	// A second server never repeats the first one's ids.
	_, srv2 := mustServe(t)
	resp, _ := mustDo(t, srv2, reqs[0])
	if id := resp.Header.Get("request-id"); seen[id] != "" {
		t.Errorf("second server gave request id %q again", id)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	_, srv := mustServe(t)
	mb := fmt.Sprintf(messagesBody, "")
	anth := func(key, directives string) *http.Response {
		resp, _ := mustDo(t, srv, request{path: "/v1/messages", body: mb, header: map[string]string{"x-api-key": key, fakeupstream.DirectiveHeader: directives}})
		return resp
	}
	in := fakeupstream.InputTokens([]byte(mb))
	first := anth("key-a", "output=10 cache_write_5m=100 cache_read=1000")
	second := anth("key-a", "output=5")
	other := anth("key-b", "")

	wantReset := "2026-11-20T10:31:00Z" // t0 is 10:30:40
	tests := []struct {
		resp   *http.Response
		header string
		want   string
	}{
		{first, "anthropic-ratelimit-requests-limit", strconv.Itoa(fakeupstream.DefaultRequestsPerMinute)},
		{first, "anthropic-ratelimit-requests-remaining", strconv.Itoa(fakeupstream.DefaultRequestsPerMinute - 1)},
		{first, "anthropic-ratelimit-requests-reset", wantReset},
		{first, "anthropic-ratelimit-input-tokens-remaining", strconv.FormatInt(fakeupstream.DefaultInputTokensPerMinute-in-100, 10)},
		{first, "anthropic-ratelimit-output-tokens-remaining", strconv.Itoa(fakeupstream.DefaultOutputTokensPerMinute - 10)},
		{first, "anthropic-ratelimit-tokens-limit", strconv.Itoa(fakeupstream.DefaultInputTokensPerMinute + fakeupstream.DefaultOutputTokensPerMinute)},
		{first, "anthropic-ratelimit-tokens-reset", wantReset},
		{second, "anthropic-ratelimit-requests-remaining", strconv.Itoa(fakeupstream.DefaultRequestsPerMinute - 2)},
		{second, "anthropic-ratelimit-output-tokens-remaining", strconv.Itoa(fakeupstream.DefaultOutputTokensPerMinute - 15)},
		{second, "anthropic-ratelimit-input-tokens-reset", wantReset},
		{second, "anthropic-ratelimit-output-tokens-reset", wantReset},
		{other, "anthropic-ratelimit-requests-remaining", strconv.Itoa(fakeupstream.DefaultRequestsPerMinute - 1)},
	}
	for _, tt := range tests {
		if got := tt.resp.Header.Get(tt.header); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.header, got, tt.want)
		}
	}

	cb := fmt.Sprintf(chatBody, "")
	resp, _ := mustDo(t, srv, request{path: "/v1/chat/completions", body: cb, header: map[string]string{"Authorization": "Bearer sk-x", fakeupstream.DirectiveHeader: "output=4 cache_read=6"}})
	openAI := []struct{ header, want string }{
		{"x-ratelimit-limit-requests", strconv.Itoa(fakeupstream.DefaultRequestsPerMinute)},
		{"x-ratelimit-remaining-requests", strconv.Itoa(fakeupstream.DefaultRequestsPerMinute - 1)},
		{"x-ratelimit-limit-tokens", strconv.Itoa(fakeupstream.DefaultInputTokensPerMinute + fakeupstream.DefaultOutputTokensPerMinute)},
		{"x-ratelimit-remaining-tokens", strconv.FormatInt(fakeupstream.DefaultInputTokensPerMinute+fakeupstream.DefaultOutputTokensPerMinute-fakeupstream.InputTokens([]byte(cb))-6-4, 10)},
		{"x-ratelimit-reset-requests", "20s"},
		{"x-ratelimit-reset-tokens", "20s"},
	}
	for _, tt := range openAI {
		if got := resp.Header.Get(tt.header); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.header, got, tt.want)
		}
	}
	if resp.Header.Get("anthropic-ratelimit-requests-limit") != "" || first.Header.Get("x-ratelimit-limit-requests") != "" {
		t.Error("a response carries the other provider's rate-limit headers")
	}
}

func TestRateLimitWindowResets(t *testing.T) {
	now := t0
	var mu sync.Mutex
	fs := fakeupstream.New(fakeupstream.Options{
		Now:               func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		RequestsPerMinute: 10,
	})
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	get := func() string {
		resp, _ := mustDo(t, srv, request{method: http.MethodGet, path: "/v1/models"})
		return resp.Header.Get("x-ratelimit-remaining-requests")
	}
	var got []string
	for range 3 {
		got = append(got, get())
	}
	mu.Lock()
	now = now.Add(20 * time.Second) // the next minute
	mu.Unlock()
	got = append(got, get())
	if diff := cmp.Diff([]string{"9", "8", "7", "9"}, got); diff != "" {
		t.Errorf("x-ratelimit-remaining-requests over a window boundary (-want +got):\n%s", diff)
	}
}

func TestTTFBAndDelay(t *testing.T) {
	_, srv := mustServe(t)
	const ttfb = 150 * time.Millisecond
	start := time.Now()
	mustDo(t, srv, request{path: "/v1/chat/completions", body: fmt.Sprintf(chatBody, ""), header: map[string]string{fakeupstream.DirectiveHeader: "ttfb=150ms"}})
	if got := time.Since(start); got < ttfb {
		t.Errorf("response with ttfb=150ms took %v, want at least %v", got, ttfb)
	}

	// delay=20ms between 9 events: at least 8 gaps of 20ms.
	hr, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(fmt.Sprintf(messagesBody, `,"stream":true`)))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set(fakeupstream.DirectiveHeader, "output=3 delay=20ms")
	start = time.Now()
	resp, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatalf("POST /v1/messages: %v", err)
	}
	defer resp.Body.Close()
	headers := time.Since(start)
	sc := bufio.NewScanner(resp.Body)
	var first time.Duration
	for sc.Scan() {
		if first == 0 {
			first = time.Since(start)
		}
	}
	total := time.Since(start)
	if headers > 100*time.Millisecond || first > 100*time.Millisecond {
		t.Errorf("headers after %v, first event after %v: want both at once", headers, first)
	}
	if total < 8*20*time.Millisecond {
		t.Errorf("stream with delay=20ms took %v, want at least %v", total, 8*20*time.Millisecond)
	}
}

func TestClientDisconnect(t *testing.T) {
	fs := fakeupstream.New(fakeupstream.Options{})
	done := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.ServeHTTP(w, r)
		done <- struct{}{}
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/responses", strings.NewReader(fmt.Sprintf(responsesBody, `,"stream":true`)))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set(fakeupstream.DirectiveHeader, "output=100000 delay=50ms")
	resp, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatalf("POST /v1/responses: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		t.Fatalf("no first line: %v", sc.Err())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still running 5s after the client went away")
	}
}

func TestLoggerNeverSeesCredential(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	fs := fakeupstream.New(fakeupstream.Options{Logger: newTestLogger(&mu, &buf)})
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	mustDo(t, srv, request{path: "/v1/messages", body: fmt.Sprintf(messagesBody, ""), header: map[string]string{"x-api-key": "sk-ant-secret-123"}})
	mustDo(t, srv, request{path: "/v1/chat/completions", body: fmt.Sprintf(chatBody, ""), header: map[string]string{"Authorization": "Bearer sk-secret-456"}})
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "request served") {
		t.Errorf("log has no request lines:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "secret") {
		t.Errorf("log contains a credential:\n%s", buf.String())
	}
}

func TestObserve(t *testing.T) {
	calls := make(chan fakeupstream.Call, 1)
	fs := fakeupstream.New(fakeupstream.Options{Now: func() time.Time { return t0 }, Observe: func(c fakeupstream.Call) { calls <- c }})
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	usage := func(path, header, body string) tokenmeter.Usage {
		u, err := fakeupstream.ExpectedUsage(path, header, []byte(body))
		if err != nil {
			t.Fatalf("ExpectedUsage(%s): %v", path, err)
		}
		return u
	}
	msgStream := fmt.Sprintf(messagesBody, `,"stream":true,"system":"[[fake output=4 cache_read=9]]"`)
	chat := fmt.Sprintf(chatBody, "")
	tests := []struct {
		name string
		req  request
		want fakeupstream.Call // RequestID is checked against the response
	}{
		{"MessagesStream", request{path: "/v1/messages?beta=true", body: msgStream},
			fakeupstream.Call{Method: "POST", Path: "/v1/messages", Provider: "anthropic", Model: "claude-sonnet-5-5", Stream: true, Status: 200, Usage: usage("/v1/messages", "", msgStream),
				Billed: usage("/v1/messages", "", msgStream), BillSeq: 1}},
		// Cut after message_start and ping: input billed, no output generated.
		{"MessagesCut", request{path: "/v1/messages", body: msgStream, header: map[string]string{fakeupstream.DirectiveHeader: "fault=cut"}},
			fakeupstream.Call{Method: "POST", Path: "/v1/messages", Provider: "anthropic", Model: "claude-sonnet-5-5", Stream: true, Status: 200, Usage: usage("/v1/messages", "", msgStream), Fault: "cut",
				Billed: tokenmeter.Usage{InputTokens: fakeupstream.InputTokens([]byte(msgStream)), CacheReadTokens: 9}, BillSeq: 2}},
		{"ChatJSON", request{path: "/v1/chat/completions", body: chat},
			fakeupstream.Call{Method: "POST", Path: "/v1/chat/completions", Provider: "openai", Model: "gpt-5.4", Status: 200, Usage: usage("/v1/chat/completions", "", chat),
				Billed: usage("/v1/chat/completions", "", chat), BillSeq: 3}},
		{"InjectedStatus", request{path: "/v1/responses", body: fmt.Sprintf(responsesBody, ""), header: map[string]string{fakeupstream.DirectiveHeader: "status=429"}},
			fakeupstream.Call{Method: "POST", Path: "/v1/responses", Provider: "openai", Status: 429, BillSeq: 4}},
		{"ErrorAfterPlan", request{path: "/v1/messages", body: fmt.Sprintf(messagesBody, ""), header: map[string]string{fakeupstream.DirectiveHeader: "fault=error_event"}},
			fakeupstream.Call{Method: "POST", Path: "/v1/messages", Provider: "anthropic", Model: "claude-sonnet-5-5", Status: 529, Fault: "error_event", BillSeq: 5}},
		{"CountTokens", request{path: "/v1/messages/count_tokens", body: "{}"},
			fakeupstream.Call{Method: "POST", Path: "/v1/messages/count_tokens", Provider: "anthropic", Status: 200}},
		{"HelloHead", request{method: http.MethodHead, path: "/api/hello"},
			fakeupstream.Call{Method: "HEAD", Path: "/api/hello", Provider: "anthropic", Status: 200}},
		{"HelloGet", request{method: http.MethodGet, path: "/api/hello"},
			fakeupstream.Call{Method: "GET", Path: "/api/hello", Provider: "anthropic", Status: 200}},
		{"NotFound", request{path: "/v1/nowhere", body: "{}"},
			fakeupstream.Call{Method: "POST", Path: "/v1/nowhere", Provider: "openai", Status: 404}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _, _ := do(t, srv, tt.req) // the cut call's body fails to read
			var got fakeupstream.Call
			select {
			case got = <-calls:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s %s: Observe not called", tt.req.method, tt.req.path)
			}
			want := tt.want
			want.RequestID = resp.Header.Get("request-id") + resp.Header.Get("x-request-id")
			if want.RequestID == "" {
				t.Errorf("%s %s: response has no request id", tt.req.method, tt.req.path)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s: observed call mismatch (-want +got):\n%s", tt.req.method, tt.req.path, diff)
			}
		})
	}
}
