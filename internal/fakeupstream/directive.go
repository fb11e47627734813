package fakeupstream

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"
)

// DirectiveHeader is the request header that carries directives.
const DirectiveHeader = "X-Fake-Upstream"

// Fault names accepted by the fault directive.
const (
	FaultErrorEvent = "error_event"
	FaultCut        = "cut"
	FaultMalformed  = "malformed"
)

// directives are the choices a request makes about its reply. input,
// output, retryAfter, after and backgroundDelay are -1 when the request did
// not set them; the other counts default to 0.
type directives struct {
	input, output                         int64
	reasoning, cacheRead                  int64
	cacheWrite5m, cacheWrite1h, webSearch int64
	status                                int
	retryAfter                            int64
	fault                                 string
	after                                 int
	ttfb, delay                           time.Duration
	scenario                              string        // see scenario.go
	backgroundDelay                       time.Duration // -1 when not set
}

func (d directives) retryAfterOr(def int64) int64 {
	if d.retryAfter >= 0 {
		return d.retryAfter
	}
	return def
}

// maxDirectiveLen bounds the text between "[[fake" and "]]".
const maxDirectiveLen = 4096

// parseDirectives reads the directives in body ("[[fake k=v ...]]", in
// order) and then in the header values ("k=v k=v" or "k=v,k=v").
func parseDirectives(header []string, body []byte) (directives, error) {
	d := directives{input: -1, output: -1, retryAfter: -1, after: -1, backgroundDelay: -1}
	const open, end = "[[fake", "]]"
	for rest := body; ; {
		i := bytes.Index(rest, []byte(open))
		if i < 0 {
			break
		}
		rest = rest[i+len(open):]
		j := bytes.Index(rest, []byte(end))
		if j < 0 {
			break
		}
		inner := rest[:j]
		rest = rest[j+len(end):]
		if j > maxDirectiveLen || (len(inner) > 0 && !isDirectiveSep(rune(inner[0]))) {
			continue // "[[fakery]]" or runaway text is not a directive
		}
		if err := d.apply(string(inner)); err != nil {
			return d, err
		}
	}
	for _, h := range header {
		if err := d.apply(h); err != nil {
			return d, err
		}
	}
	return d, nil
}

func isDirectiveSep(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' }

// apply sets the directives listed in s.
func (d *directives) apply(s string) error {
	for _, field := range strings.FieldsFunc(s, isDirectiveSep) {
		key, value, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		if err := d.set(key, value); err != nil {
			return err
		}
	}
	return nil
}

func (d *directives) set(key, value string) error {
	count := func(dst *int64, max int64) error {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || n > max {
			return invalidRequest("fake-upstream: directive %s=%q: want an integer from 0 to %d", key, value, max)
		}
		*dst = n
		return nil
	}
	duration := func(dst *time.Duration) error {
		v, err := time.ParseDuration(value)
		if err != nil || v < 0 {
			return invalidRequest("fake-upstream: directive %s=%q: want a non-negative Go duration such as 250ms", key, value)
		}
		*dst = v
		return nil
	}
	const maxCount = 1 << 40
	switch key {
	case "input":
		return count(&d.input, maxCount)
	case "output":
		return count(&d.output, MaxOutputTokens)
	case "reasoning":
		return count(&d.reasoning, maxCount)
	case "cache_read":
		return count(&d.cacheRead, maxCount)
	case "cache_write_5m":
		return count(&d.cacheWrite5m, maxCount)
	case "cache_write_1h":
		return count(&d.cacheWrite1h, maxCount)
	case "web_search":
		return count(&d.webSearch, maxCount)
	case "retry_after":
		return count(&d.retryAfter, maxCount)
	case "after":
		var n int64
		if err := count(&n, maxCount); err != nil {
			return err
		}
		d.after = int(min(n, math.MaxInt32)) // streams are shorter anyway
	case "status":
		n, err := strconv.Atoi(value)
		if err != nil || n < 400 || n > 599 {
			return invalidRequest("fake-upstream: directive status=%q: want an HTTP error status from 400 to 599", value)
		}
		d.status = n
	case "fault":
		switch value {
		case FaultErrorEvent, FaultCut, FaultMalformed:
			d.fault = value
		default:
			return invalidRequest("fake-upstream: directive fault=%q: want %s, %s or %s", value, FaultErrorEvent, FaultCut, FaultMalformed)
		}
	case "scenario":
		if !ValidScenario(value) {
			return invalidRequest("fake-upstream: directive scenario=%q: want steady, drift, reset-moved, early-reset, limit-change or all", value)
		}
		d.scenario = value
	case "ttfb":
		return duration(&d.ttfb)
	case "delay":
		return duration(&d.delay)
	case "background_delay":
		if err := duration(&d.backgroundDelay); err != nil {
			return err
		}
		d.backgroundDelay = min(d.backgroundDelay, MaxBackgroundDelay)
	}
	return nil
}
