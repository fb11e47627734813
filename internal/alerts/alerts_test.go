package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/alerts"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openDB(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// receiver is a webhook endpoint that records what it gets; fail makes it
// answer 503 to the next n requests.
type receiver struct {
	*httptest.Server
	secret []byte

	mu     sync.Mutex
	fail   int
	got    []alerts.Message // accepted messages
	tries  int
	badSig int
	bodies []string
	keys   []string // idempotency keys of accepted messages
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{secret: []byte(secret)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tries++
		if len(r.secret) > 0 && !alerts.Verify(r.secret, body, req.Header.Get(alerts.HeaderSignature)) {
			r.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.fail > 0 {
			r.fail--
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var m alerts.Message
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		if req.Header.Get(alerts.HeaderIdempotencyKey) != m.IdempotencyKey {
			http.Error(w, "idempotency key header differs", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, m)
		r.bodies = append(r.bodies, string(body))
		r.keys = append(r.keys, m.IdempotencyKey)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) messages() []alerts.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alerts.Message(nil), r.got...)
}

func (r *receiver) setFail(n int) { r.mu.Lock(); r.fail = n; r.mu.Unlock() }

func newEngine(t *testing.T, db *sqlite.DB, c *clock, sinks ...alerts.Sink) (*alerts.Engine, *strings.Builder) {
	t.Helper()
	logs := &strings.Builder{}
	var mu sync.Mutex
	e := alerts.New(db, slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, nil)))
	e.Now = c.Now
	e.Defaults = false
	for _, s := range sinks {
		e.AddSink(s)
	}
	return e, logs
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func appendCall(t *testing.T, db *sqlite.DB, id string, at time.Time, tokens int64, status int) {
	t.Helper()
	ev := storetest.Event(id, at, tokenmeter.Usage{InputTokens: tokens})
	ev.Principal = "key:alice"
	if status != 200 {
		ev.Status, ev.Outcome = status, tokenmeter.OutcomeError
	}
	if _, err := db.Append(context.Background(), []tokenmeter.Event{ev}); err != nil {
		t.Fatal(err)
	}
}

func setLimit(t *testing.T, db *sqlite.DB, name string, max int64, win string) {
	t.Helper()
	l := tokenmeter.Limit{Name: name, Scope: "key:alice", Metric: tokenmeter.MetricTokens, Max: max, Window: win,
		Mode: tokenmeter.LimitSoft, Created: t0.Add(-48 * time.Hour)}
	if err := db.SetLimit(context.Background(), l); err != nil {
		t.Fatal(err)
	}
}

func step(t *testing.T, e *alerts.Engine) int {
	t.Helper()
	if err := e.Evaluate(context.Background()); err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	n, err := e.Deliver(context.Background())
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	return n
}

func summaries(ms []alerts.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Event)+" "+m.Alert.Summary)
	}
	return out
}

