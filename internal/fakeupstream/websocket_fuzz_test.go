package fakeupstream

import (
	"encoding/json"
	"testing"
)

// FuzzWebSocketEvent: reading a client event never panics, and echoing its
// lane into a JSON event keeps the event valid JSON with that stream_id.
func FuzzWebSocketEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"response.create","model":"m","input":"x"}`,
		`{"type":"response.create","stream_id":"lane-1","generate":false}`,
		`{"type":"response.processed","response_id":"resp_1"}`,
		`{"type":1}`,
		`{"stream_id":null,"type":"response.create"}`,
		`{"stream_id":"a\"b\\u00e9"}`,
		`{"stream_id":{}}`,
		`[]`,
		`{`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		ev := readWebSocketEvent(msg)
		if ev.bad && ev.badReason == "" {
			t.Fatal("bad event without a reason")
		}
		for _, data := range []string{`{"type":"response.created","sequence_number":0}`, `{}`} {
			out := withStreamID([]byte(data), ev)
			var v map[string]any
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("withStreamID(%s) = %q: %v", data, out, err)
			}
			if ev.streamID != nil && v["stream_id"] != *ev.streamID && json.Valid([]byte(`"`+*ev.streamID+`"`)) {
				t.Fatalf("withStreamID(%s) = %q: stream_id %v, want %q", data, out, v["stream_id"], *ev.streamID)
			}
		}
	})
}
