// Package openai holds the gateway's knowledge of the OpenAI Chat Completions
// and Responses wire formats: it peeks at requests, asks chat streams for
// usage, meters the usage of streamed and plain responses, and writes errors
// in OpenAI's shape. Its functions never panic on any input and report
// unreadable usage instead of recording garbage.
package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

// API names an OpenAI endpoint family whose usage the meter understands.
type API string

const (
	Chat      API = "chat"      // POST /v1/chat/completions
	Responses API = "responses" // POST /v1/responses
	// Completions is the legacy POST /v1/completions, whose usage has the
	// Chat shape. APIForPath does not return it yet: the gateway refuses
	// that endpoint under a hard limit until it meters it. ParseRequest
	// reads its multipliers (n, best_of, a list of prompts).
	Completions API = "completions"
	Other       API = "other" // anything else; metered like Chat
)

// APIForPath returns the API served at the upstream path (without query):
// "/v1/chat/completions" is Chat and "/v1/responses" is Responses, with or
// without a trailing slash; every other path, including
// "/v1/responses/{id}" and "/v1/completions", is Other.
func APIForPath(path string) API {
	switch strings.TrimSuffix(path, "/") {
	case "/v1/chat/completions":
		return Chat
	case "/v1/responses":
		return Responses
	}
	return Other
}

// MaxPerPrompt bounds n and best_of, OpenAI's own maximum for both (its
// best_of stops at 20). A larger value is a parse error.
const MaxPerPrompt = 128

// MaxChoices bounds Request.Choices, the outputs of one request in all (n or
// best_of times the prompts of a legacy completion). A larger product is a
// parse error.
const MaxChoices = 4096

// Request is what the gateway needs to know about a request.
type Request struct {
	API    API
	Model  string
	Stream bool
	// IncludeUsage is stream_options.include_usage, which makes a chat
	// stream end with a usage chunk.
	IncludeUsage bool
	// MaxTokens is the output limit of one choice: max_completion_tokens,
	// else max_output_tokens (Responses), else max_tokens (older chat
	// clients, legacy completions); 0 if none is set.
	MaxTokens int64
	// Choices is how many outputs the request asks the model to generate,
	// each bounded by MaxTokens and each billed: n for chat (the number of
	// choices); for legacy completions the larger of n and best_of (every
	// best_of candidate is generated and billed, though only n are
	// returned) times the number of prompts when prompt is a list. At
	// least 1 and at most MaxChoices. The input is billed once, whatever
	// Choices is. The worst-case output is OutputBound.
	Choices int64
	// Background is Responses background: true. The call answers
	// "queued" without usage and the work is done, and billed, later.
	Background bool
	// MaxToolCalls is Responses max_tool_calls, the bound on calls to
	// built-in tools (web search, file search, code interpreter...) in one
	// response; 0 if not set, and then nothing bounds them. Each call may
	// be billed a fee and adds its results to the input tokens.
	MaxToolCalls int64
	// AudioOutput says the model may answer in audio (chat modalities
	// includes "audio", or audio is set): audio output tokens count in
	// MaxTokens but are priced far above text ones.
	AudioOutput bool
	// StoredInput says the input includes context the upstream keeps
	// (Responses previous_response_id, conversation or a stored prompt),
	// so the body's size does not bound the input tokens.
	StoredInput bool
	// ServiceTier is the service_tier the request asks for ("auto",
	// "default", "flex", "priority", "fast", ...), "" when it sets none or
	// not as a string. Hard limits reserve a call's cost at this tier.
	ServiceTier string
}

// OutputBound is the worst-case output of r: the per-choice bound
// (MaxTokens, or def when the request sets none) times Choices, capped at
// jsonscan.MaxCount. It is what a hard limit must reserve for output.
func (r Request) OutputBound(def int64) int64 {
	per := r.MaxTokens
	if per <= 0 {
		per = def
	}
	c := max(r.Choices, 1)
	if per <= 0 {
		return 0
	}
	if per > jsonscan.MaxCount/c {
		return jsonscan.MaxCount
	}
	return per * c
}

