package openai_test

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
	"github.com/tokenmeter/tokenmeter/internal/openai"
)

func TestAPIForPath(t *testing.T) {
	tests := []struct {
		path string
		want openai.API
	}{
		{"/v1/chat/completions", openai.Chat},
		{"/v1/chat/completions/", openai.Chat},
		{"/v1/responses", openai.Responses},
		{"/v1/responses/", openai.Responses},
		{"/v1/responses/resp_123", openai.Other},
		{"/v1/responses/resp_123/input_items", openai.Other},
		{"/v1/chat/completions/chatcmpl-1", openai.Other},
		{"/v1/embeddings", openai.Other},
		{"/chat/completions", openai.Other},
		{"/V1/chat/completions", openai.Other},
		{"", openai.Other},
	}
	for _, tt := range tests {
		if got := openai.APIForPath(tt.path); got != tt.want {
			t.Errorf("APIForPath(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		api     openai.API
		body    string
		want    openai.Request
		wantErr string
	}{
		{
			name: "ChatStreamIncludeUsage", api: openai.Chat,
			body: `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":500}`,
			want: openai.Request{API: openai.Chat, Model: "gpt-4o", Stream: true, IncludeUsage: true, MaxTokens: 500, Choices: 1},
		},
		{
			name: "ChatStreamNoUsage", api: openai.Chat,
			body: `{"model":"gpt-4o","stream":true,"stream_options":{"include_obfuscation":false},"max_tokens":64}`,
			want: openai.Request{API: openai.Chat, Model: "gpt-4o", Stream: true, MaxTokens: 64, Choices: 1},
		},
		{
			name: "MaxCompletionBeatsMaxTokens", api: openai.Chat,
			body: `{"model":"o3","max_tokens":64,"max_completion_tokens":4096}`,
			want: openai.Request{API: openai.Chat, Model: "o3", MaxTokens: 4096, Choices: 1},
		},
		{
			name: "Responses", api: openai.Responses,
			body: `{"model":"gpt-5","input":"hi","stream":true,"max_output_tokens":256,"reasoning":{"effort":"low"}}`,
			want: openai.Request{API: openai.Responses, Model: "gpt-5", Stream: true, MaxTokens: 256, Choices: 1},
		},
		{
			name: "NullsAndExactKeys", api: openai.Chat,
			body: `{"model":"a","MODEL":"b","stream":null,"stream_options":null,"max_tokens":null,"Stream":true}`,
			want: openai.Request{API: openai.Chat, Model: "a", Choices: 1},
		},
		{
			name: "ChatN", api: openai.Chat,
			body: `{"model":"gpt-4o","n":8,"max_completion_tokens":5000,"messages":[]}`,
			want: openai.Request{API: openai.Chat, Model: "gpt-4o", MaxTokens: 5000, Choices: 8},
		},
		{name: "NNullZeroAndOne", api: openai.Chat, body: `{"n":null}`, want: openai.Request{API: openai.Chat, Choices: 1}},
		{name: "NZeroReadsAsOne", api: openai.Chat, body: `{"n":0}`, want: openai.Request{API: openai.Chat, Choices: 1}},
		{name: "NMax", api: openai.Chat, body: `{"n":128}`, want: openai.Request{API: openai.Chat, Choices: 128}},
		{name: "NLastWins", api: openai.Chat, body: `{"n":4,"n":2}`, want: openai.Request{API: openai.Chat, Choices: 2}},
		{
			name: "LegacyBestOfBeatsN", api: openai.Completions,
			body: `{"model":"gpt-3.5-turbo-instruct","prompt":"Say this","n":2,"best_of":5,"max_tokens":16}`,
			want: openai.Request{API: openai.Completions, Model: "gpt-3.5-turbo-instruct", MaxTokens: 16, Choices: 5},
		},
		{
			name: "LegacyPromptList", api: openai.Completions,
			body: `{"prompt":["a","b","c"],"n":3}`,
			want: openai.Request{API: openai.Completions, Choices: 9},
		},
		{name: "LegacyTokenPrompt", api: openai.Completions, body: `{"prompt":[1, 2, 3],"n":2}`, want: openai.Request{API: openai.Completions, Choices: 2}},
		{name: "LegacyTokenPromptList", api: openai.Completions, body: `{"prompt":[[1,2],[3]]}`, want: openai.Request{API: openai.Completions, Choices: 2}},
		{name: "LegacyEmptyPromptList", api: openai.Completions, body: `{"prompt":[]}`, want: openai.Request{API: openai.Completions, Choices: 1}},
		{name: "ChatPromptIgnored", api: openai.Chat, body: `{"prompt":["a","b"],"n":2}`, want: openai.Request{API: openai.Chat, Choices: 2}},
		{
			name: "ResponsesBackground", api: openai.Responses,
			body: `{"model":"o3-pro","input":"long task","background":true,"max_tool_calls":5,"previous_response_id":"resp_1"}`,
			want: openai.Request{API: openai.Responses, Model: "o3-pro", Choices: 1, Background: true, MaxToolCalls: 5, StoredInput: true},
		},
		{name: "ResponsesConversation", api: openai.Responses, body: `{"conversation":"conv_1","background":false}`, want: openai.Request{API: openai.Responses, Choices: 1, StoredInput: true}},
		{name: "ResponsesStoredPrompt", api: openai.Responses, body: `{"prompt":{"id":"pmpt_1"},"previous_response_id":null}`, want: openai.Request{API: openai.Responses, Choices: 1, StoredInput: true}},
		{name: "ResponsesNulls", api: openai.Responses, body: `{"prompt":null,"conversation":null,"background":null,"max_tool_calls":null}`, want: openai.Request{API: openai.Responses, Choices: 1}},
		{name: "ChatAudioModalities", api: openai.Chat, body: `{"modalities":["text","audio"]}`, want: openai.Request{API: openai.Chat, Choices: 1, AudioOutput: true}},
		{name: "ChatAudioParam", api: openai.Chat, body: `{"audio":{"voice":"alloy","format":"wav"},"modalities":null}`, want: openai.Request{API: openai.Chat, Choices: 1, AudioOutput: true}},
		{name: "ChatTextOnly", api: openai.Chat, body: `{"modalities":["text"],"audio":null}`, want: openai.Request{API: openai.Chat, Choices: 1}},
		{name: "ModelAtCap", api: openai.Chat, body: `{"model":"` + strings.Repeat("m", openai.MaxModelBytes) + `"}`, want: openai.Request{API: openai.Chat, Model: strings.Repeat("m", openai.MaxModelBytes), Choices: 1}},
		{name: "NNegative", api: openai.Chat, body: `{"n":-1}`, wantErr: "n is negative"},
		{name: "NFloat", api: openai.Chat, body: `{"n":2.5}`, wantErr: "n is not an integer"},
		{name: "NString", api: openai.Chat, body: `{"n":"` + secret + `"}`, wantErr: "n is not an integer (a string)"},
		{name: "NAbsurd", api: openai.Chat, body: `{"n":129}`, wantErr: "n is implausibly large (129"},
		{name: "NHuge", api: openai.Chat, body: `{"n":99999999999999999999}`, wantErr: "n is not an integer"},
		{name: "BestOfAbsurd", api: openai.Completions, body: `{"best_of":1000}`, wantErr: "best_of is implausibly large"},
		{name: "TooManyOutputs", api: openai.Completions, body: `{"prompt":[` + strings.Repeat(`"a",`, 39) + `"a"],"n":128,"best_of":1}`, wantErr: "asks for 5120 outputs"},
		{name: "TooManyPrompts", api: openai.Completions, body: `{"prompt":[` + strings.Repeat(`"a",`, 4096) + `"a"]}`, wantErr: "asks for 4097 outputs"},
		{name: "TooManyTokensInAll", api: openai.Chat, body: `{"n":100,"max_completion_tokens":100000000}`, wantErr: "more than 1000000000 in all"},
		{name: "PromptNotStringOrArray", api: openai.Completions, body: `{"prompt":{"text":"x"}}`, wantErr: "prompt is not a string or an array (an object)"},
		{name: "BackgroundNotBool", api: openai.Responses, body: `{"background":"yes"}`, wantErr: "background is not a boolean (a string)"},
		{name: "MaxToolCallsNegative", api: openai.Responses, body: `{"max_tool_calls":-1}`, wantErr: "max_tool_calls is negative"},
		{name: "ModalitiesNotArray", api: openai.Chat, body: `{"modalities":"audio"}`, wantErr: "modalities is not an array"},
		{name: "ModelNotString", api: openai.Chat, body: `{"model":["` + secret + `"]}`, wantErr: "model is not a string (an array)"},
		{name: "InvalidJSON", api: openai.Chat, body: `{"model":}`, wantErr: "invalid JSON at byte 10"},
		{name: "NotObject", api: openai.Chat, body: `null`, wantErr: "request body is not a JSON object"},
		{name: "StreamOptionsNotObject", api: openai.Chat, body: `{"stream_options":true}`, wantErr: "stream_options is not an object"},
		{name: "IncludeUsageNotBool", api: openai.Chat, body: `{"stream_options":{"include_usage":1}}`, wantErr: "stream_options.include_usage is not a boolean"},
		{name: "MaxTokensNegative", api: openai.Chat, body: `{"max_completion_tokens":-5}`, wantErr: "max_completion_tokens is negative"},
		{name: "MaxTokensString", api: openai.Chat, body: `{"max_tokens":"` + secret + `"}`, wantErr: "max_tokens is not an integer (a string)"},
		{name: "StreamNotBool", api: openai.Chat, body: `{"stream":"` + secret + `"}`, wantErr: "stream is not a boolean (a string)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openai.ParseRequest(tt.api, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRequest(%.200s) error = %v, want it to contain %q", tt.body, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("ParseRequest error %q quotes the body", err)
				}
				if code := tokenmeter.ErrorCode(err); code != tokenmeter.EINVALID {
					t.Errorf("ParseRequest(%s) error code = %q, want %q", tt.body, code, tokenmeter.EINVALID)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRequest(%s) error: %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRequest(%s) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

// secret marks prompt text, which no error may quote.
const secret = "SECRETPROMPT"

func TestParseRequestModelTooLong(t *testing.T) {
	for _, body := range []string{
		`{"model":"` + strings.Repeat("m", openai.MaxModelBytes+1) + `","max_tokens":"x"}`,
		`{"model":"` + strings.Repeat(`\u00e9`, openai.MaxModelBytes/2+1) + `"}`, // 2 bytes each once decoded
		`{"model":"` + strings.Repeat("m", 32<<20) + `"}`,
		`{"model":"a","model":"` + strings.Repeat("m", 300) + `"}`,
	} {
		for _, api := range []openai.API{openai.Chat, openai.Responses, openai.Completions} {
			_, err := openai.ParseRequest(api, []byte(body))
			if !errors.Is(err, openai.ErrModelTooLong) || tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
				t.Errorf("ParseRequest(%s, model of %d bytes) = %v, want ErrModelTooLong (EINVALID)", api, len(body), err)
			}
		}
	}
}

func TestOutputBound(t *testing.T) {
	tests := []struct {
		r    openai.Request
		def  int64
		want int64
	}{
		{openai.Request{MaxTokens: 5000, Choices: 8}, 32000, 40000},
		{openai.Request{Choices: 8}, 32000, 256000},
		{openai.Request{MaxTokens: 100}, 32000, 100}, // Choices 0 reads as 1
		{openai.Request{MaxTokens: 900_000_000, Choices: 128}, 0, 1_000_000_000},
		{openai.Request{Choices: 3}, 0, 0},
	}
	for _, tt := range tests {
		if got := tt.r.OutputBound(tt.def); got != tt.want {
			t.Errorf("%+v.OutputBound(%d) = %d, want %d", tt.r, tt.def, got, tt.want)
		}
	}
}

func TestInjectIncludeUsage(t *testing.T) {
	tests := []struct {
		name, body, want string
		wantErr          string
	}{
		{
			name: "Missing",
			body: `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			want: `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`,
		},
		{
			name: "MissingPretty",
			body: "{\n  \"model\": \"gpt-4o\",\n  \"stream\": true\n}\n",
			want: "{\n  \"model\": \"gpt-4o\",\n  \"stream\": true,\"stream_options\":{\"include_usage\":true}\n}\n",
		},
		{name: "EmptyObject", body: ` { } `, want: ` {"stream_options":{"include_usage":true} } `},
		{name: "Null", body: `{"stream":true,"stream_options":null}`, want: `{"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "False", body: `{"stream_options":{"include_usage":false},"stream":true}`, want: `{"stream_options":{"include_usage":true},"stream":true}`},
		{name: "NullInside", body: `{"stream_options":{"include_usage" : null }}`, want: `{"stream_options":{"include_usage" : true }}`},
		{name: "OtherMembersKept", body: `{"stream_options":{"include_obfuscation":false},"stream":true}`, want: `{"stream_options":{"include_usage":true,"include_obfuscation":false},"stream":true}`},
		{name: "EmptyStreamOptions", body: `{"stream_options":{ }}`, want: `{"stream_options":{"include_usage":true }}`},
		{name: "AlreadyTrue", body: `{"stream":true,"stream_options":{"include_usage":true}}`, want: `{"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "NestedLookalikeUntouched", body: `{"metadata":{"stream_options":null},"messages":[{"content":"\"stream_options\":{}"}]}`, want: `{"metadata":{"stream_options":null},"messages":[{"content":"\"stream_options\":{}"}],"stream_options":{"include_usage":true}}`},
		{name: "EscapedKey", body: `{"stream_opti\u006fns":{"include_usage":false}}`, want: `{"stream_opti\u006fns":{"include_usage":true}}`},
		{name: "Duplicates", body: `{"stream_options":null,"stream_options":{"include_usage":false}}`, want: `{"stream_options":{"include_usage":true},"stream_options":{"include_usage":true}}`},
		{name: "Unicode", body: `{"messages":[{"content":"héllo 👋"}]}`, want: `{"messages":[{"content":"héllo 👋"}],"stream_options":{"include_usage":true}}`},
		{name: "NotObjectStreamOptions", body: `{"stream_options":"yes"}`, wantErr: "stream_options is not an object"},
		{name: "InvalidJSON", body: `{"model":"a"`, wantErr: "truncated"},
		{name: "NotObject", body: `[]`, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openai.InjectIncludeUsage([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("InjectIncludeUsage(%s) = %s, %v; want error containing %q", tt.body, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("InjectIncludeUsage(%s) error: %v", tt.body, err)
			}
			if string(got) != tt.want {
				t.Errorf("InjectIncludeUsage(%s)\n got %s\nwant %s", tt.body, got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("InjectIncludeUsage(%s) = %s, not valid JSON", tt.body, got)
			}
			r, err := openai.ParseRequest(openai.Chat, got)
			if err != nil || !r.IncludeUsage {
				t.Errorf("ParseRequest(InjectIncludeUsage(%s)) = %+v, %v; want IncludeUsage", tt.body, r, err)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		typ, code, msg string
		want           string
	}{
		{"rate_limit_error", "rate_limit_exceeded", "Budget exhausted", `{"error":{"message":"Budget exhausted","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`},
		{"server_error", "", `upstream "down"`, `{"error":{"message":"upstream \"down\"","type":"server_error","param":null,"code":null}}`},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		openai.WriteError(rec, 429, tt.typ, tt.code, tt.msg)
		if rec.Code != 429 || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("WriteError(%q, %q): status %d, Content-Type %q; want 429, application/json", tt.typ, tt.code, rec.Code, rec.Header().Get("Content-Type"))
		}
		if got := rec.Body.String(); got != tt.want {
			t.Errorf("WriteError(%q, %q, %q) body = %s, want %s", tt.typ, tt.code, tt.msg, got, tt.want)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"max_tokens":5}`,
		`{"stream_options":null}`, `{"a":[{"b":"\"}"}]}`, `{"model":"a",}`, `[]`, ``,
		`{"model":"gpt-4o","n":8,"max_completion_tokens":5000}`,
		`{"prompt":["a",[1,2],"c"],"n":3,"best_of":5,"max_tokens":16}`,
		`{"model":"o3","background":true,"max_tool_calls":3,"previous_response_id":"r","prompt":{"id":"p"}}`,
		`{"modalities":["text","au\u0064io"],"audio":{"voice":"alloy"}}`,
		`{"n":129}`, `{"n":-1}`, `{"n":1e2}`, `{"best_of":"5"}`,
		`{"model":"` + strings.Repeat("m", openai.MaxModelBytes+1) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, api := range []openai.API{openai.Responses, openai.Completions} {
			r, err := openai.ParseRequest(api, b)
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("ParseRequest(%s, %q) error %q spans lines", api, b, err)
				}
				continue
			}
			if r.Choices < 1 || r.Choices > openai.MaxChoices || r.MaxTokens < 0 || r.MaxTokens*r.Choices > jsonscan.MaxCount ||
				r.MaxToolCalls < 0 || len(r.Model) > openai.MaxModelBytes {
				t.Fatalf("ParseRequest(%s, %q) = %+v, out of bounds", api, b, r)
			}
			if ob := r.OutputBound(32000); ob < r.MaxTokens || ob > jsonscan.MaxCount {
				t.Fatalf("ParseRequest(%s, %q).OutputBound = %d", api, b, ob)
			}
		}
		r, err := openai.ParseRequest(openai.Chat, b)
		if err == nil && (r.MaxTokens < 0 || r.Choices < 1 || r.Choices > openai.MaxPerPrompt) {
			t.Fatalf("ParseRequest(%q) = %+v", b, r)
		}
		out, injectErr := openai.InjectIncludeUsage(b)
		if err != nil || injectErr != nil {
			// ParseRequest reads only the top level, so it may accept a body
			// that is invalid deeper down; the upstream rejects such a body,
			// and InjectIncludeUsage must then leave it alone.
			if err == nil && json.Valid(b) {
				t.Fatalf("InjectIncludeUsage(%q) error %v for a valid body ParseRequest accepts", b, injectErr)
			}
			return
		}
		r2, err := openai.ParseRequest(openai.Chat, out)
		if err != nil || !r2.IncludeUsage {
			t.Fatalf("ParseRequest(InjectIncludeUsage(%q) = %q) = %+v, %v", b, out, r2, err)
		}
		// Nothing else changes: the other fields read the same.
		r.IncludeUsage = true
		if r != r2 {
			t.Fatalf("InjectIncludeUsage(%q) changed the request: %+v, want %+v", b, r2, r)
		}
		var before, after map[string]json.RawMessage
		if json.Unmarshal(b, &before) == nil && json.Unmarshal(out, &after) == nil {
			for k, v := range before {
				if k != "stream_options" && !strings.EqualFold(k, "stream_options") && string(after[k]) != string(v) {
					// encoding/json is case-insensitive only for structs, so
					// map keys compare exactly here.
					t.Fatalf("InjectIncludeUsage(%q) changed member %q: %s -> %s", b, k, v, after[k])
				}
			}
		}
	})
}

func BenchmarkInjectIncludeUsage(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"model":"gpt-4o","stream":true,"messages":[`)
	for i := 0; i < 200; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"role":"user","content":"Please look at the file src/main.go and explain what \"run\" does."}`)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := openai.InjectIncludeUsage(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestStripNullUsage(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"After", "data: {\"id\":\"c\",\"choices\":[],\"usage\":null}\n\n", "data: {\"id\":\"c\",\"choices\":[]}\n\n"},
		{"Before", "data: {\"usage\":null,\"id\":\"c\"}\n\n", "data: {\"id\":\"c\"}\n\n"},
		{"FirstOnly", `{"a":1,"usage":null,"b":{"c":2,"usage":null}}`, `{"a":1,"b":{"c":2,"usage":null}}`},
		{"NonNullKept", `{"choices":[],"usage":{"prompt_tokens":1}}`, `{"choices":[],"usage":{"prompt_tokens":1}}`},
		{"EscapedInStringKept", `{"content":"x,\"usage\":null"}`, `{"content":"x,\"usage\":null"}`},
		{"OnlyMemberKept", `{"usage":null}`, `{"usage":null}`},
		{"SpacedKept", `{"a":1, "usage": null}`, `{"a":1, "usage": null}`},
	}
	for _, tt := range tests {
		if got := string(openai.StripNullUsage([]byte(tt.in))); got != tt.want {
			t.Errorf("StripNullUsage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzStripNullUsage(f *testing.F) {
	for _, s := range []string{`{"a":1,"usage":null}`, `{"usage":null,"a":[{"usage":null}]}`, `["usage",{"usage":null,"x":null}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		valid := json.Valid(b)
		in := string(b)
		out := openai.StripNullUsage(b)
		if valid && !json.Valid(out) {
			t.Fatalf("StripNullUsage(%q) = %q, not valid JSON", in, out)
		}
		if len(out) != len(in) && len(out) != len(in)-len(`,"usage":null`) {
			t.Fatalf("StripNullUsage(%q) = %q: removed %d bytes", in, out, len(in)-len(out))
		}
	})
}

func BenchmarkParseRequest(b *testing.B) {
	// A Codex-sized Responses request: instructions, history and tools.
	var sb strings.Builder
	sb.WriteString(`{"model":"gpt-5-codex","instructions":"You are Codex, a coding agent.","stream":true,"max_output_tokens":32000,"input":[`)
	for i := 0; i < 200; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"type":"message","role":"user","content":[{"type":"input_text","text":"Please look at the file src/main.go and explain what \"run\" does."}]}`)
	}
	sb.WriteString(`],"tools":[{"type":"function","name":"shell","parameters":{"type":"object","properties":{"command":{"type":"array"}}}}],"parallel_tool_calls":true,"store":false}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := openai.ParseRequest(openai.Responses, body); err != nil {
			b.Fatal(err)
		}
	}
}
