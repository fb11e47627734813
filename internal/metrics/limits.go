package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/limits"
)

// LimitsFrom returns a reader of every limit's usage in its current window,
// as limits list computes it, for Metrics.Limits. now nil means time.Now.
func LimitsFrom(store limits.Store, now func() time.Time) func(ctx context.Context) ([]LimitState, error) {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context) ([]LimitState, error) {
		all, err := store.Limits(ctx)
		if err != nil {
			return nil, fmt.Errorf("list limits: %w", err)
		}
		t := now()
		out := make([]LimitState, 0, len(all))
		for _, l := range all {
			spec, err := limits.Compile(l)
			if err != nil {
				return nil, err
			}
			start, _, err := limits.Window(ctx, store, l, spec, t)
			if err != nil {
				return nil, err
			}
			used, err := limits.Used(ctx, store, l, start, t)
			if err != nil {
				return nil, err
			}
			out = append(out, LimitState{Name: l.Name, Scope: l.Scope, Metric: string(l.Metric), Mode: string(l.Mode), Used: used, Max: l.Max})
		}
		return out, nil
	}
}

// DefaultCounterLookback is how far back CountersFrom looks for the last
// sample of each provider counter.
const DefaultCounterLookback = 24 * time.Hour

// CountersFrom returns a reader of the last sample of each provider
// counter seen in the last DefaultCounterLookback, for Metrics.Counters.
func CountersFrom(store tokenmeter.CounterStore, now func() time.Time) func(ctx context.Context) ([]CounterValue, error) {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context) ([]CounterValue, error) {
		samples, err := store.Samples(ctx, tokenmeter.SampleQuery{Since: now().Add(-DefaultCounterLookback), Limit: 10000})
		if err != nil {
			return nil, fmt.Errorf("read counter samples: %w", err)
		}
		type series struct{ p, c, n string }
		last := map[series]tokenmeter.Sample{}
		var order []series
		for _, s := range samples {
			k := series{s.Provider, s.Credential, s.Counter}
			if _, ok := last[k]; !ok {
				order = append(order, k)
			}
			if prev, ok := last[k]; !ok || !s.Time.Before(prev.Time) {
				last[k] = s
			}
		}
		out := make([]CounterValue, 0, len(order))
		opt := func(n int64) *int64 {
			if n == tokenmeter.NoValue {
				return nil
			}
			return &n
		}
		for _, k := range order {
			s := last[k]
			out = append(out, CounterValue{Provider: s.Provider, Credential: s.Credential, Counter: s.Counter,
				Limit: opt(s.Limit), Remaining: opt(s.Remaining), Utilization: opt(s.Utilization)})
		}
		return out, nil
	}
}

// AlertsFrom returns a reader of the number of alerts fired, by kind and
// severity, for Metrics.Alerts. Alerts are never deleted and their kind and
// severity never change, so after the first scrape it reads only the
// alerts fired since the newest one it has counted (less alertOverlap, for
// clocks of replicas that disagree a little), skipping those counted.
func AlertsFrom(store tokenmeter.AlertStore) func(ctx context.Context) (map[[2]string]int64, error) {
	var (
		mu     sync.Mutex
		counts = map[[2]string]int64{}
		seen   = map[int64]time.Time{} // counted alerts fired within alertOverlap of newest
		newest time.Time
	)
	return func(ctx context.Context) (map[[2]string]int64, error) {
		mu.Lock()
		defer mu.Unlock()
		var since time.Time
		if !newest.IsZero() {
			since = newest.Add(-alertOverlap)
		}
		list, err := store.Alerts(ctx, tokenmeter.AlertQuery{Since: since})
		if err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		for _, a := range list {
			if _, ok := seen[a.ID]; ok {
				continue
			}
			seen[a.ID] = a.Fired
			counts[[2]string{string(a.Kind), string(a.Severity)}]++
			if a.Fired.After(newest) {
				newest = a.Fired
			}
		}
		for id, at := range seen {
			if at.Before(newest.Add(-alertOverlap)) {
				delete(seen, id)
			}
		}
		out := make(map[[2]string]int64, len(counts))
		for k, n := range counts {
			out[k] = n
		}
		return out, nil
	}
}

// alertOverlap is how far before the newest alert counted AlertsFrom
// reads again.
const alertOverlap = 10 * time.Minute
