package fakeupstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/google/go-cmp/cmp"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

// recorder serves a fake upstream and keeps the last request body, so that
// tests can compute the usage the SDK's request must get.
type recorder struct {
	srv  *httptest.Server
	fake *fakeupstream.Server

	mu   sync.Mutex
	body []byte
}

func mustServeRecorded(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{fake: fakeupstream.New(fakeupstream.Options{Now: func() time.Time { return t0 }})}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		rec.body = body
		rec.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) lastBody() []byte {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.body
}

func anthropicClient(rec *recorder) anthropicsdk.Client {
	return anthropicsdk.NewClient(
		anthropicoption.WithBaseURL(rec.srv.URL),
		anthropicoption.WithAPIKey("test"),
		anthropicoption.WithMaxRetries(0),
	)
}

// anthropicUsage converts an SDK usage into tokenmeter's categories.
func anthropicUsage(u anthropicsdk.Usage) tokenmeter.Usage {
	return tokenmeter.Usage{
		InputTokens:        u.InputTokens,
		OutputTokens:       u.OutputTokens,
		CacheWrite5mTokens: u.CacheCreation.Ephemeral5mInputTokens,
		CacheWrite1hTokens: u.CacheCreation.Ephemeral1hInputTokens,
		CacheReadTokens:    u.CacheReadInputTokens,
		ReasoningTokens:    u.OutputTokensDetails.ThinkingTokens,
		WebSearchRequests:  u.ServerToolUse.WebSearchRequests,
	}
}

