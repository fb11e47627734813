package anthropic_test

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
	"github.com/tokenmeter/tokenmeter/internal/anthropic"
	"github.com/tokenmeter/tokenmeter/internal/estimate"
	"github.com/tokenmeter/tokenmeter/internal/sse"
)

var update = flag.Bool("update", false, "rewrite testdata/*.want.json from the current output")

// result is everything a Meter reports, as kept in the .want.json files.
type result struct {
	Frames         int              `json:"frames,omitempty"`
	TerminalFrames []int            `json:"terminal_frames,omitempty"`
	Tail           string           `json:"incomplete_tail,omitempty"`
	Usage          tokenmeter.Usage `json:"usage"`
	RawUsage       json.RawMessage  `json:"raw_usage"`
	Known          bool             `json:"known"`
	Model          string           `json:"model"`
	MessageID      string           `json:"message_id"`
	Started        bool             `json:"started"`
	Complete       bool             `json:"complete"`
	ErrorReason    string           `json:"error_reason"`
	Malformed      string           `json:"malformed"`
	// RelayedChars and RelayedEstimate are what Relayed counted, and its
	// estimate for the response's model.
	RelayedChars    int64             `json:"relayed_chars"`
	RelayedEstimate estimate.Estimate `json:"relayed_estimate"`
}

func report(m *anthropic.Meter) result {
	u, raw, known := m.Usage()
	return result{
		Usage: u, RawUsage: raw, Known: known,
		Model: m.Model(), MessageID: m.MessageID(), Started: m.Started(), Complete: m.Complete(),
		ErrorReason: m.ErrorReason(), Malformed: m.Malformed(),
		RelayedChars: m.Relayed().Chars(), RelayedEstimate: m.Relayed().Estimate(m.Model()),
	}
}

// meterStream frames stream as the gateway does and feeds every frame to a
// new Meter.
func meterStream(t testing.TB, stream []byte) result {
	m := anthropic.NewMeter()
	var terminal []int
	i := 0
	for ; ; i++ {
		n := sse.FrameEnd(stream)
		if n < 0 {
			break
		}
		term, drop := m.Frame(sse.Parse(stream[:n]))
		if drop {
			t.Errorf("Frame(frame %d %q) drop = true, want false", i, stream[:n])
		}
		if term {
			terminal = append(terminal, i)
		}
		stream = stream[n:]
	}
	r := report(m)
	r.Frames, r.TerminalFrames, r.Tail = i, terminal, string(stream)
	return r
}

// TestGolden feeds each recorded stream (*.sse) frame by frame, and each
// recorded body (*.json, *.txt) to Body, and compares what the Meter reports
// with the .want.json beside it. Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.*")
	n := 0
	for _, file := range files {
		ext := filepath.Ext(file)
		if strings.HasSuffix(file, ".want.json") || (ext != ".sse" && ext != ".json" && ext != ".txt") {
			continue
		}
		n++
		t.Run(filepath.Base(file), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var got result
			if ext == ".sse" {
				got = meterStream(t, in)
			} else {
				m := anthropic.NewMeter()
				m.Body(in)
				got = report(m)
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

// ev builds a frame's event; data is JSON.
func ev(name, data string) sse.Event { return sse.Event{Name: name, Data: []byte(data)} }

func start(usage string) sse.Event {
	return ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"usage":`+usage+`}}`)
}

func delta(usage string) sse.Event {
	return ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":`+usage+`}`)
}

var stop = ev("message_stop", `{"type":"message_stop"}`)

