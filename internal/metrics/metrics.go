// Package metrics exposes tokenmeter's Prometheus metrics at /metrics,
// with the official Go client (github.com/prometheus/client_golang).
//
// What it guarantees:
//   - Counters move only from what the gateway records: tokens and
//     requests are counted from each call's completed event (the same
//     event the ledger appends), so over a gateway's lifetime
//     tokenmeter_tokens_total equals the ledger's sums for its proxied calls.
//   - Low cardinality: no label holds a request id, a principal hash or any
//     secret. Keys appear by virtual key name, or "passthrough" for calls
//     made with the client's own credential.
//   - Bounded labels: values that come from clients or upstreams (model,
//     provider route, key name, the limit and counter labels) are cut to
//     MaxLabelLength bytes of valid UTF-8, and each label of the call
//     metrics keeps at most MaxModels (model) or MaxLabelValues (provider,
//     key) distinct values per process; later ones are counted under
//     "other". No sequence of requests makes /metrics grow without bound.
//   - Scraping reads state (queue depth, limits) when asked and never
//     blocks the gateway: limit utilisation is read from the store with a
//     deadline (ScrapeTimeout).
//
// Metrics holds its own registry; nothing is registered globally.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tokenmeter/tokenmeter"
)

// Defaults for Metrics' tuning fields.
const (
	// DefaultMaxModels bounds the distinct model label values.
	DefaultMaxModels = 200
	// DefaultMaxLabelValues bounds the distinct values of the provider and
	// key labels.
	DefaultMaxLabelValues = 1000
	// DefaultMaxLabelLength bounds a label value, in bytes.
	DefaultMaxLabelLength = 128
	// DefaultScrapeTimeout bounds the store reads of one scrape.
	DefaultScrapeTimeout = 5 * time.Second
)

// Passthrough is the key label of calls made without a virtual key.
const Passthrough = "passthrough"

// Other is the value of a label once its distinct values reached their
// bound (MaxModels, MaxLabelValues).
const Other = "other"

// OtherModel is the model label once MaxModels distinct models were seen.
const OtherModel = Other

// Token kinds, the values of the kind label of tokenmeter_tokens_total.
// They are the report's categories: output includes reasoning, which is
// also counted on its own under reasoning (so do not sum kinds blindly:
// sum input, output, cache_write_5m, cache_write_1h and cache_read for
// the total).
const (
	KindInput        = "input"
	KindOutput       = "output"
	KindCacheWrite5m = "cache_write_5m"
	KindCacheWrite1h = "cache_write_1h"
	KindCacheRead    = "cache_read"
	KindReasoning    = "reasoning"
)

// LimitState is one limit's utilisation, for tokenmeter_limit_utilization_ratio.
type LimitState struct {
	Name, Scope, Metric, Mode string
	Used, Max                 int64
}

// CounterValue is the last sample of one provider rate-limit counter;
// nil fields were not in the headers.
type CounterValue struct {
	// Credential is the counter's credential id (never a credential).
	Provider, Credential, Counter string
	Limit, Remaining              *int64
	// Utilization is the used share in basis points (Anthropic's unified
	// subscription counters).
	Utilization *int64
}

// Metrics records the gateway's metrics and serves them.
type Metrics struct {
	// MaxModels bounds distinct model labels; set before use.
	MaxModels int
	// MaxLabelValues bounds the distinct values of the provider and key
	// labels; set before use.
	MaxLabelValues int
	// MaxLabelLength bounds every label value that comes from a client or
	// an upstream, in bytes; set before use.
	MaxLabelLength int
	// ScrapeTimeout bounds the store reads of a scrape.
	ScrapeTimeout time.Duration

	reg *prometheus.Registry
	log *slog.Logger

	tokens   *prometheus.CounterVec
	requests *prometheus.CounterVec
	// states counts calls by the state of their usage; estimated the
	// tokens of calls whose usage is estimated.
	states    *prometheus.CounterVec
	estimated *prometheus.CounterVec
	cost      *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	ttfb      *prometheus.HistogramVec
	commit    prometheus.Histogram
	commits   *prometheus.CounterVec

	mu        sync.Mutex
	models    map[string]bool
	providers map[string]bool
	keys      map[string]bool
}

