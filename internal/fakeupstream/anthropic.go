package fakeupstream

import "net/http"

// Anthropic Messages wire types, in the field order of the real API.

type anthropicMessage struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []any          `json:"content"` // anthropicThinkingBlock, anthropicContentBlock
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        anthropicUsage `json:"usage"`
}

type anthropicContentBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type anthropicThinkingBlock struct {
	Type      string `json:"type"`
	Thinking  string `json:"thinking"`
	Signature string `json:"signature"`
}

// thinkingWords returns the number of words of thinking text rp shows:
// one per reasoning token, at most MaxOutputTokens, none when omitted.
func (rp reply) thinkingWords() int {
	if !rp.thinkingShown {
		return 0
	}
	return int(min(rp.reasoning, MaxOutputTokens))
}

// signature returns the signature of the thinking block of call c. Real
// signatures are opaque and verified by the API; this one is neither.
func (c *call) signature() string { return "fakeupstream-signature-" + c.id }

// anthropicContent returns the content blocks of rp's reply: a thinking
// block if rp has one, then the text block.
func anthropicContent(c *call, rp reply) []any {
	var content []any
	if rp.thinking {
		content = append(content, anthropicThinkingBlock{Type: "thinking", Thinking: OutputText(rp.thinkingWords()), Signature: c.signature()})
	}
	return append(content, anthropicContentBlock{Type: "text", Text: OutputText(rp.words)})
}