func TestMeterFrames(t *testing.T) {
	tests := []struct {
		name      string
		frames    []sse.Event
		want      tokenmeter.Usage
		known     bool
		complete  bool
		errReason string
		malformed string // substring; "" means none
	}{
		{
			name:   "OutputReplacedNotSummed", // 1 at message_start + 12 at message_delta is 12, not 13
			frames: []sse.Event{start(`{"input_tokens":25,"output_tokens":1}`), delta(`{"output_tokens":12}`), stop},
			want:   tokenmeter.Usage{InputTokens: 25, OutputTokens: 12}, known: true, complete: true,
		},
		{
			name: "SeveralDeltasLastWins",
			frames: []sse.Event{
				start(`{"input_tokens":2679,"output_tokens":3}`),
				delta(`{"input_tokens":6012,"output_tokens":168,"server_tool_use":{"web_search_requests":1}}`),
				delta(`{"input_tokens":10682,"output_tokens":510,"server_tool_use":{"web_search_requests":2,"web_fetch_requests":1}}`),
				stop,
			},
			want:  tokenmeter.Usage{InputTokens: 10682, OutputTokens: 510, WebSearchRequests: 2, WebFetchRequests: 1},
			known: true, complete: true,
		},
		{
			name: "DeltaReplacesOnlyPresentFields",
			frames: []sse.Event{
				start(`{"input_tokens":100,"cache_read_input_tokens":50,"cache_creation_input_tokens":7,"output_tokens":1,"server_tool_use":{"web_search_requests":1}}`),
				delta(`{"input_tokens":300,"output_tokens":20}`),
			},
			want:  tokenmeter.Usage{InputTokens: 300, OutputTokens: 20, CacheReadTokens: 50, CacheWrite5mTokens: 7, WebSearchRequests: 1},
			known: true,
		},
		{
			name: "NullInDeltaKeeps",
			frames: []sse.Event{
				start(`{"input_tokens":100,"cache_read_input_tokens":50,"output_tokens":1}`),
				delta(`{"input_tokens":null,"cache_read_input_tokens":null,"server_tool_use":null,"output_tokens":9}`),
			},
			want:  tokenmeter.Usage{InputTokens: 100, OutputTokens: 9, CacheReadTokens: 50},
			known: true,
		},
		{
			name:   "DeltaWithoutOutputKeepsOutput",
			frames: []sse.Event{start(`{"input_tokens":1,"output_tokens":4}`), delta(`{"input_tokens":2}`)},
			want:   tokenmeter.Usage{InputTokens: 2, OutputTokens: 4}, known: true,
		},
		{
			name: "DeltaWithoutUsage",
			frames: []sse.Event{
				start(`{"input_tokens":5,"output_tokens":1}`),
				ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"}}`),
				delta(`null`),
				stop,
			},
			want: tokenmeter.Usage{InputTokens: 5, OutputTokens: 1}, known: true, complete: true,
		},
		{
			name:   "NullAndMissingFieldsAreZero",
			frames: []sse.Event{start(`{"input_tokens":5,"cache_creation_input_tokens":null,"cache_read_input_tokens":null,"cache_creation":null,"output_tokens":null}`)},
			want:   tokenmeter.Usage{InputTokens: 5}, known: true,
		},
		{
			name:   "CacheSplitAbsentCountsAs5m",
			frames: []sse.Event{start(`{"input_tokens":1,"cache_creation_input_tokens":500,"output_tokens":1}`)},
			want:   tokenmeter.Usage{InputTokens: 1, OutputTokens: 1, CacheWrite5mTokens: 500}, known: true,
		},
		{
			name:   "CacheSplit",
			frames: []sse.Event{start(`{"input_tokens":1,"cache_creation_input_tokens":500,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":300},"output_tokens":1}`)},
			want:   tokenmeter.Usage{InputTokens: 1, OutputTokens: 1, CacheWrite5mTokens: 200, CacheWrite1hTokens: 300}, known: true,
		},
		{
			name:   "CacheSplitShortOfTotalRemainderIs5m",
			frames: []sse.Event{start(`{"cache_creation_input_tokens":100,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":30}}`)},
			want:   tokenmeter.Usage{CacheWrite5mTokens: 70, CacheWrite1hTokens: 30}, known: true,
		},
		{
			name:   "CacheSplitOverTotalTotalWins",
			frames: []sse.Event{start(`{"cache_creation_input_tokens":20,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":50}}`)},
			want:   tokenmeter.Usage{CacheWrite5mTokens: 0, CacheWrite1hTokens: 20}, known: true,
		},
		{
			name:   "CacheSplitWithoutTotal",
			frames: []sse.Event{start(`{"cache_creation":{"ephemeral_5m_input_tokens":7,"ephemeral_1h_input_tokens":3}}`)},
			want:   tokenmeter.Usage{CacheWrite5mTokens: 7, CacheWrite1hTokens: 3}, known: true,
		},
		{
			name: "DeltaChangesCacheTotalKeeps1hSplit",
			frames: []sse.Event{
				start(`{"cache_creation_input_tokens":100,"cache_creation":{"ephemeral_5m_input_tokens":60,"ephemeral_1h_input_tokens":40},"output_tokens":1}`),
				delta(`{"cache_creation_input_tokens":150,"output_tokens":2}`),
			},
			want:  tokenmeter.Usage{OutputTokens: 2, CacheWrite5mTokens: 110, CacheWrite1hTokens: 40},
			known: true,
		},
		{
			name:   "Thinking",
			frames: []sse.Event{start(`{"input_tokens":8,"output_tokens":1}`), delta(`{"output_tokens":900,"output_tokens_details":{"thinking_tokens":700}}`), stop},
			want:   tokenmeter.Usage{InputTokens: 8, OutputTokens: 900, ReasoningTokens: 700}, known: true, complete: true,
		},
		{
			name:   "ThinkingCappedAtOutput",
			frames: []sse.Event{start(`{"input_tokens":8,"output_tokens":1}`), delta(`{"output_tokens":90,"output_tokens_details":{"thinking_tokens":700}}`)},
			want:   tokenmeter.Usage{InputTokens: 8, OutputTokens: 90, ReasoningTokens: 90}, known: true,
		},
		{
			name:   "NegativeDeltaNotApplied",
			frames: []sse.Event{start(`{"input_tokens":8,"output_tokens":1}`), delta(`{"input_tokens":9,"output_tokens":-3}`), stop},
			want:   tokenmeter.Usage{InputTokens: 8, OutputTokens: 1}, known: true, complete: true,
			malformed: "output_tokens is negative",
		},
		{
			name:      "AbsurdValue",
			frames:    []sse.Event{start(`{"input_tokens":99999999999999,"output_tokens":1}`)},
			malformed: "implausibly large",
		},
		{
			name:      "BeyondInt64",
			frames:    []sse.Event{start(`{"input_tokens":99999999999999999999999,"output_tokens":1}`)},
			malformed: "input_tokens is not an integer",
		},
		{
			name:      "FloatCount",
			frames:    []sse.Event{start(`{"input_tokens":1.5,"output_tokens":1}`)},
			malformed: "input_tokens is not an integer",
		},
		{
			name:      "StringCount",
			frames:    []sse.Event{start(`{"input_tokens":"12","output_tokens":1}`)},
			malformed: "input_tokens is not an integer",
		},
		{
			name:      "NegativeNested",
			frames:    []sse.Event{start(`{"input_tokens":1,"server_tool_use":{"web_search_requests":-1}}`)},
			malformed: "web_search_requests is negative",
		},
		{
			name:      "UsageNotObject",
			frames:    []sse.Event{start(`[1,2]`)},
			malformed: "message_start usage: not a JSON object",
		},
		{
			name:      "StartWithoutUsage",
			frames:    []sse.Event{ev("message_start", `{"type":"message_start","message":{"id":"msg_1","model":"m"}}`)},
			malformed: "message_start has no usage",
		},
		{
			name:      "StartTruncated",
			frames:    []sse.Event{ev("message_start", `{"type":"message_start","message":{"usage":{"input_tok`)},
			malformed: "message_start is truncated",
		},
		{
			name:      "StartNotJSON",
			frames:    []sse.Event{ev("message_start", `hello`)},
			malformed: "message_start is invalid JSON at byte 1",
		},
		{
			name:   "DeltaBeforeStart",
			frames: []sse.Event{delta(`{"output_tokens":7}`)},
			want:   tokenmeter.Usage{OutputTokens: 7}, known: true,
		},
		{
			name: "PingAndUnknownIgnored",
			frames: []sse.Event{
				ev("ping", `{"type":"ping"}`),
				start(`{"input_tokens":3,"output_tokens":1}`),
				ev("brand_new_event", `{"usage":{"output_tokens":999}}`),
				ev("content_block_delta", `not even json`),
				ev("", ""),
				stop,
			},
			want: tokenmeter.Usage{InputTokens: 3, OutputTokens: 1}, known: true, complete: true,
		},
		{
			name: "NoEventLinesUsesDataType",
			frames: []sse.Event{
				{Data: []byte(`{"type":"message_start","message":{"usage":{"input_tokens":3,"output_tokens":1}}}`)},
				{Data: []byte(`{"type":"message_delta","usage":{"output_tokens":4}}`)},
				{Data: []byte(`{"type":"message_stop"}`)},
			},
			want: tokenmeter.Usage{InputTokens: 3, OutputTokens: 4}, known: true, complete: true,
		},
		{
			name:      "ErrorEvent",
			frames:    []sse.Event{start(`{"input_tokens":3,"output_tokens":1}`), ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)},
			want:      tokenmeter.Usage{InputTokens: 3, OutputTokens: 1},
			known:     true,
			errReason: "error event: overloaded_error: Overloaded",
		},
		{
			name:      "ErrorEventUnreadable",
			frames:    []sse.Event{ev("error", `{"type":"error"`)},
			errReason: "error event: unreadable error",
		},
		{
			name:      "FirstErrorKept",
			frames:    []sse.Event{ev("error", `{"error":{"type":"api_error","message":"a"}}`), ev("error", `{"error":{"type":"overloaded_error","message":"b"}}`)},
			errReason: "error event: api_error: a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := anthropic.NewMeter()
			for i, f := range tt.frames {
				term, drop := m.Frame(f)
				if wantTerm := f.Name == "message_stop" || strings.Contains(string(f.Data), `"message_stop"`); term != wantTerm || drop {
					t.Errorf("Frame(%d %q %s) = (%v, %v), want (%v, false)", i, f.Name, f.Data, term, drop, wantTerm)
				}
			}
			u, raw, known := m.Usage()
			if diff := cmp.Diff(tt.want, u); diff != "" {
				t.Errorf("Usage() mismatch (-want +got):\n%s", diff)
			}
			if known != tt.known {
				t.Errorf("Usage() known = %v, want %v", known, tt.known)
			}
			if known && !json.Valid(raw) {
				t.Errorf("Usage() raw = %q, not valid JSON", raw)
			}
			if got := m.Complete(); got != tt.complete {
				t.Errorf("Complete() = %v, want %v", got, tt.complete)
			}
			if got := m.ErrorReason(); got != tt.errReason {
				t.Errorf("ErrorReason() = %q, want %q", got, tt.errReason)
			}
			if got := m.Malformed(); (tt.malformed == "") != (got == "") || !strings.Contains(got, tt.malformed) {
				t.Errorf("Malformed() = %q, want it to contain %q", got, tt.malformed)
			}
		})
	}
}

