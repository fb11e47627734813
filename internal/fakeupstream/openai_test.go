package fakeupstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	openaisdk "github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

func openAIClient(rec *recorder) openaisdk.Client {
	return openaisdk.NewClient(
		openaioption.WithBaseURL(rec.srv.URL+"/v1"),
		openaioption.WithAPIKey("test"),
		openaioption.WithMaxRetries(0),
	)
}

// chatUsage converts an SDK usage into tokenmeter's categories: input is
// the prompt minus the cached part.
func chatUsage(u openaisdk.CompletionUsage) tokenmeter.Usage {
	return tokenmeter.Usage{
		InputTokens:     u.PromptTokens - u.PromptTokensDetails.CachedTokens,
		OutputTokens:    u.CompletionTokens,
		CacheReadTokens: u.PromptTokensDetails.CachedTokens,
		ReasoningTokens: u.CompletionTokensDetails.ReasoningTokens,
	}
}

func responseUsage(u responses.ResponseUsage) tokenmeter.Usage {
	return tokenmeter.Usage{
		InputTokens:     u.InputTokens - u.InputTokensDetails.CachedTokens,
		OutputTokens:    u.OutputTokens,
		CacheReadTokens: u.InputTokensDetails.CachedTokens,
		ReasoningTokens: u.OutputTokensDetails.ReasoningTokens,
	}
}

// openAICases are shared by the Chat Completions and Responses tests.
var openAICases = []struct {
	name   string
	prompt string
	header string
	max    int64 // max_completion_tokens / max_output_tokens, 0 for none
	want   func(body []byte) tokenmeter.Usage
	capped bool
}{
	{
		name: "Default", prompt: "hello",
		want: func(b []byte) tokenmeter.Usage {
			return tokenmeter.Usage{InputTokens: fakeupstream.InputTokens(b), OutputTokens: 12}
		},
	},
	{
		name: "PromptDirective", prompt: "hi [[fake output=4 cache_read=64 reasoning=9]]",
		want: func(b []byte) tokenmeter.Usage {
			return tokenmeter.Usage{InputTokens: fakeupstream.InputTokens(b), OutputTokens: 13, CacheReadTokens: 64, ReasoningTokens: 9}
		},
	},
	{
		name: "HeaderDirective", prompt: "hello", header: "output=2,input=500 cache_write_5m=7 web_search=3",
		want: func([]byte) tokenmeter.Usage {
			return tokenmeter.Usage{InputTokens: 500, OutputTokens: 2} // cache writes and web search are Anthropic only
		},
	},
	{
		name: "Capped", prompt: "[[fake output=40]]", max: 16,
		want: func(b []byte) tokenmeter.Usage {
			return tokenmeter.Usage{InputTokens: fakeupstream.InputTokens(b), OutputTokens: 16}
		},
		capped: true,
	},
}