// TestThresholdOncePerWindow: a soft limit's thresholds fire once each in
// their window, however often the rules run, and resolve when the window
// ends; the next window fires afresh.
func TestThresholdOncePerWindow(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "ledger.db"))
	rcv := newReceiver(t, "")
	c := &clock{t: t0.Add(5 * time.Minute)}
	e, logs := newEngine(t, db, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL})
	e.Rules = []tokenmeter.AlertRule{{Name: "budget", Kind: tokenmeter.AlertThreshold, Thresholds: []int{50, 80, 100}}}
	setLimit(t, db, "alice-day", 1000, "day 00:00 UTC")

	appendCall(t, db, "a1", t0.Add(time.Minute), 400, 200)
	if step(t, e); len(rcv.messages()) != 0 {
		t.Fatalf("at 40%%: %v", summaries(rcv.messages()))
	}
	appendCall(t, db, "a2", t0.Add(2*time.Minute), 150, 200)
	for range 3 {
		c.Add(time.Second)
		step(t, e)
	}
	ms := rcv.messages()
	if len(ms) != 1 || ms[0].Event != "firing" || !strings.Contains(ms[0].Alert.Summary, "reached 50%: 550 tokens of 1000 tokens") ||
		ms[0].Alert.Severity != tokenmeter.SeverityInfo || ms[0].Version != 1 || ms[0].Alert.WindowStart.Format(time.RFC3339) != "2026-11-29T00:00:00Z" {
		t.Fatalf("after crossing 50%% and three passes: %+v; want one firing at 50%%", ms)
	}
	// One jump across 80 % and 100 %: one message, the highest threshold's
	// (issue 19); the 80 % alert is recorded, marked as superseded, so it
	// does not fire later in the window.
	appendCall(t, db, "a3", t0.Add(3*time.Minute), 500, 200)
	step(t, e)
	ms = rcv.messages()
	if len(ms) != 2 || !strings.Contains(ms[1].Alert.Summary, "reached 100%") || ms[1].Alert.Severity != tokenmeter.SeverityCritical {
		t.Fatalf("after jumping to 105%%: %v; want the 100%% alert only", summaries(ms))
	}
	if !strings.Contains(logs.String(), "alert firing") {
		t.Errorf("log sink wrote nothing:\n%s", logs.String())
	}
	firing, err := db.Alerts(ctx, tokenmeter.AlertQuery{Firing: true})
	if err != nil || len(firing) != 3 || !strings.Contains(string(firing[1].Details)+string(firing[2].Details), `"superseded_by_percent":100`) {
		t.Fatalf("firing alerts %+v (%v); want 50, 80 (superseded by 100) and 100", firing, err)
	}
	// Raising the limit clears 80 and 100 % within the window: both
	// resolve, and only the delivered one's resolution is sent; neither
	// fires again in this window when usage crosses them again.
	setLimit(t, db, "alice-day", 2000, "day 00:00 UTC")
	step(t, e)
	setLimit(t, db, "alice-day", 1000, "day 00:00 UTC")
	step(t, e)
	ms = rcv.messages()
	if len(ms) != 3 || ms[2].Event != "resolved" || !strings.Contains(ms[2].Alert.Summary, "reached 100%") {
		t.Fatalf("after raising the limit to 2000 and back: %v; want 100%% resolved, nothing fired again", summaries(ms))
	}
	// The next day: the rest resolves ("window ended"), nothing fires.
	c.Set(t0.Add(24 * time.Hour))
	step(t, e)
	ms = rcv.messages()
	if len(ms) != 4 || ms[3].Event != "resolved" || !strings.Contains(ms[3].Text, "window ended at 2026-11-30T00:00:00Z") {
		t.Fatalf("next day: %v", summaries(ms))
	}
	// Usage in the new window fires 50 % again, as a new alert.
	appendCall(t, db, "b1", t0.Add(24*time.Hour+time.Minute), 600, 200)
	c.Add(2 * time.Minute)
	step(t, e)
	ms = rcv.messages()
	if len(ms) != 5 || ms[4].Event != "firing" || ms[4].Alert.ID == ms[0].Alert.ID || ms[4].Alert.WindowStart.Format(time.RFC3339) != "2026-11-30T00:00:00Z" {
		t.Fatalf("new window: %v", summaries(ms))
	}
	all, err := db.Alerts(ctx, tokenmeter.AlertQuery{})
	if err != nil || len(all) != 4 {
		t.Fatalf("alerts = %d, %v; want 4 (50, 80, 100 of day 1; 50 of day 2)", len(all), err)
	}
	for _, a := range all[1:] {
		if a.State != tokenmeter.AlertResolved || len(a.History) != 2 {
			t.Errorf("alert %d %s: state %s history %+v; want resolved with two entries", a.ID, a.Summary, a.State, a.History)
		}
	}
	// Every delivered message went to the log sink as well, each once.
	ds, _ := db.Deliveries(ctx, 0)
	if len(ds) != 10 {
		t.Errorf("deliveries = %d, want 10 (5 transitions x webhook and log)", len(ds))
	}
	for _, d := range ds {
		if d.Delivered.IsZero() || d.Attempts != 1 {
			t.Errorf("delivery %+v: want delivered at the first attempt", d)
		}
	}
}

