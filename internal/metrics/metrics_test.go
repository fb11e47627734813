package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/metrics"
)

// scrape serves m's handler and parses the text it answers.
func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d\n%s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, rec.Body)
	}
	return fams
}

// value returns the value of the series of fam whose labels include want.
func value(fams map[string]*dto.MetricFamily, fam string, want map[string]string) (float64, bool) {
	f := fams[fam]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	m := metrics.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.MaxModels = 2
	ev := func(model, principal string, status int, u tokenmeter.Usage) *tokenmeter.Event {
		return &tokenmeter.Event{Provider: "anthropic", Model: model, Principal: principal, Status: status, Usage: u,
			Latency: 2 * time.Second, Cost: 1500, CostKnown: true}
	}
	m.Completed(ev("claude-a", "key:alice", 200, tokenmeter.Usage{InputTokens: 10, OutputTokens: 5, ReasoningTokens: 2, CacheReadTokens: 7}))
	m.Completed(ev("claude-a", "cred:0123456789abcdef", 429, tokenmeter.Usage{}))
	m.Completed(ev("claude-b", "", 200, tokenmeter.Usage{InputTokens: 1}))
	m.Completed(ev("hostile-1", "key:alice", 0, tokenmeter.Usage{InputTokens: 3}))
	cut := ev("claude-a", "key:alice", 200, tokenmeter.Usage{InputTokens: 40, OutputTokens: 60})
	cut.Estimate = "output: 240 relayed characters, 4 characters per token"
	m.Completed(cut)
	m.FirstByte("anthropic", 300*time.Millisecond)
	m.Commit(3, time.Millisecond, nil)
	m.Commit(2, time.Millisecond, io.EOF)
	m.Alerts(func(context.Context) (map[[2]string]int64, error) {
		return map[[2]string]int64{{"threshold", "warning"}: 1}, nil
	})
	m.QueueDepth(func() int { return 4 })
	m.Limits(func(context.Context) ([]metrics.LimitState, error) {
		return []metrics.LimitState{{Name: "daily", Scope: "key:alice", Metric: "tokens", Mode: "hard", Used: 25, Max: 100}}, nil
	})
	m.Counters(func(context.Context) ([]metrics.CounterValue, error) {
		rem, lim := int64(9000), int64(10000)
		return []metrics.CounterValue{{Provider: "anthropic", Credential: "c1", Counter: "anthropic-ratelimit-tokens", Remaining: &rem, Limit: &lim}}, nil
	})
	fams := scrape(t, m)
	for _, c := range []struct {
		fam    string
		labels map[string]string
		want   float64
	}{
		{"tokenmeter_tokens_total", map[string]string{"model": "claude-a", "kind": "input", "key": "alice"}, 50},
		{"tokenmeter_tokens_total", map[string]string{"model": "claude-a", "kind": "output", "key": "alice"}, 65},
		{"tokenmeter_tokens_total", map[string]string{"model": "claude-a", "kind": "reasoning", "key": "alice"}, 2},
		{"tokenmeter_tokens_total", map[string]string{"model": "claude-a", "kind": "cache_read", "key": "alice"}, 7},
		{"tokenmeter_tokens_total", map[string]string{"model": "claude-b", "kind": "input", "key": "passthrough"}, 1},
		{"tokenmeter_tokens_total", map[string]string{"model": "other", "kind": "input", "key": "alice"}, 3},
		{"tokenmeter_requests_total", map[string]string{"model": "claude-a", "status_class": "2xx"}, 2},
		{"tokenmeter_usage_state_requests_total", map[string]string{"state": "estimated"}, 1},
		{"tokenmeter_usage_state_requests_total", map[string]string{"state": "unknown"}, 4},
		{"tokenmeter_estimated_tokens_total", map[string]string{"provider": "anthropic"}, 100},
		{"tokenmeter_requests_total", map[string]string{"model": "claude-a", "status_class": "4xx"}, 1},
		{"tokenmeter_requests_total", map[string]string{"model": "other", "status_class": "none"}, 1},
		{"tokenmeter_cost_dollars_total", map[string]string{"model": "claude-a", "key": "alice"}, 0.003},
		{"tokenmeter_request_duration_seconds", map[string]string{"provider": "anthropic"}, 5},
		{"tokenmeter_time_to_first_byte_seconds", map[string]string{"provider": "anthropic"}, 1},
		{"tokenmeter_ledger_commit_duration_seconds", nil, 2},
		{"tokenmeter_ledger_events_total", map[string]string{"result": "committed"}, 3},
		{"tokenmeter_ledger_events_total", map[string]string{"result": "failed"}, 2},
		{"tokenmeter_ledger_queue_depth", nil, 4},
		{"tokenmeter_alerts_fired_total", map[string]string{"kind": "threshold", "severity": "warning"}, 1},
		{"tokenmeter_limit_utilization_ratio", map[string]string{"limit": "daily", "scope": "key:alice"}, 0.25},
		{"tokenmeter_limit_used", map[string]string{"limit": "daily"}, 25},
		{"tokenmeter_provider_ratelimit_remaining", map[string]string{"provider": "anthropic", "counter": "anthropic-ratelimit-tokens"}, 9000},
		{"tokenmeter_provider_ratelimit_limit", map[string]string{"credential": "c1"}, 10000},
	} {
		got, ok := value(fams, c.fam, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v); want %v", c.fam, c.labels, got, ok, c.want)
		}
	}
	// No principal hash ever becomes a label.
	for name, f := range fams {
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if strings.Contains(l.GetValue(), "cred:") || strings.Contains(l.GetValue(), "0123456789abcdef") {
					t.Errorf("%s has label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestStatusClassKeyLabel(t *testing.T) {
	for _, c := range []struct {
		status int
		want   string
	}{{200, "2xx"}, {0, "none"}, {429, "4xx"}, {529, "5xx"}, {99, "none"}, {1000, "none"}} {
		if got := metrics.StatusClass(c.status); got != c.want {
			t.Errorf("StatusClass(%d) = %q, want %q", c.status, got, c.want)
		}
	}
	for _, c := range []struct{ p, want string }{{"key:bob", "bob"}, {"key:", "passthrough"}, {"cred:abc", "passthrough"}, {"", "passthrough"}} {
		if got := metrics.KeyLabel(c.p); got != c.want {
			t.Errorf("KeyLabel(%q) = %q, want %q", c.p, got, c.want)
		}
	}
}

// TestHostileLabels: model names, route names and key names of any size,
// number or encoding keep /metrics small and well-formed (issue 12: five
// requests with 32 MiB model names made it 70 MB).
func TestHostileLabels(t *testing.T) {
	m := metrics.New(slog.New(slog.DiscardHandler))
	huge := strings.Repeat("m", 32<<20)
	for i := range 5 {
		m.Completed(&tokenmeter.Event{Provider: "openai", Model: huge + fmt.Sprint(i), Principal: "key:" + huge, Status: 200,
			Usage: tokenmeter.Usage{InputTokens: 1}})
	}
	for i := range 5000 {
		m.Completed(&tokenmeter.Event{Provider: fmt.Sprintf("route-%d", i), Model: fmt.Sprintf("model-%d-%s", i, strings.Repeat("x", 100)),
			Principal: fmt.Sprintf("key:k%d", i), Status: 200})
		m.FirstByte(fmt.Sprintf("route-%d", i), time.Millisecond)
	}
	m.Completed(&tokenmeter.Event{Provider: "openai", Model: "bad\xff\xfeutf8", Principal: "key:\xc3", Status: 200})
	m.Counters(func(context.Context) ([]metrics.CounterValue, error) {
		one := int64(1)
		return []metrics.CounterValue{{Provider: "x", Credential: "c", Counter: "x-ratelimit-\xff" + huge, Remaining: &one}}, nil
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Body.Len() > 8<<20 {
		t.Fatalf("/metrics is %d MiB after hostile calls", rec.Body.Len()>>20)
	}
	fams := scrape(t, m)
	distinct := map[string]map[string]bool{}
	for _, f := range fams {
		call := strings.HasPrefix(f.GetName(), "tokenmeter_tokens") || strings.HasPrefix(f.GetName(), "tokenmeter_request") ||
			strings.HasPrefix(f.GetName(), "tokenmeter_time_to_first_byte") || strings.HasPrefix(f.GetName(), "tokenmeter_cost")
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if len(l.GetValue()) > metrics.DefaultMaxLabelLength {
					t.Errorf("%s has a %d-byte %s label", f.GetName(), len(l.GetValue()), l.GetName())
				}
				if !call {
					continue
				}
				if distinct[l.GetName()] == nil {
					distinct[l.GetName()] = map[string]bool{}
				}
				distinct[l.GetName()][l.GetValue()] = true
			}
		}
	}
	for label, max := range map[string]int{"model": metrics.DefaultMaxModels, "provider": metrics.DefaultMaxLabelValues, "key": metrics.DefaultMaxLabelValues} {
		if n := len(distinct[label]); n > max+1 {
			t.Errorf("label %s has %d distinct values, want at most %d and %q", label, n, max, metrics.Other)
		}
		if !distinct[label][metrics.Other] {
			t.Errorf("label %s never became %q", label, metrics.Other)
		}
	}
	t.Logf("/metrics after 5 calls with 32 MiB names and 5000 distinct routes, models and keys: %d KiB", rec.Body.Len()>>10)
}

func TestClipLabel(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"claude-sonnet-4-5", 128, "claude-sonnet-4-5"},
		{"abcdef", 3, "abc"},
		{"ab\xffc", 10, "ab\uFFFDc"},
		{"aé", 2, "a"},    // never a cut rune
		{"a\xff", 2, "a"}, // U+FFFD would not fit
		{"日本語", 7, "日本"},
	} {
		if got := metrics.ClipLabel(c.in, c.max); got != c.want {
			t.Errorf("ClipLabel(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
