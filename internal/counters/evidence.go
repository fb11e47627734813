package counters

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// SampleView is a Sample as JSON (evidence documents, the admin API):
// absent values are left out; utilization is in basis points.
type SampleView struct {
	Time          time.Time  `json:"time"`
	Provider      string     `json:"provider"`
	Credential    string     `json:"credential,omitempty"`
	Counter       string     `json:"counter"`
	Limit         *int64     `json:"limit,omitempty"`
	Remaining     *int64     `json:"remaining,omitempty"`
	UtilizationBP *int64     `json:"utilization_bp,omitempty"`
	Reset         *time.Time `json:"reset,omitempty"`
	Status        string     `json:"status,omitempty"`
	Raw           string     `json:"raw,omitempty"`
	Source        string     `json:"source"`
}

// View returns s as a SampleView.
func View(s tokenmeter.Sample) SampleView {
	v := SampleView{Time: s.Time.UTC(), Provider: s.Provider, Credential: s.Credential, Counter: s.Counter,
		Status: s.Status, Raw: s.Raw, Source: s.Source}
	opt := func(n int64) *int64 {
		if n == tokenmeter.NoValue {
			return nil
		}
		return &n
	}
	v.Limit, v.Remaining, v.UtilizationBP = opt(s.Limit), opt(s.Remaining), opt(s.Utilization)
	if !s.Reset.IsZero() {
		r := s.Reset.UTC()
		v.Reset = &r
	}
	return v
}

// Views returns View of each sample.
func Views(samples []tokenmeter.Sample) []SampleView {
	out := make([]SampleView, len(samples))
	for i, s := range samples {
		out[i] = View(s)
	}
	return out
}

// LedgerView is the ledger's usage over an anomaly's span, for the
// credential's calls.
type LedgerView struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Principals are those counted: the credential itself (pass-through
	// calls) and, when it is the route's configured credential, the
	// virtual keys ("key:*") whose calls it carried.
	Principals       []string `json:"principals"`
	Requests         int64    `json:"requests"`
	InputTokens      int64    `json:"input_tokens"`
	OutputTokens     int64    `json:"output_tokens"`
	CacheWriteTokens int64    `json:"cache_creation_input_tokens"`
	CacheReadTokens  int64    `json:"cache_read_input_tokens"`
}

// count returns the ledger's figure in metric (see DriftMetric).
func (l LedgerView) count(metric string) int64 {
	switch metric {
	case "requests":
		return l.Requests
	case "input":
		return l.InputTokens + l.CacheWriteTokens
	case "output":
		return l.OutputTokens
	case "tokens":
		return l.InputTokens + l.CacheWriteTokens + l.OutputTokens
	case "openai_tokens":
		return l.InputTokens + l.CacheReadTokens + l.OutputTokens
	}
	return 0
}

