package openai_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/estimate"
	"github.com/tokenmeter/tokenmeter/internal/openai"
	"github.com/tokenmeter/tokenmeter/internal/sse"
)

var update = flag.Bool("update", false, "rewrite testdata/*.want.json from the current output")

// result is everything a Meter reports, as kept in the .want.json files.
type result struct {
	API            openai.API       `json:"api"`
	Frames         int              `json:"frames,omitempty"`
	TerminalFrames []int            `json:"terminal_frames,omitempty"`
	DroppedFrames  []int            `json:"dropped_frames,omitempty"` // with stripUsageChunk
	Tail           string           `json:"incomplete_tail,omitempty"`
	Usage          tokenmeter.Usage `json:"usage"`
	RawUsage       json.RawMessage  `json:"raw_usage"`
	Known          bool             `json:"known"`
	Model          string           `json:"model"`
	ServiceTier    string           `json:"service_tier,omitempty"`
	Complete       bool             `json:"complete"`
	ErrorReason    string           `json:"error_reason"`
	Malformed      string           `json:"malformed"`
	// RelayedChars and RelayedEstimate are what Relayed counted, and its
	// estimate for the response's model.
	RelayedChars    int64             `json:"relayed_chars"`
	RelayedEstimate estimate.Estimate `json:"relayed_estimate"`
}

func report(api openai.API, m *openai.Meter) result {
	u, raw, known := m.Usage()
	return result{
		API: api, Usage: u, RawUsage: raw, Known: known, Model: m.Model(), ServiceTier: m.ServiceTier(), Complete: m.Complete(),
		ErrorReason: m.ErrorReason(), Malformed: m.Malformed(),
		RelayedChars: m.Relayed().Chars(), RelayedEstimate: m.Relayed().Estimate(m.Model()),
	}
}

// meterStream frames stream as the gateway does and feeds every frame to a
// new Meter.
func meterStream(api openai.API, strip bool, stream []byte) result {
	m := openai.NewMeter(api, strip)
	var terminal, dropped []int
	i := 0
	for ; ; i++ {
		n := sse.FrameEnd(stream)
		if n < 0 {
			break
		}
		term, drop := m.Frame(sse.Parse(stream[:n]))
		if term {
			terminal = append(terminal, i)
		}
		if drop {
			dropped = append(dropped, i)
		}
		stream = stream[n:]
	}
	r := report(api, m)
	r.Frames, r.TerminalFrames, r.DroppedFrames, r.Tail = i, terminal, dropped, string(stream)
	return r
}

// TestGolden feeds each recorded stream (*.sse) frame by frame, and each
// recorded body (*.json) to Body, and compares what the Meter reports with the
// .want.json beside it. Files named responses_* are Responses API, the rest
// Chat; chat streams are metered with stripUsageChunk. Run with -update to
// rewrite the .want.json files.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.*")
	n := 0
	for _, file := range files {
		ext := filepath.Ext(file)
		if strings.HasSuffix(file, ".want.json") || (ext != ".sse" && ext != ".json") {
			continue
		}
		n++
		t.Run(filepath.Base(file), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			api := openai.Chat
			if strings.HasPrefix(filepath.Base(file), "responses_") {
				api = openai.Responses
			}
			var got result
			if ext == ".sse" {
				got = meterStream(api, true, in)
				// Without stripUsageChunk the meter reports the same and drops nothing.
				plain := meterStream(api, false, in)
				plain.DroppedFrames = got.DroppedFrames
				if diff := cmp.Diff(got, plain); diff != "" || len(meterStream(api, false, in).DroppedFrames) != 0 {
					t.Errorf("metering without stripUsageChunk differs (-strip +plain):\n%s", diff)
				}
			} else {
				m := openai.NewMeter(api, false)
				m.Body(in)
				got = report(api, m)
			}
			compareGolden(t, strings.TrimSuffix(file, ext)+".want.json", got)
		})
	}
	if n == 0 {
		t.Fatal("no fixtures in testdata")
	}
}