// ParseRequest reads the fields of Request from a request body for api.
// Unknown fields are ignored and missing or null fields are zero (Choices:
// 1). Keys match exactly, as on the API, and the last of duplicate keys
// wins. n, best_of, background, max_tool_calls, modalities and audio are
// read whatever the API, since an OpenAI-compatible server may honour
// them; prompt is counted only for Completions. The body must be plain
// UTF-8 JSON: run a body with a Content-Encoding, a byte order mark or
// UTF-16 through reqbody.Decode first.
//
// Every error is a *tokenmeter.Error with code EINVALID whose message names
// the problem: the body is not a JSON object (as jsonscan.DescribeError
// says), a field has the wrong type (named by the kind of its value, never
// the value unless it is a number), n or best_of is not an integer from 0
// to MaxPerPrompt (0 reads as 1), or the request asks for more than
// MaxChoices outputs or more than jsonscan.MaxCount output tokens in all.
// A model name longer than MaxModelBytes is ErrModelTooLong itself
// (errors.Is), which the gateway answers with 400.
func ParseRequest(api API, body []byte) (Request, error) {
	r := Request{API: api}
	var maxCompletion, maxOutput, maxTokens int64
	var n, bestOf, prompts int64 = 1, 1, 1
	var modalAudio, audio bool
	var ferr error
	tooLong := false
	setErr := func(err error) {
		if ferr == nil {
			ferr = err
		}
	}
	err := jsonscan.EachMember(body, func(key []byte, start, end int) {
		v := body[start:end]
		var err error
		switch {
		case jsonscan.KeyIs(key, "model"):
			if r.Model, err = modelName(v); err == ErrModelTooLong {
				tooLong, err = true, nil
			}
		case jsonscan.KeyIs(key, "stream"):
			r.Stream, err = parseBool("stream", v)
		case jsonscan.KeyIs(key, "stream_options"):
			r.IncludeUsage = false
			if jsonscan.IsNull(v) {
				break
			}
			if jsonscan.EachMember(v, func(key []byte, start, end int) {
				if jsonscan.KeyIs(key, "include_usage") {
					var e error
					r.IncludeUsage, e = parseBool("stream_options.include_usage", v[start:end])
					setErr(e)
				}
			}) != nil {
				err = fmt.Errorf("stream_options is not an object")
			}
		case jsonscan.KeyIs(key, "max_completion_tokens"):
			maxCompletion, err = jsonscan.ParseCount("max_completion_tokens", v)
		case jsonscan.KeyIs(key, "max_output_tokens"):
			maxOutput, err = jsonscan.ParseCount("max_output_tokens", v)
		case jsonscan.KeyIs(key, "max_tokens"):
			maxTokens, err = jsonscan.ParseCount("max_tokens", v)
		case jsonscan.KeyIs(key, "n"):
			n, err = perPrompt("n", v)
		case jsonscan.KeyIs(key, "best_of"):
			bestOf, err = perPrompt("best_of", v)
		case jsonscan.KeyIs(key, "prompt"):
			switch api {
			case Completions:
				prompts, err = countPrompts(v)
			case Responses:
				// A stored prompt template: {"id": ..., "variables": ...}.
				r.StoredInput = r.StoredInput || !jsonscan.IsNull(v)
			}
		case jsonscan.KeyIs(key, "background"):
			r.Background, err = parseBool("background", v)
		case jsonscan.KeyIs(key, "service_tier"):
			if s := str(v); len(s) <= MaxTierBytes {
				r.ServiceTier = s
			}
		case jsonscan.KeyIs(key, "max_tool_calls"):
			r.MaxToolCalls, err = jsonscan.ParseCount("max_tool_calls", v)
		case jsonscan.KeyIs(key, "modalities"):
			modalAudio, err = hasAudio(v)
		case jsonscan.KeyIs(key, "audio"):
			audio = !jsonscan.IsNull(v)
		case jsonscan.KeyIs(key, "previous_response_id"), jsonscan.KeyIs(key, "conversation"):
			r.StoredInput = r.StoredInput || !jsonscan.IsNull(v)
		}
		setErr(err)
	})
	if err != nil {
		// Only now pay for a full parse, to say what is wrong.
		var v any
		if jerr := json.Unmarshal(body, &v); jerr != nil {
			return Request{API: api}, tokenmeter.Errorf(tokenmeter.EINVALID, "request body: %s", jsonscan.DescribeError(body, jerr))
		}
		return Request{API: api}, tokenmeter.Errorf(tokenmeter.EINVALID, "request body is not a JSON object")
	}
	if tooLong {
		return Request{API: api}, ErrModelTooLong
	}
	if ferr != nil {
		return Request{API: api}, tokenmeter.Errorf(tokenmeter.EINVALID, "request body: %v", ferr)
	}
	r.MaxTokens = cmpOr(maxCompletion, maxOutput, maxTokens)
	r.AudioOutput = modalAudio || audio
	// n and best_of are at most MaxPerPrompt, so this cannot overflow.
	if r.Choices = max(n, bestOf) * prompts; r.Choices > MaxChoices {
		return Request{API: api}, tokenmeter.Errorf(tokenmeter.EINVALID,
			"request body: asks for %d outputs (n or best_of times prompts), more than %d", r.Choices, MaxChoices)
	}
	if r.MaxTokens > jsonscan.MaxCount/r.Choices {
		return Request{API: api}, tokenmeter.Errorf(tokenmeter.EINVALID,
			"request body: asks for %d outputs of up to %d tokens, more than %d in all", r.Choices, r.MaxTokens, int64(jsonscan.MaxCount))
	}
	return r, nil
}