func TestChatCompletionsSDK(t *testing.T) {
	for _, tt := range openAICases {
		params := openaisdk.ChatCompletionNewParams{
			Model:    "gpt-6.1-sol",
			Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage(tt.prompt)},
		}
		if tt.max > 0 {
			params.MaxCompletionTokens = openaisdk.Int(tt.max)
		}
		var opts []openaioption.RequestOption
		if tt.header != "" {
			opts = append(opts, openaioption.WithHeader(fakeupstream.DirectiveHeader, tt.header))
		}
		wantFinish := "stop"
		if tt.capped {
			wantFinish = "length"
		}
		check := func(t *testing.T, rec *recorder, cc *openaisdk.ChatCompletion, requestID string, checkUsage bool) {
			t.Helper()
			body := rec.lastBody()
			want := tt.want(body)
			if checkUsage {
				if diff := cmp.Diff(want, chatUsage(cc.Usage)); diff != "" {
					t.Errorf("usage mismatch (-want +got):\n%s", diff)
				}
				if got, want := cc.Usage.TotalTokens, cc.Usage.PromptTokens+cc.Usage.CompletionTokens; got != want {
					t.Errorf("total_tokens = %d, want prompt + completion = %d", got, want)
				}
				expected, err := fakeupstream.ExpectedUsage("/v1/chat/completions", tt.header, body)
				if err != nil {
					t.Fatalf("ExpectedUsage: %v", err)
				}
				if diff := cmp.Diff(want, expected); diff != "" {
					t.Errorf("ExpectedUsage mismatch (-want +got):\n%s", diff)
				}
			}
			words := int(want.OutputTokens - want.ReasoningTokens)
			if len(cc.Choices) != 1 || cc.Choices[0].Message.Content != fakeupstream.OutputText(words) || cc.Choices[0].FinishReason != wantFinish {
				t.Errorf("choices = %+v, want one with %q and finish_reason %q", cc.Choices, fakeupstream.OutputText(words), wantFinish)
			}
			if cc.Model != params.Model {
				t.Errorf("model = %q, want %q", cc.Model, params.Model)
			}
			if !strings.HasPrefix(cc.ID, "chatcmpl-") || !strings.HasPrefix(requestID, "req_") || cc.ID[9:] != requestID[4:] {
				t.Errorf("completion id %q and x-request-id %q: want chatcmpl-X and req_X", cc.ID, requestID)
			}
		}

		t.Run(tt.name+"/JSON", func(t *testing.T) {
			rec := mustServeRecorded(t)
			client := openAIClient(rec)
			var resp *http.Response
			cc, err := client.Chat.Completions.New(context.Background(), params, append(opts, openaioption.WithResponseInto(&resp))...)
			if err != nil {
				t.Fatalf("Chat.Completions.New: %v", err)
			}
			check(t, rec, cc, resp.Header.Get("x-request-id"), true)
		})
		for _, includeUsage := range []bool{false, true} {
			name := tt.name + "/Stream"
			p := params
			if includeUsage {
				name += "IncludeUsage"
				p.StreamOptions = openaisdk.ChatCompletionStreamOptionsParam{IncludeUsage: openaisdk.Bool(true)}
			}
			t.Run(name, func(t *testing.T) {
				rec := mustServeRecorded(t)
				client := openAIClient(rec)
				var resp *http.Response
				stream := client.Chat.Completions.NewStreaming(context.Background(), p, append(opts, openaioption.WithResponseInto(&resp))...)
				var acc openaisdk.ChatCompletionAccumulator
				n := 0
				for stream.Next() {
					n++
					if !acc.AddChunk(stream.Current()) {
						t.Fatalf("AddChunk refused chunk %d", n)
					}
				}
				if err := stream.Err(); err != nil {
					t.Fatalf("stream: %v", err)
				}
				check(t, rec, &acc.ChatCompletion, resp.Header.Get("x-request-id"), includeUsage)
				if !includeUsage && acc.Usage.TotalTokens != 0 {
					t.Errorf("usage without include_usage = %+v, want none", acc.Usage)
				}
			})
		}
	}
}

