package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/estimate"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
	"github.com/tokenmeter/tokenmeter/internal/sse"
)

// Meter reads the usage of one Chat Completions or Responses response as it
// passes through the gateway: Frame for each frame of a stream, or Body once
// for a plain response. It is not safe for concurrent use; use one Meter per
// response.
//
// OpenAI counts cached input inside the prompt, so the meter normalises to
// tokenmeter's categories: InputTokens = prompt_tokens (or input_tokens) -
// cached_tokens - cache_write_tokens, CacheReadTokens = cached_tokens,
// CacheWrite5mTokens = cache_write_tokens, OutputTokens = completion_tokens
// (or output_tokens, reasoning included) and ReasoningTokens =
// reasoning_tokens (capped at OutputTokens). Either naming is accepted for
// every API.
//
// A usage object that cannot be read (invalid JSON, a count that is not an
// integer, negative, or above a billion) is not applied at all and is
// reported by Malformed. Cached plus cache-write tokens above the prompt are
// clamped to the prompt and reported by Malformed too; the clamped counts are
// kept.
//
// As the frames pass, the meter also counts the output relayed to the client
// (see Relayed), for an estimate when the stream is cut before its usage.
type Meter struct {
	api   API
	strip bool

	u     tokenmeter.Usage
	raw   []byte
	known bool

	model     string
	id        string // the response's id (resp_..., chatcmpl-...)
	tier      string
	complete  bool
	errReason string
	malformed string

	relayed estimate.Output
}

// NewMeter returns a Meter for one response of api. stripUsageChunk says the
// gateway injected stream_options.include_usage (see InjectIncludeUsage), so
// the client did not ask for the final usage-only chat chunk and Frame
// reports it as one to drop.
func NewMeter(api API, stripUsageChunk bool) *Meter {
	return &Meter{api: api, strip: stripUsageChunk}
}

// Frame meters one complete SSE frame of a streamed response; call it for
// every frame, in order. terminal=true marks the frame that ends the stream,
// which the gateway holds back until the call is recorded; drop=true marks a
// frame the client must not see. Frame keeps no reference to ev.Data.
//
// Chat (and Other): "data: [DONE]" is terminal. A chunk with a non-null
// usage sets the usage (the last one wins; OpenAI sends one, in a chunk whose
// choices are empty, just before [DONE]); that usage-only chunk is dropped
// when the Meter was made with stripUsageChunk. A chunk with an "error"
// member, or an "error" event, sets ErrorReason. Once the model is known,
// chunks that cannot carry usage or an error ("usage":null or no usage key)
// are not decoded, and an invalid chunk is Malformed only if it may carry
// usage.
//
// Responses: response.completed, response.incomplete and response.failed
// carry response.usage and are terminal (and make Complete true);
// response.failed and error events set ErrorReason. Other events are ignored
// without being parsed, except response.created and friends until the model
// is known.
//
// Both APIs: the deltas of output text are scanned, without decoding, for
// Relayed.
func (m *Meter) Frame(ev sse.Event) (terminal, drop bool) {
	if m.api == Responses {
		return m.responsesFrame(ev), false
	}
	return m.chatFrame(ev)
}

var (
	usageKey = []byte(`"usage"`)
	nullVal  = []byte(`:null`)
	errorKey = []byte(`"error"`)
)

// mayHaveUsage reports whether a chunk may have a non-null "usage" member:
// whether it holds the bytes "usage" not followed by :null. In valid JSON a
// quoted string followed by a colon is always a key, so a chunk for which it
// returns false has no usage to read; with include_usage every content chunk
// carries "usage":null, so this saves decoding them.
func mayHaveUsage(data []byte) bool {
	for i := 0; ; {
		j := bytes.Index(data[i:], usageKey)
		if j < 0 {
			return false
		}
		i += j + len(usageKey)
		if !bytes.HasPrefix(data[i:], nullVal) {
			return true
		}
	}
}

// chatChunk is the part of a chat.completion.chunk the meter reads.
type chatChunk struct {
	Choices     nonEmptyArray `json:"choices"`
	Usage       rawValue      `json:"usage"`
	Error       rawValue      `json:"error"`
	ServiceTier rawValue      `json:"service_tier"`
}