type anthropicUsage struct {
	InputTokens              int64                   `json:"input_tokens"`
	CacheCreationInputTokens int64                   `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64                   `json:"cache_read_input_tokens"`
	CacheCreation            *anthropicCacheCreation `json:"cache_creation,omitempty"`
	OutputTokens             int64                   `json:"output_tokens"`
	OutputTokensDetails      *anthropicOutputDetails `json:"output_tokens_details,omitempty"`
	ServerToolUse            *anthropicServerToolUse `json:"server_tool_use,omitempty"`
	ServiceTier              string                  `json:"service_tier,omitempty"`
}

type anthropicCacheCreation struct {
	Ephemeral5mInputTokens int64 `json:"ephemeral_5m_input_tokens"`
	Ephemeral1hInputTokens int64 `json:"ephemeral_1h_input_tokens"`
}

type anthropicOutputDetails struct {
	ThinkingTokens int64 `json:"thinking_tokens"`
}

type anthropicServerToolUse struct {
	WebSearchRequests int64 `json:"web_search_requests"`
}

// anthropicUsageOf returns the usage of rp with output tokens output. The
// full form (message and message_start) has the cache TTL split and the
// service tier; message_delta's has not.
func anthropicUsageOf(rp reply, output int64, full bool) anthropicUsage {
	u := anthropicUsage{
		InputTokens:              rp.input,
		CacheCreationInputTokens: rp.cacheWrite5m + rp.cacheWrite1h,
		CacheReadInputTokens:     rp.cacheRead,
		OutputTokens:             output,
	}
	if full {
		u.CacheCreation = &anthropicCacheCreation{Ephemeral5mInputTokens: rp.cacheWrite5m, Ephemeral1hInputTokens: rp.cacheWrite1h}
		u.ServiceTier = "standard"
	}
	if rp.reasoning > 0 && output >= rp.reasoning {
		u.OutputTokensDetails = &anthropicOutputDetails{ThinkingTokens: rp.reasoning}
	}
	if rp.webSearch > 0 {
		u.ServerToolUse = &anthropicServerToolUse{WebSearchRequests: rp.webSearch}
	}
	return u
}

func (rp reply) anthropicStopReason() string {
	if rp.capped {
		return "max_tokens"
	}
	return "end_turn"
}

// handleMessages serves POST /v1/messages.
func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request, c *call) error {
	rp, err := planReply(endpointMessages, c.body, c.dir)
	if err != nil {
		return err
	}
	c.plan(rp, rp.input+rp.cacheWrite5m+rp.cacheWrite1h)
	if !rp.stream {
		stop := rp.anthropicStopReason()
		return s.writeBody(w, r, c, anthropicMessage{
			ID:         "msg_" + c.id,
			Type:       "message",
			Role:       "assistant",
			Model:      rp.model,
			Content:    anthropicContent(c, rp),
			StopReason: &stop,
			Usage:      anthropicUsageOf(rp, rp.output(), true),
		})
	}
	return s.writeStream(w, r, c, anthropicStream(c, rp), 0)
}

// anthropicStream returns the Messages event stream of rp: message_start,
// ping, a thinking block if rp has one (a thinking_delta per word shown,
// then a signature_delta), one text block with a delta per word,
// message_delta with the cumulative usage, message_stop.
func anthropicStream(c *call, rp reply) stream {
	type startEvent struct {
		Type    string           `json:"type"`
		Message anthropicMessage `json:"message"`
	}
	type typeOnly struct {
		Type string `json:"type"`
	}
	type blockStart struct {
		Type         string `json:"type"`
		Index        int    `json:"index"`
		ContentBlock any    `json:"content_block"`
	}
	type textDelta struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type thinkingDelta struct {
		Type     string `json:"type"`
		Thinking string `json:"thinking"`
	}
	type signatureDelta struct {
		Type      string `json:"type"`
		Signature string `json:"signature"`
	}
	type blockDelta struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
		Delta any    `json:"delta"`
	}
	type blockStop struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}
	type messageDelta struct {
		Type  string `json:"type"`
		Delta struct {
			StopReason   string  `json:"stop_reason"`
			StopSequence *string `json:"stop_sequence"`
		} `json:"delta"`
		Usage anthropicUsage `json:"usage"`
	}
	type errorEvent struct {
		Type  string             `json:"type"`
		Error anthropicErrorInfo `json:"error"`
	}

	var b streamBuilder
	fixed := func(f frame) { b.one(func(int) frame { return f }) }
	fixed(newFrame("message_start", startEvent{Type: "message_start", Message: anthropicMessage{
		ID:      "msg_" + c.id,
		Type:    "message",
		Role:    "assistant",
		Model:   rp.model,
		Content: []any{},
		Usage:   anthropicUsageOf(rp, min(1, rp.output()), true),
	}}))
	fixed(newFrame("ping", typeOnly{Type: "ping"}))
	index := 0
	if rp.thinking {
		fixed(newFrame("content_block_start", blockStart{Type: "content_block_start", ContentBlock: anthropicThinkingBlock{Type: "thinking"}}))
		b.run(rp.thinkingWords(), func(k, _ int) frame {
			return newFrame("content_block_delta", blockDelta{
				Type:  "content_block_delta",
				Delta: thinkingDelta{Type: "thinking_delta", Thinking: word(k)},
			}).withOutput(int64(k) + 1)
		})
		fixed(newFrame("content_block_delta", blockDelta{
			Type:  "content_block_delta",
			Delta: signatureDelta{Type: "signature_delta", Signature: c.signature()},
		}).withOutput(rp.reasoning))
		fixed(newFrame("content_block_stop", blockStop{Type: "content_block_stop"}).withOutput(rp.reasoning))
		index = 1
	}
	fixed(newFrame("content_block_start", blockStart{Type: "content_block_start", Index: index, ContentBlock: anthropicContentBlock{Type: "text"}}))
	b.run(rp.words, func(k, _ int) frame {
		return newFrame("content_block_delta", blockDelta{
			Type:  "content_block_delta",
			Index: index,
			Delta: textDelta{Type: "text_delta", Text: word(k)},
		}).withOutput(rp.reasoning + int64(k) + 1)
	})
	total := rp.output()
	fixed(newFrame("content_block_stop", blockStop{Type: "content_block_stop", Index: index}).withOutput(total))
	md := messageDelta{Type: "message_delta", Usage: anthropicUsageOf(rp, total, false)}
	md.Delta.StopReason = rp.anthropicStopReason()
	usageAt := b.n
	fixed(newFrame("message_delta", md).withOutput(total))
	fixed(newFrame("message_stop", typeOnly{Type: "message_stop"}).withOutput(total))
	st := b.build()
	st.usageAt = usageAt
	st.errorFrames = func(int) []frame {
		return []frame{newFrame("error", errorEvent{
			Type:  "error",
			Error: anthropicErrorInfo{Type: "overloaded_error", Message: "Overloaded"},
		})}
	}
	return st
}

// handleCountTokens serves POST /v1/messages/count_tokens.
func (s *Server) handleCountTokens(w http.ResponseWriter, r *http.Request, c *call) error {
	if _, err := decodeRequest(c.body); err != nil {
		return err
	}
	n := InputTokens(c.body)
	if c.dir.input >= 0 {
		n = c.dir.input
	}
	if err := sleep(r.Context(), c.dir.ttfb+c.dir.delay); err != nil {
		return err
	}
	s.writeJSON(w, c, http.StatusOK, struct {
		InputTokens int64 `json:"input_tokens"`
	}{n})
	return nil
}
