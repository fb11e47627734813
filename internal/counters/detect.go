package counters

import (
	"fmt"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Defaults of the detectors' tolerances.
const (
	// DefaultGrace is the clock skew allowed between the provider's reset
	// times and the gateway's clock.
	DefaultGrace = 5 * time.Second
	// DefaultSlack is the share of a counter's scale (its limit, or 100 %)
	// by which a value may move beyond what the window explains, in basis
	// points: 200 = 2 %.
	DefaultSlack = 200
	// DefaultResetMove is the smallest jump of an advertised reset that is
	// an anomaly; jumps of more than 1 % of the time left are too.
	DefaultResetMove = time.Minute
	// DefaultDriftTolerance is the share by which the provider's count of a
	// window may differ from the ledger's, in basis points: 1000 = 10 %.
	DefaultDriftTolerance = 1000
	// DefaultThrottleCount 429/529 responses within DefaultThrottleWindow
	// are a throttling burst.
	DefaultThrottleCount  = 5
	DefaultThrottleWindow = time.Minute
	// DefaultThrottleSettle is how long after a throttling burst is found
	// its evidence is gathered, and how far past the last throttled call's
	// start the ledger's span reaches: a call is observed when it starts
	// and recorded, dated by its end, when it ends, so the burst's last
	// call is in the ledger only a moment later.
	DefaultThrottleSettle = 2 * time.Second
	// tokenQuantum is the rounding of Anthropic's token counters
	// ("remaining rounded to the nearest 1,000").
	tokenQuantum = 1000
	// maxRecent is the number of samples kept per series for evidence.
	maxRecent = 4
	// maxSeries bounds the series the detector follows; when full it
	// forgets them all (and relearns from the next samples).
	maxSeries = 20000
)

// Finding is an anomaly the detector found, before the ledger's side of the
// evidence is added (see Evidence).
type Finding struct {
	Anomaly tokenmeter.Anomaly
	// Before are the samples of the series up to the anomaly, oldest first;
	// After the sample that showed it.
	Before []tokenmeter.Sample
	After  []tokenmeter.Sample
	// AdvertisedReset is the reset the provider had announced.
	AdvertisedReset time.Time
	// LedgerSince and LedgerUntil bound the ledger usage to show.
	LedgerSince, LedgerUntil time.Time
	// Settle, when not zero, asks that the evidence be gathered no sooner
	// than this after the finding (real time), once the calls it covers
	// are recorded.
	Settle time.Duration
	// Drift: the provider's count of the window, in the counter's unit,
	// to compare with the ledger's (Metric); Tolerance in basis points.
	ProviderCount int64
	Metric        string
	Tolerance     int64
	// Facts are the detector's figures and reasoning, as "name" -> value.
	Facts map[string]any
}

// Detector finds anomalies in counter samples. Feed it every sample of a
// series in time order (not only those kept after compaction) and every
// response status. It keeps a little state per series and is not safe for
// concurrent use.
type Detector struct {
	Grace          time.Duration
	Slack          int64
	ResetMove      time.Duration
	DriftTolerance int64
	ThrottleCount  int
	ThrottleWindow time.Duration

	series   map[seriesKey]*seriesState
	throttle map[string]*throttleState
}

type seriesState struct {
	recent []tokenmeter.Sample
	// The drift window: samples sharing one advertised reset.
	winReset     time.Time
	winStart     time.Time // the previous window's reset
	winFromStart bool      // the window was seen from its start
	winFirst     tokenmeter.Sample
	winLast      tokenmeter.Sample
	winCount     int
	// winFixed: used grew in the window and never fell, as in a fixed
	// window (a token bucket refills between calls: not judged).
	winFixed bool
}

type throttleState struct {
	times    []time.Time
	statuses []int
	inBurst  bool
	last     time.Time
}

// NewDetector returns a Detector with the default tolerances.
func NewDetector() *Detector {
	return &Detector{Grace: DefaultGrace, Slack: DefaultSlack, ResetMove: DefaultResetMove,
		DriftTolerance: DefaultDriftTolerance, ThrottleCount: DefaultThrottleCount, ThrottleWindow: DefaultThrottleWindow}
}

// seriesKey identifies the series of a sample.
type seriesKey struct{ provider, credential, counter string }

func keyOf(s tokenmeter.Sample) seriesKey { return seriesKey{s.Provider, s.Credential, s.Counter} }

// Seed makes prev the last sample seen of its series, as when a process
// that sees one sample at a time (tokenmeter statusline) reads it back.
func (d *Detector) Seed(prev tokenmeter.Sample) {
	st := d.state(prev)
	st.recent = append(st.recent[:0], prev)
}

func (d *Detector) state(s tokenmeter.Sample) *seriesState {
	if d.series == nil || len(d.series) >= maxSeries {
		d.series = make(map[seriesKey]*seriesState)
	}
	k := keyOf(s)
	st := d.series[k]
	if st == nil {
		st = &seriesState{}
		d.series[k] = st
	}
	return st
}

// Sample feeds the next sample of its series and returns what it shows.
func (d *Detector) Sample(cur tokenmeter.Sample) []Finding {
	st := d.state(cur)
	var out []Finding
	if n := len(st.recent); n > 0 {
		prev := st.recent[n-1]
		if cur.Time.Before(prev.Time) {
			// An older reading arriving late (a slow call's, read when the
			// provider accepted it): it says nothing about now.
			return nil
		}
		early, ok := d.earlyReset(st, prev, cur)
		if ok {
			out = append(out, early)
		} else if f, ok := d.resetMoved(st, prev, cur); ok {
			out = append(out, f)
		}
		if f, ok := d.limitChanged(st, prev, cur); ok {
			out = append(out, f)
		}
		if f, ok := d.window(st, prev, cur, len(out) > 0); ok {
			out = append(out, f)
		}
	} else {
		d.window(st, tokenmeter.Sample{}, cur, true)
	}
	st.recent = append(st.recent, cur)
	if len(st.recent) > maxRecent {
		st.recent = append(st.recent[:0], st.recent[len(st.recent)-maxRecent:]...)
	}
	return out
}

// used returns the used part of s and the scale it is measured against:
// utilization out of 10,000, or limit - remaining out of the limit.
func used(s tokenmeter.Sample) (used, scale int64, ok bool) {
	if s.Utilization != tokenmeter.NoValue {
		return s.Utilization, 10000, true
	}
	if s.Limit > 0 && s.Remaining != tokenmeter.NoValue {
		return max(0, s.Limit-s.Remaining), s.Limit, true
	}
	return 0, 0, false
}

// slack is the movement a reading may show beyond what is explained.
func (d *Detector) slack(counter string, scale int64) int64 {
	t := scale * d.Slack / 10000
	if scale != 10000 && strings.Contains(counter, "tokens") {
		t = max(t, 2*tokenQuantum)
	}
	return max(t, 1)
}

func (d *Detector) finding(kind string, st *seriesState, prev, cur tokenmeter.Sample, summary string) Finding {
	return Finding{
		Anomaly: tokenmeter.Anomaly{Kind: kind, Provider: cur.Provider, Credential: cur.Credential, Counter: cur.Counter,
			Detected: cur.Time, Start: prev.Time, End: cur.Time, Summary: summary},
		Before:          append([]tokenmeter.Sample(nil), st.recent...),
		After:           []tokenmeter.Sample{cur},
		AdvertisedReset: prev.Reset,
		LedgerSince:     prev.Time,
		LedgerUntil:     cur.Time,
		Facts:           map[string]any{},
	}
}

// earlyReset: the used share fell before the advertised reset by more than
// the window's sliding explains. A window that empties linearly until its
// advertised reset (a token bucket refilling, a sliding window's decay)
// frees at most used * elapsed / (reset - then) by now; a fixed window
// frees nothing before its reset.
func (d *Detector) earlyReset(st *seriesState, prev, cur tokenmeter.Sample) (Finding, bool) {
	if prev.Reset.IsZero() || !cur.Time.Before(prev.Reset.Add(-d.Grace)) {
		return Finding{}, false
	}
	if prev.Limit != cur.Limit && cur.Utilization == tokenmeter.NoValue {
		return Finding{}, false // limit_changed says it
	}
	pu, scale, ok1 := used(prev)
	cu, _, ok2 := used(cur)
	if !ok1 || !ok2 || pu <= cu {
		return Finding{}, false
	}
	drop := pu - cu
	span := prev.Reset.Sub(prev.Time)
	elapsed := cur.Time.Sub(prev.Time)
	explained := pu
	if span > elapsed {
		explained = int64(float64(pu) * float64(elapsed) / float64(span))
	}
	slack := d.slack(cur.Counter, scale)
	if drop <= explained+slack {
		return Finding{}, false
	}
	f := d.finding(tokenmeter.AnomalyEarlyReset, st, prev, cur, fmt.Sprintf("%s: %s fell from %s to %s at %s, %s before its advertised reset at %s",
		cur.Counter, usedName(cur), showUsed(pu, scale, cur), showUsed(cu, scale, cur), cur.Time.UTC().Format(time.RFC3339),
		prev.Reset.Sub(cur.Time).Round(time.Second), prev.Reset.UTC().Format(time.RFC3339)))
	if st.winFromStart || st.winCount > 0 {
		f.LedgerSince = st.winStart
		if f.LedgerSince.IsZero() || f.LedgerSince.After(prev.Time) {
			f.LedgerSince = st.winFirst.Time
		}
	}
	f.Facts["used_before"] = pu
	f.Facts["used_after"] = cu
	f.Facts["scale"] = scale
	f.Facts["drop"] = drop
	f.Facts["explained_by_sliding"] = explained
	f.Facts["slack"] = slack
	f.Facts["early_by_seconds"] = int64(prev.Reset.Sub(cur.Time) / time.Second)
	f.Facts["reason"] = fmt.Sprintf("the window frees at most %d of %d by then if it empties linearly until its reset; it freed %d (slack %d)", explained, pu, drop, slack)
	return f, true
}

func usedName(s tokenmeter.Sample) string {
	if s.Utilization != tokenmeter.NoValue {
		return "utilization"
	}
	return "used (limit - remaining)"
}

func showUsed(v, scale int64, s tokenmeter.Sample) string {
	if s.Utilization != tokenmeter.NoValue {
		return fmt.Sprintf("%d.%02d%%", v/100, v%100)
	}
	return fmt.Sprintf("%d of %d", v, scale)
}

// resetMoved: the advertised reset jumped while the window it ends was
// still open.
func (d *Detector) resetMoved(st *seriesState, prev, cur tokenmeter.Sample) (Finding, bool) {
	if prev.Reset.IsZero() || cur.Reset.IsZero() || !cur.Time.Before(prev.Reset.Add(-d.Grace)) {
		return Finding{}, false
	}
	if cur.Counter == "unified" || cur.Counter == "retry-after" {
		// The summary repeats the representative window's reset, which is
		// judged on its own series; retry-after is no window.
		return Finding{}, false
	}
	moved := cur.Reset.Sub(prev.Reset)
	left := prev.Reset.Sub(prev.Time)
	limit := max(d.ResetMove, left/100)
	if moved.Abs() <= limit {
		return Finding{}, false
	}
	dir := "later"
	if moved < 0 {
		dir = "earlier"
	}
	f := d.finding(tokenmeter.AnomalyResetMoved, st, prev, cur, fmt.Sprintf("%s: advertised reset moved %s %s, from %s to %s, at %s",
		cur.Counter, moved.Abs().Round(time.Second), dir, prev.Reset.UTC().Format(time.RFC3339), cur.Reset.UTC().Format(time.RFC3339),
		cur.Time.UTC().Format(time.RFC3339)))
	f.Facts["reset_before"] = prev.Reset.UTC()
	f.Facts["reset_after"] = cur.Reset.UTC()
	f.Facts["moved_seconds"] = int64(moved / time.Second)
	f.Facts["tolerance_seconds"] = int64(limit / time.Second)
	return f, true
}

// limitChanged: the counter's limit changed.
func (d *Detector) limitChanged(st *seriesState, prev, cur tokenmeter.Sample) (Finding, bool) {
	if prev.Limit == tokenmeter.NoValue || cur.Limit == tokenmeter.NoValue || prev.Limit == cur.Limit {
		return Finding{}, false
	}
	f := d.finding(tokenmeter.AnomalyLimitChanged, st, prev, cur, fmt.Sprintf("%s: limit changed from %d to %d at %s",
		cur.Counter, prev.Limit, cur.Limit, cur.Time.UTC().Format(time.RFC3339)))
	f.Facts["limit_before"] = prev.Limit
	f.Facts["limit_after"] = cur.Limit
	return f, true
}

// DriftMetric returns what the ledger counts for counter: "requests",
// "input" (uncached input and cache writes), "output", "tokens" (both),
// "openai_tokens" (input with cache reads, and output); "" when the
// counter cannot be compared.
func DriftMetric(counter string) string {
	switch counter {
	case "anthropic-ratelimit-requests", "x-ratelimit-requests":
		return "requests"
	case "anthropic-ratelimit-input-tokens":
		return "input"
	case "anthropic-ratelimit-output-tokens":
		return "output"
	case "anthropic-ratelimit-tokens":
		return "tokens"
	case "x-ratelimit-tokens":
		return "openai_tokens"
	}
	return ""
}

// window follows the drift window of a fixed-window counter: the samples
// that share one advertised reset, with used growing and never falling,
// on a grid of windows of one length (a token bucket, which refills
// between calls, is not judged: what it consumed is not in its readings). When a window seen from its start closes
// (a sample after its reset), the provider's count at its last sample is
// compared with the ledger's usage over the window (see Evidence). broken
// says the window ended abnormally (an anomaly was found), which leaves
// the next window unjudged.
func (d *Detector) window(st *seriesState, prev, cur tokenmeter.Sample, broken bool) (Finding, bool) {
	metric := DriftMetric(cur.Counter)
	if metric == "" || cur.Reset.IsZero() || cur.Limit <= 0 || cur.Remaining == tokenmeter.NoValue {
		st.winCount, st.winFromStart = 0, false
		return Finding{}, false
	}
	if st.winCount > 0 && sameReset(cur, st.winReset) {
		before, after := st.winLast.Limit-st.winLast.Remaining, cur.Limit-cur.Remaining
		if after < before || cur.Limit != st.winLast.Limit {
			st.winFixed, st.winFromStart = false, false
		} else if after > before {
			st.winFixed = true
		}
		st.winCount++
		st.winLast = cur
		return Finding{}, false
	}
	var f Finding
	var found bool
	closed := st.winCount > 0 && !cur.Time.Before(st.winReset.Add(-d.Grace))
	// Fixed windows lie on a grid: the window that closes and the one that
	// opens are as long as each other (a minute or more). A token bucket,
	// whose reset is when it is full again, meets that only by chance.
	// OpenAI's windows are measured between resets that carry jitter
	// (see sameReset), so a minute's window may measure 59.99 s.
	length := st.winReset.Sub(st.winStart)
	grid := length >= time.Minute-resetJitter(cur) && sameReset(cur, st.winReset.Add(length))
	if closed && grid && st.winFromStart && st.winFixed && st.winCount >= 2 && !broken {
		last := st.winLast
		count := max(0, last.Limit-last.Remaining)
		f = Finding{
			Anomaly: tokenmeter.Anomaly{Kind: tokenmeter.AnomalyDrift, Provider: cur.Provider, Credential: cur.Credential,
				Counter: cur.Counter, Detected: cur.Time, Start: st.winStart, End: st.winReset},
			Before:          []tokenmeter.Sample{st.winFirst, last},
			After:           []tokenmeter.Sample{cur},
			AdvertisedReset: st.winReset,
			LedgerSince:     st.winStart,
			// Up to the call that closed the window, not including it (the
			// ledger dates a call by its end).
			LedgerUntil:   cur.Time.Add(-time.Microsecond),
			ProviderCount: count,
			Metric:        metric,
			Tolerance:     d.DriftTolerance,
			Facts:         map[string]any{"samples_in_window": st.winCount},
		}
		if strings.Contains(cur.Counter, "tokens") {
			f.Facts["rounding"] = 2 * tokenQuantum
		}
		found = true
	}
	// A new window starts; it is judged only if the previous one ended at
	// its advertised reset, so that every call in it was seen.
	st.winFromStart = closed && !broken
	st.winStart = st.winReset
	st.winReset, st.winFirst, st.winLast, st.winCount, st.winFixed = cur.Reset, cur, cur, 1, false
	return f, found
}

// sameReset reports whether s advertises the reset of the window that
// resets at reset: the same instant, or for OpenAI's resets (durations
// from the response's time, so a little jitter) within a second of it.
func sameReset(s tokenmeter.Sample, reset time.Time) bool {
	return s.Reset.Sub(reset).Abs() <= resetJitter(s)
}

// resetJitter is how far s's advertised reset may stray from the instant
// it names: a second for OpenAI's (a duration from the response, measured
// at a slightly different moment by each response), none for Anthropic's
// (an instant).
func resetJitter(s tokenmeter.Sample) time.Duration {
	if strings.HasPrefix(s.Counter, "x-ratelimit-") {
		return time.Second
	}
	return 0
}

// Status feeds the status of a response from provider with credential at
// at; a burst of 429 and 529 responses is a throttling finding, once per
// burst. retryAfter is the response's retry-after, if any.
func (d *Detector) Status(at time.Time, provider, credential string, status int, retryAfter string) []Finding {
	k := provider + "\x00" + credential
	ts := d.throttle[k]
	throttled := status == 429 || status == 529
	if ts == nil {
		if !throttled {
			return nil
		}
		if d.throttle == nil || len(d.throttle) >= maxSeries {
			d.throttle = make(map[string]*throttleState)
		}
		ts = &throttleState{}
		d.throttle[k] = ts
	}
	if ts.inBurst && at.Sub(ts.last) > d.ThrottleWindow {
		ts.inBurst = false
	}
	if !throttled {
		if !ts.inBurst && (len(ts.times) == 0 || at.Sub(ts.times[len(ts.times)-1]) > d.ThrottleWindow) {
			delete(d.throttle, k)
		}
		return nil
	}
	ts.last = at
	if ts.inBurst {
		return nil
	}
	i := 0
	for i < len(ts.times) && at.Sub(ts.times[i]) > d.ThrottleWindow {
		i++
	}
	ts.times = append(ts.times[i:], at)
	ts.statuses = append(ts.statuses[i:], status)
	if len(ts.times) < d.ThrottleCount {
		return nil
	}
	ts.inBurst = true
	n429, n529 := 0, 0
	for _, s := range ts.statuses {
		if s == 429 {
			n429++
		} else {
			n529++
		}
	}
	first := ts.times[0]
	f := Finding{
		Anomaly: tokenmeter.Anomaly{Kind: tokenmeter.AnomalyThrottling, Provider: provider, Credential: credential,
			Detected: at, Start: first, End: at,
			Summary: fmt.Sprintf("%s: %d throttled responses (%d x 429, %d x 529) within %s, from %s",
				provider, len(ts.times), n429, n529, at.Sub(first).Round(time.Second), first.UTC().Format(time.RFC3339))},
		LedgerSince: first, LedgerUntil: at.Add(DefaultThrottleSettle), Settle: DefaultThrottleSettle,
		Facts: map[string]any{"responses": len(ts.times), "status_429": n429, "status_529": n529,
			"threshold": d.ThrottleCount, "window_seconds": int64(d.ThrottleWindow / time.Second)},
	}
	if retryAfter != "" {
		f.Facts["last_retry_after"] = retryAfter
	}
	ts.times, ts.statuses = ts.times[:0], ts.statuses[:0]
	return []Finding{f}
}
