package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	openaisdk "github.com/openai/openai-go/v3"
	openaiopt "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/anthropic"
	"github.com/tokenmeter/tokenmeter/internal/openai"
)

// longInstructions returns about n bytes of instructions with the escapes
// and characters a real prompt has.
func longInstructions(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "Rule %d: reply in the user's language (café, 東京); quote \"exactly\" and keep\ttabs.\n", i)
	}
	return b.String()
}

// responsesStream returns a Responses stream whose response.completed
// echoes instructions of about n bytes, and the usage it reports.
func responsesStream(n int) string {
	resp := func(status string, usage any) string {
		b, _ := json.Marshal(map[string]any{
			"id": "resp_big", "object": "response", "status": status, "model": "gpt-5-2025-08-07",
			"instructions": longInstructions(n), "output": []any{}, "usage": usage,
		})
		return string(b)
	}
	usage := map[string]any{"input_tokens": 275012, "input_tokens_details": map[string]any{"cached_tokens": 1024},
		"output_tokens": 4, "output_tokens_details": map[string]any{"reasoning_tokens": 0}, "total_tokens": 275016}
	return "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":" + resp("in_progress", nil) + "}\n\n" +
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Done, \\\"ok\\\".\"}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":" + resp("completed", usage) + "}\n\n"
}

// bigReader returns its data in pieces of random size up to 64 KiB.
type bigReader struct {
	data []byte
	rng  *rand.Rand
}

func (r *bigReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:1+r.rng.IntN(min(len(r.data), len(p), 64<<10))])
	r.data = r.data[n:]
	return n, nil
}

func (r *bigReader) Close() error { return nil }

func relayBig(t *testing.T, c *call, data []byte, sse bool, seed uint64) []byte {
	t.Helper()
	c.prepareMeter()
	b := newMeteredBody(&bigReader{data: data, rng: rand.New(rand.NewPCG(seed, 3))}, c, sse)
	out, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	b.Close()
	return out
}

func lastCompleted(t *testing.T, events []tokenmeter.Event) tokenmeter.Event {
	t.Helper()
	var done []tokenmeter.Event
	for _, ev := range events {
		if ev.Kind == tokenmeter.KindCompleted {
			done = append(done, ev)
		}
	}
	if len(done) != 1 {
		t.Fatalf("%d completions recorded, want 1", len(done))
	}
	return done[0]
}

// TestOversizedCompletedMetered relays a Responses stream whose terminal
// frame is over 1 MiB: it reaches the client unchanged and its usage is
// recorded exactly (it was recorded as zero when such frames went unparsed).
func TestOversizedCompletedMetered(t *testing.T) {
	stream := []byte(responsesStream(3 << 19))
	if i := bytes.Index(stream, []byte("event: response.completed")); len(stream)-i <= DefaultMaxFrame {
		t.Fatalf("the terminal frame is %d bytes, not over MaxFrame", len(stream)-i)
	}
	for seed := range uint64(4) {
		c, rec := newTestCall(OpenAI)
		c.meter = openai.NewMeter(openai.Responses, false)
		if got := relayBig(t, c, stream, true, seed); !bytes.Equal(got, stream) {
			t.Fatalf("seed %d: the stream changed in relay (%d bytes, want %d)", seed, len(got), len(stream))
		}
		ev := lastCompleted(t, rec.events)
		want := tokenmeter.Usage{InputTokens: 275012 - 1024, CacheReadTokens: 1024, OutputTokens: 4}
		if ev.Usage != want || !ev.UsageKnown || ev.Outcome != tokenmeter.OutcomeOK || ev.Model != "gpt-5-2025-08-07" {
			t.Fatalf("seed %d: recorded %+v (known %v, outcome %s, reason %q, model %q); want %+v known", seed, ev.Usage, ev.UsageKnown, ev.Outcome, ev.Reason, ev.Model, want)
		}
	}
}

