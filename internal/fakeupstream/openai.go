package fakeupstream

import (
	"encoding/json"
	"net/http"
)

// OpenAI Chat Completions wire types.

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             chatUsage    `json:"usage"`
	ServiceTier       string       `json:"service_tier"`
	SystemFingerprint *string      `json:"system_fingerprint"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      chatMessage     `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type chatMessage struct {
	Role        string     `json:"role"`
	Content     string     `json:"content"`
	Refusal     *string    `json:"refusal"`
	Annotations []struct{} `json:"annotations"`
}

type chatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
		AudioTokens  int64 `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int64 `json:"reasoning_tokens"`
		AudioTokens              int64 `json:"audio_tokens"`
		AcceptedPredictionTokens int64 `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int64 `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

type chatChunk struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	Created           int64             `json:"created"`
	Model             string            `json:"model"`
	ServiceTier       string            `json:"service_tier"`
	SystemFingerprint *string           `json:"system_fingerprint"`
	Choices           []chatChunkChoice `json:"choices"`
	// Usage is absent without include_usage, null on every chunk but the
	// last with it.
	Usage json.RawMessage `json:"usage,omitempty"`
}

type chatChunkChoice struct {
	Index        int             `json:"index"`
	Delta        chatDelta       `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
	Refusal *string `json:"refusal,omitempty"`
}

var jsonNull = json.RawMessage("null")

func chatUsageOf(rp reply) chatUsage {
	var u chatUsage
	u.PromptTokens = rp.input + rp.cacheRead
	u.CompletionTokens = rp.output()
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	u.PromptTokensDetails.CachedTokens = rp.cacheRead
	u.CompletionTokensDetails.ReasoningTokens = rp.reasoning
	return u
}

func (rp reply) chatFinishReason() string {
	if rp.capped {
		return "length"
	}
	return "stop"
}

// handleChatCompletions serves POST /v1/chat/completions.
func (s *Server) handleChatCompletions(w http.ResponseWriter, r *http.Request, c *call) error {
	rp, err := planReply(endpointChat, c.body, c.dir)
	if err != nil {
		return err
	}
	c.plan(rp, rp.input+rp.cacheRead)
	if !rp.stream {
		return s.writeBody(w, r, c, chatCompletion{
			ID:      "chatcmpl-" + c.id,
			Object:  "chat.completion",
			Created: c.start.Unix(),
			Model:   rp.model,
			Choices: []chatChoice{{
				Message:      chatMessage{Role: "assistant", Content: OutputText(rp.words), Annotations: []struct{}{}},
				Logprobs:     jsonNull,
				FinishReason: rp.chatFinishReason(),
			}},
			Usage:       chatUsageOf(rp),
			ServiceTier: "default",
		})
	}
	return s.writeStream(w, r, c, chatStream(c, rp))
}

// chatStream returns the Chat Completions chunk stream of rp: a role chunk,
// a content chunk per word, a finish chunk, with include_usage a usage chunk
// with no choices, and [DONE].
func chatStream(c *call, rp reply) stream {
	chunk := func(delta chatDelta, finish *string) frame {
		ch := chatChunk{
			ID:          "chatcmpl-" + c.id,
			Object:      "chat.completion.chunk",
			Created:     c.start.Unix(),
			Model:       rp.model,
			ServiceTier: "default",
			Choices:     []chatChunkChoice{{Delta: delta, Logprobs: jsonNull, FinishReason: finish}},
		}
		if rp.includeUsage {
			ch.Usage = jsonNull
		}
		return newFrame("", ch)
	}
	empty := ""
	frames := make([]frame, 0, rp.words+4)
	frames = append(frames, chunk(chatDelta{Role: "assistant", Content: &empty, Refusal: nil}, nil))
	for i := range rp.words {
		text := word(i)
		frames = append(frames, chunk(chatDelta{Content: &text}, nil))
	}
	finish := rp.chatFinishReason()
	usageAt := len(frames)
	frames = append(frames, chunk(chatDelta{}, &finish))
	if rp.includeUsage {
		u, err := json.Marshal(chatUsageOf(rp))
		if err != nil {
			panic(err) // chatUsage always marshals
		}
		usageAt = len(frames)
		frames = append(frames, newFrame("", chatChunk{
			ID:          "chatcmpl-" + c.id,
			Object:      "chat.completion.chunk",
			Created:     c.start.Unix(),
			Model:       rp.model,
			ServiceTier: "default",
			Choices:     []chatChunkChoice{},
			Usage:       u,
		}))
	}
	frames = append(frames, frame{data: []byte("[DONE]")})
	return stream{
		frames:  frames,
		usageAt: usageAt,
		errorFrames: func(int) []frame {
			typ, _ := openAIErrorType(http.StatusInternalServerError)
			return []frame{newFrame("", openAIErrorBody{Error: openAIErrorInfo{
				Message: defaultErrorMessage(providerOpenAI, http.StatusInternalServerError),
				Type:    typ,
			}})}
		},
	}
}