func TestResponsesSDK(t *testing.T) {
	for _, tt := range openAICases {
		params := responses.ResponseNewParams{
			Model: "gpt-5.4",
			Input: responses.ResponseNewParamsInputUnion{OfString: openaisdk.String(tt.prompt)},
		}
		if tt.max > 0 {
			params.MaxOutputTokens = openaisdk.Int(tt.max)
		}
		var opts []openaioption.RequestOption
		if tt.header != "" {
			opts = append(opts, openaioption.WithHeader(fakeupstream.DirectiveHeader, tt.header))
		}
		wantStatus := responses.ResponseStatusCompleted
		if tt.capped {
			wantStatus = responses.ResponseStatusIncomplete
		}
		check := func(t *testing.T, rec *recorder, r *responses.Response, text, requestID string) {
			t.Helper()
			body := rec.lastBody()
			want := tt.want(body)
			if diff := cmp.Diff(want, responseUsage(r.Usage)); diff != "" {
				t.Errorf("usage mismatch (-want +got):\n%s", diff)
			}
			if got, want := r.Usage.TotalTokens, r.Usage.InputTokens+r.Usage.OutputTokens; got != want {
				t.Errorf("total_tokens = %d, want input + output = %d", got, want)
			}
			expected, err := fakeupstream.ExpectedUsage("/v1/responses", tt.header, body)
			if err != nil {
				t.Fatalf("ExpectedUsage: %v", err)
			}
			if diff := cmp.Diff(want, expected); diff != "" {
				t.Errorf("ExpectedUsage mismatch (-want +got):\n%s", diff)
			}
			words := int(want.OutputTokens - want.ReasoningTokens)
			if text != fakeupstream.OutputText(words) {
				t.Errorf("text = %q, want %q", text, fakeupstream.OutputText(words))
			}
			if r.Status != wantStatus {
				t.Errorf("status = %q, want %q", r.Status, wantStatus)
			}
			if r.Model != params.Model {
				t.Errorf("model = %q, want %q", r.Model, params.Model)
			}
			if !strings.HasPrefix(r.ID, "resp_") || !strings.HasPrefix(requestID, "req_") || r.ID[5:] != requestID[4:] {
				t.Errorf("response id %q and x-request-id %q: want resp_X and req_X", r.ID, requestID)
			}
		}

		t.Run(tt.name+"/JSON", func(t *testing.T) {
			rec := mustServeRecorded(t)
			client := openAIClient(rec)
			var resp *http.Response
			r, err := client.Responses.New(context.Background(), params, append(opts, openaioption.WithResponseInto(&resp))...)
			if err != nil {
				t.Fatalf("Responses.New: %v", err)
			}
			check(t, rec, r, r.OutputText(), resp.Header.Get("x-request-id"))
		})
		t.Run(tt.name+"/Stream", func(t *testing.T) {
			rec := mustServeRecorded(t)
			client := openAIClient(rec)
			var resp *http.Response
			stream := client.Responses.NewStreaming(context.Background(), params, append(opts, openaioption.WithResponseInto(&resp))...)
			var text strings.Builder
			var final *responses.Response
			seq := int64(0)
			for stream.Next() {
				ev := stream.Current()
				if ev.SequenceNumber != seq {
					t.Errorf("event %s sequence_number = %d, want %d", ev.Type, ev.SequenceNumber, seq)
				}
				seq++
				switch ev.Type {
				case "response.output_text.delta":
					text.WriteString(ev.Delta)
				case "response.completed", "response.incomplete":
					r := ev.Response
					final = &r
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if final == nil {
				t.Fatal("stream has no terminal response event")
			}
			check(t, rec, final, text.String(), resp.Header.Get("x-request-id"))
		})
	}
}

func TestOpenAIModelsSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := openAIClient(rec)
	page, err := client.Models.List(context.Background())
	if err != nil {
		t.Fatalf("Models.List: %v", err)
	}
	if len(page.Data) == 0 || page.Data[0].ID == "" || page.Data[0].OwnedBy == "" {
		t.Errorf("Models.List = %+v, want models with ids and owners", page.Data)
	}
}

func TestOpenAIErrorSDK(t *testing.T) {
	tests := []struct {
		header   string
		wantCode int
		wantType string
	}{
		{"status=429", 429, "requests"},
		{"status=500", 500, "server_error"},
		{"status=503", 503, "server_error"},
		{"fault=error_event", 500, "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			rec := mustServeRecorded(t)
			client := openAIClient(rec)
			_, err := client.Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
				Model:    "gpt-5.4",
				Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("hi")},
			}, openaioption.WithHeader(fakeupstream.DirectiveHeader, tt.header))
			var apiErr *openaisdk.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("Chat.Completions.New error = %v, want *openai.Error", err)
			}
			if apiErr.StatusCode != tt.wantCode || apiErr.Type != tt.wantType {
				t.Errorf("error = %d %q, want %d %q", apiErr.StatusCode, apiErr.Type, tt.wantCode, tt.wantType)
			}
		})
	}
}

func TestChatStreamErrorEventSDK(t *testing.T) {
	rec := mustServeRecorded(t)
	client := openAIClient(rec)
	stream := client.Chat.Completions.NewStreaming(context.Background(), openaisdk.ChatCompletionNewParams{
		Model:    "gpt-5.4",
		Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("[[fake fault=error_event after=3]]")},
	})
	defer stream.Close()
	n := 0
	for stream.Next() {
		n++
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "server_error") {
		t.Fatalf("stream error = %v, want the in-stream server_error", err)
	}
	if n != 3 {
		t.Errorf("chunks before the error = %d, want 3", n)
	}
}

// chatStreamUsage reads the usage chunk of a raw Chat Completions stream.
func chatStreamUsage(t *testing.T, events []event) tokenmeter.Usage {
	t.Helper()
	for _, e := range events {
		if e.data == "[DONE]" {
			continue
		}
		var v struct {
			Usage *openaisdk.CompletionUsage `json:"usage"`
		}
		if err := json.Unmarshal([]byte(e.data), &v); err != nil {
			t.Fatalf("decode chunk %s: %v", e.data, err)
		}
		if v.Usage != nil {
			return chatUsage(*v.Usage)
		}
	}
	return tokenmeter.Usage{}
}

// responsesStreamUsage reads the usage of a raw Responses stream's
// terminal event.
func responsesStreamUsage(t *testing.T, events []event) tokenmeter.Usage {
	t.Helper()
	for _, e := range events {
		if e.name != "response.completed" && e.name != "response.incomplete" {
			continue
		}
		var v struct {
			Response responses.Response `json:"response"`
		}
		if err := json.Unmarshal([]byte(e.data), &v); err != nil {
			t.Fatalf("decode %s: %v", e.name, err)
		}
		return responseUsage(v.Response.Usage)
	}
	return tokenmeter.Usage{}
}