type chatChunkModel struct {
	chatChunk
	Model rawValue `json:"model"`
	ID    rawValue `json:"id"`
}

func (m *Meter) chatFrame(ev sse.Event) (terminal, drop bool) {
	data := ev.Data
	if ev.Name == "error" {
		m.setError("error event: " + errorText(data))
		return false, false
	}
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		m.complete = true
		return true, false
	}
	if len(data) == 0 {
		return false, false
	}
	mayUsage := mayHaveUsage(data)
	if m.model != "" && !mayUsage && !bytes.Contains(data, errorKey) {
		m.relayChat(data) // a content delta
		return false, false
	}
	var c chatChunkModel
	var err error
	if m.model == "" {
		err = json.Unmarshal(data, &c)
	} else {
		err = json.Unmarshal(data, &c.chatChunk)
	}
	if err != nil {
		if mayUsage {
			m.setMalformed("chunk " + describeData(data, err))
		}
		return false, false
	}
	if m.model == "" {
		m.model = jsonscan.Clip(str(c.Model), maxName)
		m.id = jsonscan.Clip(str(c.ID), maxName)
		m.relayed.SetModel(m.model)
	}
	if c.Choices {
		m.relayChat(data)
	}
	if c.Error != nil {
		m.setError("error event: " + errorObjectText(c.Error))
	}
	m.setTier(c.ServiceTier)
	if c.Usage != nil {
		m.setUsage("chunk", c.Usage)
		drop = m.strip && !bool(c.Choices)
	}
	return false, drop
}

// relayChat counts the output a chat chunk relays: in each choice's delta,
// content, refusal, reasoning (reasoning_content or reasoning, as
// compatible servers name it; the longer if a server sends both) and the
// arguments of tool and function calls. A delta that is not a well-formed
// object counts nothing.
func (m *Meter) relayChat(data []byte) {
	// "delta" is a member of each choice and nowhere else in a chunk, so
	// the deltas are found by their key rather than by walking the chunk.
	for off := 0; off < len(data); {
		i := jsonscan.Find(data[off:], "delta")
		if i < 0 {
			return
		}
		i += off
		// Fast path: a delta of content alone, as OpenAI writes most.
		if s := i + len(contentDelta); bytes.HasPrefix(data[i:], contentDelta) && s < len(data) && data[s] == '"' {
			if e := jsonscan.SkipString(data, s); e > 0 && e < len(data) && data[e] == '}' {
				m.relayed.AddString(data[s:e])
				off = e + 1
				continue
			}
		}
		end := jsonscan.SkipValue(data, i)
		if end < 0 {
			return
		}
		m.relayChatDelta(data[i:end])
		off = end
	}
}

var contentDelta = []byte(`{"content":`)

func (m *Meter) relayChatDelta(delta []byte) {
	var content, refusal, reasoning, reasoningContent, toolCalls, functionCall []byte
	if jsonscan.EachMember(delta, func(key []byte, start, end int) {
		v := delta[start:end]
		switch {
		case jsonscan.KeyIs(key, "content"):
			content = v
		case jsonscan.KeyIs(key, "refusal"):
			refusal = v
		case jsonscan.KeyIs(key, "reasoning_content"):
			reasoningContent = v
		case jsonscan.KeyIs(key, "reasoning"):
			reasoning = v
		case jsonscan.KeyIs(key, "tool_calls"):
			toolCalls = v
		case jsonscan.KeyIs(key, "function_call"):
			functionCall = v
		}
	}) != nil {
		return
	}
	m.relayString(content)
	m.relayString(refusal)
	if len(reasoning) > len(reasoningContent) {
		m.relayString(reasoning)
	} else {
		m.relayString(reasoningContent)
	}
	if len(toolCalls) > 0 && toolCalls[0] == '[' {
		jsonscan.EachElement(toolCalls, func(start, end int) {
			m.relayString(member(member(toolCalls[start:end], "function"), "arguments"))
		})
	}
	m.relayString(member(functionCall, "arguments"))
}