// TestDeliveryRetry: a receiver that fails twice gets the alert at the
// third attempt, exactly once, after back-offs of RetryMin and twice it,
// and verifies the HMAC signature of every attempt.
func TestDeliveryRetry(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "ledger.db"))
	rcv := newReceiver(t, "s3cret")
	rcv.setFail(2)
	c := &clock{t: t0.Add(5 * time.Minute)}
	e, _ := newEngine(t, db, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL, Secret: []byte("s3cret")})
	e.RetryMin, e.RetryMax = 10*time.Second, time.Minute
	e.Rules = []tokenmeter.AlertRule{{Name: "budget", Kind: tokenmeter.AlertThreshold, Thresholds: []int{50}, Sinks: []string{"hook"}}}
	setLimit(t, db, "alice-day", 1000, "day 00:00 UTC")
	appendCall(t, db, "a1", t0.Add(time.Minute), 600, 200)

	step(t, e) // fired; attempt 1 fails
	deliveries := func() tokenmeter.Delivery {
		ds, err := db.Deliveries(ctx, 0)
		for _, d := range ds {
			if d.Sink == "hook" {
				return d
			}
		}
		t.Fatalf("no delivery to hook: %+v %v", ds, err)
		return tokenmeter.Delivery{}
	}
	d := deliveries()
	if d.Attempts != 1 || !d.Delivered.IsZero() || !d.Next.Equal(c.Now().Add(10*time.Second)) || !strings.Contains(d.LastError, "503") {
		t.Fatalf("after the first failure: %+v; want retry in 10s", d)
	}
	c.Add(9 * time.Second)
	if step(t, e); deliveries().Attempts != 1 {
		t.Fatal("retried before the back-off ended")
	}
	c.Add(time.Second)
	step(t, e) // attempt 2 fails
	if d := deliveries(); d.Attempts != 2 || !d.Next.Equal(c.Now().Add(20*time.Second)) {
		t.Fatalf("after the second failure: %+v; want retry in 20s", d)
	}
	c.Add(20 * time.Second)
	step(t, e) // attempt 3 succeeds
	c.Add(time.Hour)
	step(t, e)
	if d := deliveries(); d.Attempts != 3 || d.Delivered.IsZero() || d.LastError != "" {
		t.Fatalf("after recovery: %+v; want delivered at the third attempt", d)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.got) != 1 || rcv.tries != 3 || rcv.badSig != 0 {
		t.Fatalf("receiver: %d accepted, %d tries, %d bad signatures; want 1, 3, 0", len(rcv.got), rcv.tries, rcv.badSig)
	}
}

// TestOutboxSurvivesRestart: a delivery that failed is retried by the next
// process on the same ledger, and delivered exactly once.
func TestOutboxSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	rcv := newReceiver(t, "")
	rcv.setFail(1000)
	c := &clock{t: t0.Add(5 * time.Minute)}
	rule := []tokenmeter.AlertRule{{Name: "budget", Kind: tokenmeter.AlertThreshold, Thresholds: []int{50}}}

	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	e, _ := newEngine(t, db, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL})
	e.Rules = rule
	setLimit(t, db, "alice-day", 1000, "day 00:00 UTC")
	appendCall(t, db, "a1", t0.Add(time.Minute), 600, 200)
	step(t, e)
	step(t, e)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	rcv.setFail(0)
	c.Add(time.Minute)
	db2 := openDB(t, path)
	e2, _ := newEngine(t, db2, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL})
	e2.Rules = rule
	for range 3 {
		step(t, e2)
		c.Add(time.Minute)
	}
	ms := rcv.messages()
	if len(ms) != 1 || ms[0].Event != "firing" {
		t.Fatalf("after restart: %v; want the firing delivered once", summaries(ms))
	}
	all, _ := db2.Alerts(context.Background(), tokenmeter.AlertQuery{})
	if len(all) != 1 {
		t.Errorf("alerts after restart = %+v; want the one alert (not fired again)", all)
	}
}