// TestMeterRelayed checks what Relayed counts: text, thinking and tool
// input, decoded, whatever the event line says or without one; not
// signatures, citations, pings or broken deltas.
func TestMeterRelayed(t *testing.T) {
	blockDelta := func(d string) sse.Event {
		return ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":`+d+`}`)
	}
	frames := []sse.Event{
		start(`{"input_tokens":25,"output_tokens":1}`),
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`),
		blockDelta(`{"type":"thinking_delta","thinking":"Let me think\u2026"}`), // 13
		blockDelta(`{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxJ"}`),
		ev("content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":"Pre"}}`), // 3
		blockDelta(`{"type":"text_delta","text":"Hello, \"w\u00f6rld\"\n"}`),                                               // 15
		blockDelta(`{"type":"citations_delta","citation":{"type":"char_location","cited_text":"not output"}}`),
		{Data: []byte(`{"type":"content_block_delta","index":1,"delta":{"text":"!!","type":"text_delta"}}`)}, // 2, no event line
		ev("content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}`),
		blockDelta(`{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}`), // 13
		blockDelta(`{"type":"input_json_delta","partial_json":""}`),
		blockDelta(`{"type":"text_delta","text":"broken"`),                    // not JSON: not counted
		ev("content_block_delta", `{"type":"content_block_delta","delta":3}`), // no object
		ev("ping", `{"type":"ping"}`),
	}
	m := anthropic.NewMeter()
	for _, f := range frames {
		m.Frame(f)
	}
	if got := m.Relayed().Chars(); got != 13+3+15+2+13+6 {
		t.Errorf("Relayed().Chars() = %d, want %d", got, 13+3+15+2+13+6)
	}
	if m.Malformed() != "" {
		t.Errorf("content frames made the meter Malformed: %q", m.Malformed())
	}
	e := m.Relayed().Estimate(m.Model())
	if e.Tokens != 13 || e.Basis != "output: 52 relayed characters, 4 characters per token" {
		t.Errorf("Relayed().Estimate = %+v, want 13 tokens at 4 characters each", e)
	}
	if got := anthropic.NewMeter().Relayed().Estimate("claude-x"); got.Tokens != 0 {
		t.Errorf("a new meter's Relayed estimates %+v", got)
	}
}

