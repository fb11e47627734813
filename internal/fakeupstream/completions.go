package fakeupstream

import (
	"encoding/json"
	"net/http"
)

// Legacy OpenAI Completions (POST /v1/completions): the usage of Chat
// Completions, n choices returned, best_of candidates generated and billed
// (best_of >= n; streaming needs best_of == n), max_tokens 16 when the
// request sets none, as the real API has it. echo and suffix are ignored.

type completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	Choices           []completionChoice `json:"choices"`
	SystemFingerprint *string            `json:"system_fingerprint"`
	// Usage is set in a reply, null in stream chunks with include_usage
	// but the last, absent without it.
	Usage json.RawMessage `json:"usage,omitempty"`
}

type completionChoice struct {
	Text         string          `json:"text"`
	Index        int             `json:"index"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// handleCompletions serves POST /v1/completions.
func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request, c *call) error {
	rp, err := planReply(endpointCompletions, c.body, c.dir)
	if err != nil {
		return err
	}
	c.plan(rp, rp.input+rp.cacheRead)
	usage, err := json.Marshal(chatUsageOf(rp))
	if err != nil {
		panic(err) // chatUsage always marshals
	}
	finish := rp.chatFinishReason()
	if !rp.stream {
		choices := make([]completionChoice, rp.choices)
		for k := range choices {
			choices[k] = completionChoice{Text: ChoiceText(k, rp.words), Index: k, Logprobs: jsonNull, FinishReason: &finish}
		}
		return s.writeBody(w, r, c, completion{
			ID: "cmpl-" + c.id, Object: "text_completion", Created: c.start.Unix(), Model: rp.model,
			Choices: choices, Usage: usage,
		})
	}
	chunk := func(choices []completionChoice) frame {
		ch := completion{ID: "cmpl-" + c.id, Object: "text_completion", Created: c.start.Unix(), Model: rp.model, Choices: choices}
		if rp.includeUsage {
			ch.Usage = jsonNull
		}
		return newFrame("", ch)
	}
	n, total := rp.choices, rp.output()
	var b streamBuilder
	b.run(rp.words*n, func(j, _ int) frame {
		return chunk([]completionChoice{{Text: choiceWord(j%n, j/n), Index: j % n, Logprobs: jsonNull}}).withOutput(rp.choiceOutput(j + 1))
	})
	usageAt := b.n + n - 1
	b.run(n, func(k, _ int) frame {
		return chunk([]completionChoice{{Index: k, Logprobs: jsonNull, FinishReason: &finish}}).withOutput(total)
	})
	if rp.includeUsage {
		usageAt = b.n
		b.one(func(int) frame {
			return newFrame("", completion{
				ID: "cmpl-" + c.id, Object: "text_completion", Created: c.start.Unix(), Model: rp.model,
				Choices: []completionChoice{}, Usage: usage,
			}).withOutput(total)
		})
	}
	b.one(func(int) frame { return frame{data: []byte("[DONE]"), output: total} })
	st := b.build()
	st.usageAt = usageAt
	st.errorFrames = openAIErrorFrames
	return s.writeStream(w, r, c, st, 0)
}
