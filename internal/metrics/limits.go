package metrics

import (
	"context"
	"fmt"
	"time"

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