func cmpOr(vals ...int64) int64 {
	for _, v := range vals {
		if v != 0 {
			return v
		}
	}
	return 0
}

// perPrompt reads n or best_of: an integer from 0 to MaxPerPrompt; null,
// absent and 0 read as 1 (OpenAI refuses 0; a lenient server takes its
// default, one).
func perPrompt(field string, v []byte) (int64, error) {
	c, err := jsonscan.ParseCount(field, v)
	switch {
	case err != nil:
		return 1, err
	case c > MaxPerPrompt:
		return 1, fmt.Errorf("%s is implausibly large (%d, the maximum is %d)", field, c, MaxPerPrompt)
	}
	return max(c, 1), nil
}

// countPrompts returns how many prompts a legacy completion's prompt holds:
// a string, a list of tokens (numbers) or null is one; a list of strings or
// of token lists is one per element.
func countPrompts(v []byte) (int64, error) {
	var c int64
	var numbers bool
	err := eachElement(v, func(e []byte) {
		c++
		if jsonscan.Kind(e) == "a number" {
			numbers = true
		}
	})
	switch {
	case err == nil && (numbers || c == 0):
		return 1, nil
	case err == nil:
		return c, nil
	case jsonscan.IsNull(v) || jsonscan.Kind(v) == "a string":
		return 1, nil
	}
	return 1, fmt.Errorf("prompt is not a string or an array (%s)", jsonscan.Kind(v))
}

// hasAudio reports whether the modalities array v includes "audio".
func hasAudio(v []byte) (bool, error) {
	if jsonscan.IsNull(v) {
		return false, nil
	}
	found := false
	err := eachElement(v, func(e []byte) {
		if len(e) >= 2 && e[0] == '"' && jsonscan.KeyIs(e[1:len(e)-1], "audio") {
			found = true
		}
	})
	if err != nil {
		return false, fmt.Errorf("modalities is not an array (%s)", jsonscan.Kind(v))
	}
	return found, nil
}

// errNotArray is eachElement's error for a value that is not an array.
var errNotArray = errors.New("not an array")

// eachElement calls fn with each element of the JSON array v, whose own
// syntax it checks (nested values are skipped, not validated).
func eachElement(v []byte, fn func(e []byte)) error {
	i := jsonscan.SkipSpace(v, 0)
	if i >= len(v) || v[i] != '[' {
		return errNotArray
	}
	i = jsonscan.SkipSpace(v, i+1)
	if i < len(v) && v[i] == ']' {
		return nil
	}
	for {
		j := jsonscan.SkipValue(v, i)
		if j < 0 {
			return errNotArray
		}
		fn(v[i:j])
		i = jsonscan.SkipSpace(v, j)
		if i >= len(v) {
			return errNotArray
		}
		switch v[i] {
		case ']':
			return nil
		case ',':
			i = jsonscan.SkipSpace(v, i+1)
		default:
			return errNotArray
		}
	}
}