func TestMeterRawMerge(t *testing.T) {
	m := anthropic.NewMeter()
	startUsage := `{"input_tokens":4,"cache_creation_input_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}`
	m.Frame(start(startUsage))
	if _, raw, _ := m.Usage(); string(raw) != startUsage {
		t.Errorf("after message_start, raw = %s, want it as received: %s", raw, startUsage)
	}
	m.Frame(delta(`{"output_tokens":30,"input_tokens":null,"server_tool_use":{"web_search_requests":1},"iterations":[{"type":"message"}]}`))
	m.Frame(delta(`{"output_tokens":42}`))
	want := `{"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":0},"cache_creation_input_tokens":10,"input_tokens":4,"iterations":[{"type":"message"}],"output_tokens":42,"server_tool_use":{"web_search_requests":1},"service_tier":"standard"}`
	if _, raw, _ := m.Usage(); string(raw) != want {
		t.Errorf("after two message_delta, raw =\n%s\nwant\n%s", raw, want)
	}
}

// TestMeterKeepsNoReference checks that the meter copies what it keeps: the
// gateway reuses its frame buffer.
func TestMeterKeepsNoReference(t *testing.T) {
	m := anthropic.NewMeter()
	data := []byte(`{"type":"message_start","message":{"id":"msg_a","model":"claude-x","usage":{"input_tokens":3,"output_tokens":1}}}`)
	m.Frame(sse.Event{Name: "message_start", Data: data})
	for i := range data {
		data[i] = 'x'
	}
	_, raw, _ := m.Usage()
	if m.Model() != "claude-x" || m.MessageID() != "msg_a" || string(raw) != `{"input_tokens":3,"output_tokens":1}` {
		t.Errorf("after overwriting the frame: Model %q, MessageID %q, raw %s; want claude-x, msg_a and the usage", m.Model(), m.MessageID(), raw)
	}
}