// TestBurnRate: usage running at a rate that will cross the limit before
// the window resets fires once; a limit raised out of reach resolves it.
func TestBurnRate(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "ledger.db"))
	rcv := newReceiver(t, "")
	c := &clock{t: t0.Add(30 * time.Minute)}
	e, _ := newEngine(t, db, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL})
	e.Rules = []tokenmeter.AlertRule{{Name: "burn", Kind: tokenmeter.AlertBurnRate, Span: tokenmeter.Duration(30 * time.Minute)}}
	// 300 tokens in the last 30 minutes: 600 an hour; 13.5 hours left in
	// the day, the max reached in 4700/600 hours (7h50m).
	setLimit(t, db, "alice-day", 5000, "day 00:00 UTC")
	for i := range 3 {
		appendCall(t, db, fmt.Sprintf("a%d", i), t0.Add(time.Duration(i)*10*time.Minute), 100, 200)
	}
	step(t, e)
	step(t, e)
	ms := rcv.messages()
	if len(ms) != 1 || ms[0].Alert.Kind != tokenmeter.AlertBurnRate || !strings.Contains(ms[0].Alert.Summary, "600 tokens an hour") ||
		!strings.Contains(ms[0].Alert.Summary, "reaches its max 5000 tokens at 2026-11-29T18:20:00Z") {
		t.Fatalf("burn rate: %v", summaries(ms))
	}
	setLimit(t, db, "alice-day", 50000, "day 00:00 UTC")
	step(t, e)
	if ms = rcv.messages(); len(ms) != 2 || ms[1].Event != "resolved" || !strings.Contains(ms[1].Text, "within its max 50000") {
		t.Fatalf("after raising the limit: %v", summaries(ms))
	}
	// Too little history: no projection.
	midnight := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	c.Set(midnight.Add(2 * time.Minute))
	setLimit(t, db, "alice-day", 100, "day 00:00 UTC")
	appendCall(t, db, "b1", midnight.Add(time.Minute), 90, 200)
	step(t, e)
	if ms = rcv.messages(); len(ms) != 2 {
		t.Fatalf("two minutes into a window: %v; want no projection", summaries(ms))
	}
}

// TestRateRules: error-rate and 429 spikes per provider fire once while the
// spike lasts and resolve when the span has moved past it.
func TestRateRules(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "ledger.db"))
	rcv := newReceiver(t, "")
	c := &clock{t: t0.Add(5 * time.Minute)}
	e, _ := newEngine(t, db, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL})
	e.Rules = []tokenmeter.AlertRule{
		{Name: "errors", Kind: tokenmeter.AlertErrorRate},
		{Name: "throttled", Kind: tokenmeter.AlertRateLimited, MinRequests: 4, Percent: 50},
	}
	// 10 calls in the last 5 minutes: 3 got 429, 3 got 500, 4 ok.
	for i := range 10 {
		status := 200
		switch {
		case i < 3:
			status = 429
		case i < 6:
			status = 500
		}
		appendCall(t, db, fmt.Sprintf("c%d", i), t0.Add(time.Minute+time.Duration(i)*time.Second), 1, status)
	}
	step(t, e)
	step(t, e)
	ms := rcv.messages()
	if len(ms) != 1 || ms[0].Alert.Kind != tokenmeter.AlertErrorRate || !strings.Contains(ms[0].Alert.Summary, "anthropic: 3 of 10 calls failed or got a 5xx in the last 5m0s (30%") {
		t.Fatalf("error spike: %v; want the error rule only (3 of 10 got 429: under 50%%)", summaries(ms))
	}
	for i := range 4 {
		appendCall(t, db, fmt.Sprintf("d%d", i), t0.Add(2*time.Minute+time.Duration(i)*time.Second), 1, 429)
	}
	step(t, e)
	if ms = rcv.messages(); len(ms) != 2 || ms[1].Alert.Kind != tokenmeter.AlertRateLimited || !strings.Contains(ms[1].Alert.Summary, "7 of 14 calls got 429") {
		t.Fatalf("429 spike: %v", summaries(ms))
	}
	c.Add(10 * time.Minute)
	step(t, e)
	ms = rcv.messages()
	if len(ms) != 4 || ms[2].Event != "resolved" || ms[3].Event != "resolved" || !strings.Contains(ms[3].Text, "no calls in the last 5m0s") {
		t.Fatalf("after the span: %v", summaries(ms))
	}
}