// Buckets of the request duration and time-to-first-byte histograms, in
// seconds: LLM calls take from tens of milliseconds (errors, count_tokens)
// to many minutes (long streams).
var (
	DurationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	TTFBBuckets     = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	CommitBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}
)

// New returns Metrics with the process and Go collectors and tokenmeter's
// own metrics registered.
func New(log *slog.Logger) *Metrics {
	m := &Metrics{MaxModels: DefaultMaxModels, MaxLabelValues: DefaultMaxLabelValues, MaxLabelLength: DefaultMaxLabelLength,
		ScrapeTimeout: DefaultScrapeTimeout, reg: prometheus.NewRegistry(), log: log,
		models: map[string]bool{}, providers: map[string]bool{}, keys: map[string]bool{}}
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmeter_tokens_total",
		Help: "Tokens of completed proxied calls, by provider, model, token kind (input, output, cache_write_5m, cache_write_1h, cache_read, reasoning; output includes reasoning) and key (virtual key name or passthrough).",
	}, []string{"provider", "model", "kind", "key"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmeter_requests_total",
		Help: "Completed proxied calls by provider, model and status class (2xx, 4xx, 5xx, ...; none when no response came).",
	}, []string{"provider", "model", "status_class"})
	m.states = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmeter_usage_state_requests_total",
		Help: "Completed proxied calls by provider and the state of their usage: known (the provider's figure), estimated (the gateway's estimate: a cut stream, a response not read in full) or unknown (no basis: unmetered endpoints, background responses, no response).",
	}, []string{"provider", "state"})
	m.estimated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmeter_estimated_tokens_total",
		Help: "Tokens of completed proxied calls whose usage is estimated (included in tokenmeter_tokens_total), by provider.",
	}, []string{"provider"})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmeter_cost_dollars_total",
		Help: "Cost of completed proxied calls in US dollars (priced calls only), by provider, model and key.",
	}, []string{"provider", "model", "key"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tokenmeter_request_duration_seconds",
		Help:    "Time from a proxied request's arrival to its completion, by provider.",
		Buckets: DurationBuckets,
	}, []string{"provider"})
	m.ttfb = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tokenmeter_time_to_first_byte_seconds",
		Help:    "Time from a proxied request's arrival to the upstream's response headers, by provider.",
		Buckets: TTFBBuckets,
	}, []string{"provider"})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tokenmeter_ledger_commit_duration_seconds",
		Help:    "Duration of the ledger writer's batch commits.",
		Buckets: CommitBuckets,
	})
	m.commits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenmeter_ledger_events_total",
		Help: "Events the ledger writer handled, by result (committed, failed).",
	}, []string{"result"})
	m.reg.MustRegister(m.tokens, m.requests, m.states, m.estimated, m.cost, m.duration, m.ttfb, m.commit, m.commits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (or
// OpenMetrics, if the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogErrors{m.log}, ErrorHandling: promhttp.ContinueOnError})
}

type slogErrors struct{ log *slog.Logger }

func (l slogErrors) Println(v ...any) {
	if l.log != nil {
		l.log.Warn("metrics scrape error", "err", strings.TrimSpace(fmtArgs(v)))
	}
}

func fmtArgs(v []any) string {
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		if e, ok := x.(error); ok {
			b.WriteString(e.Error())
		} else if s, ok := x.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

// KeyLabel returns the key label of a principal: the virtual key's name
// for "key:NAME", Passthrough for anything else (a credential hash is
// never a label).
func KeyLabel(principal string) string {
	if name, ok := strings.CutPrefix(principal, "key:"); ok && name != "" {
		return name
	}
	return Passthrough
}

// StatusClass returns "2xx" for 200..299 and so on, "none" for 0.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// ClipLabel returns v as a label value of at most max bytes: valid UTF-8
// (invalid bytes become U+FFFD), cut at a character boundary.
func ClipLabel(v string, max int) string {
	if len(v) <= max && utf8.ValidString(v) {
		return v
	}
	if len(v) > max {
		v = v[:max] // never convert more than max bytes below
	}
	v = strings.ToValidUTF8(v, "\uFFFD")
	for len(v) > max {
		_, n := utf8.DecodeLastRuneInString(v)
		v = v[:len(v)-n]
	}
	return v
}

// bounded returns the label value of v: clipped to MaxLabelLength, and
// Other once seen holds max other values. m.mu must be held.
func (m *Metrics) bounded(seen map[string]bool, v string, max int) string {
	v = ClipLabel(v, m.MaxLabelLength)
	if seen[v] {
		return v
	}
	if len(seen) >= max {
		return Other
	}
	seen[v] = true
	return v
}

// labels returns the bounded provider, model and key labels of a call.
func (m *Metrics) labels(provider, model, principal string) (string, string, string) {
	if model == "" {
		model = "unknown"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bounded(m.providers, provider, m.MaxLabelValues), m.bounded(m.models, model, m.MaxModels),
		m.bounded(m.keys, KeyLabel(principal), m.MaxLabelValues)
}

// FirstByte observes a call's time to first byte (the upstream's response
// headers). The proxy calls it once per call that got a response.
func (m *Metrics) FirstByte(provider string, d time.Duration) {
	m.mu.Lock()
	provider = m.bounded(m.providers, provider, m.MaxLabelValues)
	m.mu.Unlock()
	m.ttfb.WithLabelValues(provider).Observe(d.Seconds())
}

// Completed counts a proxied call's completed event.
func (m *Metrics) Completed(ev *tokenmeter.Event) {
	provider, model, key := m.labels(ev.Provider, ev.Model, ev.Principal)
	m.requests.WithLabelValues(provider, model, StatusClass(ev.Status)).Inc()
	m.duration.WithLabelValues(provider).Observe(ev.Latency.Seconds())
	state := ev.UsageState()
	m.states.WithLabelValues(provider, string(state)).Inc()
	if est := m.estimated.WithLabelValues(provider); state == tokenmeter.UsageStateEstimated {
		est.Add(float64(ev.Usage.TotalTokens()))
	}
	u := ev.Usage
	for _, k := range []struct {
		kind string
		n    int64
	}{
		{KindInput, u.InputTokens}, {KindOutput, u.OutputTokens}, {KindCacheWrite5m, u.CacheWrite5mTokens},
		{KindCacheWrite1h, u.CacheWrite1hTokens}, {KindCacheRead, u.CacheReadTokens}, {KindReasoning, u.ReasoningTokens},
	} {
		// Create the series even at zero, so a rate() sees it from the start.
		c := m.tokens.WithLabelValues(provider, model, k.kind, key)
		if k.n > 0 {
			c.Add(float64(k.n))
		}
	}
	if ev.CostKnown && ev.Cost > 0 {
		m.cost.WithLabelValues(provider, model, key).Add(ev.Cost.USD())
	}
}

// Commit observes one ledger batch commit of n events.
func (m *Metrics) Commit(n int, d time.Duration, err error) {
	m.commit.Observe(d.Seconds())
	result := "committed"
	if err != nil {
		result = "failed"
	}
	m.commits.WithLabelValues(result).Add(float64(n))
}

// Alerts registers tokenmeter_alerts_fired_total, the alerts the store
// holds by kind and severity, read from read at each scrape. Alerts are
// kept for good, so the count only grows, across restarts too.
func (m *Metrics) Alerts(read func(ctx context.Context) (map[[2]string]int64, error)) {
	m.reg.MustRegister(&alertCollector{m: m, read: read})
}

// QueueDepth registers tokenmeter_ledger_queue_depth, read from depth at
// each scrape.
func (m *Metrics) QueueDepth(depth func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tokenmeter_ledger_queue_depth",
		Help: "Events waiting for the ledger writer's next commit.",
	}, func() float64 { return float64(depth()) }))
}

