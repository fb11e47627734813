package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/estimate"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
	"github.com/tokenmeter/tokenmeter/internal/sse"
)

// Meter reads the usage of one Messages response as it passes through the
// gateway: Frame for each frame of a stream, or Body once for a plain
// response. It is not safe for concurrent use; use one Meter per response.
//
// Streams are metered as the official SDKs accumulate them:
// message_start.message.usage is the base (input, cache writes with their
// TTL split, cache reads and a small output count), and each message_delta
// usage REPLACES the fields it carries, since its counts are cumulative:
// output_tokens always, input, cache and server_tool_use counts only when
// present and not null. Counts are never summed across frames.
//
// A usage object that cannot be read (invalid JSON, a count that is not an
// integer, negative, or above a billion) is not applied at all and is
// reported by Malformed; the counts read before it are kept.
//
// As the frames pass, the meter also counts the output relayed to the client
// (see Relayed), for an estimate when the stream is cut before its final
// usage.
type Meter struct {
	c     counts
	known bool

	// raw is the usage JSON as received (message_start or body), or after a
	// message_delta the merge of every usage member seen, re-encoded from
	// rawFields when Usage is called.
	raw       []byte
	rawFields map[string]json.RawMessage
	rawDirty  bool

	model, id string
	started   bool
	complete  bool
	errReason string
	malformed string

	relayed estimate.Output
}

// counts holds the usage fields as the provider reported them.
type counts struct {
	input, output, cacheRead int64
	cacheWrite               int64 // cache_creation_input_tokens
	hasCacheWrite            bool
	cache5m, cache1h         int64 // cache_creation.ephemeral_*_input_tokens
	hasSplit                 bool
	webSearch, webFetch      int64
	thinking                 int64 // output_tokens_details.thinking_tokens
}

// NewMeter returns a Meter for one response.
func NewMeter() *Meter { return &Meter{} }

// Frame meters one complete SSE frame of a streamed response; call it for
// every frame, in order. It returns terminal=true for message_stop, the frame
// that ends the message, which the gateway holds back until the call is
// recorded. drop is always false: the gateway forwards every Anthropic frame
// (it is there for symmetry with openai.Meter).
//
// Frames are recognised by their event name, or by the "type" of their JSON
// data when the frame has no event line. message_start, message_delta,
// message_stop and error are read; content_block_start and
// content_block_delta are scanned, without decoding, for the output they
// relay (see Relayed); ping and unknown events are ignored without being
// parsed. Frame keeps no reference to ev.Data.
func (m *Meter) Frame(ev sse.Event) (terminal, drop bool) {
	name := ev.Name
	if name == "" {
		name = peekType(ev.Data)
	}
	switch name {
	case "message_start":
		m.messageStart(ev.Data)
	case "message_delta":
		m.messageDelta(ev.Data)
	case "content_block_delta":
		m.relayDelta(ev.Data)
	case "content_block_start":
		m.relayBlockStart(ev.Data)
	case "message_stop":
		m.complete = true
		return true, false
	case "error":
		m.setError("error event: " + errorText(ev.Data))
	}
	return false, false
}

func (m *Meter) messageStart(data []byte) {
	var v struct {
		Message struct {
			ID    json.RawMessage `json:"id"`
			Model json.RawMessage `json:"model"`
			Usage json.RawMessage `json:"usage"`
		} `json:"message"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		m.setMalformed("message_start " + describeData(data, err))
		return
	}
	m.started = true
	m.id = jsonscan.Clip(str(v.Message.ID), maxName)
	m.model = jsonscan.Clip(str(v.Message.Model), maxName)
	m.relayed.SetModel(m.model)
	if jsonscan.IsNull(v.Message.Usage) {
		m.setMalformed("message_start has no usage")
		return
	}
	if err := m.applyUsage(v.Message.Usage, true); err != nil {
		m.setMalformed("message_start usage: " + err.Error())
	}
}

func (m *Meter) messageDelta(data []byte) {
	var v struct {
		Usage json.RawMessage `json:"usage"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		m.setMalformed("message_delta " + describeData(data, err))
		return
	}
	if jsonscan.IsNull(v.Usage) {
		return // allowed: documented examples show deltas without usage
	}
	if err := m.applyUsage(v.Usage, false); err != nil {
		m.setMalformed("message_delta usage: " + err.Error())
	}
}

// deltaEventHead and deltaKey frame the index of a content_block_delta as
// Anthropic writes it: {"type":"content_block_delta","index":0,"delta":...
var (
	deltaEventHead = []byte(`{"type":"content_block_delta","index":`)
	deltaKey       = []byte(`,"delta":`)
)

