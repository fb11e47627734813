package fakeupstream

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter counts requests and tokens per principal in fixed one-minute
// windows, for the rate-limit headers. It never refuses a request.
type limiter struct {
	requestLimit, inputLimit, outputLimit int64

	mu      sync.Mutex
	windows map[string]*window
}

type window struct {
	start                   time.Time
	requests, input, output int64
}

// maxWindows bounds the principals kept before stale windows are dropped.
const maxWindows = 4096

func newLimiter(requests, input, output int64) *limiter {
	return &limiter{requestLimit: requests, inputLimit: input, outputLimit: output, windows: make(map[string]*window)}
}

// quota is the state of one principal's window after a request.
type quota struct {
	limiter                 *limiter
	requests, input, output int64 // used in the window so far
	reset                   time.Time
}

// take charges one request with input and output tokens to principal at now
// and returns the window's state.
func (l *limiter) take(principal string, now time.Time, input, output int64) quota {
	start := now.Truncate(time.Minute)
	l.mu.Lock()
	defer l.mu.Unlock()
	win := l.windows[principal]
	if win == nil || !win.start.Equal(start) {
		if win == nil && len(l.windows) >= maxWindows {
			for k, v := range l.windows {
				if !v.start.Equal(start) {
					delete(l.windows, k)
				}
			}
		}
		win = &window{start: start}
		l.windows[principal] = win
	}
	win.requests++
	win.input += input
	win.output += output
	return quota{limiter: l, requests: win.requests, input: win.input, output: win.output, reset: start.Add(time.Minute)}
}

func remaining(limit, used int64) string { return strconv.FormatInt(max(0, limit-used), 10) }

// setAnthropic sets Anthropic's anthropic-ratelimit-* headers.
func (q quota) setAnthropic(h http.Header) {
	l := q.limiter
	reset := q.reset.UTC().Format(time.RFC3339)
	set := func(name string, limit, used int64) {
		h.Set("anthropic-ratelimit-"+name+"-limit", strconv.FormatInt(limit, 10))
		h.Set("anthropic-ratelimit-"+name+"-remaining", remaining(limit, used))
		h.Set("anthropic-ratelimit-"+name+"-reset", reset)
	}
	set("requests", l.requestLimit, q.requests)
	set("input-tokens", l.inputLimit, q.input)
	set("output-tokens", l.outputLimit, q.output)
	set("tokens", l.inputLimit+l.outputLimit, q.input+q.output)
}

// setOpenAI sets OpenAI's x-ratelimit-* headers; resets are durations
// from now such as "27.5s".
func (q quota) setOpenAI(h http.Header, now time.Time) {
	l := q.limiter
	reset := q.reset.Sub(now).Round(time.Millisecond).String()
	h.Set("x-ratelimit-limit-requests", strconv.FormatInt(l.requestLimit, 10))
	h.Set("x-ratelimit-limit-tokens", strconv.FormatInt(l.inputLimit+l.outputLimit, 10))
	h.Set("x-ratelimit-remaining-requests", remaining(l.requestLimit, q.requests))
	h.Set("x-ratelimit-remaining-tokens", remaining(l.inputLimit+l.outputLimit, q.input+q.output))
	h.Set("x-ratelimit-reset-requests", reset)
	h.Set("x-ratelimit-reset-tokens", reset)
}
