package fakeupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tokenmeter/tokenmeter"
)

// InputTokens returns the uncached input tokens the fake reports for a
// request body: max(1, len(body)/4).
func InputTokens(body []byte) int64 {
	return max(1, int64(len(body))/4)
}

// words is the vocabulary of reply text.
var words = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod
	tempor incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud
	exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat duis aute irure dolor in
	reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur excepteur sint
	occaecat cupidatat non proident sunt in culpa qui officia deserunt mollit anim id est laborum`)

// word returns the i-th word of reply text as it is streamed: with a
// leading space after the first.
func word(i int) string {
	w := words[i%len(words)]
	if i > 0 {
		return " " + w
	}
	return w
}

// OutputText returns the reply text of n output tokens: n words of lorem
// ipsum separated by single spaces. Streams send it one word per event.
func OutputText(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(word(i))
	}
	return b.String()
}

type endpoint int

const (
	endpointMessages endpoint = iota
	endpointChat
	endpointResponses
)

// request holds the request fields the fake looks at.
type request struct {
	Model               string `json:"model"`
	Stream              bool   `json:"stream"`
	MaxTokens           *int64 `json:"max_tokens"`
	MaxCompletionTokens *int64 `json:"max_completion_tokens"`
	MaxOutputTokens     *int64 `json:"max_output_tokens"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	// Thinking is Anthropic's thinking configuration, read by thinkingOf.
	Thinking json.RawMessage `json:"thinking"`
}

// thinkingOf reports whether an Anthropic request enables thinking and
// whether it wants the thinking text shown. A thinking member that is not
// an object enables nothing: the fake does not validate it.
func thinkingOf(raw json.RawMessage) (enabled, shown bool) {
	var th struct {
		Type    string `json:"type"`
		Display string `json:"display"`
	}
	if json.Unmarshal(raw, &th) != nil {
		return false, false
	}
	return th.Type == "enabled" || th.Type == "adaptive", th.Display != "omitted"
}

// reply is what the fake answers to one request, derived from its body and
// directives.
type reply struct {
	model        string
	stream       bool
	includeUsage bool  // Chat Completions stream_options.include_usage
	maxOutput    int64 // the request's output cap, 0 if none
	words        int   // reply words (output tokens besides reasoning)
	capped       bool  // words were cut by the output cap
	// thinking is set when an Anthropic reply starts with a thinking
	// block: the request enables thinking and has reasoning tokens.
	// thinkingShown is false when the request asks for the thinking text
	// to be omitted (display "omitted"): the block then carries only its
	// signature.
	thinking, thinkingShown bool

	input, reasoning, cacheRead           int64
	cacheWrite5m, cacheWrite1h, webSearch int64
}

func (rp reply) output() int64 { return int64(rp.words) + rp.reasoning }

// decodeRequest decodes body, which must be a JSON object.
func decodeRequest(body []byte) (request, error) {
	var req request
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return req, invalidRequest("request body must be a JSON object")
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, invalidRequest("invalid request body: %v", err)
	}
	return req, nil
}

// planReply derives the reply to a request at ep.
func planReply(ep endpoint, body []byte, d directives) (reply, error) {
	req, err := decodeRequest(body)
	if err != nil {
		return reply{}, err
	}
	if req.Model == "" {
		return reply{}, invalidRequest("model: Field required")
	}
	var limit *int64
	name := "max_tokens"
	switch ep {
	case endpointMessages:
		if req.MaxTokens == nil {
			return reply{}, invalidRequest("max_tokens: Field required")
		}
		limit = req.MaxTokens
	case endpointChat:
		limit = req.MaxTokens
		if req.MaxCompletionTokens != nil {
			limit, name = req.MaxCompletionTokens, "max_completion_tokens"
		}
	case endpointResponses:
		limit, name = req.MaxOutputTokens, "max_output_tokens"
	}
	if limit != nil && *limit < 1 {
		return reply{}, invalidRequest("%s: must be greater than or equal to 1", name)
	}

	rp := reply{
		model:     req.Model,
		stream:    req.Stream,
		input:     InputTokens(body),
		words:     DefaultOutputTokens,
		reasoning: d.reasoning,
		cacheRead: d.cacheRead,
	}
	if d.input >= 0 {
		rp.input = d.input
	}
	if d.output >= 0 {
		rp.words = int(d.output)
	}
	if limit != nil {
		rp.maxOutput = *limit
		if int64(rp.words) > *limit {
			rp.words, rp.capped = int(*limit), true
		}
	}
	switch ep {
	case endpointMessages:
		rp.cacheWrite5m, rp.cacheWrite1h, rp.webSearch = d.cacheWrite5m, d.cacheWrite1h, d.webSearch
		if enabled, shown := thinkingOf(req.Thinking); enabled && rp.reasoning > 0 {
			rp.thinking, rp.thinkingShown = true, shown
		}
	case endpointChat:
		rp.includeUsage = req.Stream && req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	}
	return rp, nil
}

// ExpectedUsage returns the usage the fake reports for a request to path
// (/v1/messages, /v1/chat/completions or /v1/responses, query ignored)
// with the given body and X-Fake-Upstream header value, in tokenmeter's
// categories. It returns an error for other paths and for requests the fake
// answers with an error.
func ExpectedUsage(path, header string, body []byte) (tokenmeter.Usage, error) {
	path, _, _ = strings.Cut(path, "?")
	var ep endpoint
	switch path {
	case "/v1/messages":
		ep = endpointMessages
	case "/v1/chat/completions":
		ep = endpointChat
	case "/v1/responses":
		ep = endpointResponses
	default:
		return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: not a metered route", path)
	}
	var hv []string
	if header != "" {
		hv = []string{header}
	}
	d, err := parseDirectives(hv, body)
	if err != nil {
		return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: %w", path, err)
	}
	if d.status != 0 {
		return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: status=%d answers an error", path, d.status)
	}
	rp, err := planReply(ep, body, d)
	if err != nil {
		return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: %w", path, err)
	}
	return rp.usage(), nil
}

// usage returns the usage rp reports, in tokenmeter's categories.
func (rp reply) usage() tokenmeter.Usage {
	return tokenmeter.Usage{
		InputTokens:        rp.input,
		OutputTokens:       rp.output(),
		CacheWrite5mTokens: rp.cacheWrite5m,
		CacheWrite1hTokens: rp.cacheWrite1h,
		CacheReadTokens:    rp.cacheRead,
		ReasoningTokens:    rp.reasoning,
		WebSearchRequests:  rp.webSearch,
	}
}