// Limits registers tokenmeter_limit_utilization_ratio (used / max of each
// limit's current window) and tokenmeter_limit_used / tokenmeter_limit_max,
// read from read at each scrape.
func (m *Metrics) Limits(read func(ctx context.Context) ([]LimitState, error)) {
	m.reg.MustRegister(&limitCollector{m: m, read: read})
}

// Counters registers tokenmeter_provider_ratelimit_limit, _remaining and
// _utilization_ratio: the last sample of each provider rate-limit counter,
// read from read at each scrape.
func (m *Metrics) Counters(read func(ctx context.Context) ([]CounterValue, error)) {
	m.reg.MustRegister(&counterCollector{m: m, read: read})
}

var (
	limitRatio = prometheus.NewDesc("tokenmeter_limit_utilization_ratio",
		"Used share of each limit in its current window (1 = exhausted).", []string{"limit", "scope", "metric", "mode"}, nil)
	limitUsed = prometheus.NewDesc("tokenmeter_limit_used",
		"Usage of each limit in its current window, in the limit's metric (tokens, requests or micro-dollars).", []string{"limit", "scope", "metric", "mode"}, nil)
	limitMax = prometheus.NewDesc("tokenmeter_limit_max",
		"Maximum of each limit, in the limit's metric (tokens, requests or micro-dollars).", []string{"limit", "scope", "metric", "mode"}, nil)
	counterLabels    = []string{"provider", "credential", "counter"}
	counterLimit     = prometheus.NewDesc("tokenmeter_provider_ratelimit_limit", "Last limit the provider advertised for each rate-limit counter.", counterLabels, nil)
	counterRemaining = prometheus.NewDesc("tokenmeter_provider_ratelimit_remaining", "Last remaining value the provider advertised for each rate-limit counter.", counterLabels, nil)
	counterUtil      = prometheus.NewDesc("tokenmeter_provider_ratelimit_utilization_ratio", "Last used share the provider advertised for each rate-limit counter (subscription counters).", counterLabels, nil)
	alertsFired      = prometheus.NewDesc("tokenmeter_alerts_fired_total", "Alerts fired, by rule kind and severity (from the alert store).", []string{"kind", "severity"}, nil)
)