func compareGolden(t *testing.T, wantFile string, got result) {
	t.Helper()
	gotJSON, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(wantFile, append(gotJSON, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantJSON, err := os.ReadFile(wantFile)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	var want, gotBack any
	if err := json.Unmarshal(wantJSON, &want); err != nil {
		t.Fatalf("%s: %v", wantFile, err)
	}
	json.Unmarshal(gotJSON, &gotBack)
	if diff := cmp.Diff(want, gotBack); diff != "" {
		t.Errorf("meter result mismatch with %s (-want +got):\n%s", wantFile, diff)
	}
}

func data(s string) sse.Event { return sse.Event{Data: []byte(s)} }

func chunk(choices, usage string) sse.Event {
	return data(`{"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4o","choices":` + choices + `,"usage":` + usage + `}`)
}

var (
	contentChoice = `[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]`
	done          = data("[DONE]")
)

func TestMeterChat(t *testing.T) {
	tests := []struct {
		name      string
		strip     bool
		frames    []sse.Event
		dropped   []int
		terminal  []int
		want      tokenmeter.Usage
		known     bool
		complete  bool
		errReason string
		malformed string
	}{
		{
			name:     "IncludeUsage",
			frames:   []sse.Event{chunk(contentChoice, "null"), chunk("[]", `{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":60},"completion_tokens_details":{"reasoning_tokens":5}}`), done},
			terminal: []int{2},
			want:     tokenmeter.Usage{InputTokens: 40, CacheReadTokens: 60, OutputTokens: 20, ReasoningTokens: 5}, known: true, complete: true,
		},
		{
			name:     "StripDropsUsageOnlyChunk",
			strip:    true,
			frames:   []sse.Event{chunk(contentChoice, "null"), chunk("[ ]", `{"prompt_tokens":10,"completion_tokens":2}`), done},
			dropped:  []int{1},
			terminal: []int{2},
			want:     tokenmeter.Usage{InputTokens: 10, OutputTokens: 2}, known: true, complete: true,
		},
		{
			name:    "StripKeepsUsageWithChoices",
			strip:   true,
			frames:  []sse.Event{chunk(contentChoice, `{"prompt_tokens":10,"completion_tokens":1}`)},
			dropped: nil,
			want:    tokenmeter.Usage{InputTokens: 10, OutputTokens: 1}, known: true,
		},
		{
			name:   "StripKeepsNullUsageEmptyChoices", // e.g. Azure's prompt_filter_results chunk
			strip:  true,
			frames: []sse.Event{chunk("[]", "null"), done},
			// nothing dropped
			terminal: []int{1},
			complete: true,
		},
		{
			name:     "NoUsage",
			frames:   []sse.Event{data(`{"model":"gpt-4o","choices":[{"delta":{"content":"x"}}]}`), data(`{"model":"gpt-4o","choices":[{"delta":{"content":"usage"}}]}`), done},
			terminal: []int{2},
			complete: true,
		},
		{
			name:   "LastUsageWins", // continuous usage stats on some servers: cumulative, not summed
			frames: []sse.Event{chunk(contentChoice, `{"prompt_tokens":10,"completion_tokens":1}`), chunk(contentChoice, `{"prompt_tokens":10,"completion_tokens":2}`), chunk("[]", `{"prompt_tokens":10,"completion_tokens":3}`)},
			want:   tokenmeter.Usage{InputTokens: 10, OutputTokens: 3}, known: true,
		},
		{
			name:   "CacheWrite",
			frames: []sse.Event{chunk("[]", `{"prompt_tokens":100,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":30,"cache_write_tokens":50}}`)},
			want:   tokenmeter.Usage{InputTokens: 20, CacheReadTokens: 30, CacheWrite5mTokens: 50, OutputTokens: 1}, known: true,
		},
		{
			name:      "CachedExceedsPrompt",
			frames:    []sse.Event{chunk("[]", `{"prompt_tokens":100,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":120}}`)},
			want:      tokenmeter.Usage{InputTokens: 0, CacheReadTokens: 100, OutputTokens: 1},
			known:     true,
			malformed: "cached_tokens 120 + cache_write_tokens 0 exceed prompt_tokens 100",
		},
		{
			name:      "CacheWriteExceedsRest",
			frames:    []sse.Event{chunk("[]", `{"prompt_tokens":100,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":80,"cache_write_tokens":50}}`)},
			want:      tokenmeter.Usage{InputTokens: 0, CacheReadTokens: 80, CacheWrite5mTokens: 20, OutputTokens: 1},
			known:     true,
			malformed: "exceed prompt_tokens",
		},
		{
			name:   "ReasoningCapped",
			frames: []sse.Event{chunk("[]", `{"prompt_tokens":1,"completion_tokens":10,"completion_tokens_details":{"reasoning_tokens":50}}`)},
			want:   tokenmeter.Usage{InputTokens: 1, OutputTokens: 10, ReasoningTokens: 10}, known: true,
		},
		{
			name:      "NegativeNotApplied",
			frames:    []sse.Event{chunk("[]", `{"prompt_tokens":10,"completion_tokens":1}`), chunk("[]", `{"prompt_tokens":-10,"completion_tokens":1}`)},
			want:      tokenmeter.Usage{InputTokens: 10, OutputTokens: 1},
			known:     true,
			malformed: "chunk usage: prompt_tokens is negative (-10)",
		},
		{
			name:      "Absurd",
			frames:    []sse.Event{chunk("[]", `{"prompt_tokens":10,"completion_tokens":1e12}`)},
			malformed: "completion_tokens is not an integer",
		},
		{
			name:      "TooLarge",
			frames:    []sse.Event{chunk("[]", `{"prompt_tokens":10,"completion_tokens":5000000000}`)},
			malformed: "completion_tokens is implausibly large",
		},
		{
			name:      "DetailsNotObject",
			frames:    []sse.Event{chunk("[]", `{"prompt_tokens":10,"prompt_tokens_details":7}`)},
			malformed: "prompt_tokens_details is not an object",
		},
		{
			name:      "UsageNotObject",
			frames:    []sse.Event{chunk("[]", `"lots"`)},
			malformed: "chunk usage: not a JSON object",
		},
		{
			name:      "TruncatedUsageChunk",
			frames:    []sse.Event{chunk(contentChoice, "null"), data(`{"choices":[],"usage":{"prompt_tokens":1`), done},
			terminal:  []int{2},
			complete:  true,
			malformed: "chunk is truncated",
		},
		{
			name:     "InvalidContentChunkIgnored",
			frames:   []sse.Event{chunk(contentChoice, "null"), data(`{"choices":[{"delta":{"content":"x"}}`), done},
			terminal: []int{2},
			complete: true,
		},
		{
			name:      "ErrorChunk",
			frames:    []sse.Event{chunk(contentChoice, "null"), data(`{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`)},
			errReason: "error event: server_error: The server had an error",
		},
		{
			name:      "ErrorEventName",
			frames:    []sse.Event{{Name: "error", Data: []byte(`{"error":{"message":"boom","type":"server_error","code":"x1"}}`)}},
			errReason: "error event: server_error: x1: boom",
		},
		{
			name:   "ResponsesNamingAccepted",
			frames: []sse.Event{chunk("[]", `{"input_tokens":10,"output_tokens":3,"input_tokens_details":{"cached_tokens":4}}`)},
			want:   tokenmeter.Usage{InputTokens: 6, CacheReadTokens: 4, OutputTokens: 3}, known: true,
		},
		{
			name:     "DoneWithSpaces",
			frames:   []sse.Event{data(" [DONE] ")},
			terminal: []int{0},
			complete: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openai.NewMeter(openai.Chat, tt.strip)
			var terminal, dropped []int
			for i, f := range tt.frames {
				term, drop := m.Frame(f)
				if term {
					terminal = append(terminal, i)
				}
				if drop {
					dropped = append(dropped, i)
				}
			}
			if !cmp.Equal(terminal, tt.terminal) || !cmp.Equal(dropped, tt.dropped) {
				t.Errorf("terminal frames %v, dropped %v; want %v, %v", terminal, dropped, tt.terminal, tt.dropped)
			}
			checkResult(t, m, tt.want, tt.known, tt.complete, tt.errReason, tt.malformed)
		})
	}
}

func checkResult(t *testing.T, m *openai.Meter, want tokenmeter.Usage, wantKnown, wantComplete bool, errReason, malformed string) {
	t.Helper()
	u, raw, known := m.Usage()
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("Usage() mismatch (-want +got):\n%s", diff)
	}
	if known != wantKnown {
		t.Errorf("Usage() known = %v, want %v", known, wantKnown)
	}
	if known && !json.Valid(raw) {
		t.Errorf("Usage() raw = %q, not valid JSON", raw)
	}
	if got := m.Complete(); got != wantComplete {
		t.Errorf("Complete() = %v, want %v", got, wantComplete)
	}
	if got := m.ErrorReason(); got != errReason {
		t.Errorf("ErrorReason() = %q, want %q", got, errReason)
	}
	if got := m.Malformed(); (malformed == "") != (got == "") || !strings.Contains(got, malformed) {
		t.Errorf("Malformed() = %q, want it to contain %q", got, malformed)
	}
}