// TestOversizedTerminalHeldUntilRecorded reads an oversized terminal frame
// a few bytes at a time: the client must not have all of it before the call
// is recorded.
func TestOversizedTerminalHeldUntilRecorded(t *testing.T) {
	stream := []byte(responsesStream(3 << 19))
	c, rec := newTestCall(OpenAI)
	c.meter = openai.NewMeter(openai.Responses, false)
	pr, pw := io.Pipe()
	b := newMeteredBody(pr, c, true)
	go func() {
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 40<<10)
			pw.Write(rest[:n])
			rest = rest[n:]
		}
		pw.Close()
	}()
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := b.Read(buf)
		got = append(got, buf[:n]...)
		if bytes.HasSuffix(got, []byte("}\n\n")) && bytes.Contains(got, []byte("response.completed")) {
			done := false
			for _, ev := range rec.events {
				done = done || ev.Kind == tokenmeter.KindCompleted
			}
			if !done {
				t.Fatal("client read the whole response.completed frame before the call was recorded")
			}
		}
		if err != nil {
			break
		}
	}
	if !bytes.Equal(got, stream) {
		t.Error("stream changed in relay")
	}
}

// TestOversizedFrameOutputCounted: the output text of an oversized delta
// frame is counted for the estimate of a cut stream, and later frames are
// metered as before.
func TestOversizedFrameOutputCounted(t *testing.T) {
	text := strings.Repeat("word ", 300_000) // 1.5 MB
	data := anthropicStream[:strings.Index(anthropicStream, "event: message_delta")] +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + text + "\"}}\n\n" +
		anthropicStream[strings.Index(anthropicStream, "event: message_delta"):]
	c, rec := newTestCall(Anthropic)
	if got := relayBig(t, c, []byte(data), true, 1); string(got) != data {
		t.Fatal("oversized frame altered in relay")
	}
	if ev := lastCompleted(t, rec.events); ev.Usage.OutputTokens != 12 || ev.Usage.InputTokens != 10 || !ev.UsageKnown {
		t.Errorf("recorded %+v; the frames around the oversized one must be metered", ev.Usage)
	}
	if n := c.meter.(*anthropic.Meter).Relayed().Chars(); n != int64(len(text))+2 {
		t.Errorf("Relayed().Chars() = %d, want %d (the oversized delta and the small one)", n, len(text)+2)
	}
}

// TestOversizedFrameCut: a stream cut inside an oversized frame is metered
// from what the frame had, and relayed as far as it came.
func TestOversizedFrameCut(t *testing.T) {
	stream := responsesStream(3 << 19)
	cut := []byte(stream[:len(stream)-300_000])
	c, rec := newTestCall(OpenAI)
	c.meter = openai.NewMeter(openai.Responses, false)
	if got := relayBig(t, c, cut, true, 2); !bytes.Equal(got, cut) {
		t.Fatal("the cut stream changed in relay")
	}
	ev := lastCompleted(t, rec.events)
	size := len(cut) - strings.Index(stream, "event: response.completed")
	if ev.UsageKnown || !strings.Contains(ev.Reason, fmt.Sprintf("response.completed frame of %d bytes is not valid JSON: truncated", size)) {
		t.Errorf("a stream cut inside its terminal frame recorded usage known %v, reason %q", ev.UsageKnown, ev.Reason)
	}
}

// anthropicBody returns an Anthropic message body with about n bytes of
// text.
func anthropicBody(n int) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": "msg_big", "type": "message", "role": "assistant", "model": "claude-haiku-5-5",
		"content": []any{map[string]any{"type": "text", "text": longInstructions(n)}},
		"usage":   map[string]any{"input_tokens": 31, "cache_read_input_tokens": 7, "output_tokens": 4_100_000 / 4},
	})
	return b
}

// TestOversizedBodyMetered relays a JSON body over MaxMeteredBody (16 MiB):
// it reaches the client unchanged and its usage is recorded exactly (it was
// recorded unknown when such bodies went unparsed).
func TestOversizedBodyMetered(t *testing.T) {
	body := anthropicBody(17 << 20)
	c, rec := newTestCall(Anthropic)
	if got := relayBig(t, c, body, false, 5); !bytes.Equal(got, body) {
		t.Fatal("the body changed in relay")
	}
	ev := lastCompleted(t, rec.events)
	want := tokenmeter.Usage{InputTokens: 31, CacheReadTokens: 7, OutputTokens: 1_025_000}
	if ev.Usage != want || !ev.UsageKnown || ev.Model != "claude-haiku-5-5" || ev.Outcome != tokenmeter.OutcomeOK {
		t.Errorf("recorded %+v (known %v, model %q, outcome %s, reason %q), want %+v known", ev.Usage, ev.UsageKnown, ev.Model, ev.Outcome, ev.Reason, want)
	}
}

