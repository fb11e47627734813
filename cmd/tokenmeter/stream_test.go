package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// TestNoBuffering (G4) runs an upstream that sends one event, then waits
// until the client has received it before sending the next. A gateway that
// held events back would deadlock here; the test fails on its timeout.
func TestNoBuffering(t *testing.T) {
	events := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-5-5\",\"content\":[],\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"event: ping\ndata: {\"type\":\"ping\"}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" world\"}}\n\n",
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	}
	received := make(chan int, len(events))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Request-Id", "req_lockstep")
		rc := http.NewResponseController(w)
		for i, ev := range events {
			// Send half of the frame, then the rest: a frame split across
			// reads must still be relayed once it is complete.
			half := len(ev) / 2
			fmt.Fprint(w, ev[:half])
			rc.Flush()
			fmt.Fprint(w, ev[half:])
			rc.Flush()
			if i == len(events)-1 {
				return // the gateway holds the terminal event until it is recorded
			}
			select {
			case got := <-received:
				if got != i {
					t.Errorf("client acknowledged event %d while upstream waited for %d", got, i)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("event %d (%q) did not reach the client before the upstream's next event: the gateway buffers", i, strings.SplitN(ev, "\n", 2)[0])
				return
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer up.Close()
	gw := startGateway(t, up.URL, nil)

	req, _ := http.NewRequest(http.MethodPost, gw.URL()+"/anthropic/v1/messages", strings.NewReader(`{"model":"claude-haiku-5-5","max_tokens":10,"stream":true,"messages":[]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		if sc.Text() == "" {
			received <- n
			n++
		}
	}
	if n != len(events) {
		t.Fatalf("client received %d events, want %d", n, len(events))
	}
	ev := gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
	if ev.Usage.InputTokens != 10 || ev.Usage.OutputTokens != 2 || ev.Outcome != tokenmeter.OutcomeOK {
		t.Errorf("recorded %+v; want input 10, output 2 (the final delta supersedes message_start's 1), ok", ev)
	}
}

// TestCutStreams covers streams that end early: the client going away, an
// error event, and the upstream dying mid-stream.
func TestCutStreams(t *testing.T) {
	up, tp := newUpstream(t)
	gw := startGateway(t, up.URL, nil)
	const prompt = `{"model":"claude-haiku-5-5","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"%s"}]}`

	t.Run("ClientDisconnects", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		body := fmt.Sprintf(prompt, "[[fake output=100 delay=20ms cache_read=50]]")
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL()+"/anthropic/v1/messages", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for seen := 0; seen < 5 && sc.Scan(); {
			if sc.Text() == "" {
				seen++
			}
		}
		cancel()
		resp.Body.Close()
		ev := gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
		if ev.Outcome != tokenmeter.OutcomeCancelled {
			t.Errorf("outcome %q (%s), want cancelled", ev.Outcome, ev.Reason)
		}
		if ev.UsageKnown || ev.Estimate == "" || ev.Usage.InputTokens == 0 || ev.Usage.CacheReadTokens != 50 || ev.Usage.OutputTokens < 1 {
			t.Errorf("cut stream recorded usage %+v (known %v, estimate %q); want an estimate with input and cache from message_start and output ≥ 1, never a known figure", ev.Usage, ev.UsageKnown, ev.Estimate)
		}
		id := resp.Header.Get("Request-Id")
		for range 200 {
			tp.mu.Lock()
			_, done := tp.sent[id]
			c := tp.cancelled[id]
			tp.mu.Unlock()
			if done {
				if !c {
					t.Errorf("the upstream request ran to its end: the gateway did not cancel it when the client left")
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("upstream handler still running 4s after the client left")
	})

	for _, tc := range []struct {
		fault   string
		outcome tokenmeter.Outcome
		reason  string
	}{
		{"error_event", tokenmeter.OutcomeError, "overloaded_error"},
		{"cut", tokenmeter.OutcomeFailed, "cut"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			body := fmt.Sprintf(prompt, "[[fake output=50 after=4 cache_write_1h=7 fault="+tc.fault+"]]")
			req, _ := http.NewRequest(http.MethodPost, gw.URL()+"/anthropic/v1/messages", strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
			}
			resp.Body.Close()
			ev := gw.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
			if ev.Outcome != tc.outcome || !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("outcome %q reason %q; want %q mentioning %q", ev.Outcome, ev.Reason, tc.outcome, tc.reason)
			}
			if ev.UsageKnown || ev.Estimate == "" || ev.Usage.InputTokens == 0 || ev.Usage.CacheWrite1hTokens != 7 {
				t.Errorf("usage %+v known %v estimate %q; want an estimate from what message_start reported", ev.Usage, ev.UsageKnown, ev.Estimate)
			}
		})
	}

	t.Run("UpstreamDown", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		gw2 := startGateway(t, dead.URL, nil)
		resp, body := post(t, gw2.URL()+"/openai/v1/chat/completions", nil, `{"model":"gpt-5","messages":[]}`)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `"error"`) {
			t.Errorf("unreachable upstream: %d %s; want 502 in OpenAI's error shape", resp.StatusCode, body)
		}
		ev := gw2.waitCompleted(t, resp.Header.Get(HeaderRequestIDForTest))
		if ev.Outcome != tokenmeter.OutcomeFailed || ev.Status != 502 {
			t.Errorf("recorded %+v; want failed, 502", ev)
		}
	})
}