func TestMeterBody(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      tokenmeter.Usage
		known     bool
		complete  bool
		errReason string
		malformed string
	}{
		{
			name: "Message",
			body: `{"id":"msg_1","type":"message","model":"claude-x","usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":3}}`,
			want: tokenmeter.Usage{InputTokens: 10, OutputTokens: 5, CacheReadTokens: 3}, known: true, complete: true,
		},
		{
			name:      "ErrorBody",
			body:      `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`,
			errReason: "rate_limit_error: Number of request tokens has exceeded your per-minute rate limit",
		},
		{name: "ErrorString", body: `{"error":"upstream connect error"}`, errReason: "upstream connect error"},
		{name: "Empty", body: ``, malformed: "response body is empty"},
		{name: "Truncated", body: `{"type":"message","usage":{"input_tok`, malformed: "response body is truncated after 37 bytes"},
		{name: "NotJSON", body: `Bad Gateway`, malformed: "response body is invalid JSON at byte 1"},
		{name: "Array", body: `[]`, malformed: "response body is not a JSON object"},
		{name: "NoUsage", body: `{"input_tokens":42}`, malformed: "response body has no usage"},
		{name: "UsageNull", body: `{"type":"message","usage":null}`, malformed: "response body has no usage"},
		{name: "WrongTypeModel", body: `{"type":"message","model":5,"usage":{"input_tokens":1,"output_tokens":2}}`, want: tokenmeter.Usage{InputTokens: 1, OutputTokens: 2}, known: true, complete: true},
		{name: "Negative", body: `{"type":"message","usage":{"input_tokens":-1,"output_tokens":2}}`, malformed: "response usage: input_tokens is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := anthropic.NewMeter()
			m.Body([]byte(tt.body))
			u, _, known := m.Usage()
			if diff := cmp.Diff(tt.want, u); diff != "" {
				t.Errorf("Body(%s): Usage() mismatch (-want +got):\n%s", tt.body, diff)
			}
			if known != tt.known || m.Complete() != tt.complete {
				t.Errorf("Body(%s): known, Complete() = %v, %v, want %v, %v", tt.body, known, m.Complete(), tt.known, tt.complete)
			}
			if got := m.ErrorReason(); got != tt.errReason {
				t.Errorf("Body(%s): ErrorReason() = %q, want %q", tt.body, got, tt.errReason)
			}
			if got := m.Malformed(); (tt.malformed == "") != (got == "") || !strings.Contains(got, tt.malformed) {
				t.Errorf("Body(%s): Malformed() = %q, want it to contain %q", tt.body, got, tt.malformed)
			}
		})
	}
}

