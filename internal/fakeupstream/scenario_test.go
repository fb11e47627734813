package fakeupstream_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/fakeupstream"
)

type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestScenarioTimeline follows the "all" scenario's unified headers and
// per-minute token counter for one credential.
func TestScenarioTimeline(t *testing.T) {
	start := time.Date(2026, 11, 30, 10, 0, 10, 0, time.UTC)
	clk := &stepClock{t: start}
	srv := httptest.NewServer(fakeupstream.New(fakeupstream.Options{Now: clk.now}))
	t.Cleanup(srv.Close)
	call := func(at time.Duration, directives string) http.Header {
		t.Helper()
		clk.set(start.Add(at))
		resp, body, err := send(srv, request{path: "/v1/messages",
			header: map[string]string{"X-Api-Key": "k1", "X-Fake-Upstream": "scenario=all input=1000 output=0 " + directives},
			body:   `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`})
		if err != nil || (resp.StatusCode != 200 && directives == "") {
			t.Fatalf("status %v %s: %v", resp.StatusCode, body, err)
		}
		return resp.Header
	}
	epoch := func(h http.Header, name string) time.Time {
		n, err := strconv.ParseInt(h.Get(name), 10, 64)
		if err != nil {
			t.Fatalf("%s = %q", name, h.Get(name))
		}
		return time.Unix(n, 0).UTC()
	}
	hour := start.Truncate(time.Hour)
	h := call(0, "")
	if got := epoch(h, "Anthropic-Ratelimit-Unified-5h-Reset"); !got.Equal(hour.Add(5 * time.Hour)) {
		t.Errorf("5h reset %s, want %s", got, hour.Add(5*time.Hour))
	}
	if h.Get("Anthropic-Ratelimit-Unified-5h-Utilization") != "0.0010" || h.Get("Anthropic-Ratelimit-Unified-Status") != "allowed" ||
		h.Get("Anthropic-Ratelimit-Unified-Representative-Claim") != "five_hour" {
		t.Errorf("unified headers %v", h)
	}
	// The drift minute: the token counter charges phantom tokens.
	before := call(2*time.Minute, "")
	used := func(h http.Header) int64 {
		lim, _ := strconv.ParseInt(h.Get("Anthropic-Ratelimit-Tokens-Limit"), 10, 64)
		rem, _ := strconv.ParseInt(h.Get("Anthropic-Ratelimit-Tokens-Remaining"), 10, 64)
		return lim - rem
	}
	if got := used(before); got != 1000+fakeupstream.DriftPhantomTokens {
		t.Errorf("tokens used in the drift minute %d, want %d", got, 1000+fakeupstream.DriftPhantomTokens)
	}
	if got := used(call(3*time.Minute, "")); got != 1000 {
		t.Errorf("tokens used after the drift minute %d, want 1000", got)
	}
	if got := call(11*time.Minute, "").Get("Anthropic-Ratelimit-Requests-Limit"); got != strconv.Itoa(fakeupstream.DefaultRequestsPerMinute/2) {
		t.Errorf("request limit after the change %s", got)
	}
	if got := epoch(call(time.Hour, ""), "Anthropic-Ratelimit-Unified-5h-Reset"); !got.Equal(hour.Add(6 * time.Hour)) {
		t.Errorf("5h reset after T0+1h %s, want %s", got, hour.Add(6*time.Hour))
	}
	h = call(2*time.Hour, "")
	if got := epoch(h, "Anthropic-Ratelimit-Unified-5h-Reset"); !got.Equal(hour.Add(7*time.Hour)) || h.Get("Anthropic-Ratelimit-Unified-5h-Utilization") != "0.0010" {
		t.Errorf("after the early reset: reset %s, utilization %s", got, h.Get("Anthropic-Ratelimit-Unified-5h-Utilization"))
	}
	// An injected 429 carries the headers too; the 7-day window slides.
	h = call(2*time.Hour+time.Minute, "status=429")
	if h.Get("Anthropic-Ratelimit-Unified-7d-Utilization") == "" || !epoch(h, "Anthropic-Ratelimit-Unified-7d-Reset").Equal(hour.Add(7*24*time.Hour)) {
		t.Errorf("7d headers on a 429: %v", h)
	}
	h = call(7*24*time.Hour+30*time.Minute, "") // the hour 10:00 has left the window
	if !epoch(h, "Anthropic-Ratelimit-Unified-7d-Reset").Equal(hour.Add(7*24*time.Hour + time.Hour)) {
		t.Errorf("7d reset after a week: %s", h.Get("Anthropic-Ratelimit-Unified-7d-Reset"))
	}
}

func TestScenarioDirective(t *testing.T) {
	_, srv := mustServe(t)
	resp, body, err := send(srv, request{path: "/v1/messages", header: map[string]string{"X-Fake-Upstream": "scenario=chaos"},
		body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`})
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("scenario=chaos: %v %s, %v; want 400", resp.StatusCode, body, err)
	}
	resp, _, _ = send(srv, request{path: "/v1/messages", body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`})
	if resp.Header.Get("Anthropic-Ratelimit-Unified-5h-Utilization") != "" {
		t.Error("unified headers without a scenario")
	}
}
