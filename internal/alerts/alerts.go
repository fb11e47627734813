// Package alerts raises tokenmeter's alerts and delivers them. An Engine
// evaluates the alert rules (tokenmeter.AlertRule) against the ledger —
// limits' usage in their current windows, burn-rate projections, the
// anomalies of the provider-counter watch and reconciliation, error and
// 429 rates of proxied calls — and records each alert in the store, which
// enqueues its deliveries in the same transaction; it then sends what the
// outbox holds to the sinks (webhook, Slack-compatible webhook, command,
// log).
//
// Guarantees: an alert fires once per rule, subject and window (its dedupe
// key is unique in the store), resolves when its condition clears, and
// every transition reaches every sink of its rule eventually: deliveries
// live in the ledger database, are retried with exponential back-off
// across restarts and are marked delivered where they were claimed, so a
// delivery is repeated only when the process dies between a sink
// accepting it and the mark (receivers dedupe on Message.IdempotencyKey).
//
// Everything the Engine knows lives in the store: a restart, or another
// replica on the same store, carries on where it left off. Run owns the
// Engine's one goroutine.
package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/limits"
	"github.com/tokenmeter/tokenmeter/internal/window"
)

// Defaults of the Engine's tuning fields and of the rules' optional fields.
const (
	DefaultInterval = 5 * time.Second
	DefaultRetryMin = 5 * time.Second
	DefaultRetryMax = time.Hour
	// DefaultClaim is how long a sender holds a delivery it claimed; if it
	// dies mid-send, the delivery is claimed again after that.
	DefaultClaim = 2 * time.Minute
	// DefaultBurnSpan is how far back a burn_rate rule measures the rate.
	DefaultBurnSpan = time.Hour
	// MinBurnElapsed is the least history a burn-rate projection uses.
	MinBurnElapsed = 10 * time.Minute
	// DefaultRateSpan is how far back error_rate and rate_limited rules
	// count calls.
	DefaultRateSpan = 5 * time.Minute
	// DefaultErrorMinRequests and DefaultErrorPercent: an error_rate rule
	// fires when at least 20 % of at least 10 calls failed.
	DefaultErrorMinRequests = 10
	DefaultErrorPercent     = 20
	// DefaultRateLimitedMinRequests and DefaultRateLimitedPercent: a
	// rate_limited rule fires when at least 10 % of at least 5 calls got
	// 429.
	DefaultRateLimitedMinRequests = 5
	DefaultRateLimitedPercent     = 10
	// AnomalyHold is how long an anomaly alert stays firing.
	AnomalyHold = time.Hour
	// AnomalyLookback is how old an anomaly may be and still alert (when
	// the gateway was down as it was detected, or the detector is late).
	AnomalyLookback = 24 * time.Hour
	// batch is the most deliveries claimed at once.
	batch = 50
	// parallel is the most deliveries sent at once.
	parallel = 8
)

// DefaultRules are the rules in effect unless Engine.Defaults is off: every
// limit at 50, 80, 95 and 100 %, every limit's burn rate, every anomaly,
// and error and 429 spikes, each to every sink.
func DefaultRules() []tokenmeter.AlertRule {
	return []tokenmeter.AlertRule{
		{Name: "anomalies", Kind: tokenmeter.AlertAnomaly, Source: "default"},
		{Name: "burn-rate", Kind: tokenmeter.AlertBurnRate, Source: "default"},
		{Name: "errors", Kind: tokenmeter.AlertErrorRate, Source: "default"},
		{Name: "limits", Kind: tokenmeter.AlertThreshold, Source: "default"},
		{Name: "throttled", Kind: tokenmeter.AlertRateLimited, Source: "default"},
	}
}

// Store is what an Engine needs: the alert store, the limits and usage,
// the anomalies.
type Store interface {
	tokenmeter.AlertStore
	limits.Store
	Anomalies(ctx context.Context, since time.Time) ([]tokenmeter.Anomaly, error)
}