func TestMeterReasonsAreShort(t *testing.T) {
	m := anthropic.NewMeter()
	long := strings.Repeat("é", 1000)
	m.Body([]byte(`{"type":"error","error":{"type":"api_error","message":"` + long + `"}}`))
	if got := m.ErrorReason(); len(got) > 310 || !strings.HasPrefix(got, "api_error: éé") {
		t.Errorf("ErrorReason() for a 2000-byte message has %d bytes (%.20q...), want at most ~300", len(got), got)
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
		"event: message_start\ndata: {\"message\":{\"usage\":{\"output_tokens\":-1}}}\n\n",
		"event: message_delta\ndata: {\"usage\":{\"cache_creation\":{\"ephemeral_1h_input_tokens\":5},\"cache_creation_input_tokens\":2}}\n\n",
		"data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1e3}}\n\n",
		`{"type":"message","usage":{"input_tokens":1,"server_tool_use":{"web_fetch_requests":2}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := anthropic.NewMeter()
		for rest := b; ; {
			n := sse.FrameEnd(rest)
			if n < 0 {
				break
			}
			if _, drop := m.Frame(sse.Parse(rest[:n])); drop {
				t.Fatalf("Frame returned drop = true")
			}
			rest = rest[n:]
		}
		m.Frame(sse.Event{Name: "message_delta", Data: b})
		m.Frame(sse.Event{Data: b})
		checkMeter(t, m)

		m = anthropic.NewMeter()
		m.Body(b)
		checkMeter(t, m)
	})
}

func checkMeter(t *testing.T, m *anthropic.Meter) {
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
		if n < 0 || n > 2_000_000_000 {
			t.Fatalf("Usage().%s = %d, want within [0, 2e9]", name, n)
		}
	}
	if u.ReasoningTokens > u.OutputTokens {
		t.Fatalf("Usage() reasoning %d > output %d", u.ReasoningTokens, u.OutputTokens)
	}
	if !known && (!u.IsZero() || raw != nil) {
		t.Fatalf("Usage() = %+v, %s with known = false", u, raw)
	}
	if known && !json.Valid(raw) {
		t.Fatalf("Usage() raw %q is not valid JSON", raw)
	}
	if len(m.ErrorReason()) > 310 || len(m.Malformed()) > 310 || len(m.Model()) > 260 || len(m.MessageID()) > 260 {
		t.Fatalf("reason or name too long: %q %q %q %q", m.ErrorReason(), m.Malformed(), m.Model(), m.MessageID())
	}
}

// longStream returns a recorded-looking stream with 300 text deltas.
func longStream(tb testing.TB) []byte {
	tb.Helper()
	in, err := os.ReadFile("testdata/stream_cache.sse")
	if err != nil {
		tb.Fatal(err)
	}
	d := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" and the next few words\"}}\n\n"
	i := bytes.Index(in, []byte("event: content_block_stop"))
	return append(append(append([]byte(nil), in[:i]...), strings.Repeat(d, 300)...), in[i:]...)
}

// BenchmarkStream meters a full Anthropic stream as the gateway does:
// FrameEnd, Parse and Frame for every frame, then Usage.
func BenchmarkStream(b *testing.B) {
	stream := longStream(b)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		m := anthropic.NewMeter()
		buf := stream
		for {
			n := sse.FrameEnd(buf)
			if n < 0 {
				break
			}
			m.Frame(sse.Parse(buf[:n]))
			buf = buf[n:]
		}
		if u, _, known := m.Usage(); !known || u.OutputTokens != 389 || !m.Complete() {
			b.Fatalf("Usage() = %+v, %v", u, known)
		}
	}
}

func BenchmarkBody(b *testing.B) {
	body, err := os.ReadFile("testdata/body_message.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		m := anthropic.NewMeter()
		m.Body(body)
		if _, _, known := m.Usage(); !known {
			b.Fatal("usage unknown")
		}
	}
}

// BenchmarkFrameTextDelta is the per-frame cost of the commonest frame, a
// text delta, after message_start: what counting relayed output adds.
func BenchmarkFrameTextDelta(b *testing.B) {
	m := anthropic.NewMeter()
	m.Frame(start(`{"input_tokens":25,"output_tokens":1}`))
	frame := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" and the next few words\"}}\n\n")
	b.ReportAllocs()
	for b.Loop() {
		m.Frame(sse.Parse(frame))
	}
	if m.Relayed().Chars() == 0 {
		b.Fatal("nothing counted")
	}
}

func TestRelayedOutput(t *testing.T) {
	m := anthropic.NewMeter()
	m.Frame(start(`{"input_tokens":25,"output_tokens":1}`))
	m.Frame(ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello there"}}`))
	if n, basis := m.RelayedOutput("claude-sonnet-4-5"); n != 3 || basis != "output: 11 relayed characters, 4 characters per token" {
		t.Errorf("RelayedOutput = %d, %q; want 3 tokens at 4 characters each", n, basis)
	}
}