// TestAnomalyAlerts: each anomaly fires once, whichever rule pass sees it,
// and expires after AnomalyHold without a message; a rule can pick kinds.
func TestAnomalyAlerts(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "ledger.db"))
	rcv := newReceiver(t, "")
	c := &clock{t: t0.Add(5 * time.Minute)}
	e, _ := newEngine(t, db, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL})
	e.Rules = []tokenmeter.AlertRule{{Name: "resets", Kind: tokenmeter.AlertAnomaly, AnomalyKinds: []string{"early_reset", "reconcile"}}}
	// The last two were detected while no gateway ran: 5 hours ago (still
	// alerts) and 30 hours ago (too old).
	for i, kind := range []string{"early_reset", "drift", "reconcile", "early_reset", "early_reset"} {
		detected := t0.Add(time.Duration(i) * time.Minute)
		switch i {
		case 3:
			detected = t0.Add(-5 * time.Hour)
		case 4:
			detected = t0.Add(-30 * time.Hour)
		}
		_, err := db.AddAnomaly(ctx, tokenmeter.Anomaly{Kind: kind, Provider: "anthropic", Counter: "unified-5h",
			Detected: detected, Start: detected.Add(-time.Hour), End: detected, Summary: kind + " seen", Evidence: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
	step(t, e)
	step(t, e)
	ms := rcv.messages()
	sort.Slice(ms, func(i, j int) bool { return ms[i].Alert.Subject < ms[j].Alert.Subject })
	if len(ms) != 3 || !strings.Contains(ms[0].Alert.Summary, "early_reset anomaly on anthropic unified-5h: early_reset seen (tokenmeter anomalies show 1)") ||
		!strings.Contains(ms[1].Alert.Summary, "reconcile") || !strings.Contains(ms[2].Alert.Summary, "show 4)") {
		t.Fatalf("anomaly alerts: %v", summaries(ms))
	}
	c.Add(2 * time.Hour)
	step(t, e)
	step(t, e)
	if ms = rcv.messages(); len(ms) != 3 {
		t.Fatalf("after expiry: %v; want no message", summaries(ms))
	}
	firing, _ := db.Alerts(ctx, tokenmeter.AlertQuery{Firing: true})
	if len(firing) != 0 {
		t.Errorf("firing after expiry: %+v", firing)
	}
}

// TestRuleRemoved: a firing alert whose rule is gone resolves.
func TestRuleRemoved(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "ledger.db"))
	rcv := newReceiver(t, "")
	c := &clock{t: t0.Add(5 * time.Minute)}
	e, _ := newEngine(t, db, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL})
	if err := db.SetAlertRule(context.Background(), tokenmeter.AlertRule{Name: "stored", Kind: tokenmeter.AlertThreshold, Limit: "alice-day", Thresholds: []int{10}}); err != nil {
		t.Fatal(err)
	}
	setLimit(t, db, "alice-day", 1000, "rolling:1h")
	appendCall(t, db, "a1", t0.Add(time.Minute), 600, 200)
	step(t, e)
	if err := db.DeleteAlertRule(context.Background(), "stored"); err != nil {
		t.Fatal(err)
	}
	step(t, e)
	ms := rcv.messages()
	if len(ms) != 2 || ms[1].Event != "resolved" || !strings.Contains(ms[1].Text, "rule stored was removed") {
		t.Fatalf("%v", summaries(ms))
	}
}