func TestMeterResponses(t *testing.T) {
	usage := `{"input_tokens":50,"input_tokens_details":{"cached_tokens":20},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":10},"total_tokens":80}`
	tests := []struct {
		name      string
		frames    []sse.Event
		terminal  []int
		want      tokenmeter.Usage
		known     bool
		complete  bool
		errReason string
		malformed string
	}{
		{
			name: "Completed",
			frames: []sse.Event{
				{Name: "response.created", Data: []byte(`{"type":"response.created","response":{"model":"gpt-5","usage":null}}`)},
				{Name: "response.output_text.delta", Data: []byte(`{"type":"response.output_text.delta","delta":"hi"}`)},
				{Name: "response.completed", Data: []byte(`{"type":"response.completed","response":{"model":"gpt-5","status":"completed","usage":` + usage + `}}`)},
			},
			terminal: []int{2},
			want:     tokenmeter.Usage{InputTokens: 30, CacheReadTokens: 20, OutputTokens: 30, ReasoningTokens: 10}, known: true, complete: true,
		},
		{
			name:     "IncompleteByType", // no event line: the data's type is used
			frames:   []sse.Event{data(`{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":` + usage + `}}`)},
			terminal: []int{0},
			want:     tokenmeter.Usage{InputTokens: 30, CacheReadTokens: 20, OutputTokens: 30, ReasoningTokens: 10}, known: true, complete: true,
		},
		{
			name:      "FailedWithoutUsage",
			frames:    []sse.Event{{Name: "response.failed", Data: []byte(`{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"The model failed"},"usage":null}}`)}},
			terminal:  []int{0},
			complete:  true,
			errReason: "response failed: server_error: The model failed",
		},
		{
			name:      "FailedWithUsage",
			frames:    []sse.Event{{Name: "response.failed", Data: []byte(`{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"x"},"usage":` + usage + `}}`)}},
			terminal:  []int{0},
			want:      tokenmeter.Usage{InputTokens: 30, CacheReadTokens: 20, OutputTokens: 30, ReasoningTokens: 10},
			known:     true,
			complete:  true,
			errReason: "response failed: server_error: x",
		},
		{
			name:      "CompletedWithoutUsage",
			frames:    []sse.Event{{Name: "response.completed", Data: []byte(`{"type":"response.completed","response":{"status":"completed"}}`)}},
			terminal:  []int{0},
			complete:  true,
			malformed: "response.completed has no usage",
		},
		{
			name:      "CompletedTruncated",
			frames:    []sse.Event{{Name: "response.completed", Data: []byte(`{"type":"response.completed","response":{"usage":{"input_tok`)}},
			terminal:  []int{0},
			complete:  true,
			malformed: "response.completed is truncated",
		},
		{
			name:      "ErrorEvent",
			frames:    []sse.Event{{Name: "error", Data: []byte(`{"type":"error","code":"rate_limit_exceeded","message":"Slow down","param":null,"sequence_number":3}`)}},
			errReason: "error event: rate_limit_exceeded: Slow down",
		},
		{
			name:   "DoneIsNotTerminalForResponses",
			frames: []sse.Event{data("[DONE]")},
		},
		{
			name:      "CachedExceedsInput",
			frames:    []sse.Event{{Name: "response.completed", Data: []byte(`{"response":{"usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":9},"output_tokens":1}}}`)}},
			terminal:  []int{0},
			want:      tokenmeter.Usage{CacheReadTokens: 5, OutputTokens: 1},
			known:     true,
			complete:  true,
			malformed: "cached_tokens 9 + cache_write_tokens 0 exceed input_tokens 5",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openai.NewMeter(openai.Responses, true)
			var terminal []int
			for i, f := range tt.frames {
				term, drop := m.Frame(f)
				if term {
					terminal = append(terminal, i)
				}
				if drop {
					t.Errorf("Frame(%d %q) drop = true, want false for Responses", i, f.Data)
				}
			}
			if !cmp.Equal(terminal, tt.terminal) {
				t.Errorf("terminal frames %v, want %v", terminal, tt.terminal)
			}
			checkResult(t, m, tt.want, tt.known, tt.complete, tt.errReason, tt.malformed)
		})
	}
}