// relayResponsesDelta counts the "delta" string of a Responses delta event
// (its only member of that name).
func (m *Meter) relayResponsesDelta(data []byte) {
	if i := jsonscan.Find(data, "delta"); i >= 0 && data[i] == '"' {
		if e := jsonscan.SkipString(data, i); e > 0 {
			m.relayed.AddString(data[i:e])
		}
	}
}

// relayString counts v as relayed output if it is a JSON string.
func (m *Meter) relayString(v []byte) {
	if len(v) > 1 && v[0] == '"' {
		m.relayed.AddString(v)
	}
}

// member returns the raw value of the object member name in the JSON object
// data, or nil if data is not an object or has no such member (the last of
// repeated ones wins, as in encoding/json).
func member(data []byte, name string) []byte {
	var v []byte
	if len(data) == 0 || jsonscan.EachMember(data, func(key []byte, start, end int) {
		if jsonscan.KeyIs(key, name) {
			v = data[start:end]
		}
	}) != nil {
		return nil
	}
	return v
}

// Relayed returns the meter's count of the output relayed to the client so
// far, with a bounded sample of its text for a tokenizer. It counts, for
// Chat, each choice's delta content, refusal, reasoning_content or
// reasoning, and tool_calls[].function.arguments (and the legacy
// function_call.arguments); for Responses, the delta of
// response.output_text.delta, response.refusal.delta,
// response.reasoning_text.delta, response.reasoning_summary_text.delta,
// response.function_call_arguments.delta,
// response.custom_tool_call_input.delta, response.mcp_call_arguments.delta
// and response.code_interpreter_call_code.delta. The ".done" events repeat
// the text and are not counted; nor is audio. Call its Estimate when the
// stream ends without usage. The gateway may add, with AddChars, output it
// counted in frames too large to parse. The Output belongs to the Meter; it
// is empty for plain responses (Body).
func (m *Meter) Relayed() *estimate.Output { return &m.relayed }

// RelayedOutput returns the output tokens the relayed text amounts to for
// model, and the basis of that estimate: Relayed().Estimate(model). It
// tokenizes up to estimate.SampleBytes of text, so call it once, when the
// call ends without its final usage.
func (m *Meter) RelayedOutput(model string) (tokens int64, basis string) {
	e := m.relayed.Estimate(model)
	return e.Tokens, e.Basis
}

// responsesEvent is the part of a Responses stream event the meter reads.
type responsesEvent struct {
	Response struct {
		ID          rawValue `json:"id"`
		Model       rawValue `json:"model"`
		Usage       rawValue `json:"usage"`
		Error       rawValue `json:"error"`
		ServiceTier rawValue `json:"service_tier"`
	} `json:"response"`
}

func (m *Meter) responsesFrame(ev sse.Event) (terminal bool) {
	name := ev.Name
	if name == "" {
		name = peekType(ev.Data)
	}
	switch name {
	case "response.created", "response.in_progress", "response.queued":
		if m.model == "" {
			var v responsesEvent
			if json.Unmarshal(ev.Data, &v) == nil {
				m.model = jsonscan.Clip(str(v.Response.Model), maxName)
				m.id = jsonscan.Clip(str(v.Response.ID), maxName)
				m.relayed.SetModel(m.model)
			}
		}
	case "response.completed", "response.incomplete", "response.failed":
		m.complete = true
		var v responsesEvent
		if err := json.Unmarshal(ev.Data, &v); err != nil {
			m.setMalformed(name + " " + describeData(ev.Data, err))
			return true
		}
		if s := str(v.Response.Model); s != "" {
			m.model = jsonscan.Clip(s, maxName)
		}
		if s := str(v.Response.ID); s != "" {
			m.id = jsonscan.Clip(s, maxName)
		}
		m.setTier(v.Response.ServiceTier)
		if name == "response.failed" {
			m.setError("response failed: " + errorObjectText(v.Response.Error))
		}
		switch {
		case v.Response.Usage != nil:
			m.setUsage(name, v.Response.Usage)
		case name != "response.failed":
			m.setMalformed(name + " has no usage")
		}
		return true
	case "response.output_text.delta", "response.refusal.delta",
		"response.reasoning_text.delta", "response.reasoning_summary_text.delta",
		"response.function_call_arguments.delta", "response.custom_tool_call_input.delta",
		"response.mcp_call_arguments.delta", "response.code_interpreter_call_code.delta":
		m.relayResponsesDelta(ev.Data)
	case "error":
		m.setError("error event: " + errorText(ev.Data))
	}
	return false
}

