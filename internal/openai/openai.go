// Package openai holds the gateway's knowledge of the OpenAI Chat Completions
// and Responses wire formats: it peeks at requests, asks chat streams for
// usage, meters the usage of streamed and plain responses, and writes errors
// in OpenAI's shape. Its functions never panic on any input and report
// unreadable usage instead of recording garbage.
package openai

import (
	"encoding/json"
	"fmt"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tokenmeter/tokenmeter"
)

// API names an OpenAI endpoint family whose usage the meter understands.
type API string

const (
	Chat      API = "chat"      // POST /v1/chat/completions
	Responses API = "responses" // POST /v1/responses
	Other     API = "other"     // anything else; metered like Chat
)

// APIForPath returns the API served at the upstream path (without query):
// "/v1/chat/completions" is Chat and "/v1/responses" is Responses, with or
// without a trailing slash; every other path, including
// "/v1/responses/{id}", is Other.
func APIForPath(path string) API {
	switch strings.TrimSuffix(path, "/") {
	case "/v1/chat/completions":
		return Chat
	case "/v1/responses":
		return Responses
	}
	return Other
}

// Request is what the gateway needs to know about a request.
type Request struct {
	API    API
	Model  string
	Stream bool
	// IncludeUsage is stream_options.include_usage, which makes a chat
	// stream end with a usage chunk.
	IncludeUsage bool
	// MaxTokens is the output limit: max_completion_tokens, else
	// max_output_tokens (Responses), else max_tokens (older chat clients);
	// 0 if none is set.
	MaxTokens int64
}

// ParseRequest reads the fields of Request from a request body for api.
// Unknown fields are ignored and missing or null fields are zero. Keys match
// exactly, as on the API, and the last of duplicate keys wins.
//
// Every error is a *tokenmeter.Error with code EINVALID whose message names
// the problem and quotes at most a short jsonscan.Excerpt of the body: the body is not
// a JSON object, or a field has the wrong type.
func ParseRequest(api API, body []byte) (Request, error) {
	r := Request{API: api}
	var maxCompletion, maxOutput, maxTokens int64
	var ferr error
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
			r.Model = ""
			if !jsonscan.IsNull(v) && json.Unmarshal(v, &r.Model) != nil {
				err = fmt.Errorf("model is not a string: %s", jsonscan.Clip(string(v), 24))
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
	if ferr != nil {
		return Request{API: api}, tokenmeter.Errorf(tokenmeter.EINVALID, "request body: %v", ferr)
	}
	r.MaxTokens = cmpOr(maxCompletion, maxOutput, maxTokens)
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

func parseBool(field string, v []byte) (bool, error) {
	switch string(v) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}
	return false, fmt.Errorf("%s is not a boolean: %s", field, jsonscan.Clip(string(v), 24))
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