// TestMeterRelayedChat checks what Relayed counts in chat chunks: content,
// refusal, reasoning and tool arguments of every choice, decoded; not roles,
// names, logprobs, usage chunks or broken deltas.
func TestMeterRelayedChat(t *testing.T) {
	frames := []sse.Event{
		chunk(`[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}]`, `null`),
		chunk(`[{"index":0,"delta":{"content":"Caf\u00e9 \"au\" lait\n"},"logprobs":{"content":[{"token":"Caf","logprob":-0.1}]}}]`, `null`), // 15
		chunk(`[{"index":0,"delta":{"content":"ab"}},{"index":1,"delta":{"content":"cde"}}]`, `null`),                                        // 5, n=2
		chunk(`[{"index":0,"delta":{"refusal":"No."}}]`, `null`),                                                                             // 3
		chunk(`[{"index":0,"delta":{"reasoning_content":"hmm"}}]`, `null`),                                                                   // 3 (DeepSeek, vLLM)
		chunk(`[{"index":0,"delta":{"reasoning":"think","reasoning_content":"think","reasoning_details":[{"text":"think"}]}}]`, `null`),      // 5, once
		chunk(`[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]`, `null`),
		chunk(`[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}},{"index":1,"function":{"arguments":"{}"}}]}}]`, `null`), // 8+2
		chunk(`[{"index":0,"delta":{"function_call":{"arguments":"{}"}}}]`, `null`),                                                                         // 2
		data(`{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"cut at"}}]`),                                                             // 6: the chunk is cut, its delta is whole
		data(`{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"broken"`),                                                                // the delta is cut
		chunk(`[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]`, `{"prompt_tokens":5,"completion_tokens":9}`),                                  // 1, with usage
		chunk(`[]`, `{"prompt_tokens":5,"completion_tokens":9}`),
		done,
	}
	m := openai.NewMeter(openai.Chat, true)
	for _, f := range frames {
		m.Frame(f)
	}
	want := int64(15 + 5 + 3 + 3 + 5 + 8 + 2 + 2 + 6 + 1)
	if got := m.Relayed().Chars(); got != want {
		t.Errorf("Relayed().Chars() = %d, want %d", got, want)
	}
	if e := m.Relayed().Estimate(m.Model()); e.Tokens < 10 || e.Tokens > want || !strings.HasSuffix(e.Basis, "o200k_base tokenizer") {
		t.Errorf("Relayed().Estimate(%q) = %+v, want o200k_base tokens between 10 and %d", m.Model(), e, want)
	}
}