// Body meters the complete body of a response that was not streamed. Call it
// once, whatever the status; the body may be truncated or not JSON at all.
// A body with a top-level usage sets the usage and Complete; an error body
// ({"error":{...}}, or a failed response) sets ErrorReason; anything else
// sets Malformed. Body keeps no reference to b.
func (m *Meter) Body(b []byte) {
	var v struct {
		ID          rawValue `json:"id"`
		Model       rawValue `json:"model"`
		Usage       rawValue `json:"usage"`
		Error       rawValue `json:"error"`
		ServiceTier rawValue `json:"service_tier"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		m.setMalformed("response body " + describeData(b, err))
		return
	}
	m.model = jsonscan.Clip(str(v.Model), maxName)
	m.id = jsonscan.Clip(str(v.ID), maxName)
	m.setTier(v.ServiceTier)
	if v.Error != nil {
		m.setError(errorObjectText(v.Error))
	}
	switch {
	case v.Usage != nil:
		if m.setUsage("response", v.Usage) {
			m.complete = true
		}
	case v.Error == nil:
		m.setMalformed("response body has no usage")
	}
}

// usageJSON is a usage object in either naming: Chat Completions
// (prompt/completion) or Responses (input/output).
type usageJSON struct {
	PromptTokens            rawValue     `json:"prompt_tokens"`
	CompletionTokens        rawValue     `json:"completion_tokens"`
	PromptTokensDetails     inputDetails `json:"prompt_tokens_details"`
	CompletionTokensDetails outDetails   `json:"completion_tokens_details"`
	InputTokens             rawValue     `json:"input_tokens"`
	OutputTokens            rawValue     `json:"output_tokens"`
	InputTokensDetails      inputDetails `json:"input_tokens_details"`
	OutputTokensDetails     outDetails   `json:"output_tokens_details"`
}

type inputDetails struct {
	CachedTokens     rawValue `json:"cached_tokens"`
	CacheWriteTokens rawValue `json:"cache_write_tokens"`
}

type outDetails struct {
	ReasoningTokens rawValue `json:"reasoning_tokens"`
}

// setUsage reads the usage object raw from the named frame or body and, if it
// is readable, makes it the usage. It reports whether it did.
func (m *Meter) setUsage(where string, raw rawValue) bool {
	u, err := normalise(raw)
	if err != nil {
		m.setMalformed(where + " usage: " + err.Error())
		return false
	}
	var clamp error
	u, clamp = u.clamp()
	if clamp != nil {
		m.setMalformed(where + " usage: " + clamp.Error())
	}
	m.u, m.raw, m.known = u.Usage, raw, true
	return true
}

// counts is a usage before the cached parts are checked against the prompt.
type counts struct {
	tokenmeter.Usage
	prompt string // the name of the prompt field, for messages
}

func normalise(raw []byte) (counts, error) {
	var v usageJSON
	if err := json.Unmarshal(raw, &v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return counts{}, fmt.Errorf("%s is not an object", te.Field)
		}
		return counts{}, jsonscan.ErrNotObject
	}
	// Chat naming if either chat count is there, Responses naming otherwise;
	// each detail from the matching naming, else from the other.
	prompt, completion, in, out := "input_tokens", "output_tokens", v.InputTokens, v.OutputTokens
	inD, inD2, outD, outD2 := v.InputTokensDetails, v.PromptTokensDetails, v.OutputTokensDetails, v.CompletionTokensDetails
	if v.PromptTokens != nil || v.CompletionTokens != nil {
		prompt, completion, in, out = "prompt_tokens", "completion_tokens", v.PromptTokens, v.CompletionTokens
		inD, inD2, outD, outD2 = inD2, inD, outD2, outD
	}
	cached := cmpOrRaw(inD.CachedTokens, inD2.CachedTokens)
	written := cmpOrRaw(inD.CacheWriteTokens, inD2.CacheWriteTokens)
	reasoning := cmpOrRaw(outD.ReasoningTokens, outD2.ReasoningTokens)
	var c counts
	c.prompt = prompt
	var err error
	for _, f := range []struct {
		name string
		v    rawValue
		dst  *int64
	}{
		{prompt, in, &c.InputTokens},
		{completion, out, &c.OutputTokens},
		{"cached_tokens", cached, &c.CacheReadTokens},
		{"cache_write_tokens", written, &c.CacheWrite5mTokens},
		{"reasoning_tokens", reasoning, &c.ReasoningTokens},
	} {
		if *f.dst, err = jsonscan.ParseCount(f.name, f.v); err != nil {
			return counts{}, err
		}
	}
	return c, nil
}

// clamp turns InputTokens from the whole prompt into its uncached part. If
// the cached parts exceed the prompt it clamps them and returns an error that
// says so.
func (c counts) clamp() (counts, error) {
	prompt, read, write := c.InputTokens, c.CacheReadTokens, c.CacheWrite5mTokens
	var err error
	if read+write > prompt {
		err = fmt.Errorf("cached_tokens %d + cache_write_tokens %d exceed %s %d", read, write, c.prompt, prompt)
		read = min(read, prompt)
		write = min(write, prompt-read)
	}
	c.InputTokens, c.CacheReadTokens, c.CacheWrite5mTokens = prompt-read-write, read, write
	c.ReasoningTokens = min(c.ReasoningTokens, c.OutputTokens)
	return c, err
}

func cmpOrRaw(a, b rawValue) rawValue {
	if a != nil {
		return a
	}
	return b
}

// Usage returns the normalised usage read so far, the provider's usage
// object exactly as received (the last one read), and whether any usage
// object was read. known is true even when the stream was cut afterwards or
// Malformed reports a clamp; check Complete and Malformed before treating the
// counts as final. The caller must not modify raw.
func (m *Meter) Usage() (u tokenmeter.Usage, raw []byte, known bool) {
	return m.u, m.raw, m.known
}

// Model returns the model named by the response, "" if none was seen.
func (m *Meter) Model() string { return m.model }

// ResponseID returns the id the response gave itself (Responses resp_...,
// Chat Completions chatcmpl-...), "" if none was seen.
func (m *Meter) ResponseID() string { return m.id }

// ServiceTier returns the service tier the response says served it
// (service_tier of a chat body or chunk, response.service_tier of the
// Responses API: "default", "flex", "priority", "fast", "scale", ...), ""
// when it names none. The last one named wins. A value that is not a short
// plain name is returned as "unrecognized", so that the call is not priced
// at the standard rate by mistake.
func (m *Meter) ServiceTier() string { return m.tier }

// MaxTierBytes bounds a service tier name taken from a response.
const MaxTierBytes = 32

func (m *Meter) setTier(raw rawValue) {
	if raw == nil || string(raw) == "null" {
		return
	}
	s := str(raw)
	ok := s != "" && len(s) <= MaxTierBytes
	for _, r := range s {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}
	if !ok {
		s = "unrecognized"
	}
	m.tier = s
}

// Complete reports whether the response ended: [DONE] for a chat stream, a
// terminal event (completed, incomplete or failed) for a Responses stream,
// or a plain body with usage.
func (m *Meter) Complete() bool { return m.complete }

// ErrorReason returns "" or why the response is an error: "error event:
// TYPE: CODE: MESSAGE" for an error in a stream, "response failed: CODE:
// MESSAGE" for response.failed, and "TYPE: CODE: MESSAGE" for an error body
// (empty parts and a code equal to the type are left out). The first error
// seen is kept; long messages are shortened.
func (m *Meter) ErrorReason() string { return m.errReason }

// Malformed returns "" or why usage could not be read or was corrected: a
// usage-bearing chunk, event or body that is not valid JSON (or is
// truncated), a terminal Responses event or body without usage, a count that
// is not a non-negative integer of plausible size, or cached tokens above the
// prompt. The first problem seen is kept.
func (m *Meter) Malformed() string { return m.malformed }

func (m *Meter) setMalformed(reason string) {
	if m.malformed == "" {
		m.malformed = jsonscan.Clip(reason, maxReason)
	}
}

func (m *Meter) setError(reason string) {
	if m.errReason == "" {
		m.errReason = jsonscan.Clip(reason, maxReason)
	}
}

// errorText describes the error in an event's data: OpenAI's error event
// ({"type":"error","code":...,"message":...}) or an object with an "error"
// member.
func errorText(data []byte) string {
	var v struct {
		Code    rawValue `json:"code"`
		Message rawValue `json:"message"`
		Error   rawValue `json:"error"`
	}
	if json.Unmarshal(data, &v) != nil {
		return "unreadable error"
	}
	if v.Error != nil {
		return errorObjectText(v.Error)
	}
	return joinReason("", scalar(v.Code), str(v.Message))
}

// errorObjectText describes an OpenAI error object
// ({"message","type","param","code"}), or a bare string.
func errorObjectText(raw rawValue) string {
	if s := str(json.RawMessage(raw)); s != "" {
		return s
	}
	var e struct {
		Type    rawValue `json:"type"`
		Code    rawValue `json:"code"`
		Message rawValue `json:"message"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return "unreadable error"
	}
	return joinReason(str(e.Type), scalar(e.Code), str(e.Message))
}