// TestOversizedBodyBroken: an oversized body that is not valid JSON is
// recorded with usage unknown and a reason that gives no byte of it.
func TestOversizedBodyBroken(t *testing.T) {
	body := anthropicBody(2 << 20)
	body = append(body[:len(body)-1], []byte(",SECRET}")...)
	c, rec := newTestCall(Anthropic)
	c.p.MaxMeteredBody = 1 << 20
	if got := relayBig(t, c, body, false, 6); !bytes.Equal(got, body) {
		t.Fatal("the body changed in relay")
	}
	ev := lastCompleted(t, rec.events)
	if ev.UsageKnown || !strings.Contains(ev.Reason, "not valid JSON") || strings.Contains(ev.Reason, "SECRET") {
		t.Errorf("recorded known %v, reason %q; want usage unknown, a reason without the body's bytes", ev.UsageKnown, ev.Reason)
	}
}

// completed returns the completion recorded for request id.
func (r *syncRecorder) completed(t *testing.T, id string) tokenmeter.Event {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if ev.Kind == tokenmeter.KindCompleted && ev.RequestKey == id {
			return ev
		}
	}
	t.Fatalf("no completion recorded for %s", id)
	return tokenmeter.Event{}
}

// TestOversizedThroughGateway sends a Responses stream with a 1.5 MiB
// terminal frame through the gateway over HTTP, read by the official
// OpenAI SDK and by a raw client: the SDK gets the response, the raw client
// gets the upstream's bytes unchanged, and the ledger has the SDK's usage.
func TestOversizedThroughGateway(t *testing.T) {
	stream := responsesStream(3 << 19)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 100<<10)
			io.WriteString(w, rest[:n])
			w.(http.Flusher).Flush()
			rest = rest[n:]
		}
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	rec := &syncRecorder{}
	p := New([]Route{{Name: "openai", Prefix: "/openai", Wire: OpenAI, Upstream: u}}, rec, slog.New(slog.DiscardHandler))
	gw := httptest.NewServer(p)
	defer gw.Close()

	client := openaisdk.NewClient(openaiopt.WithBaseURL(gw.URL+"/openai/v1"), openaiopt.WithAPIKey("sk-test"), openaiopt.WithMaxRetries(0))
	var raw *http.Response
	s := client.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{
		Model: "gpt-5", Input: responses.ResponseNewParamsInputUnion{OfString: openaisdk.String("hi")},
	}, openaiopt.WithResponseInto(&raw))
	var final responses.Response
	for s.Next() {
		if ev := s.Current(); ev.Type == "response.completed" {
			final = ev.Response
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if final.Usage.InputTokens != 275012 || len(final.Instructions.OfString) < 3<<19 {
		t.Fatalf("the SDK read usage %+v and %d bytes of instructions", final.Usage, len(final.Instructions.OfString))
	}
	ev := rec.completed(t, raw.Header.Get(HeaderRequestID))
	want := tokenmeter.Usage{InputTokens: final.Usage.InputTokens - final.Usage.InputTokensDetails.CachedTokens,
		CacheReadTokens: final.Usage.InputTokensDetails.CachedTokens, OutputTokens: final.Usage.OutputTokens}
	if ev.Usage != want || !ev.UsageKnown {
		t.Errorf("ledger %+v (known %v, reason %q), SDK read %+v", ev.Usage, ev.UsageKnown, ev.Reason, want)
	}

	resp, err := http.Post(gw.URL+"/openai/v1/responses", "application/json", strings.NewReader(`{"model":"gpt-5","input":"hi","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != stream {
		t.Errorf("raw client got %d bytes (err %v), the upstream sent %d; they differ", len(got), err, len(stream))
	}
}
