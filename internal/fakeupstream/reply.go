package fakeupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

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
func word(i int) string { return choiceWord(0, i) }

// OutputText returns the reply text of n output tokens: n words of lorem
// ipsum separated by single spaces. Streams send it one word per event.
func OutputText(n int) string { return ChoiceText(0, n) }

// choiceWord returns the i-th word of choice k's reply as it is streamed.
func choiceWord(k, i int) string {
	w := words[(i+k)%len(words)]
	if i > 0 {
		return " " + w
	}
	return w
}

// ChoiceText returns the reply text of choice k (Chat Completions and
// legacy completions with n > 1) of n output tokens: n words of lorem
// ipsum starting at word k of the vocabulary, so that ChoiceText(0, n) is
// OutputText(n) and each choice has its own text (the vocabulary has 69
// words: choice k+69 repeats choice k).
func ChoiceText(k, n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(choiceWord(k, i))
	}
	return b.String()
}

type endpoint int

const (
	endpointMessages endpoint = iota
	endpointChat
	endpointResponses
	endpointCompletions // legacy POST /v1/completions
)

// Limits on the choices of one request.
const (
	// MaxChoices is the largest n (Chat Completions and legacy
	// completions), as OpenAI documents it.
	MaxChoices = 128
	// MaxBestOf is the largest best_of of a legacy completion.
	MaxBestOf = 20
	// MaxReplyWords bounds the words of all the choices of one reply
	// (n or best_of times the output): more is a 400.
	MaxReplyWords = 1_000_000
	// DefaultCompletionMaxTokens is the max_tokens of a legacy completion
	// that sets none, as OpenAI's API has it.
	DefaultCompletionMaxTokens = 16
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
	// N and BestOf are the choices asked for (Chat Completions n, legacy
	// completions n and best_of).
	N      *int64 `json:"n"`
	BestOf *int64 `json:"best_of"`
	// Background and Instructions are Responses fields: a background
	// response, and the instructions every response object echoes.
	Background   bool            `json:"background"`
	Instructions json.RawMessage `json:"instructions"`
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
	words        int   // reply words of each choice (output tokens besides reasoning)
	capped       bool  // words were cut by the output cap
	// choices is the number of choices returned (n); candidates the number
	// generated and billed (best_of for legacy completions, else n).
	choices, candidates int
	// thinking is set when an Anthropic reply starts with a thinking
	// block: the request enables thinking and has reasoning tokens.
	// thinkingShown is false when the request asks for the thinking text
	// to be omitted (display "omitted"): the block then carries only its
	// signature.
	thinking, thinkingShown bool
	// background is a Responses background response, completed
	// backgroundDelay (plus the stream pacing) after it was created.
	background      bool
	backgroundDelay time.Duration
	pace            time.Duration // the delay directive: one word per pace
	// instructions is the Responses request's instructions, echoed in
	// every response object (null when absent).
	instructions json.RawMessage

	input, reasoning, cacheRead           int64 // reasoning: per candidate
	cacheWrite5m, cacheWrite1h, webSearch int64
}

// perCandidate returns the output tokens of one candidate.
func (rp reply) perCandidate() int64 { return int64(rp.words) + rp.reasoning }

// output returns the output tokens of the whole reply, every candidate's.
func (rp reply) output() int64 { return int64(rp.candidates) * rp.perCandidate() }

// reasoningTokens returns the reasoning tokens of the whole reply.
func (rp reply) reasoningTokens() int64 { return int64(rp.candidates) * rp.reasoning }

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
	case endpointCompletions:
		limit = req.MaxTokens
		if limit == nil {
			def := int64(DefaultCompletionMaxTokens)
			limit = &def
		}
	}
	if limit != nil && *limit < 1 {
		return reply{}, invalidRequest("%s: must be greater than or equal to 1", name)
	}

	rp := reply{
		model:      req.Model,
		stream:     req.Stream,
		input:      InputTokens(body),
		words:      DefaultOutputTokens,
		reasoning:  d.reasoning,
		cacheRead:  d.cacheRead,
		choices:    1,
		candidates: 1,
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
	case endpointChat, endpointCompletions:
		rp.includeUsage = req.Stream && req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		if req.N != nil {
			if *req.N < 1 || *req.N > MaxChoices {
				return reply{}, invalidRequest("n: must be between 1 and %d", MaxChoices)
			}
			rp.choices = int(*req.N)
		}
		rp.candidates = rp.choices
		if ep == endpointCompletions && req.BestOf != nil {
			switch {
			case *req.BestOf < 1 || *req.BestOf > MaxBestOf:
				return reply{}, invalidRequest("best_of: must be between 1 and %d", MaxBestOf)
			case *req.BestOf < int64(rp.choices):
				return reply{}, invalidRequest("best_of must be greater than or equal to n")
			case *req.BestOf > int64(rp.choices) && req.Stream:
				return reply{}, invalidRequest("best_of greater than n cannot be streamed")
			}
			rp.candidates = int(*req.BestOf)
		}
		if int64(rp.candidates)*int64(rp.words) > MaxReplyWords {
			return reply{}, invalidRequest("fake-upstream: %d choices of %d words exceed %d reply words", rp.candidates, rp.words, MaxReplyWords)
		}
	case endpointResponses:
		rp.instructions = req.Instructions
		if req.Background {
			rp.background, rp.pace = true, d.delay
			rp.backgroundDelay = DefaultBackgroundDelay
			if d.backgroundDelay >= 0 {
				rp.backgroundDelay = d.backgroundDelay
			}
		}
	}
	return rp, nil
}