func TestMessagesSDK(t *testing.T) {
	tests := []struct {
		name      string
		prompt    string
		header    string
		maxTokens int64
		// want computes the expected usage from the request body.
		want     func(body []byte) tokenmeter.Usage
		wantStop anthropicsdk.StopReason
	}{
		{
			name: "Default", prompt: "hello", maxTokens: 1024,
			want: func(b []byte) tokenmeter.Usage {
				return tokenmeter.Usage{InputTokens: fakeupstream.InputTokens(b), OutputTokens: 12}
			},
			wantStop: anthropicsdk.StopReasonEndTurn,
		},
		{
			name: "PromptDirective", prompt: "hi [[fake output=3 cache_read=100]] there", maxTokens: 1024,
			want: func(b []byte) tokenmeter.Usage {
				return tokenmeter.Usage{InputTokens: fakeupstream.InputTokens(b), OutputTokens: 3, CacheReadTokens: 100}
			},
			wantStop: anthropicsdk.StopReasonEndTurn,
		},
		{
			name: "HeaderDirective", prompt: "hello", maxTokens: 1024,
			header: "output=5, cache_write_5m=10 cache_write_1h=20,reasoning=7 web_search=2 input=900",
			want: func([]byte) tokenmeter.Usage {
				return tokenmeter.Usage{
					InputTokens: 900, OutputTokens: 12, ReasoningTokens: 7,
					CacheWrite5mTokens: 10, CacheWrite1hTokens: 20, WebSearchRequests: 2,
				}
			},
			wantStop: anthropicsdk.StopReasonEndTurn,
		},
		{
			name: "HeaderOverridesPrompt", prompt: "[[fake output=3]]", header: "output=4 unknown=1", maxTokens: 1024,
			want: func(b []byte) tokenmeter.Usage {
				return tokenmeter.Usage{InputTokens: fakeupstream.InputTokens(b), OutputTokens: 4}
			},
			wantStop: anthropicsdk.StopReasonEndTurn,
		},
		{
			name: "CappedByMaxTokens", prompt: "[[fake output=50 reasoning=2]]", maxTokens: 10,
			want: func(b []byte) tokenmeter.Usage {
				return tokenmeter.Usage{InputTokens: fakeupstream.InputTokens(b), OutputTokens: 12, ReasoningTokens: 2}
			},
			wantStop: anthropicsdk.StopReasonMaxTokens,
		},
	}
	for _, tt := range tests {
		params := anthropicsdk.MessageNewParams{
			Model:     "claude-sonnet-5-5",
			MaxTokens: tt.maxTokens,
			Messages:  []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock(tt.prompt))},
		}
		var opts []anthropicoption.RequestOption
		if tt.header != "" {
			opts = append(opts, anthropicoption.WithHeader(fakeupstream.DirectiveHeader, tt.header))
		}
		check := func(t *testing.T, rec *recorder, msg *anthropicsdk.Message, requestID string) {
			t.Helper()
			body := rec.lastBody()
			want := tt.want(body)
			if diff := cmp.Diff(want, anthropicUsage(msg.Usage)); diff != "" {
				t.Errorf("usage mismatch (-want +got):\n%s", diff)
			}
			if got, want := msg.Usage.CacheCreationInputTokens, want.CacheWriteTokens(); got != want {
				t.Errorf("cache_creation_input_tokens = %d, want %d", got, want)
			}
			expected, err := fakeupstream.ExpectedUsage("/v1/messages", tt.header, body)
			if err != nil {
				t.Fatalf("ExpectedUsage: %v", err)
			}
			if diff := cmp.Diff(want, expected); diff != "" {
				t.Errorf("ExpectedUsage mismatch (-want +got):\n%s", diff)
			}
			words := int(want.OutputTokens - want.ReasoningTokens)
			if len(msg.Content) != 1 || msg.Content[0].Text != fakeupstream.OutputText(words) {
				t.Errorf("content = %+v, want one text block %q", msg.Content, fakeupstream.OutputText(words))
			}
			if msg.StopReason != tt.wantStop {
				t.Errorf("stop_reason = %q, want %q", msg.StopReason, tt.wantStop)
			}
			if msg.Model != params.Model {
				t.Errorf("model = %q, want %q", msg.Model, params.Model)
			}
			if !strings.HasPrefix(msg.ID, "msg_") || !strings.HasPrefix(requestID, "req_") || msg.ID[4:] != requestID[4:] {
				t.Errorf("message id %q and request-id %q: want msg_X and req_X", msg.ID, requestID)
			}
		}

		t.Run(tt.name+"/JSON", func(t *testing.T) {
			rec := mustServeRecorded(t)
			client := anthropicClient(rec)
			var resp *http.Response
			msg, err := client.Messages.New(context.Background(), params, append(opts, anthropicoption.WithResponseInto(&resp))...)
			if err != nil {
				t.Fatalf("Messages.New: %v", err)
			}
			check(t, rec, msg, resp.Header.Get("request-id"))
		})
		t.Run(tt.name+"/Stream", func(t *testing.T) {
			rec := mustServeRecorded(t)
			client := anthropicClient(rec)
			var resp *http.Response
			stream := client.Messages.NewStreaming(context.Background(), params, append(opts, anthropicoption.WithResponseInto(&resp))...)
			var msg anthropicsdk.Message
			n := 0
			for stream.Next() {
				n++
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatalf("Accumulate event %d: %v", n, err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if err := stream.Close(); err != nil {
				t.Fatalf("stream Close: %v", err)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/event-stream") {
				t.Errorf("Content-Type = %q, want text/event-stream", got)
			}
			check(t, rec, &msg, resp.Header.Get("request-id"))
		})
	}
}

func TestMessagesBetaSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := anthropicClient(rec)
	msg, err := client.Beta.Messages.New(context.Background(), anthropicsdk.BetaMessageNewParams{
		Model:     "claude-opus-5-5",
		MaxTokens: 100,
		Messages:  []anthropicsdk.BetaMessageParam{anthropicsdk.NewBetaUserMessage(anthropicsdk.NewBetaTextBlock("[[fake output=2]]"))},
	})
	if err != nil {
		t.Fatalf("Beta.Messages.New: %v", err)
	}
	if got, want := msg.Usage.OutputTokens, int64(2); got != want {
		t.Errorf("Beta.Messages.New usage.output_tokens = %d, want %d", got, want)
	}
	if got, want := msg.Usage.InputTokens, fakeupstream.InputTokens(rec.lastBody()); got != want {
		t.Errorf("Beta.Messages.New usage.input_tokens = %d, want %d", got, want)
	}
}