// TestMeterRelayedResponses checks the Responses delta events counted, with
// and without event lines, and those left out.
func TestMeterRelayedResponses(t *testing.T) {
	evt := func(name, rest string) sse.Event {
		return sse.Event{Name: name, Data: []byte(`{"type":"` + name + `","sequence_number":1,` + rest + `}`)}
	}
	frames := []sse.Event{
		evt("response.created", `"response":{"id":"resp_1","model":"gpt-5","usage":null}`),
		evt("response.output_text.delta", `"item_id":"msg_1","delta":"Paris \u00e9","logprobs":[]`), // 7
		evt("response.refusal.delta", `"delta":"No"`),                                               // 2
		evt("response.reasoning_text.delta", `"delta":"abc"`),                                       // 3
		evt("response.reasoning_summary_text.delta", `"delta":"abcd"`),                              // 4
		evt("response.function_call_arguments.delta", `"delta":"{\"a\":1}"`),                        // 7
		evt("response.custom_tool_call_input.delta", `"delta":"ls -la"`),                            // 5
		evt("response.mcp_call_arguments.delta", `"delta":"{}"`),                                    // 2
		evt("response.code_interpreter_call_code.delta", `"delta":"print(1)"`),                      // 8
		{Data: []byte(`{"type":"response.output_text.delta","delta":"xyz"}`)},                       // 3, no event line
		evt("response.output_text.done", `"text":"Paris \u00e9"`),
		evt("response.function_call_arguments.done", `"arguments":"{\"a\":1}"`),
		evt("response.audio.delta", `"delta":"UklGRiQAAABXQVZF"`),
		evt("response.output_text.delta", `"delta":{"not":"a string"}`),
	}
	m := openai.NewMeter(openai.Responses, false)
	for _, f := range frames {
		m.Frame(f)
	}
	if got, want := m.Relayed().Chars(), int64(7+2+3+4+7+6+2+8+3); got != want {
		t.Errorf("Relayed().Chars() = %d, want %d", got, want)
	}
	if m.Malformed() != "" || m.Complete() {
		t.Errorf("delta events changed the meter: Malformed %q, Complete %v", m.Malformed(), m.Complete())
	}
}

