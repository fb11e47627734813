package counters_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/counters"
)

func util(at time.Time, counter string, bp int64, reset time.Time) tokenmeter.Sample {
	return with(sample(counter), func(s *tokenmeter.Sample) { s.Time, s.Utilization, s.Reset = at, bp, reset })
}

func bucket(at time.Time, limit, remaining int64, reset time.Time) tokenmeter.Sample {
	return with(sample("anthropic-ratelimit-tokens"), func(s *tokenmeter.Sample) {
		s.Time, s.Limit, s.Remaining, s.Reset = at, limit, remaining, reset
	})
}

func kinds(fs []counters.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Anomaly.Kind)
	}
	return out
}

// TestDetectorSteady: a fixed window that fills and resets at its
// advertised time, a token bucket that refills linearly, and a sliding
// window whose usage leaves at its advertised reset raise nothing.
func TestDetectorSteady(t *testing.T) {
	d := counters.NewDetector()
	var found []counters.Finding
	start := now.Truncate(time.Hour)
	for i := range 24 * 12 { // a day, every 5 minutes
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		win := at.Truncate(5 * time.Hour) // hmm: 5-hour windows on a 5-hour grid
		reset := win.Add(5 * time.Hour)
		used := int64(at.Sub(win) / time.Minute * 10) // 10 bp a minute
		found = append(found, d.Sample(util(at, "unified-5h", used, reset))...)
		// A token bucket: remaining refills at limit/minute; reset is when full.
		rem := int64(100000 - (i%7)*9000)
		found = append(found, d.Sample(bucket(at, 100000, rem, at.Add(time.Duration(100000-rem)*time.Minute/100000)))...)
		// A sliding 7-day window: usage leaves by the hour, at the reset.
		found = append(found, d.Sample(util(at, "unified-7d", 5000-int64(i%12)*10, at.Truncate(time.Hour).Add(time.Hour)))...)
		found = append(found, d.Status(at, "anthropic", cred, 200, "")...)
		if i%20 == 0 {
			found = append(found, d.Status(at, "anthropic", cred, 429, "1")...) // isolated 429s
		}
	}
	if len(found) > 0 {
		for _, f := range found {
			t.Errorf("false alarm: %s", f.Anomaly.Summary)
		}
	}
}

func TestDetectorEarlyReset(t *testing.T) {
	d := counters.NewDetector()
	reset := now.Add(3 * time.Hour)
	if f := d.Sample(util(now, "unified-5h", 6200, reset)); len(f) != 0 {
		t.Fatalf("first sample: %v", kinds(f))
	}
	f := d.Sample(util(now.Add(time.Minute), "unified-5h", 6250, reset))
	if len(f) != 0 {
		t.Fatalf("growth: %v", kinds(f))
	}
	newReset := now.Add(time.Minute).Truncate(time.Hour).Add(5 * time.Hour)
	f = d.Sample(util(now.Add(2*time.Minute), "unified-5h", 0, newReset))
	if len(f) != 1 || f[0].Anomaly.Kind != tokenmeter.AnomalyEarlyReset {
		t.Fatalf("findings %v, want one early_reset (and no reset_moved)", kinds(f))
	}
	a := f[0]
	if !a.AdvertisedReset.Equal(reset) || a.Anomaly.Start != now.Add(time.Minute) || a.Anomaly.Detected != now.Add(2*time.Minute) ||
		a.Facts["used_before"] != int64(6250) || a.Facts["used_after"] != int64(0) {
		t.Errorf("finding %+v", a)
	}
	if f := d.Sample(util(now.Add(3*time.Minute), "unified-5h", 10, newReset)); len(f) != 0 {
		t.Errorf("after the reset: %v", kinds(f))
	}
}

