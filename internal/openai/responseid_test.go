package openai

import (
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/sse"
)

// TestResponseID: the meter keeps the id the response gives itself, so the
// gateway can record it (an importer's record of the same response names
// it: Codex's token_usage_record.response_id).
func TestResponseID(t *testing.T) {
	m := NewMeter(Responses, false)
	m.Frame(sse.Event{Name: "response.created", Data: []byte(`{"type":"response.created","response":{"id":"resp_1","model":"gpt-5.4"}}`)})
	if m.ResponseID() != "resp_1" {
		t.Errorf("after response.created: %q, want resp_1", m.ResponseID())
	}
	m.Frame(sse.Event{Data: []byte(`{"type":"response.completed","response":{"id":"resp_1","model":"gpt-5.4","usage":{"input_tokens":1,"output_tokens":1}}}`)})
	if m.ResponseID() != "resp_1" {
		t.Errorf("after response.completed: %q, want resp_1", m.ResponseID())
	}

	c := NewMeter(Chat, false)
	c.Frame(sse.Event{Data: []byte(`{"id":"chatcmpl-9","model":"gpt-5.4","choices":[]}`)})
	if c.ResponseID() != "chatcmpl-9" {
		t.Errorf("chat stream: %q, want chatcmpl-9", c.ResponseID())
	}
	b := NewMeter(Responses, false)
	b.Body([]byte(`{"id":"resp_2","model":"gpt-5.4","usage":{"input_tokens":1,"output_tokens":1}}`))
	if b.ResponseID() != "resp_2" {
		t.Errorf("body: %q, want resp_2", b.ResponseID())
	}
}