// deltaForms are the text-bearing deltas as Anthropic writes them, type
// first: the prefix before the string that is counted.
var deltaForms = [...][]byte{
	[]byte(`{"type":"text_delta","text":`),
	[]byte(`{"type":"thinking_delta","thinking":`),
	[]byte(`{"type":"input_json_delta","partial_json":`),
}

// relayDelta counts the output of a content_block_delta: the text of a
// text_delta, the thinking of a thinking_delta, the partial_json of an
// input_json_delta. Signature and citation deltas are not output.
func (m *Meter) relayDelta(data []byte) {
	// "delta" is the event's only member of that name: find it by its key
	// rather than by walking the event, or where Anthropic puts it.
	i := -1
	if rest, ok := bytes.CutPrefix(data, deltaEventHead); ok {
		d := 0
		for d < len(rest) && d < 10 && rest[d] >= '0' && rest[d] <= '9' {
			d++
		}
		if bytes.HasPrefix(rest[d:], deltaKey) {
			i = len(data) - len(rest) + d + len(deltaKey)
		}
	}
	if i < 0 {
		if i = jsonscan.Find(data, "delta"); i < 0 {
			return
		}
	}
	for _, form := range deltaForms {
		if s := i + len(form); bytes.HasPrefix(data[i:], form) && s < len(data) && data[s] == '"' {
			if e := jsonscan.SkipString(data, s); e > 0 && e < len(data) && data[e] == '}' {
				m.relayed.AddString(data[s:e])
				return
			}
		}
	}
	end := jsonscan.SkipValue(data, i)
	if end < 0 {
		return
	}
	delta := data[i:end]
	var typ, text, thinking, partial []byte
	err := jsonscan.EachMember(delta, func(key []byte, start, end int) {
		switch {
		case jsonscan.KeyIs(key, "type"):
			typ = delta[start:end]
		case jsonscan.KeyIs(key, "text"):
			text = delta[start:end]
		case jsonscan.KeyIs(key, "thinking"):
			thinking = delta[start:end]
		case jsonscan.KeyIs(key, "partial_json"):
			partial = delta[start:end]
		}
	})
	if err != nil {
		return
	}
	switch string(typ) {
	case `"text_delta"`:
		m.relayed.AddString(text)
	case `"thinking_delta"`:
		m.relayed.AddString(thinking)
	case `"input_json_delta"`:
		m.relayed.AddString(partial)
	}
}

// relayBlockStart counts the text a content_block_start carries in a text
// or thinking block (usually empty: the text follows in deltas).
func (m *Meter) relayBlockStart(data []byte) {
	start := jsonscan.Find(data, "content_block")
	if start < 0 {
		return
	}
	end := jsonscan.SkipValue(data, start)
	if end < 0 {
		return
	}
	block := data[start:end]
	var typ, text, thinking []byte
	err := jsonscan.EachMember(block, func(key []byte, start, end int) {
		switch {
		case jsonscan.KeyIs(key, "type"):
			typ = block[start:end]
		case jsonscan.KeyIs(key, "text"):
			text = block[start:end]
		case jsonscan.KeyIs(key, "thinking"):
			thinking = block[start:end]
		}
	})
	if err != nil {
		return
	}
	switch string(typ) {
	case `"text"`:
		m.relayed.AddString(text)
	case `"thinking"`:
		m.relayed.AddString(thinking)
	}
}

// Relayed returns the meter's count of the output relayed to the client so
// far: the characters of every text, thinking and tool-input (partial_json)
// delta, and of any text a content_block_start carried, with a bounded
// sample of the text for a tokenizer. Call its Estimate when the stream ends
// without its final usage (a cut stream): message_start's output_tokens is
// then only the first few tokens. The gateway may add, with AddChars, output
// it counted in frames too large to parse. The Output belongs to the Meter;
// it is empty for plain responses (Body).
func (m *Meter) Relayed() *estimate.Output { return &m.relayed }

// RelayedOutput returns the output tokens the relayed text amounts to for
// model, and the basis of that estimate: Relayed().Estimate(model). It
// tokenizes up to estimate.SampleBytes of text, so call it once, when the
// call ends without its final usage.
func (m *Meter) RelayedOutput(model string) (tokens int64, basis string) {
	e := m.relayed.Estimate(model)
	return e.Tokens, e.Basis
}