func TestDetectorResetMovedAndLimit(t *testing.T) {
	d := counters.NewDetector()
	reset := now.Add(3 * time.Hour)
	d.Sample(util(now, "unified-5h", 100, reset))
	f := d.Sample(util(now.Add(time.Minute), "unified-5h", 110, reset.Add(time.Hour)))
	if len(f) != 1 || f[0].Anomaly.Kind != tokenmeter.AnomalyResetMoved || f[0].Facts["moved_seconds"] != int64(3600) {
		t.Fatalf("findings %+v, want reset_moved by 3600 s", f)
	}
	// The summary's reset repeats the window's: not a second anomaly.
	d.Sample(util(now, "unified", tokenmeter.NoValue, reset))
	if f := d.Sample(util(now.Add(time.Minute), "unified", tokenmeter.NoValue, reset.Add(time.Hour))); len(f) != 0 {
		t.Errorf("summary: %v", kinds(f))
	}
	d.Sample(bucket(now, 1000, 900, now.Add(time.Minute)))
	f = d.Sample(bucket(now.Add(time.Second), 500, 400, now.Add(time.Minute)))
	if len(f) != 1 || f[0].Anomaly.Kind != tokenmeter.AnomalyLimitChanged {
		t.Errorf("findings %v, want limit_changed", kinds(f))
	}
}

func TestDetectorThrottling(t *testing.T) {
	d := counters.NewDetector()
	var f []counters.Finding
	for i := range 20 {
		status := 429
		if i%2 == 1 {
			status = 529
		}
		f = append(f, d.Status(now.Add(time.Duration(i)*time.Second), "anthropic", cred, status, "3")...)
	}
	if len(f) != 1 || f[0].Anomaly.Kind != tokenmeter.AnomalyThrottling || f[0].Anomaly.Start != now {
		t.Fatalf("findings %+v, want one throttling from the first 429", f)
	}
	// A quiet spell ends the burst; the next one is another anomaly.
	for i := range 5 {
		f = append(f, d.Status(now.Add(10*time.Minute+time.Duration(i)*time.Second), "anthropic", cred, 429, "")...)
	}
	if len(f) != 2 {
		t.Errorf("%d findings, want 2", len(f))
	}
}

// ledger is a UsageReader with fixed buckets.
type ledger []tokenmeter.UsageBucket

func (l ledger) Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error) {
	var out []tokenmeter.UsageBucket
	for _, b := range l {
		if !b.First.Before(q.Since) && b.First.Before(q.Until) {
			out = append(out, b)
		}
	}
	return out, nil
}

func TestDrift(t *testing.T) {
	d := counters.NewDetector()
	m0 := now.Truncate(time.Minute)
	var f []counters.Finding
	// Window 1 is seen from its middle: not judged. Window 2 is judged
	// when window 3 starts.
	f = append(f, d.Sample(bucket(m0.Add(30*time.Second), 100000, 99000, m0.Add(time.Minute)))...)
	f = append(f, d.Sample(bucket(m0.Add(70*time.Second), 100000, 99000, m0.Add(2*time.Minute)))...)
	f = append(f, d.Sample(bucket(m0.Add(100*time.Second), 100000, 50000, m0.Add(2*time.Minute)))...)
	f = append(f, d.Sample(bucket(m0.Add(130*time.Second), 100000, 99000, m0.Add(3*time.Minute)))...)
	if len(f) != 1 || f[0].Anomaly.Kind != tokenmeter.AnomalyDrift || f[0].ProviderCount != 50000 ||
		f[0].Anomaly.Start != m0.Add(time.Minute) || f[0].Anomaly.End != m0.Add(2*time.Minute) {
		t.Fatalf("findings %+v, want one drift check of window 2 counting 50000", f)
	}
	agree := ledger{{First: m0.Add(70 * time.Second), Provider: "anthropic", Principal: cred, Requests: 2, Usage: tokenmeter.Usage{InputTokens: 40000, OutputTokens: 9000}}}
	if _, ok, err := counters.Judge(context.Background(), agree, f[0], ""); err != nil || ok {
		t.Errorf("Judge with a ledger that agrees = %v, %v; want no anomaly", ok, err)
	}
	differ := ledger{{First: m0.Add(70 * time.Second), Provider: "anthropic", Principal: cred, Requests: 2, Usage: tokenmeter.Usage{InputTokens: 10000, OutputTokens: 1000}},
		{First: m0.Add(70 * time.Second), Provider: "anthropic", Principal: "cred:ffffffffffffffff", Usage: tokenmeter.Usage{InputTokens: 39000}}}
	a, ok, err := counters.Judge(context.Background(), differ, f[0], "")
	if err != nil || !ok {
		t.Fatalf("Judge with a ledger that differs = %v, %v; want an anomaly", ok, err)
	}
	var ev counters.Evidence
	if err := json.Unmarshal(a.Evidence, &ev); err != nil {
		t.Fatal(err)
	}
	if *ev.ProviderCount != 50000 || *ev.LedgerCount != 11000 || ev.Ledger.Requests != 2 || len(ev.Ledger.Principals) != 1 {
		t.Errorf("evidence %s", a.Evidence)
	}
}