// TestRollingThreshold: on a rolling window an alert fires while usage is
// over the threshold and resolves as the usage slides out.
func TestRollingThreshold(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "ledger.db"))
	rcv := newReceiver(t, "")
	c := &clock{t: t0.Add(5 * time.Minute)}
	e, _ := newEngine(t, db, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL})
	e.Rules = []tokenmeter.AlertRule{{Name: "r", Kind: tokenmeter.AlertThreshold, Thresholds: []int{50}}}
	setLimit(t, db, "alice-hour", 1000, "rolling:1h")
	appendCall(t, db, "a1", t0.Add(time.Minute), 600, 200)
	for range 3 {
		step(t, e)
		c.Add(10 * time.Minute)
	}
	c.Set(t0.Add(90 * time.Minute))
	step(t, e)
	ms := rcv.messages()
	if len(ms) != 2 || ms[0].Event != "firing" || ms[1].Event != "resolved" || !strings.Contains(ms[1].Text, "under 50%") {
		t.Fatalf("%v", summaries(ms))
	}
}

// TestSinks: the Slack body, the command sink (stdin, failure, timeout),
// and errors that never show a webhook's URL.
func TestSinks(t *testing.T) {
	ctx := context.Background()
	m := alerts.Sample(t0)
	payload, _ := json.Marshal(m)

	var got []byte
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = io.ReadAll(r.Body) }))
	defer slack.Close()
	if err := (&alerts.Webhook{SinkName: "s", URL: slack.URL + "/services/T000/B000/XXXX", Slack: true}).Send(ctx, m, payload); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(got, &body); err != nil || len(body) != 1 || !strings.HasPrefix(body["text"].(string), "[info] test alert from tokenmeter") {
		t.Errorf("slack body %s", got)
	}
	// Slack's control characters in text that clients chose (a model
	// name) are escaped: no channel-wide mention, no link (issue 13
	// item 13).
	hostile := m
	hostile.Text = "limit on model <!channel> & <https://evil.example|click>"
	if err := (&alerts.Webhook{SinkName: "s", URL: slack.URL, Slack: true}).Send(ctx, hostile, payload); err != nil {
		t.Fatal(err)
	}
	body = nil
	if json.Unmarshal(got, &body); body["text"] != "limit on model &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" {
		t.Errorf("slack text %q; want &, < and > escaped", body["text"])
	}

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := down.URL + "/hook/secret-token-123"
	down.Close()
	err := (&alerts.Webhook{SinkName: "d", URL: url}).Send(ctx, m, payload)
	if err == nil || strings.Contains(err.Error(), "secret-token-123") {
		t.Errorf("send to a closed server: %v; want an error without the URL", err)
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	cmd := &alerts.Command{SinkName: "c", Shell: "cat > " + out + "; echo $TOKENMETER_ALERT_EVENT >> " + out}
	if err := cmd.Send(ctx, m, payload); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !strings.HasPrefix(string(b), string(payload)) || !strings.HasSuffix(string(b), "firing\n") {
		t.Errorf("command got %s", b)
	}
	// The command sees an allow-list of the environment and what its sink
	// names, never the gateway's secrets (issue 13 item 7).
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-api03-must-not-leak")
	t.Setenv("TOKENMETER_ADMIN_TOKEN", "admin-token-must-not-leak")
	t.Setenv("PAGER_TOKEN", "pager-token-passed")
	t.Setenv("LANG", "C.UTF-8")
	envOut := filepath.Join(dir, "env.txt")
	for _, c := range []*alerts.Command{
		{SinkName: "c", Shell: "env > " + envOut},
		{SinkName: "c", Shell: "env > " + envOut, Env: alerts.InheritEnv(os.LookupEnv, []string{"PAGER_TOKEN", "NOT_SET_ANYWHERE"})},
	} {
		if err := c.Send(ctx, m, payload); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(envOut)
		env := string(b)
		if strings.Contains(env, "must-not-leak") || !strings.Contains(env, "PATH=") || !strings.Contains(env, "LANG=C.UTF-8") ||
			!strings.Contains(env, "TOKENMETER_IDEMPOTENCY_KEY="+m.IdempotencyKey) || strings.Contains(env, "NOT_SET_ANYWHERE") {
			t.Errorf("command environment (sink env %q):\n%s", c.Env, env)
		}
		if named := c.Env != nil; strings.Contains(env, "PAGER_TOKEN=pager-token-passed") != named {
			t.Errorf("PAGER_TOKEN passed %v, want %v:\n%s", !named, named, env)
		}
	}
	if err := (&alerts.Command{SinkName: "c", Shell: "echo nope >&2; exit 3"}).Send(ctx, m, payload); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("failing command: %v", err)
	}
	start := time.Now()
	err = (&alerts.Command{SinkName: "c", Shell: "sleep 30 & sleep 30", Timeout: 200 * time.Millisecond}).Send(ctx, m, payload)
	if err == nil || !strings.Contains(err.Error(), "did not finish within") || time.Since(start) > 20*time.Second {
		t.Errorf("slow command: %v after %v", err, time.Since(start))
	}
}