func joinReason(typ, code, msg string) string {
	parts := make([]string, 0, 3)
	for i, p := range []string{typ, code, msg} {
		if p != "" && !(i == 1 && p == typ) {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "unreadable error"
	}
	return strings.Join(parts, ": ")
}

// peekType returns the "type" member of a JSON object when it names one of
// the Responses events the meter reads, without allocating.
func peekType(data []byte) string {
	if len(data) == 0 || !json.Valid(data) {
		return ""
	}
	var t string
	jsonscan.EachMember(data, func(key []byte, start, end int) {
		if !jsonscan.KeyIs(key, "type") {
			return
		}
		switch string(data[start:end]) {
		case `"response.created"`:
			t = "response.created"
		case `"response.in_progress"`:
			t = "response.in_progress"
		case `"response.queued"`:
			t = "response.queued"
		case `"response.completed"`:
			t = "response.completed"
		case `"response.incomplete"`:
			t = "response.incomplete"
		case `"response.failed"`:
			t = "response.failed"
		case `"error"`:
			t = "error"
		case `"response.output_text.delta"`, `"response.refusal.delta"`,
			`"response.reasoning_text.delta"`, `"response.reasoning_summary_text.delta"`,
			`"response.function_call_arguments.delta"`, `"response.custom_tool_call_input.delta"`,
			`"response.mcp_call_arguments.delta"`, `"response.code_interpreter_call_code.delta"`:
			t = string(data[start+1 : end-1])
		default:
			t = ""
		}
	})
	return t
}

// rawValue holds a JSON value as received; JSON null decodes to nil. It
// copies what it keeps.
type rawValue []byte

func (r *rawValue) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = nil
		return nil
	}
	*r = append((*r)[:0:0], b...)
	return nil
}

// nonEmptyArray records whether a JSON value is a non-empty array, without
// copying it.
type nonEmptyArray bool

func (a *nonEmptyArray) UnmarshalJSON(b []byte) error {
	*a = len(b) > 0 && b[0] == '[' && jsonscan.SkipSpace(b, 1) < len(b) && b[jsonscan.SkipSpace(b, 1)] != ']'
	return nil
}

// str decodes a JSON string, or returns "" for anything else.
func str(v []byte) string {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// scalar returns a JSON string's value or a number as written, "" otherwise.
func scalar(v []byte) string {
	if len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
		return jsonscan.Clip(string(v), 32)
	}
	return str(v)
}

// describeData explains why data could not be decoded as a JSON object.
func describeData(data []byte, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return "has " + te.Field + " of the wrong type"
		}
		return "is not a JSON object"
	}
	return "is " + jsonscan.DescribeError(data, err)
}