func TestMeterBody(t *testing.T) {
	tests := []struct {
		name      string
		api       openai.API
		body      string
		want      tokenmeter.Usage
		known     bool
		complete  bool
		errReason string
		malformed string
	}{
		{
			name: "Chat", api: openai.Chat,
			body: `{"object":"chat.completion","model":"gpt-4o","usage":{"prompt_tokens":9,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":0}}}`,
			want: tokenmeter.Usage{InputTokens: 9, OutputTokens: 3}, known: true, complete: true,
		},
		{
			name: "Embeddings", api: openai.Other,
			body: `{"object":"list","data":[],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`,
			want: tokenmeter.Usage{InputTokens: 8}, known: true, complete: true,
		},
		{
			name: "Error", api: openai.Chat,
			body:      `{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			errReason: "invalid_request_error: invalid_api_key: Incorrect API key provided.",
		},
		{
			name: "ErrorCodeSameAsType", api: openai.Chat,
			body:      `{"error":{"message":"Quota exceeded.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			errReason: "insufficient_quota: Quota exceeded.",
		},
		{
			name: "ErrorNumericCode", api: openai.Chat,
			body:      `{"error":{"message":"Bad gateway.","type":"cf_bad_gateway","param":null,"code":502}}`,
			errReason: "cf_bad_gateway: 502: Bad gateway.",
		},
		{name: "ErrorNull", api: openai.Chat, body: `{"error":null}`, malformed: "response body has no usage"},
		{name: "Empty", api: openai.Chat, body: ``, malformed: "response body is empty"},
		{name: "HTML", api: openai.Chat, body: `<html>502</html>`, malformed: "response body is invalid JSON at byte 1"},
		{name: "NotObject", api: openai.Chat, body: `[1]`, malformed: "response body is not a JSON object"},
		{name: "UsageWrongType", api: openai.Chat, body: `{"usage":[1]}`, malformed: "response usage: not a JSON object"},
		{
			name: "ResponsesFailedBody", api: openai.Responses,
			body:      `{"object":"response","status":"failed","error":{"code":"server_error","message":"boom"},"usage":null}`,
			errReason: "server_error: boom",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openai.NewMeter(tt.api, false)
			m.Body([]byte(tt.body))
			checkResult(t, m, tt.want, tt.known, tt.complete, tt.errReason, tt.malformed)
		})
	}
}

// TestMeterKeepsNoReference checks that the meter copies what it keeps: the
// gateway reuses its frame buffer.
func TestMeterKeepsNoReference(t *testing.T) {
	m := openai.NewMeter(openai.Chat, false)
	b := []byte(`{"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}`)
	m.Frame(sse.Event{Data: b})
	for i := range b {
		b[i] = 'x'
	}
	if _, raw, _ := m.Usage(); m.Model() != "gpt-4o" || string(raw) != `{"prompt_tokens":3,"completion_tokens":1}` {
		t.Errorf("after overwriting the frame: Model %q, raw %s", m.Model(), raw)
	}
}

func FuzzMeter(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil && !strings.HasSuffix(file, ".want.json") {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"",
		"data: [DONE]\n\n",
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":9}}}\n\n",
		"event: response.completed\ndata: {\"response\":{\"usage\":{\"input_tokens\":-1}}}\n\n",
		`{"usage":{"input_tokens":3,"output_tokens_details":{"reasoning_tokens":9}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, api := range []openai.API{openai.Chat, openai.Responses} {
			for _, strip := range []bool{false, true} {
				m := openai.NewMeter(api, strip)
				for rest := b; ; {
					n := sse.FrameEnd(rest)
					if n < 0 {
						break
					}
					if _, drop := m.Frame(sse.Parse(rest[:n])); drop && (!strip || api == openai.Responses) {
						t.Fatalf("Frame dropped a frame with api %s, strip %v", api, strip)
					}
					rest = rest[n:]
				}
				m.Frame(sse.Event{Data: b})
				m.Frame(sse.Event{Name: "response.completed", Data: b})
				checkMeter(t, m)
			}
			m := openai.NewMeter(api, false)
			m.Body(b)
			checkMeter(t, m)
		}
		// For a request ParseRequest accepts, InjectIncludeUsage gives one
		// that it reads with IncludeUsage.
		if _, err := openai.ParseRequest(openai.Chat, b); err != nil {
			return
		}
		if out, err := openai.InjectIncludeUsage(b); err == nil {
			r, err := openai.ParseRequest(openai.Chat, out)
			if err != nil || !r.IncludeUsage {
				t.Fatalf("ParseRequest(InjectIncludeUsage(%q) = %q) = %+v, %v; want IncludeUsage", b, out, r, err)
			}
		}
		// For one without an output bound, InjectMaxOutput gives one read
		// with that bound and otherwise the same.
		for _, api := range []openai.API{openai.Chat, openai.Responses} {
			before, err := openai.ParseRequest(api, b)
			if err != nil || before.MaxTokens != 0 {
				continue
			}
			out, err := openai.InjectMaxOutput(api, b, 777)
			if err != nil {
				if json.Valid(b) { // ParseRequest reads past some invalid JSON; the upstream refuses it
					t.Fatalf("InjectMaxOutput(%q): %v", b, err)
				}
				continue
			}
			after, err := openai.ParseRequest(api, out)
			before.MaxTokens = 777
			if err != nil || after != before {
				t.Fatalf("ParseRequest(InjectMaxOutput(%q) = %q) = %+v, %v; want %+v", b, out, after, err, before)
			}
		}
	})
}

func checkMeter(t *testing.T, m *openai.Meter) {
	t.Helper()
	for _, model := range []string{"gpt-4o", "claude-sonnet-4-5"} {
		e := m.Relayed().Estimate(model)
		if m.Relayed().Chars() < 0 || e.Tokens < 0 || e.Tokens > 4*m.Relayed().Chars() || len(e.Basis) > 120 {
			t.Fatalf("Relayed() has %d characters, estimated %+v for %s", m.Relayed().Chars(), e, model)
		}
	}
	u, raw, known := m.Usage()
	for name, n := range map[string]int64{
		"InputTokens": u.InputTokens, "OutputTokens": u.OutputTokens, "CacheWrite5mTokens": u.CacheWrite5mTokens,
		"CacheWrite1hTokens": u.CacheWrite1hTokens, "CacheReadTokens": u.CacheReadTokens, "ReasoningTokens": u.ReasoningTokens,
		"WebSearchRequests": u.WebSearchRequests, "WebFetchRequests": u.WebFetchRequests,
	} {
		if n < 0 || n > 1_000_000_000 {
			t.Fatalf("Usage().%s = %d, want within [0, 1e9]", name, n)
		}
	}
	if u.ReasoningTokens > u.OutputTokens || u.CacheWrite1hTokens != 0 {
		t.Fatalf("Usage() = %+v: reasoning above output or a 1h cache write", u)
	}
	if !known && (!u.IsZero() || raw != nil) {
		t.Fatalf("Usage() = %+v, %s with known = false", u, raw)
	}
	if known && !json.Valid(raw) {
		t.Fatalf("Usage() raw %q is not valid JSON", raw)
	}
	if len(m.ErrorReason()) > 310 || len(m.Malformed()) > 310 || len(m.Model()) > 260 {
		t.Fatalf("reason or model too long: %q %q %q", m.ErrorReason(), m.Malformed(), m.Model())
	}
}

// chatStream returns a recorded-looking chat stream with include_usage and
// 300 content chunks.
func chatStream(tb testing.TB) []byte {
	tb.Helper()
	in, err := os.ReadFile("testdata/chat_stream_include_usage.sse")
	if err != nil {
		tb.Fatal(err)
	}
	first := sse.FrameEnd(in)
	second := first + sse.FrameEnd(in[first:])
	return append(append(append([]byte(nil), in[:first]...), bytes.Repeat(in[first:second], 300)...), in[second:]...)
}

// BenchmarkChatStream meters a full chat stream as the gateway does:
// FrameEnd, Parse and Frame for every frame, then Usage.
func BenchmarkChatStream(b *testing.B) {
	stream := chatStream(b)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		m := openai.NewMeter(openai.Chat, true)
		buf := stream
		for {
			n := sse.FrameEnd(buf)
			if n < 0 {
				break
			}
			m.Frame(sse.Parse(buf[:n]))
			buf = buf[n:]
		}
		if u, _, known := m.Usage(); !known || u.OutputTokens != 300 || !m.Complete() {
			b.Fatalf("Usage() = %+v, %v", u, known)
		}
	}
}

func BenchmarkResponsesStream(b *testing.B) {
	stream, err := os.ReadFile("testdata/responses_stream_completed.sse")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		m := openai.NewMeter(openai.Responses, false)
		buf := stream
		for {
			n := sse.FrameEnd(buf)
			if n < 0 {
				break
			}
			m.Frame(sse.Parse(buf[:n]))
			buf = buf[n:]
		}
		if _, _, known := m.Usage(); !known {
			b.Fatal("usage unknown")
		}
	}
}

// responsesStream returns a recorded-looking Responses stream with 300
// output_text.delta events.
func responsesStream(tb testing.TB) []byte {
	tb.Helper()
	in, err := os.ReadFile("testdata/responses_stream_completed.sse")
	if err != nil {
		tb.Fatal(err)
	}
	d := "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":9,\"item_id\":\"msg_68af1c2f9e8d7c6b\",\"output_index\":1,\"content_index\":0,\"delta\":\" and the next\",\"logprobs\":[],\"obfuscation\":\"x9\"}\n\n"
	i := bytes.Index(in, []byte("event: response.output_text.done"))
	return append(append(append([]byte(nil), in[:i]...), strings.Repeat(d, 300)...), in[i:]...)
}

// BenchmarkResponsesLongStream meters a Responses stream of 300 text
// deltas as the gateway does.
func BenchmarkResponsesLongStream(b *testing.B) {
	stream := responsesStream(b)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		m := openai.NewMeter(openai.Responses, false)
		buf := stream
		for {
			n := sse.FrameEnd(buf)
			if n < 0 {
				break
			}
			m.Frame(sse.Parse(buf[:n]))
			buf = buf[n:]
		}
		if _, _, known := m.Usage(); !known || !m.Complete() {
			b.Fatal("usage unknown")
		}
	}
}

// BenchmarkFrameChatDelta and BenchmarkFrameResponsesDelta are the
// per-frame cost of the commonest frame of each API, a text delta, once
// the model is known: what counting relayed output adds.
func BenchmarkFrameChatDelta(b *testing.B) {
	in, err := os.ReadFile("testdata/chat_stream_include_usage.sse")
	if err != nil {
		b.Fatal(err)
	}
	first := sse.FrameEnd(in)
	second := first + sse.FrameEnd(in[first:])
	m := openai.NewMeter(openai.Chat, true)
	m.Frame(sse.Parse(in[:first]))
	frame := in[first:second]
	b.ReportAllocs()
	for b.Loop() {
		m.Frame(sse.Parse(frame))
	}
	if m.Relayed().Chars() == 0 {
		b.Fatal("nothing counted")
	}
}

func BenchmarkFrameResponsesDelta(b *testing.B) {
	m := openai.NewMeter(openai.Responses, false)
	m.Frame(sse.Event{Name: "response.created", Data: []byte(`{"type":"response.created","response":{"model":"gpt-5"}}`)})
	frame := []byte("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":9,\"item_id\":\"msg_68af1c2f9e8d7c6b\",\"output_index\":1,\"content_index\":0,\"delta\":\" and the next\",\"logprobs\":[],\"obfuscation\":\"x9\"}\n\n")
	b.ReportAllocs()
	for b.Loop() {
		m.Frame(sse.Parse(frame))
	}
	if m.Relayed().Chars() == 0 {
		b.Fatal("nothing counted")
	}
}

func TestRelayedOutput(t *testing.T) {
	m := openai.NewMeter(openai.Chat, false)
	m.Frame(chunk(`[{"index":0,"delta":{"content":"Hello, world!"}}]`, `null`))
	if n, basis := m.RelayedOutput("gpt-4o"); n != 4 || basis != "output: 13 relayed characters, o200k_base tokenizer" {
		t.Errorf("RelayedOutput = %d, %q; want 4 tokens by o200k_base", n, basis)
	}
}

// TestMeterServiceTier: the tier that served the response is read from a
// chat body, a chat stream and a Responses stream; a value that is not a
// plain name is "unrecognized", never dropped (issue 13 item 13).
func TestMeterServiceTier(t *testing.T) {
	body := func(tier string) string {
		return `{"id":"chatcmpl-1","model":"gpt-5","service_tier":` + tier + `,"usage":{"prompt_tokens":10,"completion_tokens":2}}`
	}
	for tier, want := range map[string]string{`"priority"`: "priority", `"flex"`: "flex", `null`: "", `{"x":1}`: "unrecognized",
		`"` + strings.Repeat("a", 40) + `"`: "unrecognized", `"fa st"`: "unrecognized"} {
		m := openai.NewMeter(openai.Chat, false)
		m.Body([]byte(body(tier)))
		if got := m.ServiceTier(); got != want {
			t.Errorf("body with service_tier %s: %q, want %q", tier, got, want)
		}
	}
	m := openai.NewMeter(openai.Chat, true)
	for _, data := range []string{
		`{"id":"c","model":"gpt-5","service_tier":"flex","choices":[{"delta":{"content":"hi"}}],"usage":null}`,
		`{"id":"c","model":"gpt-5","service_tier":"flex","choices":[{"delta":{"content":" there"}}],"usage":null}`,
		`{"id":"c","model":"gpt-5","service_tier":"flex","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}`,
		`[DONE]`,
	} {
		m.Frame(sse.Event{Data: []byte(data)})
	}
	if got := m.ServiceTier(); got != "flex" {
		t.Errorf("chat stream: %q, want flex", got)
	}
	m = openai.NewMeter(openai.Responses, false)
	m.Frame(sse.Event{Name: "response.created", Data: []byte(`{"type":"response.created","response":{"model":"gpt-5","service_tier":"auto"}}`)})
	m.Frame(sse.Event{Name: "response.completed", Data: []byte(`{"type":"response.completed","response":{"model":"gpt-5","service_tier":"priority","usage":{"input_tokens":5,"output_tokens":2}}}`)})
	if got := m.ServiceTier(); got != "priority" {
		t.Errorf("responses stream: %q, want the completed event's priority", got)
	}
}