// TestUnknownSink: a delivery to a sink that is not configured waits and
// is delivered once the sink is back.
func TestUnknownSink(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "ledger.db"))
	rcv := newReceiver(t, "")
	c := &clock{t: t0.Add(5 * time.Minute)}
	e, _ := newEngine(t, db, c)
	e.Rules = []tokenmeter.AlertRule{{Name: "r", Kind: tokenmeter.AlertThreshold, Thresholds: []int{50}, Sinks: []string{"later"}}}
	setLimit(t, db, "alice-day", 1000, "day 00:00 UTC")
	appendCall(t, db, "a1", t0.Add(time.Minute), 600, 200)
	step(t, e)
	e.AddSink(&alerts.Webhook{SinkName: "later", URL: rcv.URL})
	c.Add(time.Hour)
	step(t, e)
	if ms := rcv.messages(); len(ms) != 1 {
		t.Fatalf("%v", summaries(ms))
	}
}

// TestCostLimitText: a cost_usd limit's alert speaks dollars.
func TestCostLimitText(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "ledger.db"))
	rcv := newReceiver(t, "")
	c := &clock{t: t0.Add(5 * time.Minute)}
	e, _ := newEngine(t, db, c, &alerts.Webhook{SinkName: "hook", URL: rcv.URL})
	e.Rules = []tokenmeter.AlertRule{{Name: "money", Kind: tokenmeter.AlertThreshold, Thresholds: []int{80}}}
	l := tokenmeter.Limit{Name: "spend", Scope: "global", Metric: tokenmeter.MetricCost, Max: 2_500_000, Window: "month 00:00 UTC",
		Mode: tokenmeter.LimitSoft, Created: t0}
	if err := db.SetLimit(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	ev := storetest.Event("a", t0.Add(time.Minute), tokenmeter.Usage{InputTokens: 1})
	ev.Cost = 2_012_345
	if _, err := db.Append(context.Background(), []tokenmeter.Event{ev}); err != nil {
		t.Fatal(err)
	}
	step(t, e)
	if ms := rcv.messages(); len(ms) != 1 || !strings.Contains(ms[0].Alert.Summary, "reached 80%: $2.012345 of $2.50 used in the window 2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z") {
		t.Fatalf("%v", summaries(ms))
	}
}