// Body meters the complete body of a response that was not streamed. Call it
// once, whatever the status; the body may be truncated or not JSON at all.
// A message body sets the usage (from its top-level usage) and Complete; an
// error body ({"type":"error","error":{...}}) sets ErrorReason; anything else
// sets Malformed. Body keeps no reference to b.
func (m *Meter) Body(b []byte) {
	// Read the top level only: the content, often most of the body, is
	// skipped rather than decoded.
	var v struct{ Type, ID, Model, Usage, Error json.RawMessage }
	err := jsonscan.EachMember(b, func(key []byte, start, end int) {
		val := json.RawMessage(b[start:end])
		switch string(key) {
		case "type":
			v.Type = val
		case "id":
			v.ID = val
		case "model":
			v.Model = val
		case "usage":
			v.Usage = val
		case "error":
			v.Error = val
		}
	})
	if err != nil {
		var raw json.RawMessage
		if jerr := json.Unmarshal(b, &raw); jerr != nil {
			m.setMalformed("response body " + describeData(b, jerr))
		} else {
			m.setMalformed("response body is not a JSON object")
		}
		return
	}
	if !jsonscan.IsNull(v.Error) || str(v.Type) == "error" {
		m.setError(errorText(b))
		return
	}
	m.id = jsonscan.Clip(str(v.ID), maxName)
	m.model = jsonscan.Clip(str(v.Model), maxName)
	if jsonscan.IsNull(v.Usage) {
		m.setMalformed("response body has no usage")
		return
	}
	if err := m.applyUsage(v.Usage, true); err != nil {
		m.setMalformed("response usage: " + err.Error())
		return
	}
	m.complete = true
}

// applyUsage reads a usage object. base (message_start or a body) starts from
// zero; otherwise (message_delta) the members present replace the counts so
// far. Nothing changes if any member cannot be read.
func (m *Meter) applyUsage(raw json.RawMessage, base bool) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return jsonscan.ErrNotObject
	}
	c := m.c
	if base {
		c = counts{}
	}
	var err error
	for k, v := range fields {
		if jsonscan.IsNull(v) {
			continue // null is absent: zero in a base, unchanged in a delta
		}
		switch k {
		case "input_tokens":
			c.input, err = jsonscan.ParseCount(k, v)
		case "output_tokens":
			c.output, err = jsonscan.ParseCount(k, v)
		case "cache_read_input_tokens":
			c.cacheRead, err = jsonscan.ParseCount(k, v)
		case "cache_creation_input_tokens":
			c.cacheWrite, err = jsonscan.ParseCount(k, v)
			c.hasCacheWrite = true
		case "cache_creation":
			var s struct {
				M5 json.RawMessage `json:"ephemeral_5m_input_tokens"`
				H1 json.RawMessage `json:"ephemeral_1h_input_tokens"`
			}
			if json.Unmarshal(v, &s) != nil {
				return errors.New("cache_creation is not an object")
			}
			c.hasSplit = true
			if c.cache5m, err = jsonscan.ParseCount("cache_creation.ephemeral_5m_input_tokens", s.M5); err == nil {
				c.cache1h, err = jsonscan.ParseCount("cache_creation.ephemeral_1h_input_tokens", s.H1)
			}
		case "server_tool_use":
			// Replaced whole, as the SDK does: both counts are cumulative.
			var s struct {
				Search json.RawMessage `json:"web_search_requests"`
				Fetch  json.RawMessage `json:"web_fetch_requests"`
			}
			if json.Unmarshal(v, &s) != nil {
				return errors.New("server_tool_use is not an object")
			}
			if c.webSearch, err = jsonscan.ParseCount("server_tool_use.web_search_requests", s.Search); err == nil {
				c.webFetch, err = jsonscan.ParseCount("server_tool_use.web_fetch_requests", s.Fetch)
			}
		case "output_tokens_details":
			var s struct {
				Thinking json.RawMessage `json:"thinking_tokens"`
			}
			if json.Unmarshal(v, &s) != nil {
				return errors.New("output_tokens_details is not an object")
			}
			c.thinking, err = jsonscan.ParseCount("output_tokens_details.thinking_tokens", s.Thinking)
		}
		if err != nil {
			return err
		}
	}
	m.c = c
	m.known = true
	if base {
		m.raw, m.rawFields, m.rawDirty = raw, nil, false
		return nil
	}
	if m.rawFields == nil {
		m.rawFields = make(map[string]json.RawMessage, len(fields)+8)
		if m.raw != nil {
			json.Unmarshal(m.raw, &m.rawFields) // read before, cannot fail
		}
	}
	for k, v := range fields {
		if !jsonscan.IsNull(v) {
			m.rawFields[k] = v
		}
	}
	m.rawDirty = true
	return nil
}