func TestMessagesStreamEvents(t *testing.T) {
	_, srv := mustServe(t)
	body := `{"model":"claude-haiku-5-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	header := "output=3 cache_read=40 cache_write_1h=8 reasoning=5"
	resp, raw := mustDo(t, srv, request{path: "/v1/messages", body: body, header: map[string]string{
		fakeupstream.DirectiveHeader: header, "anthropic-version": "2023-06-01",
	}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", resp.StatusCode, raw)
	}
	events := parseSSE(t, raw)
	want := []string{"message_start", "ping", "content_block_start",
		"content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}
	if diff := cmp.Diff(want, names(events)); diff != "" {
		t.Fatalf("event order mismatch (-want +got):\n%s", diff)
	}
	for _, e := range events {
		if got := field(t, e.data, "type"); got != e.name {
			t.Errorf("event %s: data type = %v, want the event name", e.name, got)
		}
	}
	in := fakeupstream.InputTokens([]byte(body))
	start, delta := events[0].data, events[7].data
	checks := []struct {
		data, path string
		want       int64
	}{
		{start, "message.usage.input_tokens", in},
		{start, "message.usage.cache_read_input_tokens", 40},
		{start, "message.usage.cache_creation_input_tokens", 8},
		{start, "message.usage.cache_creation.ephemeral_5m_input_tokens", 0},
		{start, "message.usage.cache_creation.ephemeral_1h_input_tokens", 8},
		{start, "message.usage.output_tokens", 1},
		{delta, "usage.input_tokens", in},
		{delta, "usage.cache_read_input_tokens", 40},
		{delta, "usage.cache_creation_input_tokens", 8},
		{delta, "usage.output_tokens", 8},
		{delta, "usage.output_tokens_details.thinking_tokens", 5},
	}
	for _, c := range checks {
		if got := num(t, c.data, c.path); got != c.want {
			t.Errorf("%s = %d, want %d", c.path, got, c.want)
		}
	}
	if got := field(t, start, "message.content"); got == nil || len(got.([]any)) != 0 {
		t.Errorf("message_start content = %v, want []", got)
	}
	if got := field(t, delta, "delta.stop_reason"); got != "end_turn" {
		t.Errorf("message_delta stop_reason = %v, want end_turn", got)
	}
	var text strings.Builder
	for _, e := range events[3:6] {
		text.WriteString(field(t, e.data, "delta.text").(string))
	}
	if got, want := text.String(), fakeupstream.OutputText(3); got != want {
		t.Errorf("streamed text = %q, want %q", got, want)
	}
}

// TestMessagesThinkingSDK checks the thinking block a request that enables
// thinking gets when it has reasoning tokens, as the SDK reads it.
func TestMessagesThinkingSDK(t *testing.T) {
	adaptive := func(display anthropicsdk.ThinkingConfigAdaptiveDisplay) anthropicsdk.ThinkingConfigParamUnion {
		return anthropicsdk.ThinkingConfigParamUnion{OfAdaptive: &anthropicsdk.ThinkingConfigAdaptiveParam{Display: display}}
	}
	tests := []struct {
		name     string
		thinking anthropicsdk.ThinkingConfigParamUnion
		prompt   string
		// wantThinking is the thinking block's text; nil means no block.
		wantThinking *string
	}{
		{"AdaptiveOmitted", adaptive(anthropicsdk.ThinkingConfigAdaptiveDisplayOmitted), "[[fake output=2 reasoning=3]]", new("")},
		{"AdaptiveShown", adaptive(""), "[[fake output=2 reasoning=3]]", new(fakeupstream.OutputText(3))},
		{"EnabledShown", anthropicsdk.ThinkingConfigParamOfEnabled(1024), "[[fake output=2 reasoning=4]]", new(fakeupstream.OutputText(4))},
		{"EnabledNoReasoning", anthropicsdk.ThinkingConfigParamOfEnabled(1024), "[[fake output=2]]", nil},
		{"NotEnabled", anthropicsdk.ThinkingConfigParamUnion{}, "[[fake output=2 reasoning=3]]", nil},
	}
	for _, tt := range tests {
		params := anthropicsdk.MessageNewParams{
			Model:     "claude-opus-5-5",
			MaxTokens: 2048,
			Thinking:  tt.thinking,
			Messages:  []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock(tt.prompt))},
		}
		check := func(t *testing.T, rec *recorder, msg *anthropicsdk.Message) {
			t.Helper()
			want, err := fakeupstream.ExpectedUsage("/v1/messages", "", rec.lastBody())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, anthropicUsage(msg.Usage)); diff != "" {
				t.Errorf("usage mismatch (-want +got):\n%s", diff)
			}
			var types []string
			for _, b := range msg.Content {
				types = append(types, b.Type)
			}
			wantTypes := []string{"text"}
			if tt.wantThinking != nil {
				wantTypes = []string{"thinking", "text"}
			}
			if diff := cmp.Diff(wantTypes, types); diff != "" {
				t.Fatalf("content block types mismatch (-want +got):\n%s", diff)
			}
			if tt.wantThinking != nil {
				th := msg.Content[0]
				if th.Thinking != *tt.wantThinking || !strings.HasPrefix(th.Signature, "fakeupstream-signature-") {
					t.Errorf("thinking block = {thinking %q, signature %q}, want {thinking %q, signature fakeupstream-signature-...}", th.Thinking, th.Signature, *tt.wantThinking)
				}
			}
			if got := msg.Content[len(msg.Content)-1].Text; got != fakeupstream.OutputText(2) {
				t.Errorf("text = %q, want %q", got, fakeupstream.OutputText(2))
			}
		}
		t.Run(tt.name+"/JSON", func(t *testing.T) {
			rec := mustServeRecorded(t)
			client := anthropicClient(rec)
			msg, err := client.Messages.New(context.Background(), params)
			if err != nil {
				t.Fatalf("Messages.New: %v", err)
			}
			check(t, rec, msg)
		})
		t.Run(tt.name+"/Stream", func(t *testing.T) {
			rec := mustServeRecorded(t)
			client := anthropicClient(rec)
			stream := client.Messages.NewStreaming(context.Background(), params)
			var msg anthropicsdk.Message
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatalf("Accumulate: %v", err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			check(t, rec, &msg)
		})
	}
}

// TestMessagesThinkingStreamEvents checks the raw events of a stream with
// a thinking block: the text block comes second, at index 1.
func TestMessagesThinkingStreamEvents(t *testing.T) {
	_, srv := mustServe(t)
	body := `{"model":"claude-opus-5-5","max_tokens":100,"stream":true,"thinking":{"type":"adaptive","display":"omitted"},"messages":[{"role":"user","content":"[[fake output=2 reasoning=7]]"}]}`
	resp, raw := mustDo(t, srv, request{path: "/v1/messages", body: body})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", resp.StatusCode, raw)
	}
	events := parseSSE(t, raw)
	type ev struct {
		Name, Type string
		Index      int64
	}
	var got []ev
	for _, e := range events {
		typ, _ := field(t, e.data, "content_block.type").(string)
		if d, ok := field(t, e.data, "delta.type").(string); ok {
			typ = d
		}
		got = append(got, ev{e.name, typ, num(t, e.data, "index")})
	}
	want := []ev{
		{"message_start", "", -1}, {"ping", "", -1},
		{"content_block_start", "thinking", 0}, {"content_block_delta", "signature_delta", 0}, {"content_block_stop", "", 0},
		{"content_block_start", "text", 1}, {"content_block_delta", "text_delta", 1}, {"content_block_delta", "text_delta", 1}, {"content_block_stop", "", 1},
		{"message_delta", "", -1}, {"message_stop", "", -1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
	if got := num(t, events[len(events)-2].data, "usage.output_tokens"); got != 9 {
		t.Errorf("message_delta output_tokens = %d, want 9 (2 words + 7 reasoning)", got)
	}
}

func TestCountTokensSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := anthropicClient(rec)
	got, err := client.Messages.CountTokens(context.Background(), anthropicsdk.MessageCountTokensParams{
		Model:    "claude-sonnet-5-5",
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("count me"))},
	})
	if err != nil {
		t.Fatalf("CountTokens: %v", err)
	}
	if want := fakeupstream.InputTokens(rec.lastBody()); got.InputTokens != want {
		t.Errorf("CountTokens = %d, want %d", got.InputTokens, want)
	}
}

func TestAnthropicModelsSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := anthropicClient(rec)
	page, err := client.Models.List(context.Background(), anthropicsdk.ModelListParams{})
	if err != nil {
		t.Fatalf("Models.List: %v", err)
	}
	if len(page.Data) == 0 || page.Data[0].ID == "" || page.Data[0].CreatedAt.IsZero() {
		t.Errorf("Models.List = %+v, want models with ids and creation times", page.Data)
	}
}

func TestAnthropicErrorSDK(t *testing.T) {
	tests := []struct {
		header   string
		wantCode int
		wantType string
	}{
		{"status=429", 429, "rate_limit_error"},
		{"status=529", 529, "overloaded_error"},
		{"status=500", 500, "api_error"},
		{"fault=error_event", 529, "overloaded_error"},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			rec := mustServeRecorded(t)
			client := anthropicClient(rec)
			var resp *http.Response
			_, err := client.Messages.New(context.Background(), anthropicsdk.MessageNewParams{
				Model: "claude-sonnet-5-5", MaxTokens: 10,
				Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("hi"))},
			}, anthropicoption.WithHeader(fakeupstream.DirectiveHeader, tt.header), anthropicoption.WithResponseInto(&resp))
			var apiErr *anthropicsdk.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("Messages.New error = %v, want *anthropic.Error", err)
			}
			if apiErr.StatusCode != tt.wantCode || string(apiErr.Type()) != tt.wantType {
				t.Errorf("error = %d %q, want %d %q", apiErr.StatusCode, apiErr.Type(), tt.wantCode, tt.wantType)
			}
			if apiErr.RequestID == "" || apiErr.RequestID != resp.Header.Get("request-id") {
				t.Errorf("error request id = %q, header %q: want the same req_ id", apiErr.RequestID, resp.Header.Get("request-id"))
			}
		})
	}
}

func TestMessagesStreamErrorEventSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := anthropicClient(rec)
	stream := client.Messages.NewStreaming(context.Background(), anthropicsdk.MessageNewParams{
		Model: "claude-sonnet-5-5", MaxTokens: 100,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("[[fake fault=error_event after=4]]"))},
	})
	defer stream.Close()
	n := 0
	for stream.Next() {
		n++
	}
	var apiErr *anthropicsdk.Error
	if err := stream.Err(); !errors.As(err, &apiErr) || apiErr.Type() != "overloaded_error" {
		t.Fatalf("stream error = %v, want an overloaded_error", err)
	}
	if n != 3 { // message_start, content_block_start, one delta; the SDK hides ping
		t.Errorf("events before the error = %d, want 3", n)
	}
}

func TestMessagesCutSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := anthropicClient(rec)
	stream := client.Messages.NewStreaming(context.Background(), anthropicsdk.MessageNewParams{
		Model: "claude-sonnet-5-5", MaxTokens: 100,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("[[fake fault=cut after=1]]"))},
	})
	defer stream.Close()
	var msg anthropicsdk.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatalf("Accumulate: %v", err)
		}
	}
	if err := stream.Err(); err == nil {
		t.Fatal("stream error = nil, want the cut connection")
	}
	if want := fakeupstream.InputTokens(rec.lastBody()); msg.Usage.InputTokens != want {
		t.Errorf("input tokens known before the cut = %d, want %d from message_start", msg.Usage.InputTokens, want)
	}
}

// anthropicStreamUsage reads the final usage of a raw Messages stream the
// way a meter does: message_start, then message_delta replaces.
func anthropicStreamUsage(t *testing.T, events []event) tokenmeter.Usage {
	t.Helper()
	var u tokenmeter.Usage
	for _, e := range events {
		switch e.name {
		case "message_start":
			var v struct {
				Message struct{ Usage anthropicsdk.Usage } `json:"message"`
			}
			if err := json.Unmarshal([]byte(e.data), &v); err != nil {
				t.Fatalf("decode message_start: %v", err)
			}
			u = anthropicUsage(v.Message.Usage)
		case "message_delta":
			var v anthropicsdk.MessageDeltaEvent
			if err := json.Unmarshal([]byte(e.data), &v); err != nil {
				t.Fatalf("decode message_delta: %v", err)
			}
			u.InputTokens = v.Usage.InputTokens
			u.OutputTokens = v.Usage.OutputTokens
			u.CacheReadTokens = v.Usage.CacheReadInputTokens
			u.ReasoningTokens = v.Usage.OutputTokensDetails.ThinkingTokens
			u.WebSearchRequests = v.Usage.ServerToolUse.WebSearchRequests
		}
	}
	return u
}
