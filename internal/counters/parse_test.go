package counters_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/counters"
)

var now = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

const cred = "cred:0123456789abcdef"

func hdrs(kv ...string) []counters.Header {
	var out []counters.Header
	for i := 0; i < len(kv); i += 2 {
		out = append(out, counters.Header{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// sample is a sample at now with nothing reported.
func sample(counter string) tokenmeter.Sample {
	return tokenmeter.Sample{Time: now, Provider: "anthropic", Credential: cred, Counter: counter,
		Limit: tokenmeter.NoValue, Remaining: tokenmeter.NoValue, Utilization: tokenmeter.NoValue, Source: tokenmeter.SampleGateway}
}

func with(s tokenmeter.Sample, f func(*tokenmeter.Sample)) tokenmeter.Sample { f(&s); return s }

func TestParse(t *testing.T) {
	reset := time.Date(2026, 11, 29, 10, 1, 0, 0, time.UTC)
	epoch := time.Unix(1777500000, 0).UTC()
	tests := []struct {
		name string
		in   []counters.Header
		want []tokenmeter.Sample
	}{
		{"anthropic standard", hdrs(
			"Anthropic-Ratelimit-Requests-Limit", "50",
			"anthropic-ratelimit-requests-remaining", "49",
			"anthropic-ratelimit-requests-reset", "2026-11-29T10:01:00Z",
			"anthropic-ratelimit-tokens-limit", "100000",
			"anthropic-ratelimit-tokens-remaining", "99000",
			"anthropic-ratelimit-tokens-reset", "2026-11-29T10:01:00Z",
			"anthropic-ratelimit-input-tokens-limit", "80000",
			"anthropic-ratelimit-output-tokens-remaining", "16000",
			"Content-Type", "application/json",
		), []tokenmeter.Sample{
			with(sample("anthropic-ratelimit-input-tokens"), func(s *tokenmeter.Sample) { s.Limit = 80000 }),
			with(sample("anthropic-ratelimit-output-tokens"), func(s *tokenmeter.Sample) { s.Remaining = 16000 }),
			with(sample("anthropic-ratelimit-requests"), func(s *tokenmeter.Sample) { s.Limit, s.Remaining, s.Reset = 50, 49, reset }),
			with(sample("anthropic-ratelimit-tokens"), func(s *tokenmeter.Sample) { s.Limit, s.Remaining, s.Reset = 100000, 99000, reset }),
		}},
		{"priority tier", hdrs("anthropic-priority-input-tokens-limit", "1000", "anthropic-priority-input-tokens-reset", "2026-11-29T10:01:00.5+00:00"),
			[]tokenmeter.Sample{with(sample("anthropic-priority-input-tokens"), func(s *tokenmeter.Sample) {
				s.Limit, s.Reset = 1000, reset.Add(500*time.Millisecond)
			})}},
		{"unified", hdrs(
			"anthropic-ratelimit-unified-status", "allowed_warning",
			"anthropic-ratelimit-unified-reset", "1777500000",
			"anthropic-ratelimit-unified-representative-claim", "five_hour",
			"anthropic-ratelimit-unified-fallback-percentage", "0.5",
			"anthropic-ratelimit-unified-5h-utilization", "1.13",
			"anthropic-ratelimit-unified-5h-reset", "1777500000",
			"anthropic-ratelimit-unified-5h-status", "rejected",
			"anthropic-ratelimit-unified-5h-surpassed-threshold", "1.0",
			"anthropic-ratelimit-unified-7d_sonnet-utilization", "0.38",
			"anthropic-ratelimit-unified-overage-in-use", "false",
			"anthropic-ratelimit-unified-overage-reset", "1777500000000",
		), []tokenmeter.Sample{
			with(sample("unified"), func(s *tokenmeter.Sample) {
				s.Status, s.Reset, s.Raw = "allowed_warning/five_hour", epoch, "anthropic-ratelimit-unified-fallback-percentage: 0.5"
			}),
			with(sample("unified-5h"), func(s *tokenmeter.Sample) {
				s.Utilization, s.Reset, s.Status, s.Raw = 11300, epoch, "rejected", "anthropic-ratelimit-unified-5h-surpassed-threshold: 1.0"
			}),
			with(sample("unified-7d_sonnet"), func(s *tokenmeter.Sample) { s.Utilization = 3800 }),
			with(sample("unified-overage"), func(s *tokenmeter.Sample) {
				s.Reset, s.Raw = epoch, "anthropic-ratelimit-unified-overage-in-use: false"
			}),
		}},
		{"openai durations", hdrs(
			"x-ratelimit-limit-requests", "60",
			"x-ratelimit-remaining-requests", "59",
			"x-ratelimit-reset-requests", "1s",
			"x-ratelimit-limit-tokens", "150000",
			"x-ratelimit-remaining-tokens", "149984",
			"x-ratelimit-reset-tokens", "6m0s",
			"x-ratelimit-reset-images", "20ms",
			"x-ratelimit-reset-audio", "1.5",
		), []tokenmeter.Sample{
			with(sample("x-ratelimit-audio"), func(s *tokenmeter.Sample) { s.Reset = now.Add(1500 * time.Millisecond) }),
			with(sample("x-ratelimit-images"), func(s *tokenmeter.Sample) { s.Reset = now.Add(20 * time.Millisecond) }),
			with(sample("x-ratelimit-requests"), func(s *tokenmeter.Sample) { s.Limit, s.Remaining, s.Reset = 60, 59, now.Add(time.Second) }),
			with(sample("x-ratelimit-tokens"), func(s *tokenmeter.Sample) { s.Limit, s.Remaining, s.Reset = 150000, 149984, now.Add(6*time.Minute) }),
		}},
		{"retry-after seconds", hdrs("Retry-After", "13262"), []tokenmeter.Sample{
			with(sample("retry-after"), func(s *tokenmeter.Sample) { s.Reset, s.Raw = now.Add(13262*time.Second), "retry-after: 13262" }),
		}},
		{"retry-after date", hdrs("retry-after", "Sun, 29 Nov 2026 11:00:00 GMT"), []tokenmeter.Sample{
			with(sample("retry-after"), func(s *tokenmeter.Sample) {
				s.Reset, s.Raw = now.Add(time.Hour), "retry-after: Sun, 29 Nov 2026 11:00:00 GMT"
			}),
		}},
		{"unknown ratelimit header kept raw", hdrs("X-RateLimit-Weird", "a=1; b=2", "ratelimit-policy", "100;w=60"), []tokenmeter.Sample{
			with(sample("ratelimit-policy"), func(s *tokenmeter.Sample) { s.Raw = "ratelimit-policy: 100;w=60" }),
			with(sample("x-ratelimit-weird"), func(s *tokenmeter.Sample) { s.Raw = "x-ratelimit-weird: a=1; b=2" }),
		}},
		{"malformed values recorded raw", hdrs(
			"anthropic-ratelimit-tokens-limit", "lots",
			"anthropic-ratelimit-tokens-remaining", "-5",
			"anthropic-ratelimit-tokens-reset", "tomorrow",
			"anthropic-ratelimit-unified-5h-utilization", "NaN",
			"anthropic-ratelimit-unified-5h-status", "all\x00owed",
			"x-ratelimit-reset-tokens", "-1s",
			"retry-after", "soon",
		), []tokenmeter.Sample{
			with(sample("anthropic-ratelimit-tokens"), func(s *tokenmeter.Sample) {
				s.Raw = "anthropic-ratelimit-tokens-limit: lots\nanthropic-ratelimit-tokens-remaining: -5\nanthropic-ratelimit-tokens-reset: tomorrow"
			}),
			with(sample("retry-after"), func(s *tokenmeter.Sample) { s.Raw = "retry-after: soon" }),
			with(sample("unified-5h"), func(s *tokenmeter.Sample) {
				s.Raw = "anthropic-ratelimit-unified-5h-status: allowed\nanthropic-ratelimit-unified-5h-utilization: NaN"
			}),
			with(sample("x-ratelimit-tokens"), func(s *tokenmeter.Sample) { s.Raw = "x-ratelimit-reset-tokens: -1s" }),
		}},
		{"credentials are never read", hdrs("x-api-key", "sk-ant-secret", "Authorization", "Bearer sk-secret"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := counters.Parse(tt.in, now, "anthropic", cred)
			if len(got) == 0 {
				got = nil
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBounds(t *testing.T) {
	var in []counters.Header
	for i := range 500 {
		in = append(in, counters.Header{Name: "x-ratelimit-junk-" + strings.Repeat("a", i%7) + string(rune('a'+i%26)) + strings.Repeat("z", i), Value: strings.Repeat("v", 10000)})
	}
	got := counters.Parse(in, now, "openai", cred)
	rev := slices.Clone(in)
	slices.Reverse(rev)
	if diff := cmp.Diff(got, counters.Parse(rev, now, "openai", cred)); diff != "" {
		t.Errorf("the series kept depend on the order of the headers:\n%s", diff)
	}
	if len(got) > counters.MaxSamplesPerResponse {
		t.Errorf("%d samples from one response, want at most %d", len(got), counters.MaxSamplesPerResponse)
	}
	for _, s := range got {
		if len(s.Raw) > 20*counters.MaxRawValue {
			t.Errorf("Raw of %d bytes", len(s.Raw))
		}
	}
}

func TestSelect(t *testing.T) {
	h := http.Header{}
	h.Set("Anthropic-Ratelimit-Tokens-Limit", "1")
	h.Set("X-Ratelimit-Limit-Requests", "2")
	h.Set("Retry-After", "3")
	h.Set("Anthropic-Priority-Input-Tokens-Limit", "4")
	h.Set("X-Api-Key", "sk-secret")
	h.Set("Content-Type", "application/json")
	h.Set("Request-Id", "req_1")
	got := counters.Select(h)
	if len(got) != 4 {
		t.Errorf("Select = %v, want the four rate-limit headers", got)
	}
	for _, x := range got {
		if strings.Contains(x.Value, "secret") {
			t.Errorf("Select kept %s", x.Name)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"6m0s": 6 * time.Minute, "1s": time.Second, "20ms": 20 * time.Millisecond,
		"1h2m3.5s": time.Hour + 2*time.Minute + 3500*time.Millisecond, "27.5s": 27500 * time.Millisecond, "0": 0, "2": 2 * time.Second} {
		if got, ok := counters.ParseDuration(in); !ok || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1s", "1x", "NaN", "Inf", "1e300", "99999999999h"} {
		if got, ok := counters.ParseDuration(in); ok {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("anthropic-ratelimit-unified-5h-utilization", "0.38")
	f.Add("anthropic-ratelimit-tokens-reset", "2026-11-29T10:01:00Z")
	f.Add("x-ratelimit-reset-tokens", "6m0s")
	f.Add("retry-after", "Sun, 29 Nov 2026 11:00:00 GMT")
	f.Add("anthropic-ratelimit-unified-", "x")
	f.Add("anthropic-ratelimit--limit", "1")
	f.Fuzz(func(t *testing.T, name, value string) {
		got := counters.Parse([]counters.Header{{name, value}, {"anthropic-ratelimit-unified-representative-claim", value}}, now, "anthropic", cred)
		if len(got) > counters.MaxSamplesPerResponse {
			t.Fatalf("%d samples", len(got))
		}
		for _, s := range got {
			if s.Counter == "" || s.Time != now {
				t.Fatalf("bad sample %+v", s)
			}
			if s.Limit < tokenmeter.NoValue || s.Remaining < tokenmeter.NoValue || s.Utilization < tokenmeter.NoValue {
				t.Fatalf("negative value %+v", s)
			}
			if strings.ContainsAny(s.Raw, "\x00\r") {
				t.Fatalf("control characters in Raw %q", s.Raw)
			}
		}
	})
}