// Engine evaluates rules and delivers alerts. Set its fields before Run;
// it is safe for concurrent use by Evaluate, Deliver and Run.
type Engine struct {
	// Rules are the configured rules (the config file's); the store's
	// rules and, with Defaults, DefaultRules join them (a configured or
	// stored rule replaces a default of the same name).
	Rules    []tokenmeter.AlertRule
	Defaults bool
	// Sinks are the configured sinks by name; the log sink is always one
	// of them (added by New).
	Sinks map[string]Sink
	// Interval is how often Run evaluates and delivers.
	Interval time.Duration
	// RetryMin and RetryMax bound the back-off between attempts at a
	// delivery: RetryMin after the first failure, doubling up to RetryMax.
	RetryMin, RetryMax time.Duration
	// Claim is how long a delivery is held by its sender.
	Claim time.Duration
	// Now is the clock.
	Now func() time.Time

	store Store
	log   *slog.Logger
	mu    sync.Mutex // one Evaluate at a time
	// firing holds the firing alerts by group during Evaluate.
	firing map[string]tokenmeter.Alert
	// recorded holds the keys of alerts known to be in the store (with
	// when that was learnt, to forget them after AnomalyLookback), so a
	// condition whose alert fired and resolved in the same window, or an
	// old anomaly, costs no write per pass.
	recorded map[string]time.Time
	// calls counts the recent calls by minute and provider, read from the
	// ledger after cursor (see followCalls).
	calls     map[time.Time]map[string]*callCounts
	cursor    int64
	following bool
	// usedCache holds limits' usage in their windows' older buckets.
	usedCache map[usedKey]usedVal
}

// New returns an Engine on store with the default settings and the log
// sink writing to log.
func New(store Store, log *slog.Logger) *Engine {
	return &Engine{Defaults: true, Sinks: map[string]Sink{LogName: &Log{Logger: log}}, Interval: DefaultInterval,
		RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax, Claim: DefaultClaim, Now: time.Now, store: store, log: log}
}

// AddSink adds s to the sinks.
func (e *Engine) AddSink(s Sink) {
	if e.Sinks == nil {
		e.Sinks = map[string]Sink{}
	}
	e.Sinks[s.Name()] = s
}