// ExpectedUsage returns the usage the fake reports for a request to path
// (/v1/messages, /v1/chat/completions, /v1/responses, /v1/completions or
// /v1/embeddings, query ignored) with the given body and X-Fake-Upstream
// header value, in tokenmeter's categories. body is the request body
// without its Content-Encoding (see DecodeBody); a byte order mark or
// UTF-16 or UTF-32 text is decoded as the server does. For a background
// response it is the usage of the completed response. It returns an error
// for other paths (the stand-in routes report no usage; see
// ExpectedBilled) and for requests the fake answers with an error.
func ExpectedUsage(path, header string, body []byte) (tokenmeter.Usage, error) {
	path, _, _ = strings.Cut(path, "?")
	switch path {
	case "/v1/messages", "/v1/chat/completions", "/v1/responses", "/v1/completions", "/v1/embeddings":
	default:
		return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: not a metered route", path)
	}
	return ExpectedBilled(path, header, body)
}

// ExpectedBilled returns what the fake bills for a request to path served
// in full (the client reads the whole reply; no fault or departure stops
// the generation), in tokenmeter's categories, under the same rules as
// ExpectedUsage. On the routes that report usage it is the reported usage
// (all n or best_of choices included); on the stand-in routes (images,
// audio, batches) it is the documented amount they bill without reporting
// it. It returns an error for routes that bill nothing and for requests the
// fake answers with an error.
func ExpectedBilled(path, header string, body []byte) (tokenmeter.Usage, error) {
	path, _, _ = strings.Cut(path, "?")
	text, err := decodeText(body)
	if err != nil {
		return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: %w", path, err)
	}
	var hv []string
	if header != "" {
		hv = []string{header}
	}
	d, err := parseDirectives(hv, text)
	if err != nil {
		return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: %w", path, err)
	}
	if d.status != 0 {
		return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: status=%d answers an error", path, d.status)
	}
	var u tokenmeter.Usage
	switch path {
	case "/v1/messages":
		u, err = plannedUsage(endpointMessages, text, d)
	case "/v1/chat/completions":
		u, err = plannedUsage(endpointChat, text, d)
	case "/v1/responses":
		u, err = plannedUsage(endpointResponses, text, d)
	case "/v1/completions":
		u, err = plannedUsage(endpointCompletions, text, d)
	case "/v1/embeddings":
		var ep embeddingPlan
		ep, err = planEmbeddings(text, d)
		u = ep.usage()
	default:
		sp, ok := standIns[path]
		if !ok {
			return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: not a billed route", path)
		}
		var plan standInPlan
		plan, err = sp.plan(text, "", d)
		u = plan.billed
	}
	if err != nil {
		return tokenmeter.Usage{}, fmt.Errorf("expected usage of %s: %w", path, err)
	}
	return u, nil
}

func plannedUsage(ep endpoint, body []byte, d directives) (tokenmeter.Usage, error) {
	rp, err := planReply(ep, body, d)
	return rp.usage(), err
}

// usage returns the usage rp reports, in tokenmeter's categories.
func (rp reply) usage() tokenmeter.Usage {
	return tokenmeter.Usage{
		InputTokens:        rp.input,
		OutputTokens:       rp.output(),
		CacheWrite5mTokens: rp.cacheWrite5m,
		CacheWrite1hTokens: rp.cacheWrite1h,
		CacheReadTokens:    rp.cacheRead,
		ReasoningTokens:    rp.reasoningTokens(),
		WebSearchRequests:  rp.webSearch,
	}
}