// Evidence is the evidence document stored with an anomaly
// (tokenmeter.Anomaly.Evidence).
type Evidence struct {
	Kind       string    `json:"kind"`
	Provider   string    `json:"provider"`
	Credential string    `json:"credential,omitempty"`
	Counter    string    `json:"counter,omitempty"`
	Detected   time.Time `json:"detected"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	// AdvertisedReset is the reset the provider had announced.
	AdvertisedReset *time.Time   `json:"advertised_reset,omitempty"`
	Before          []SampleView `json:"samples_before"`
	After           []SampleView `json:"samples_after"`
	Ledger          *LedgerView  `json:"ledger,omitempty"`
	// Drift only: what the provider counted in the window and what the
	// ledger did, in Metric, and the difference allowed.
	Metric        string         `json:"metric,omitempty"`
	ProviderCount *int64         `json:"provider_count,omitempty"`
	LedgerCount   *int64         `json:"ledger_count,omitempty"`
	Allowed       *int64         `json:"allowed_difference,omitempty"`
	Facts         map[string]any `json:"facts,omitempty"`
}

// UsageReader is the part of the Store that evidence reads.
type UsageReader interface {
	Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error)
}

// LedgerUsage sums the ledger's usage of credential's calls on provider in
// [since, until]. routeCredential is the Credential.ID of the provider
// route's configured credential (the one virtual-key calls are sent with),
// or empty. An empty credential counts every call on provider.
func LedgerUsage(ctx context.Context, store UsageReader, provider, credential, routeCredential string, since, until time.Time) (LedgerView, error) {
	v := LedgerView{Since: since.UTC(), Until: until.UTC(), Principals: []string{}}
	buckets, err := store.Usage(ctx, tokenmeter.UsageQuery{Since: since, Until: until.Add(time.Microsecond)})
	if err != nil {
		return v, fmt.Errorf("ledger usage for the evidence: %w", err)
	}
	seen := map[string]bool{}
	for _, b := range buckets {
		if b.Provider != provider {
			continue
		}
		ok := credential == "" || b.Principal == credential ||
			(routeCredential != "" && routeCredential == credential && strings.HasPrefix(b.Principal, "key:"))
		if !ok {
			continue
		}
		if !seen[b.Principal] {
			seen[b.Principal] = true
			v.Principals = append(v.Principals, b.Principal)
		}
		v.Requests += b.Requests
		v.InputTokens += b.Usage.InputTokens
		v.OutputTokens += b.Usage.OutputTokens
		v.CacheWriteTokens += b.Usage.CacheWriteTokens()
		v.CacheReadTokens += b.Usage.CacheReadTokens
	}
	return v, nil
}

// Judge adds the ledger's side to f and returns the anomaly to store. For
// a drift finding it also decides: ok is false when the provider's count
// and the ledger's agree within the tolerance.
func Judge(ctx context.Context, store UsageReader, f Finding, routeCredential string) (a tokenmeter.Anomaly, ok bool, err error) {
	a = f.Anomaly
	ev := Evidence{Kind: a.Kind, Provider: a.Provider, Credential: a.Credential, Counter: a.Counter,
		Detected: a.Detected.UTC(), Start: a.Start.UTC(), End: a.End.UTC(),
		Before: Views(f.Before), After: Views(f.After), Facts: f.Facts}
	if ev.Before == nil {
		ev.Before = []SampleView{}
	}
	if ev.After == nil {
		ev.After = []SampleView{}
	}
	if !f.AdvertisedReset.IsZero() {
		r := f.AdvertisedReset.UTC()
		ev.AdvertisedReset = &r
	}
	if !f.LedgerSince.IsZero() && store != nil {
		lv, err := LedgerUsage(ctx, store, a.Provider, a.Credential, routeCredential, f.LedgerSince, f.LedgerUntil)
		if err != nil {
			return a, false, err
		}
		ev.Ledger = &lv
	}
	if a.Kind == tokenmeter.AnomalyDrift {
		if ev.Ledger == nil {
			return a, false, nil
		}
		lc := ev.Ledger.count(f.Metric)
		pc := f.ProviderCount
		allowed := max(pc, lc) * f.Tolerance / 10000
		if r, _ := f.Facts["rounding"].(int); int64(r) > allowed {
			allowed = int64(r)
		}
		allowed = max(allowed, 1)
		diff := pc - lc
		if abs(diff) <= allowed {
			return a, false, nil
		}
		ev.Metric, ev.ProviderCount, ev.LedgerCount, ev.Allowed = f.Metric, &pc, &lc, &allowed
		a.Summary = fmt.Sprintf("%s: the provider counted %d %s in the window %s to %s, the ledger %d (%+d, %d allowed)",
			a.Counter, pc, f.Metric, a.Start.UTC().Format(time.RFC3339), a.End.UTC().Format(time.RFC3339), lc, diff, allowed)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return a, false, fmt.Errorf("evidence: %w", err)
	}
	a.Evidence = b
	return a, true, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