type limitCollector struct {
	m    *Metrics
	read func(ctx context.Context) ([]LimitState, error)
}

func (c *limitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- limitRatio
	ch <- limitUsed
	ch <- limitMax
}

func (c *limitCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.m.ScrapeTimeout)
	defer cancel()
	ls, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(limitRatio, err)
		return
	}
	for _, l := range ls {
		n := c.m.MaxLabelLength
		labels := []string{ClipLabel(l.Name, n), ClipLabel(l.Scope, n), ClipLabel(l.Metric, n), ClipLabel(l.Mode, n)}
		ratio := 0.0
		if l.Max > 0 {
			ratio = float64(l.Used) / float64(l.Max)
		}
		ch <- prometheus.MustNewConstMetric(limitRatio, prometheus.GaugeValue, ratio, labels...)
		ch <- prometheus.MustNewConstMetric(limitUsed, prometheus.GaugeValue, float64(l.Used), labels...)
		ch <- prometheus.MustNewConstMetric(limitMax, prometheus.GaugeValue, float64(l.Max), labels...)
	}
}

type counterCollector struct {
	m    *Metrics
	read func(ctx context.Context) ([]CounterValue, error)
}

func (c *counterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- counterLimit
	ch <- counterRemaining
	ch <- counterUtil
}

func (c *counterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.m.ScrapeTimeout)
	defer cancel()
	vs, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(counterRemaining, err)
		return
	}
	for _, v := range vs {
		n := c.m.MaxLabelLength
		labels := []string{ClipLabel(v.Provider, n), ClipLabel(v.Credential, n), ClipLabel(v.Counter, n)}
		if v.Limit != nil {
			ch <- prometheus.MustNewConstMetric(counterLimit, prometheus.GaugeValue, float64(*v.Limit), labels...)
		}
		if v.Remaining != nil {
			ch <- prometheus.MustNewConstMetric(counterRemaining, prometheus.GaugeValue, float64(*v.Remaining), labels...)
		}
		if v.Utilization != nil {
			ch <- prometheus.MustNewConstMetric(counterUtil, prometheus.GaugeValue, float64(*v.Utilization)/10000, labels...)
		}
	}
}

type alertCollector struct {
	m    *Metrics
	read func(ctx context.Context) (map[[2]string]int64, error)
}

func (c *alertCollector) Describe(ch chan<- *prometheus.Desc) { ch <- alertsFired }

func (c *alertCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.m.ScrapeTimeout)
	defer cancel()
	counts, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(alertsFired, err)
		return
	}
	for k, n := range counts {
		l := c.m.MaxLabelLength
		ch <- prometheus.MustNewConstMetric(alertsFired, prometheus.CounterValue, float64(n), ClipLabel(k[0], l), ClipLabel(k[1], l))
	}
}
