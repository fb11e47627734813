package metrics

import (
	"context"
	"fmt"
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
// severity, for Metrics.Alerts.
func AlertsFrom(store tokenmeter.AlertStore) func(ctx context.Context) (map[[2]string]int64, error) {
	return func(ctx context.Context) (map[[2]string]int64, error) {
		list, err := store.Alerts(ctx, tokenmeter.AlertQuery{})
		if err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		out := map[[2]string]int64{}
		for _, a := range list {
			out[[2]string{string(a.Kind), string(a.Severity)}]++
		}
		return out, nil
	}
}