// OpenAI Responses wire types.

type responseObject struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	CompletedAt        *int64             `json:"completed_at"`
	Error              *responseError     `json:"error"`
	IncompleteDetails  *incompleteDetails `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int64             `json:"max_output_tokens"`
	Model              string             `json:"model"`
	Output             []responseItem     `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Reasoning          struct {
		Effort  *string `json:"effort"`
		Summary *string `json:"summary"`
	} `json:"reasoning"`
	ServiceTier string  `json:"service_tier"`
	Store       bool    `json:"store"`
	Temperature float64 `json:"temperature"`
	Text        struct {
		Format struct {
			Type string `json:"type"`
		} `json:"format"`
	} `json:"text"`
	ToolChoice string            `json:"tool_choice"`
	Tools      []struct{}        `json:"tools"`
	TopP       float64           `json:"top_p"`
	Truncation string            `json:"truncation"`
	Usage      *responseUsage    `json:"usage"`
	User       *string           `json:"user"`
	Metadata   map[string]string `json:"metadata"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incompleteDetails struct {
	Reason string `json:"reason"`
}

type responseItem struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Status  string         `json:"status"`
	Content []responsePart `json:"content"`
	Role    string         `json:"role"`
}

type responsePart struct {
	Type        string     `json:"type"`
	Annotations []struct{} `json:"annotations"`
	Logprobs    []struct{} `json:"logprobs"`
	Text        string     `json:"text"`
}

type responseUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

func responseUsageOf(rp reply) *responseUsage {
	u := &responseUsage{InputTokens: rp.input + rp.cacheRead, OutputTokens: rp.output()}
	u.InputTokensDetails.CachedTokens = rp.cacheRead
	u.OutputTokensDetails.ReasoningTokens = rp.reasoning
	u.TotalTokens = u.InputTokens + u.OutputTokens
	return u
}

// responseStatus returns the status of a finished response and the event
// that ends its stream.
func (rp reply) responseStatus() (status, terminal string) {
	if rp.capped {
		return "incomplete", "response.incomplete"
	}
	return "completed", "response.completed"
}

// newResponse returns rp's response object with status and the given
// output; usage is set by the caller when the response is finished.
func newResponse(c *call, rp reply, status string, output []responseItem) responseObject {
	o := responseObject{
		ID:                "resp_" + c.id,
		Object:            "response",
		CreatedAt:         c.start.Unix(),
		Status:            status,
		Model:             rp.model,
		Output:            output,
		ParallelToolCalls: true,
		ServiceTier:       "default",
		Store:             true,
		Temperature:       1,
		ToolChoice:        "auto",
		Tools:             []struct{}{},
		TopP:              1,
		Truncation:        "disabled",
		Metadata:          map[string]string{},
	}
	o.Text.Format.Type = "text"
	if rp.maxOutput > 0 {
		o.MaxOutputTokens = &rp.maxOutput
	}
	switch status {
	case "completed":
		t := c.start.Unix()
		o.CompletedAt = &t
	case "incomplete":
		o.IncompleteDetails = &incompleteDetails{Reason: "max_output_tokens"}
	}
	return o
}

// responseMessage returns the output message item of rp with text.
func responseMessage(c *call, status, text string, withPart bool) responseItem {
	it := responseItem{ID: "msg_" + c.id, Type: "message", Status: status, Content: []responsePart{}, Role: "assistant"}
	if withPart {
		it.Content = append(it.Content, outputText(text))
	}
	return it
}

func outputText(text string) responsePart {
	return responsePart{Type: "output_text", Annotations: []struct{}{}, Logprobs: []struct{}{}, Text: text}
}

// handleResponses serves POST /v1/responses.
func (s *Server) handleResponses(w http.ResponseWriter, r *http.Request, c *call) error {
	rp, err := planReply(endpointResponses, c.body, c.dir)
	if err != nil {
		return err
	}
	c.plan(rp, rp.input+rp.cacheRead)
	if !rp.stream {
		status, _ := rp.responseStatus()
		o := newResponse(c, rp, status, []responseItem{responseMessage(c, status, OutputText(rp.words), true)})
		o.Usage = responseUsageOf(rp)
		return s.writeBody(w, r, c, o)
	}
	return s.writeStream(w, r, c, responsesStream(c, rp))
}

// responsesStream returns the Responses event stream of rp.
func responsesStream(c *call, rp reply) stream {
	type responseEvent struct {
		Type           string         `json:"type"`
		SequenceNumber int            `json:"sequence_number"`
		Response       responseObject `json:"response"`
	}
	type itemEvent struct {
		Type           string       `json:"type"`
		SequenceNumber int          `json:"sequence_number"`
		OutputIndex    int          `json:"output_index"`
		Item           responseItem `json:"item"`
	}
	type partEvent struct {
		Type           string       `json:"type"`
		SequenceNumber int          `json:"sequence_number"`
		ItemID         string       `json:"item_id"`
		OutputIndex    int          `json:"output_index"`
		ContentIndex   int          `json:"content_index"`
		Part           responsePart `json:"part"`
	}
	type textEvent struct {
		Type           string     `json:"type"`
		SequenceNumber int        `json:"sequence_number"`
		ItemID         string     `json:"item_id"`
		OutputIndex    int        `json:"output_index"`
		ContentIndex   int        `json:"content_index"`
		Delta          *string    `json:"delta,omitempty"`
		Text           *string    `json:"text,omitempty"`
		Logprobs       []struct{} `json:"logprobs"`
	}
	type errorEvent struct {
		Type           string  `json:"type"`
		SequenceNumber int     `json:"sequence_number"`
		Code           string  `json:"code"`
		Message        string  `json:"message"`
		Param          *string `json:"param"`
	}

	var frames []frame
	add := func(typ string, v func(seq int) any) {
		frames = append(frames, newFrame(typ, v(len(frames))))
	}
	response := func(typ, status string, output []responseItem) {
		add(typ, func(seq int) any {
			return responseEvent{Type: typ, SequenceNumber: seq, Response: newResponse(c, rp, status, output)}
		})
	}
	item := func(typ string, it responseItem) {
		add(typ, func(seq int) any { return itemEvent{Type: typ, SequenceNumber: seq, Item: it} })
	}
	part := func(typ string, p responsePart) {
		add(typ, func(seq int) any {
			return partEvent{Type: typ, SequenceNumber: seq, ItemID: "msg_" + c.id, Part: p}
		})
	}
	text := func(typ string, delta, text *string) {
		add(typ, func(seq int) any {
			return textEvent{Type: typ, SequenceNumber: seq, ItemID: "msg_" + c.id, Delta: delta, Text: text, Logprobs: []struct{}{}}
		})
	}

	full := OutputText(rp.words)
	status, terminal := rp.responseStatus()
	frames = make([]frame, 0, rp.words+9)
	response("response.created", "in_progress", []responseItem{})
	response("response.in_progress", "in_progress", []responseItem{})
	item("response.output_item.added", responseMessage(c, "in_progress", "", false))
	part("response.content_part.added", outputText(""))
	for i := range rp.words {
		w := word(i)
		text("response.output_text.delta", &w, nil)
	}
	text("response.output_text.done", nil, &full)
	part("response.content_part.done", outputText(full))
	done := responseMessage(c, status, full, true)
	item("response.output_item.done", done)
	usageAt := len(frames)
	add(terminal, func(seq int) any {
		o := newResponse(c, rp, status, []responseItem{done})
		o.Usage = responseUsageOf(rp)
		return responseEvent{Type: terminal, SequenceNumber: seq, Response: o}
	})

	return stream{
		frames:  frames,
		usageAt: usageAt,
		errorFrames: func(n int) []frame {
			msg := defaultErrorMessage(providerOpenAI, http.StatusInternalServerError)
			failed := newResponse(c, rp, "failed", []responseItem{})
			failed.Error = &responseError{Code: "server_error", Message: msg}
			return []frame{
				newFrame("error", errorEvent{Type: "error", SequenceNumber: n, Code: "server_error", Message: msg}),
				newFrame("response.failed", responseEvent{Type: "response.failed", SequenceNumber: n + 1, Response: failed}),
			}
		},
	}
}
