package counters

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Limits on what one response can add, so hostile headers cost little.
const (
	// MaxSamplesPerResponse bounds the samples read from one response.
	MaxSamplesPerResponse = 64
	// MaxRawValue bounds the bytes of a header value kept raw.
	MaxRawValue = 256
)

// Header is one response header: its name (any case) and value.
type Header struct{ Name, Value string }

// Relevant reports whether a header named name is read by Parse: any name
// containing "ratelimit" (any case), Anthropic's Priority Tier headers
// and retry-after. The gateway copies only these off a response.
func Relevant(name string) bool {
	if len(name) < 11 {
		return false
	}
	if strings.EqualFold(name, "retry-after") {
		return true
	}
	return containsFold(name, "ratelimit") || hasPrefixFold(name, "anthropic-priority-")
}

// Select returns the headers of h that Relevant accepts.
func Select(h http.Header) []Header {
	var out []Header
	for name, vs := range h {
		if len(vs) == 0 || !Relevant(name) {
			continue
		}
		out = append(out, Header{name, vs[0]})
	}
	return out
}

// containsFold reports whether s contains sub (lower-case ASCII) in any
// case.
func containsFold(s, sub string) bool {
	c0 := sub[0]
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i]|0x20 == c0 && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// unifiedSummary are the account-summary keys of Anthropic's unified
// headers (anthropic-ratelimit-unified-KEY).
var unifiedSummary = map[string]bool{
	"status": true, "reset": true, "representative-claim": true,
	"fallback-percentage": true, "fallback": true, "upgrade-paths": true,
}

// Parse reads the rate-limit headers of one response received at now on
// provider's route with credential (a Credential.ID) into samples, one per
// counter, sorted by counter. Every value is optional; a value that cannot
// be parsed leaves its field NoValue and is kept in Raw. Parse never
// fails.
//
// Formats: Anthropic anthropic-ratelimit-NAME-{limit,remaining,reset} and
// anthropic-priority-NAME-{limit,remaining,reset} (integers, RFC 3339);
// anthropic-ratelimit-unified-WINDOW-{utilization,reset,status,
// surpassed-threshold} (fraction, epoch seconds) and the summary
// anthropic-ratelimit-unified-{status,reset,representative-claim,...};
// OpenAI x-ratelimit-{limit,remaining,reset}-NAME (integers, durations
// such as 6m0s, 1s, 20ms); retry-after (seconds or an HTTP date).
func Parse(headers []Header, now time.Time, provider, credential string) []tokenmeter.Sample {
	if len(headers) == 0 {
		return nil
	}
	var samples []*tokenmeter.Sample // few: a linear search beats a map
	get := func(counter string) *tokenmeter.Sample {
		for _, s := range samples {
			if s.Counter == counter {
				return s
			}
		}
		if len(samples) >= MaxSamplesPerResponse {
			return nil
		}
		s := &tokenmeter.Sample{Time: now, Provider: provider, Credential: credential, Counter: counter,
			Limit: tokenmeter.NoValue, Remaining: tokenmeter.NoValue, Utilization: tokenmeter.NoValue,
			Source: tokenmeter.SampleGateway}
		samples = append(samples, s)
		return s
	}
	if len(headers) > MaxSamplesPerResponse {
		// More than the cap: keep the same series of every response,
		// whatever the order of the headers (http.Header is a map).
		headers = slices.Clone(headers)
		slices.SortFunc(headers, func(a, b Header) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	}
	var tc timeCache
	var claim string
	var claimed *tokenmeter.Sample
	for _, h := range headers {
		name, value := strings.ToLower(h.Name), strings.TrimSpace(h.Value)
		if !Relevant(name) || !validName(name) {
			continue
		}
		counter, field := classify(name)
		s := get(counter)
		if s == nil {
			break
		}
		if field == fieldClaim && isToken(value) {
			claim, claimed = value, s
		} else if !setField(s, field, value, now, &tc) {
			addRaw(s, name, value)
		}
	}
	if claimed != nil {
		claimed.Status += "/" + claim
	}
	out := make([]tokenmeter.Sample, len(samples))
	for i, s := range samples {
		if strings.Contains(s.Raw, "\n") {
			// The same text whatever the order of the headers.
			lines := strings.Split(s.Raw, "\n")
			slices.Sort(lines)
			s.Raw = strings.Join(lines, "\n")
		}
		out[i] = *s
	}
	slices.SortFunc(out, func(a, b tokenmeter.Sample) int { return strings.Compare(a.Counter, b.Counter) })
	return out
}

// Fields a header can set.
const (
	fieldRaw         = ""
	fieldLimit       = "limit"
	fieldRemaining   = "remaining"
	fieldResetTime   = "reset"       // RFC 3339 (or epoch)
	fieldResetEpoch  = "reset-epoch" // epoch seconds (or RFC 3339)
	fieldResetAfter  = "reset-after" // a duration from now
	fieldRetryAfter  = "retry-after" // seconds or an HTTP date
	fieldUtilization = "utilization"
	fieldStatus      = "status"
	fieldClaim       = "claim"
)

// classify maps a lower-case header name to its counter and field.
func classify(name string) (counter, field string) {
	if name == "retry-after" {
		return "retry-after", fieldRetryAfter
	}
	if rest, ok := strings.CutPrefix(name, "anthropic-ratelimit-unified-"); ok {
		if unifiedSummary[rest] {
			switch rest {
			case "status":
				return "unified", fieldStatus
			case "reset":
				return "unified", fieldResetEpoch
			case "representative-claim":
				return "unified", fieldClaim
			}
			return "unified", fieldRaw
		}
		window, f, _ := strings.Cut(rest, "-")
		if window == "" {
			return name, fieldRaw
		}
		// "unified-" + window, without a copy.
		counter := name[len("anthropic-ratelimit-") : len("anthropic-ratelimit-unified-")+len(window)]
		switch f {
		case "utilization":
			return counter, fieldUtilization
		case "reset":
			return counter, fieldResetEpoch
		case "status":
			return counter, fieldStatus
		}
		return counter, fieldRaw
	}
	for _, prefix := range []string{"anthropic-ratelimit-", "anthropic-priority-"} {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			for _, suffix := range []string{"-limit", "-remaining", "-reset"} {
				if base, ok := strings.CutSuffix(rest, suffix); ok && base != "" {
					counter := name[:len(prefix)+len(base)]
					switch suffix {
					case "-limit":
						return counter, fieldLimit
					case "-remaining":
						return counter, fieldRemaining
					}
					return counter, fieldResetTime
				}
			}
			return name, fieldRaw
		}
	}
	if rest, ok := strings.CutPrefix(name, "x-ratelimit-"); ok {
		for _, kind := range []string{"limit-", "remaining-", "reset-"} {
			if base, ok := strings.CutPrefix(rest, kind); ok && base != "" {
				switch kind {
				case "limit-":
					return "x-ratelimit-" + base, fieldLimit
				case "remaining-":
					return "x-ratelimit-" + base, fieldRemaining
				}
				return "x-ratelimit-" + base, fieldResetAfter
			}
		}
	}
	return name, fieldRaw
}