func parseBool(field string, v []byte) (bool, error) {
	switch string(v) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}
	return false, fmt.Errorf("%s is not a boolean (%s)", field, jsonscan.Kind(v))
}

// InjectIncludeUsage returns body with stream_options.include_usage set to
// true, so that a chat stream ends with a usage chunk. Every other byte of
// body is kept: other members of stream_options are untouched, a null
// stream_options becomes {"include_usage":true}, and a missing one is added
// after the last member. body itself is returned when include_usage is
// already true. OpenAI accepts stream_options only with "stream": true, so
// call it for streaming requests only.
//
// The errors are those of ParseRequest, plus stream_options that is neither
// an object nor null.
func InjectIncludeUsage(body []byte) ([]byte, error) {
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return nil, tokenmeter.Errorf(tokenmeter.EINVALID, "request body: %s", jsonscan.DescribeError(body, err))
	}
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	found, bad := false, false
	lastEnd := -1
	err := jsonscan.EachMember(body, func(key []byte, start, end int) {
		lastEnd = end
		if !jsonscan.KeyIs(key, "stream_options") {
			return
		}
		found = true
		v := body[start:end]
		if jsonscan.IsNull(v) {
			edits = append(edits, edit{start, end, `{"include_usage":true}`})
			return
		}
		has := false
		if jsonscan.EachMember(v, func(key []byte, s, e int) {
			if jsonscan.KeyIs(key, "include_usage") {
				has = true
				if string(v[s:e]) != "true" {
					edits = append(edits, edit{start + s, start + e, "true"})
				}
			}
		}) != nil {
			bad = true
			return
		}
		if !has {
			// Insert first, right after the opening brace.
			text := `"include_usage":true`
			if o := jsonscan.SkipSpace(v, 1); o < len(v) && v[o] != '}' {
				text += ","
			}
			edits = append(edits, edit{start + 1, start + 1, text})
		}
	})
	switch {
	case err != nil:
		return nil, tokenmeter.Errorf(tokenmeter.EINVALID, "request body is not a JSON object")
	case bad:
		return nil, tokenmeter.Errorf(tokenmeter.EINVALID, "request body: stream_options is not an object")
	case !found && lastEnd < 0:
		open := jsonscan.SkipSpace(body, 0) + 1
		edits = append(edits, edit{open, open, `"stream_options":{"include_usage":true}`})
	case !found:
		edits = append(edits, edit{lastEnd, lastEnd, `,"stream_options":{"include_usage":true}`})
	}
	if len(edits) == 0 {
		return body, nil
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	n := len(body)
	for _, e := range edits {
		n += len(e.text) - (e.end - e.start)
	}
	out := make([]byte, 0, n)
	prev := 0
	for _, e := range edits {
		out = append(append(out, body[prev:e.start]...), e.text...)
		prev = e.end
	}
	return append(out, body[prev:]...), nil
}

// WriteError writes an OpenAI error body,
// {"error":{"message":msg,"type":typ,"param":null,"code":code}}, with the
// given status and content type application/json; code "" is written as
// null. OpenAI's types include invalid_request_error, authentication_error,
// rate_limit_error (code rate_limit_exceeded or insufficient_quota) and
// server_error.
func WriteError(w http.ResponseWriter, status int, typ, code, msg string) {
	var c *string
	if code != "" {
		c = &code
	}
	type detail struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	b, _ := json.Marshal(struct {
		Error detail `json:"error"`
	}{detail{msg, typ, nil, c}}) // cannot fail: strings only
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}

// modelName reads the model member's raw value v: ErrModelTooLong beyond
// MaxModelBytes, else an error naming what v holds without quoting it.
func modelName(v []byte) (string, error) {
	s, err := jsonscan.BoundedString(v, MaxModelBytes)
	switch {
	case errors.Is(err, jsonscan.ErrTooLong):
		return "", ErrModelTooLong
	case err != nil:
		return "", fmt.Errorf("model is %w", err)
	}
	return s, nil
}
