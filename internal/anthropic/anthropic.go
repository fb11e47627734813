// Package anthropic holds the gateway's knowledge of the Anthropic Messages
// wire format: it peeks at requests, meters the usage of streamed and plain
// responses, and writes errors in Anthropic's shape. Its functions never panic
// on any input and report unreadable usage instead of recording garbage.
package anthropic

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

// Request is what the gateway needs to know about a Messages request.
type Request struct {
	Model     string
	Stream    bool
	MaxTokens int64 // max_tokens; 0 if absent
}

// ParseRequest reads model, stream and max_tokens from a Messages request
// body. Unknown fields are ignored and missing or null fields are zero. Keys
// match exactly, as on the API ({"Model": ...} is not the model), and the last
// of duplicate keys wins. The body must be plain UTF-8 JSON: run a body with
// a Content-Encoding, a byte order mark or UTF-16 through reqbody.Decode
// first.
//
// Every error is a *tokenmeter.Error with code EINVALID whose message names
// the problem: the body is not a JSON object (as jsonscan.DescribeError
// says), or a field has the wrong type (e.g. a non-integer or negative
// max_tokens), named by the kind of its value, never the value unless it
// is a number. A model name longer than MaxModelBytes is ErrModelTooLong
// itself (errors.Is), which the gateway answers with 400.
func ParseRequest(body []byte) (Request, error) {
	var r Request
	var ferr error
	tooLong := false
	err := jsonscan.EachMember(body, func(key []byte, start, end int) {
		v := body[start:end]
		switch {
		case jsonscan.KeyIs(key, "model"):
			var err error
			if r.Model, err = modelName(v); err == ErrModelTooLong {
				tooLong = true
			} else if err != nil {
				ferr = err
			}
		case jsonscan.KeyIs(key, "stream"):
			switch string(v) {
			case "true":
				r.Stream = true
			case "false", "null":
				r.Stream = false
			default:
				ferr = fmt.Errorf("stream is not a boolean (%s)", jsonscan.Kind(v))
			}
		case jsonscan.KeyIs(key, "max_tokens"):
			n, err := jsonscan.ParseCount("max_tokens", v)
			if err != nil {
				ferr = err
			}
			r.MaxTokens = n
		}
	})
	if err != nil {
		// Only now pay for a full parse, to say what is wrong.
		var v any
		if jerr := json.Unmarshal(body, &v); jerr != nil {
			return Request{}, tokenmeter.Errorf(tokenmeter.EINVALID, "request body: %s", jsonscan.DescribeError(body, jerr))
		}
		return Request{}, tokenmeter.Errorf(tokenmeter.EINVALID, "request body is not a JSON object")
	}
	if tooLong {
		return Request{}, ErrModelTooLong
	}
	if ferr != nil {
		return Request{}, tokenmeter.Errorf(tokenmeter.EINVALID, "request body: %v", ferr)
	}
	return r, nil
}

// WriteError writes an Anthropic error body,
// {"type":"error","error":{"type":typ,"message":msg}}, with the given status
// and content type application/json. Anthropic's error types include
// invalid_request_error (400), authentication_error (401), permission_error
// (403), not_found_error (404), request_too_large (413), rate_limit_error
// (429), api_error (500) and overloaded_error (529).
func WriteError(w http.ResponseWriter, status int, typ, msg string) {
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error detail `json:"error"`
	}{"error", detail{typ, msg}}) // cannot fail: strings only
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
