package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tokenmeter/tokenmeter"
)

// FuzzWebSocketEnvelope: reading a message's envelope never panics, keeps
// its strings bounded, and agrees with a JSON decoder on the type of any
// valid object whose type is a short string.
func FuzzWebSocketEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"type":"response.create","model":"gpt-5.4","input":"hi","stream_id":"a"}`,
		`{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","usage":{"input_tokens":3,"output_tokens":4}}}`,
		`{"type":"error","status":429,"error":{"type":"requests","code":"rate_limit_exceeded","message":"slow down"},"headers":{"retry-after":"1"}}`,
		`{"type":"error","error":{"code":"response_already_in_flight"},"stream_id":null}`,
		`{"type":"er\u0072or","status":"429"}`,
		`{"type":"x","type":"response.create"}`,
		`{"status":99999999999999999999}`,
		`[1,2]`,
		`{"type":`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		e := readEnvelope(msg)
		if len(e.typ) > maxEnvelopeString || len(e.code) > maxEnvelopeString || len(e.lane()) > maxEnvelopeString {
			t.Fatalf("envelope strings too long: %d %d %d", len(e.typ), len(e.code), len(e.lane()))
		}
		if e.status != 0 && (e.status < 100 || e.status > 599) {
			t.Fatalf("status %d outside 100..599", e.status)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(msg, &m) != nil {
			return
		}
		var typ string
		if raw, ok := m["type"]; ok && json.Unmarshal(raw, &typ) == nil && len(typ) <= maxEnvelopeString/2 && !bytes.Contains(raw, []byte(`\`)) {
			if e.typ != typ {
				t.Fatalf("type %q, a JSON decoder reads %q", e.typ, typ)
			}
		}
	})
}

// FuzzWebSocketMetering feeds arbitrary upstream messages (one per line)
// to a relay with three requests in flight on two lanes: whatever arrives,
// nothing panics, every call is recorded exactly once, and no count is
// negative.
func FuzzWebSocketMetering(f *testing.F) {
	f.Add([]byte(`{"type":"response.created","response":{"id":"resp_1","model":"gpt-5.4"}}
{"type":"response.output_text.delta","delta":"hi"}
{"type":"response.completed","response":{"id":"resp_1","model":"gpt-5.4","usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":3}}}
{"type":"error","status":429,"error":{"type":"requests","message":"no"}}
{"type":"response.created","stream_id":"b","response":{"id":"resp_2"}}
{"type":"error","stream_id":"b","sequence_number":3,"code":"server_error","message":"x"}
{"type":"response.failed","stream_id":"b","response":{"id":"resp_2","error":{"code":"server_error"}}}`))
	f.Add([]byte(`{"type":"response.created","stream_id":"z","response":{}}
{"type":"response.completed","stream_id":"z","response":{"usage":{"input_tokens":-1}}}
{"type":"response.incomplete","response":{"usage":"x"}}
{"type":"error","error":{"code":"response_already_in_flight"}}`))
	f.Add([]byte("not json\n{\n{\"type\":\"response.completed\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c0, rec := newTestCall(OpenAI)
		rl := &wsRelay{p: c0.p, hs: c0, req: &httpRequestForFuzz, rest: "/v1/responses", lanes: map[string][]*wsCall{}}
		keys := map[string]bool{}
		for _, lane := range []string{"", "", "b"} {
			c := rl.newCall(context.Background())
			body := []byte(`{"type":"response.create","model":"gpt-5.4"}`)
			rl.prepare(c, &body)
			c.started = rl.p.rec.Submit(c.event(tokenmeter.KindStarted))
			rl.lanes[lane] = append(rl.lanes[lane], &wsCall{call: c, lane: lane})
			keys[c.id] = true
		}
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			env := readEnvelope(line)
			c := rl.attribute(context.Background(), env)
			if c == nil {
				continue
			}
			keys[c.id] = true
			c.seen = true
			if c.observe(env, line) {
				rl.pop(c)
				c.finish(tokenmeter.OutcomeOK, "", false)
			}
		}
		for _, q := range rl.lanes {
			for _, c := range q {
				c.finish(tokenmeter.OutcomeCancelled, "client disconnected", false)
			}
		}
		completed := map[string]int{}
		for _, ev := range rec.events {
			if ev.Kind != tokenmeter.KindCompleted {
				continue
			}
			completed[ev.RequestKey]++
			u := ev.Usage
			if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWrite5mTokens < 0 || u.ReasoningTokens < 0 {
				t.Fatalf("negative usage %+v", u)
			}
		}
		for k := range keys {
			if completed[k] != 1 {
				t.Fatalf("call %s recorded %d times", k, completed[k])
			}
		}
		if len(completed) != len(keys) {
			t.Fatalf("%d calls recorded, %d made", len(completed), len(keys))
		}
	})
}

// httpRequestForFuzz stands for a handshake request: a POST (as prepare
// reads it) with a credential.
var httpRequestForFuzz = func() http.Request {
	r, _ := http.NewRequest(http.MethodPost, "http://gw/openai/v1/responses", nil)
	r.Header.Set("Authorization", "Bearer sk-fuzz")
	return *r
}()