// Usage returns the usage read so far, the provider's usage JSON and whether
// any usage object was read.
//
// raw is the usage object exactly as received for a plain response or a
// stream whose message_delta carried no usage; once a message_delta usage is
// merged it is the message_start usage with each non-null top-level member of
// later message_delta usages replacing the one before (as the SDK's
// accumulator does), re-encoded with sorted keys. The caller must not modify
// raw.
//
// Cache writes are split by TTL from cache_creation: the 1-hour part is taken
// from ephemeral_1h_input_tokens (capped at the total) and the rest of
// cache_creation_input_tokens is 5-minute, so the total is always trusted;
// with no split every cache write counts as 5-minute, and with a split but no
// total the split's sum is the total. ReasoningTokens is capped at
// OutputTokens.
//
// known is true even when the stream was cut or a later frame was malformed;
// check Complete and Malformed before treating the counts as final.
func (m *Meter) Usage() (u tokenmeter.Usage, raw []byte, known bool) {
	c := m.c
	u = tokenmeter.Usage{
		InputTokens:       c.input,
		OutputTokens:      c.output,
		CacheReadTokens:   c.cacheRead,
		ReasoningTokens:   min(c.thinking, c.output),
		WebSearchRequests: c.webSearch,
		WebFetchRequests:  c.webFetch,
	}
	total := c.cacheWrite
	if !c.hasCacheWrite {
		total = c.cache5m + c.cache1h
	}
	if c.hasSplit {
		u.CacheWrite1hTokens = min(c.cache1h, total)
	}
	u.CacheWrite5mTokens = total - u.CacheWrite1hTokens
	if m.rawDirty {
		m.raw, _ = json.Marshal(m.rawFields) // RawMessage values were validated when read
		m.rawDirty = false
	}
	return u, m.raw, m.known
}

// Model returns the model named by the response (message_start or body), ""
// if none was seen.
func (m *Meter) Model() string { return m.model }

// MessageID returns the message id (msg_...) named by the response, "" if
// none was seen.
func (m *Meter) MessageID() string { return m.id }

// Started reports whether a message_start frame was read, so the input and
// cache counts are known even if the stream is cut later. It is false for
// plain responses.
func (m *Meter) Started() bool { return m.started }

// Complete reports whether the message ended: message_stop was seen, or a
// plain response body with usage was read.
func (m *Meter) Complete() bool { return m.complete }

// ErrorReason returns "" or why the response is an error: for a stream's
// error event "error event: TYPE: MESSAGE" (e.g. "error event:
// overloaded_error: Overloaded"), for an error body "TYPE: MESSAGE". The first
// error seen is kept; long messages are shortened.
func (m *Meter) ErrorReason() string { return m.errReason }

// Malformed returns "" or why usage could not be read: a usage-bearing frame
// or body that is not valid JSON (or is truncated), a message_start or body
// without usage, or a count that is not a non-negative integer of plausible
// size. The first problem seen is kept. Error bodies and error events are not
// malformed; they are reported by ErrorReason.
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

// errorText returns "TYPE: MESSAGE" for an Anthropic error object (the data of
// an error event or an error body), or what it can of it.
func errorText(data []byte) string {
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &v) != nil || jsonscan.IsNull(v.Error) {
		return "unreadable error"
	}
	var e struct {
		Type    json.RawMessage `json:"type"`
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(v.Error, &e) != nil {
		if s := str(v.Error); s != "" {
			return s // {"error": "text"}, as some proxies send
		}
		return "unreadable error"
	}
	parts := make([]string, 0, 2)
	for _, p := range []string{str(e.Type), str(e.Message)} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "unreadable error"
	}
	return strings.Join(parts, ": ")
}

// peekType returns the "type" member of a JSON object when it names one of
// the events the meter reads, without allocating.
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
		case `"message_start"`:
			t = "message_start"
		case `"message_delta"`:
			t = "message_delta"
		case `"message_stop"`:
			t = "message_stop"
		case `"error"`:
			t = "error"
		case `"content_block_delta"`:
			t = "content_block_delta"
		case `"content_block_start"`:
			t = "content_block_start"
		default:
			t = ""
		}
	})
	return t
}

// str decodes a JSON string, or returns "" for anything else.
func str(v json.RawMessage) string {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
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