// setField sets s's field from value and reports whether value parsed.
func setField(s *tokenmeter.Sample, field, value string, now time.Time, tc *timeCache) bool {
	switch field {
	case fieldLimit, fieldRemaining:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return false
		}
		if field == fieldLimit {
			s.Limit = n
		} else {
			s.Remaining = n
		}
	case fieldResetTime, fieldResetEpoch:
		t, ok := tc.parse(value)
		if !ok {
			return false
		}
		s.Reset = t
	case fieldResetAfter:
		d, ok := ParseDuration(value)
		if !ok {
			return false
		}
		s.Reset = now.Add(d)
	case fieldRetryAfter:
		if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 && n <= maxSeconds {
			s.Reset = now.Add(time.Duration(n) * time.Second)
		} else if t, err := http.ParseTime(value); err == nil {
			s.Reset = t.UTC()
		} else {
			return false
		}
		addRaw(s, "retry-after", value) // the figure as sent, for the evidence
	case fieldUtilization:
		bp, ok := ParseFraction(value)
		if !ok {
			return false
		}
		s.Utilization = bp
	case fieldStatus:
		if !isToken(value) {
			return false
		}
		s.Status = value
	default:
		return false
	}
	return true
}

// timeCache keeps the last reset time parsed: a response repeats one
// reset in several headers.
type timeCache struct {
	v  string
	t  time.Time
	ok bool
}

func (c *timeCache) parse(v string) (time.Time, bool) {
	if v != c.v || v == "" {
		c.v = v
		c.t, c.ok = ParseTime(v)
	}
	return c.t, c.ok
}

// maxSeconds bounds durations and epochs: about 30 years.
const maxSeconds = 1 << 30

// ParseTime reads a reset time: RFC 3339, or a Unix epoch in seconds or
// (13 digits and more) milliseconds.
func ParseTime(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case n <= 0:
			return time.Time{}, false
		case n >= 1e12 && n < 1e15:
			return time.UnixMilli(n).UTC(), true
		case n < 1e11:
			return time.Unix(n, 0).UTC(), true
		}
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// ParseDuration reads OpenAI's reset durations: Go-style strings such as
// 6m0s, 1s, 20ms, 1h2m3.5s, or a bare number of seconds.
func ParseDuration(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || f < 0 || f > maxSeconds {
			return 0, false
		}
		return time.Duration(f * float64(time.Second)), true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxSeconds*time.Second {
		return 0, false
	}
	return d, true
}

// ParseFraction reads a used share given as a fraction (0.38, 1.13) into
// basis points (3800, 11300). Shares from 0 to 100 (10,000 %) are accepted.
func ParseFraction(v string) (int64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
		return 0, false
	}
	return int64(math.Round(f * 10000)), true
}

// validName reports whether name is a header name that can be a counter:
// at most 128 bytes of letters, digits, '-', '_' and '.'.
func validName(name string) bool { return len(name) <= 128 && isToken(name) }

// isToken reports whether v is a short status word.
func isToken(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// addRaw appends "name: value" to s.Raw, the value cut to MaxRawValue
// bytes of printable text.
func addRaw(s *tokenmeter.Sample, name, value string) {
	if len(value) > MaxRawValue {
		value = value[:MaxRawValue]
	}
	value = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return -1
		}
		return r
	}, value)
	if len(s.Raw) > 16*MaxRawValue {
		return
	}
	if s.Raw != "" {
		s.Raw += "\n"
	}
	s.Raw += name + ": " + value
}