// Run evaluates the rules and delivers the outbox every Interval until ctx
// ends; it starts with a pass at once (deliveries a previous run left are
// sent right away). Delivery runs in a goroutine of its own, woken after
// each evaluation, so a slow or dead sink never delays the evaluation;
// Run returns once both have stopped. Failures are logged, never fatal.
func (e *Engine) Run(ctx context.Context) error {
	interval := e.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if _, err := e.Deliver(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("alert delivery failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-kick:
			}
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("alert evaluation failed", "err", err)
		}
		select {
		case kick <- struct{}{}:
		default: // a delivery pass is already due
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// EffectiveRules returns the rules in effect, by name: the configured
// ones, the store's, and the defaults, each tagged with its Source.
func (e *Engine) EffectiveRules(ctx context.Context) ([]tokenmeter.AlertRule, error) {
	stored, err := e.store.AlertRules(ctx)
	if err != nil {
		return nil, fmt.Errorf("read alert rules: %w", err)
	}
	byName := map[string]tokenmeter.AlertRule{}
	if e.Defaults {
		for _, r := range DefaultRules() {
			byName[r.Name] = r
		}
	}
	for _, r := range stored {
		r.Source = "ledger"
		byName[r.Name] = r
	}
	for _, r := range e.Rules {
		r.Source = "config"
		byName[r.Name] = r
	}
	out := make([]tokenmeter.AlertRule, 0, len(byName))
	for _, r := range byName {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// cond is a rule's condition that holds now for one subject.
type cond struct {
	alert tokenmeter.Alert // Group, Key (empty: any firing alert of the group holds), and the rest to fire
	sinks []string
	// threshold is a threshold rule's percentage (0 for other kinds): of
	// several thresholds of one limit crossed in one pass, only the
	// highest is delivered (see quietLower).
	threshold int
}

// verdict is what evaluating a rule found: the conditions that hold and,
// for subjects it judged that do not hold, why (the resolution summary).
type verdict struct {
	hold  []cond
	clear map[string]string // group -> summary
	// quiet resolutions are not delivered (anomaly alerts expire).
	quiet bool
}

// Evaluate runs every rule once: it fires the alerts whose condition
// holds and has not fired for its window, and resolves the firing alerts
// whose condition cleared (or whose rule or subject is gone).
func (e *Engine) Evaluate(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.Now()
	rules, err := e.EffectiveRules(ctx)
	if err != nil {
		return err
	}
	firing, err := e.store.Alerts(ctx, tokenmeter.AlertQuery{Firing: true})
	if err != nil {
		return fmt.Errorf("read firing alerts: %w", err)
	}
	byGroup := map[string]tokenmeter.Alert{}
	for _, a := range firing {
		byGroup[a.Group] = a
	}
	e.firing = byGroup
	var errs []error
	keep := time.Duration(0)
	for _, r := range rules {
		if r.Kind == tokenmeter.AlertErrorRate || r.Kind == tokenmeter.AlertRateLimited {
			keep = max(keep, time.Duration(r.Span), DefaultRateSpan)
		}
	}
	if keep > 0 {
		if err := e.followCalls(ctx, now, keep); err != nil {
			return err
		}
	}
	for k, c := range e.usedCache {
		if now.Sub(c.at) >= UsageCacheTTL || now.Before(c.at) {
			delete(e.usedCache, k)
		}
	}
	held := map[string]bool{}
	quiet := map[string]bool{} // rules whose resolutions are not delivered
	ruleOK := map[string]bool{}
	clear := map[string]string{}
	var fire []cond
	for _, r := range rules {
		v, err := e.evaluate(ctx, r, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
			continue
		}
		ruleOK[r.Name] = true
		quiet[r.Name] = v.quiet
		for g, s := range v.clear {
			clear[g] = s
		}
		for _, c := range v.hold {
			if a, ok := byGroup[c.alert.Group]; ok && (c.alert.Key == "" || c.alert.Key == a.Key) {
				held[a.Group] = true
				continue
			}
			fire = append(fire, c)
		}
	}
	quietLower(fire)
	// Resolve first: a group whose window moved on resolves its old alert
	// before the new window's fires.
	for _, a := range firing {
		if held[a.Group] {
			continue
		}
		_, known := ruleIndex(rules, a.Rule)
		if known && !ruleOK[a.Rule] {
			continue // its rule failed to evaluate: judge it next time
		}
		why := clear[a.Group]
		switch {
		case !known:
			why = "rule " + a.Rule + " was removed"
		case !a.WindowEnd.IsZero() && !now.Before(a.WindowEnd):
			why = "window ended at " + a.WindowEnd.UTC().Format(time.RFC3339)
		case why == "":
			why = "no longer applies"
		}
		var sinks []string
		if !quiet[a.Rule] && !superseded(a) {
			r, _ := ruleIndex(rules, a.Rule)
			sinks = e.sinksOf(r)
		}
		if _, err := e.store.ResolveAlert(ctx, a.ID, now, why, sinks, Payload); err != nil && tokenmeter.ErrorCode(err) != tokenmeter.ECONFLICT {
			errs = append(errs, fmt.Errorf("resolve alert %d: %w", a.ID, err))
		}
	}
	if e.recorded == nil {
		e.recorded = map[string]time.Time{}
	}
	for k, t := range e.recorded {
		if now.Sub(t) > AnomalyLookback {
			delete(e.recorded, k)
		}
	}
	for _, c := range fire {
		a := c.alert
		if a.Key == "" {
			a.Key = tokenmeter.AlertKey(a.Group, fmt.Sprint(now.UnixMicro()))
		}
		if _, ok := e.recorded[a.Key]; ok {
			continue // fired before (in this window) and resolved since
		}
		a.Fired = now
		got, _, err := e.store.FireAlert(ctx, a, c.sinks, Payload)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("fire alert %s: %w", a.Subject, err))
		case got.Key == a.Key:
			e.recorded[a.Key] = now
		default:
			// Another alert of the group is still firing (its resolution
			// failed this pass): this one is not recorded, so the next
			// pass tries again instead of skipping it for the window.
		}
	}
	return errors.Join(errs...)
}

// SupersededKey is the key of a threshold alert's details that says it
// was crossed in the same pass as a higher threshold of its limit (the
// value): it is recorded, but neither its firing nor its resolution is
// delivered, so one jump across 80 % and 100 % is one message.
const SupersededKey = "superseded_by_percent"

// quietLower keeps, of the threshold alerts about to fire for one rule and
// limit, only the highest threshold's deliveries: the others are recorded
// (so they do not fire later in the window) without sinks, marked with
// SupersededKey.
func quietLower(fire []cond) {
	top := map[string]int{} // rule and subject -> highest threshold firing now
	for _, c := range fire {
		if c.threshold > 0 {
			k := c.alert.Rule + "\x00" + c.alert.Subject
			top[k] = max(top[k], c.threshold)
		}
	}
	for i := range fire {
		c := &fire[i]
		hi := top[c.alert.Rule+"\x00"+c.alert.Subject]
		if c.threshold == 0 || c.threshold == hi {
			continue
		}
		var d map[string]any
		if json.Unmarshal(c.alert.Details, &d) != nil || d == nil {
			d = map[string]any{}
		}
		d[SupersededKey] = hi
		c.alert.Details, c.sinks = details(d), nil
	}
}

// superseded reports whether a was fired quietly by quietLower.
func superseded(a tokenmeter.Alert) bool {
	var d map[string]json.RawMessage
	if json.Unmarshal(a.Details, &d) != nil {
		return false
	}
	_, ok := d[SupersededKey]
	return ok
}

func ruleIndex(rules []tokenmeter.AlertRule, name string) (tokenmeter.AlertRule, bool) {
	for _, r := range rules {
		if r.Name == name {
			return r, true
		}
	}
	return tokenmeter.AlertRule{}, false
}

// sinksOf returns the sinks a rule's alerts go to: its own list (or every
// configured sink), always with the log.
func (e *Engine) sinksOf(r tokenmeter.AlertRule) []string {
	var out []string
	if len(r.Sinks) > 0 {
		out = slices.Clone(r.Sinks)
	} else {
		for name := range e.Sinks {
			out = append(out, name)
		}
	}
	if !slices.Contains(out, LogName) {
		out = append(out, LogName)
	}
	sort.Strings(out)
	return out
}

func (e *Engine) evaluate(ctx context.Context, r tokenmeter.AlertRule, now time.Time) (verdict, error) {
	switch r.Kind {
	case tokenmeter.AlertThreshold, tokenmeter.AlertBurnRate:
		return e.limitRule(ctx, r, now)
	case tokenmeter.AlertAnomaly:
		return e.anomalyRule(ctx, r, now)
	case tokenmeter.AlertErrorRate, tokenmeter.AlertRateLimited:
		return e.rateRule(ctx, r, now)
	}
	return verdict{}, fmt.Errorf("unknown kind %q", r.Kind)
}

// details marshals v for Alert.Details.
func details(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// limitRule judges a threshold or burn_rate rule against every limit it
// names (every limit when it names none).
func (e *Engine) limitRule(ctx context.Context, r tokenmeter.AlertRule, now time.Time) (verdict, error) {
	all, err := e.store.Limits(ctx)
	if err != nil {
		return verdict{}, fmt.Errorf("read limits: %w", err)
	}
	v := verdict{clear: map[string]string{}}
	sinks := e.sinksOf(r)
	for _, l := range all {
		if r.Limit != "" && l.Name != r.Limit {
			continue
		}
		spec, err := limits.Compile(l)
		if err != nil {
			return v, err
		}
		start, end, err := limits.Window(ctx, e.store, l, spec, now)
		if err != nil {
			return v, err
		}
		used, err := e.used(ctx, l, start, now)
		if err != nil {
			return v, err
		}
		rolling := spec.Kind == window.Rolling
		base := tokenmeter.Alert{Rule: r.Name, Kind: r.Kind, Subject: "limit " + l.Name}
		if !rolling {
			base.WindowStart, base.WindowEnd = start, end
		}
		pct := 100 * float64(used) / float64(l.Max)
		if r.Kind == tokenmeter.AlertThreshold {
			thresholds := r.Thresholds
			if len(thresholds) == 0 {
				thresholds = tokenmeter.DefaultThresholds
			}
			for _, t := range thresholds {
				a := base
				a.Group = tokenmeter.AlertKey(r.Name, "limit", l.Name, fmt.Sprint(t))
				if float64(used)*100 < float64(t)*float64(l.Max) {
					v.clear[a.Group] = fmt.Sprintf("limit %s at %.1f%%, under %d%%", l.Name, pct, t)
					continue
				}
				if !rolling {
					a.Key = tokenmeter.AlertKey(a.Group, fmt.Sprint(start.UnixMicro()))
				}
				a.Severity = tokenmeter.SeverityInfo
				switch {
				case t >= 100:
					a.Severity = tokenmeter.SeverityCritical
				case t >= 80:
					a.Severity = tokenmeter.SeverityWarning
				}
				a.Summary = fmt.Sprintf("limit %s (%s %s, %s) reached %d%%: %s of %s used in the window %s", l.Name, l.Mode, l.Scope, l.Window,
					t, amount(l.Metric, used), amount(l.Metric, l.Max), windowText(spec, start, end))
				a.Details = details(map[string]any{"limit": l.Name, "scope": l.Scope, "metric": l.Metric, "mode": l.Mode, "window": l.Window,
					"threshold_percent": t, "used": used, "max": l.Max, "used_percent": round1(pct),
					"window_start": start.UTC(), "reset": end.UTC()})
				v.hold = append(v.hold, cond{alert: a, sinks: sinks, threshold: t})
			}
			continue
		}
		// Burn rate: the usage of the recent span, per second, projected.
		span := time.Duration(r.Span)
		if span <= 0 {
			span = DefaultBurnSpan
		}
		since := now.Add(-span)
		if !rolling && start.After(since) {
			since = start
		}
		since = since.Truncate(tokenmeter.RollupBucket)
		elapsed := now.Sub(since)
		a := base
		a.Group = tokenmeter.AlertKey(r.Name, "limit", l.Name)
		if elapsed < MinBurnElapsed {
			v.clear[a.Group] = fmt.Sprintf("limit %s: too little history in the window to project", l.Name)
			continue
		}
		recent, err := e.used(ctx, l, since, now)
		if err != nil {
			return v, err
		}
		rate := float64(recent) / elapsed.Seconds() // per second
		var projected float64
		var horizon time.Time
		if rolling {
			projected, horizon = rate*spec.Length.Seconds(), now.Add(spec.Length)
		} else {
			projected, horizon = float64(used)+rate*end.Sub(now).Seconds(), end
		}
		_, firingNow := e.firing[a.Group]
		if rate <= 0 || projected < float64(l.Max) || (used >= l.Max && !firingNow) {
			v.clear[a.Group] = fmt.Sprintf("limit %s: projected %s by %s, within its max %s", l.Name,
				amount(l.Metric, int64(math.Min(projected, math.MaxInt64/2))), horizon.UTC().Format(time.RFC3339), amount(l.Metric, l.Max))
			continue
		}
		if !rolling {
			a.Key = tokenmeter.AlertKey(a.Group, fmt.Sprint(start.UnixMicro()))
		}
		a.Severity = tokenmeter.SeverityWarning
		perHour := int64(math.Min(rate*3600, math.MaxInt64/2))
		var eta time.Time
		if used < l.Max {
			eta = now.Add(time.Duration(float64(l.Max-used) / rate * float64(time.Second))).Truncate(time.Second)
		}
		if rolling {
			a.Summary = fmt.Sprintf("limit %s (%s %s, %s): at the rate of the last %s (%s an hour) the rolling window will hold %s, over its max %s",
				l.Name, l.Mode, l.Scope, l.Window, elapsed.Round(time.Minute), amount(l.Metric, perHour),
				amount(l.Metric, int64(math.Min(projected, math.MaxInt64/2))), amount(l.Metric, l.Max))
		} else {
			a.Summary = fmt.Sprintf("limit %s (%s %s, %s): at the rate of the last %s (%s an hour) it reaches its max %s at %s, before its reset at %s (%s used now)",
				l.Name, l.Mode, l.Scope, l.Window, elapsed.Round(time.Minute), amount(l.Metric, perHour), amount(l.Metric, l.Max),
				eta.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), amount(l.Metric, used))
		}
		a.Details = details(map[string]any{"limit": l.Name, "scope": l.Scope, "metric": l.Metric, "mode": l.Mode, "window": l.Window,
			"used": used, "max": l.Max, "rate_per_hour": perHour, "rate_since": since.UTC(), "projected": int64(math.Min(projected, math.MaxInt64/2)),
			"reaches_max_at": eta.UTC(), "window_start": start.UTC(), "reset": horizon.UTC()})
		v.hold = append(v.hold, cond{alert: a, sinks: sinks})
	}
	return v, nil
}

// UsageCacheTTL is how long the engine reuses a limit's usage in the
// window's older buckets (all but the last two 15-minute buckets, which it
// reads every pass): an import of old calls shows within it.
const UsageCacheTTL = 5 * time.Minute

type usedKey struct {
	scope       string
	metric      tokenmeter.LimitMetric
	since, upto time.Time
}

type usedVal struct {
	v  int64
	at time.Time
}

// used is limits.Used (the same grid, the same sum): the usage of l's
// scope from since (floored to the rollup grid) to now. The older buckets'
// sum is kept for UsageCacheTTL; the last two buckets (where calls still
// complete) are read every time.
func (e *Engine) used(ctx context.Context, l tokenmeter.Limit, since, now time.Time) (int64, error) {
	since = since.Truncate(tokenmeter.RollupBucket)
	end := now.Truncate(tokenmeter.RollupBucket).Add(tokenmeter.RollupBucket)
	upto := end.Add(-2 * tokenmeter.RollupBucket)
	if !upto.After(since) {
		return limits.UsedIn(ctx, e.store, l, since, end)
	}
	if e.usedCache == nil {
		e.usedCache = map[usedKey]usedVal{}
	}
	k := usedKey{scope: l.Scope, metric: l.Metric, since: since, upto: upto}
	c, ok := e.usedCache[k]
	if !ok || now.Sub(c.at) >= UsageCacheTTL || now.Before(c.at) {
		v, err := limits.UsedIn(ctx, e.store, l, since, upto)
		if err != nil {
			return 0, err
		}
		c = usedVal{v: v, at: now}
		e.usedCache[k] = c
	}
	recent, err := limits.UsedIn(ctx, e.store, l, upto, end)
	if err != nil {
		return 0, err
	}
	return c.v + recent, nil
}

// anomalyRule fires once for each anomaly detected within
// AnomalyLookback; the alert stays firing for AnomalyHold.
func (e *Engine) anomalyRule(ctx context.Context, r tokenmeter.AlertRule, now time.Time) (verdict, error) {
	list, err := e.store.Anomalies(ctx, now.Add(-AnomalyLookback))
	if err != nil {
		return verdict{}, fmt.Errorf("read anomalies: %w", err)
	}
	v := verdict{clear: map[string]string{}, quiet: true}
	sinks := e.sinksOf(r)
	for _, an := range list {
		if len(r.AnomalyKinds) > 0 && !slices.Contains(r.AnomalyKinds, an.Kind) {
			continue
		}
		if an.Detected.After(now) {
			continue
		}
		a := tokenmeter.Alert{Rule: r.Name, Kind: tokenmeter.AlertAnomaly, Severity: tokenmeter.SeverityWarning,
			Subject: fmt.Sprintf("anomaly %d", an.ID)}
		a.Group = tokenmeter.AlertKey(r.Name, "anomaly", fmt.Sprint(an.ID))
		a.Key = a.Group
		if f, ok := e.firing[a.Group]; ok {
			if now.Sub(f.Fired) >= AnomalyHold {
				continue // expires
			}
		} else if _, ok := e.recorded[a.Key]; ok {
			continue // fired and expired before
		}
		where := an.Provider
		if an.Counter != "" {
			where += " " + an.Counter
		}
		a.Summary = fmt.Sprintf("%s anomaly on %s: %s (tokenmeter anomalies show %d)", an.Kind, where, an.Summary, an.ID)
		a.Details = details(map[string]any{"anomaly_id": an.ID, "anomaly_kind": an.Kind, "provider": an.Provider,
			"credential": an.Credential, "counter": an.Counter, "detected": an.Detected.UTC(), "start": an.Start.UTC(), "end": an.End.UTC()})
		v.hold = append(v.hold, cond{alert: a, sinks: sinks})
	}
	// Firing anomaly alerts not held expire without a message.
	return v, nil
}

// rateRule judges an error_rate or rate_limited rule per provider over
// the recent span.
func (e *Engine) rateRule(ctx context.Context, r tokenmeter.AlertRule, now time.Time) (verdict, error) {
	span := time.Duration(r.Span)
	if span <= 0 {
		span = DefaultRateSpan
	}
	minReq, pct := r.MinRequests, int64(r.Percent)
	if r.Kind == tokenmeter.AlertErrorRate {
		minReq, pct = or(minReq, DefaultErrorMinRequests), or(pct, DefaultErrorPercent)
	} else {
		minReq, pct = or(minReq, DefaultRateLimitedMinRequests), or(pct, DefaultRateLimitedPercent)
	}
	type tally struct{ total, bad int64 }
	by := map[string]*tally{}
	var providers []string
	from := now.Add(-span).Truncate(time.Minute)
	for minute, ps := range e.calls {
		if minute.Before(from) || minute.After(now) {
			continue
		}
		for p, b := range ps {
			t := by[p]
			if t == nil {
				t = &tally{}
				by[p] = t
				providers = append(providers, p)
			}
			t.total += b.total
			if r.Kind == tokenmeter.AlertRateLimited {
				t.bad += b.limited
			} else {
				t.bad += b.failed
			}
		}
	}
	sort.Strings(providers)
	v := verdict{clear: map[string]string{}}
	sinks := e.sinksOf(r)
	what := "failed or got a 5xx"
	if r.Kind == tokenmeter.AlertRateLimited {
		what = "got 429"
	}
	// Providers with firing alerts but no calls in the span clear too.
	for _, a := range e.firing {
		if a.Rule == r.Name {
			v.clear[a.Group] = fmt.Sprintf("no calls in the last %s", span)
		}
	}
	for _, p := range providers {
		t := by[p]
		a := tokenmeter.Alert{Rule: r.Name, Kind: r.Kind, Severity: tokenmeter.SeverityWarning, Subject: "provider " + p}
		a.Group = tokenmeter.AlertKey(r.Name, "provider", p)
		share := 100 * float64(t.bad) / float64(t.total)
		if t.total < minReq || t.bad*100 < pct*t.total {
			v.clear[a.Group] = fmt.Sprintf("%s: %d of %d calls %s in the last %s (%.0f%%)", p, t.bad, t.total, what, span, share)
			continue
		}
		a.Summary = fmt.Sprintf("%s: %d of %d calls %s in the last %s (%.0f%%, alert at %d%% of at least %d calls)",
			p, t.bad, t.total, what, span, share, pct, minReq)
		a.Details = details(map[string]any{"provider": p, "calls": t.total, "matching": t.bad, "percent": round1(share),
			"span_seconds": int64(span.Seconds()), "threshold_percent": pct, "min_requests": minReq})
		v.hold = append(v.hold, cond{alert: a, sinks: sinks})
	}
	return v, nil
}

// callCounts are the completed proxied calls of one provider in one
// minute: all of them, those that failed (outcome failed or status >= 500)
// and those refused with 429.
type callCounts struct{ total, failed, limited int64 }

// Reading the ledger's calls for error_rate and rate_limited rules.
const (
	// StartupCalls is how many of the ledger's latest events a starting
	// engine reads to know the recent calls.
	StartupCalls = 200_000
	// callsPage and callsPages bound one pass's reading.
	callsPage  = 10_000
	callsPages = 20
)

// followCalls reads the calls appended since the last pass into e.calls
// (by minute and provider) and forgets the minutes older than keep.
func (e *Engine) followCalls(ctx context.Context, now time.Time, keep time.Duration) error {
	if !e.following {
		e.cursor, e.following = -StartupCalls, true
	}
	if e.calls == nil {
		e.calls = map[time.Time]map[string]*callCounts{}
	}
	for range callsPages {
		calls, next, err := e.store.CallOutcomes(ctx, e.cursor, callsPage)
		if err != nil {
			return fmt.Errorf("read calls: %w", err)
		}
		for _, c := range calls {
			m := c.Time.Truncate(time.Minute)
			ps := e.calls[m]
			if ps == nil {
				ps = map[string]*callCounts{}
				e.calls[m] = ps
			}
			b := ps[c.Provider]
			if b == nil {
				b = &callCounts{}
				ps[c.Provider] = b
			}
			b.total++
			if c.Outcome == tokenmeter.OutcomeFailed || c.Status >= 500 {
				b.failed++
			}
			if c.Status == 429 {
				b.limited++
			}
		}
		read := next - max(e.cursor, 0)
		e.cursor = next
		if read < callsPage {
			break
		}
	}
	oldest := now.Add(-keep - time.Minute)
	for m := range e.calls {
		if m.Before(oldest) {
			delete(e.calls, m)
		}
	}
	return nil
}

func or(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// amount formats a metric's amount: dollars for cost_usd, else the count
// with its unit.
func amount(m tokenmeter.LimitMetric, v int64) string {
	switch m {
	case tokenmeter.MetricCost:
		if v%10_000 == 0 {
			return fmt.Sprintf("$%.2f", tokenmeter.Micros(v).USD())
		}
		return "$" + strconv.FormatFloat(tokenmeter.Micros(v).USD(), 'f', -1, 64)
	case tokenmeter.MetricRequests:
		return fmt.Sprintf("%d requests", v)
	}
	return fmt.Sprintf("%d %s", v, m)
}

func windowText(spec window.Spec, start, end time.Time) string {
	if spec.Kind == window.Rolling {
		return "of the last " + spec.Length.String()
	}
	return start.UTC().Format(time.RFC3339) + " to " + end.UTC().Format(time.RFC3339)
}

// Deliver sends the deliveries due now, each to its sink, and returns how
// many were delivered. A failed attempt is retried after a back-off that
// doubles from RetryMin to RetryMax; a delivery to a sink that is not
// configured (any more) waits the same way, so nothing is dropped.
func (e *Engine) Deliver(ctx context.Context) (int, error) {
	now := e.Now()
	claim := e.Claim
	if claim <= 0 {
		claim = DefaultClaim
	}
	ds, err := e.store.ClaimDeliveries(ctx, now, now.Add(claim), batch)
	if err != nil {
		return 0, fmt.Errorf("claim deliveries: %w", err)
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		delivered int
		errs      []error
		sem       = make(chan struct{}, parallel)
	)
	for _, d := range ds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, err := e.send(ctx, d)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				delivered++
			}
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return delivered, errors.Join(errs...)
}

// send attempts one delivery and records the outcome.
func (e *Engine) send(ctx context.Context, d tokenmeter.Delivery) (bool, error) {
	var m Message
	err := json.Unmarshal(d.Payload, &m)
	if err != nil {
		err = fmt.Errorf("payload: %w", err)
	} else if s := e.Sinks[d.Sink]; s == nil {
		err = fmt.Errorf("sink %q is not configured", d.Sink)
	} else {
		err = s.Send(ctx, m, d.Payload)
	}
	// Record with a context of its own: a shutdown mid-send still leaves
	// the outcome (a lapsed claim would repeat the send otherwise).
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err == nil {
		if err := e.store.DeliveryDone(rctx, d.ID, e.Now()); err != nil {
			return false, fmt.Errorf("mark delivery %d delivered: %w", d.ID, err)
		}
		return true, nil
	}
	next := e.Now().Add(e.backoff(d.Attempts))
	if ctx.Err() != nil {
		next = e.Now() // interrupted by shutdown: due again at the next start
	}
	e.log.Warn("alert delivery failed", "alert", d.AlertID, "sink", d.Sink, "attempt", d.Attempts, "retry_at", next.UTC().Format(time.RFC3339), "err", err)
	if err := e.store.DeliveryFailed(rctx, d.ID, next, err.Error()); err != nil {
		return false, fmt.Errorf("mark delivery %d failed: %w", d.ID, err)
	}
	return false, nil
}

// backoff returns the wait after the attempts-th failed attempt.
func (e *Engine) backoff(attempts int) time.Duration {
	lo, hi := e.RetryMin, e.RetryMax
	if lo <= 0 {
		lo = DefaultRetryMin
	}
	if hi < lo {
		hi = max(lo, DefaultRetryMax)
	}
	d := lo
	for i := 1; i < attempts && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