// TestDriftJitteredResets: OpenAI's resets are durations from each
// response, so the windows measured between them carry a few milliseconds
// of jitter either way. Every window seen from its start is judged, those
// measured at 59.99 s as well as those at 60.01 s (issue 19: a window of
// 59.999 s holding 300,000 phantom tokens was skipped).
func TestDriftJitteredResets(t *testing.T) {
	d := counters.NewDetector()
	m0 := now.Truncate(time.Minute)
	jitter := []time.Duration{-3 * time.Millisecond, 4 * time.Millisecond, -5 * time.Millisecond, 2 * time.Millisecond, -1 * time.Millisecond, 5 * time.Millisecond}
	var found []counters.Finding
	n := 0
	for w := range 7 { // window w runs from m0+w min to m0+(w+1) min
		for i := range 15 { // a call every 4 s
			at := m0.Add(time.Duration(w)*time.Minute + time.Duration(i)*4*time.Second + 500*time.Millisecond)
			reset := m0.Add(time.Duration(w+1)*time.Minute + jitter[n%len(jitter)])
			n++
			used := int64(i+1) * 20000 // provider's count; the ledger will say less
			s := with(sample("x-ratelimit-tokens"), func(s *tokenmeter.Sample) {
				s.Provider, s.Time, s.Limit, s.Remaining, s.Reset = "openai", at, 1000000, 1000000-used, reset
			})
			found = append(found, d.Sample(s)...)
		}
	}
	// Window 0 is the first seen (its start was not): not judged. Windows
	// 1 to 5 are judged when the next one opens; window 6 is still open.
	if len(found) != 5 {
		t.Fatalf("%d drift checks %v; want 5 (windows 1 to 5, whatever their measured length)", len(found), kinds(found))
	}
	for i, f := range found {
		if f.Anomaly.Kind != tokenmeter.AnomalyDrift || f.ProviderCount != 300000 {
			t.Errorf("check %d: %s counting %d; want drift counting 300000", i, f.Anomaly.Kind, f.ProviderCount)
		}
	}
}

// TestLedgerUsageVirtualKeys: calls made with virtual keys count for the
// route's configured credential, not for another one.
func TestLedgerUsageVirtualKeys(t *testing.T) {
	l := ledger{
		{First: now, Provider: "anthropic", Principal: "key:alice", Requests: 2, Usage: tokenmeter.Usage{InputTokens: 10}},
		{First: now, Provider: "anthropic", Principal: cred, Requests: 1, Usage: tokenmeter.Usage{InputTokens: 1}},
		{First: now, Provider: "openai", Principal: "key:bob", Requests: 5},
	}
	v, err := counters.LedgerUsage(context.Background(), l, "anthropic", cred, cred, now, now)
	if err != nil || v.Requests != 3 || v.InputTokens != 11 || len(v.Principals) != 2 {
		t.Errorf("route credential: %+v, %v", v, err)
	}
	v, _ = counters.LedgerUsage(context.Background(), l, "anthropic", cred, "cred:ffffffffffffffff", now, now)
	if v.Requests != 1 {
		t.Errorf("another credential: %+v", v)
	}
}

// TestDetectorLateReading: a slow call's reading, taken when the provider
// accepted it and so dated before a quicker call's, arrives after it: it
// is not a fall in the used share (an early reset), nor is the next
// reading after it compared with it.
func TestDetectorLateReading(t *testing.T) {
	d := counters.NewDetector()
	reset := now.Add(3 * time.Hour)
	d.Sample(util(now, "unified-5h", 1000, reset))
	d.Sample(util(now.Add(20*time.Second), "unified-5h", 6000, reset)) // the quick call, after the slow one's tokens
	if f := d.Sample(util(now.Add(time.Second), "unified-5h", 1100, reset)); len(f) != 0 {
		t.Errorf("late older reading: %v, want nothing", kinds(f))
	}
	if f := d.Sample(util(now.Add(30*time.Second), "unified-5h", 6100, reset)); len(f) != 0 {
		t.Errorf("next reading: %v, want nothing", kinds(f))
	}
}
