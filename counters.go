package tokenmeter

import (
	"context"
	"encoding/json"
	"time"
)

// NoValue is the value of a Sample's Limit, Remaining or Utilization when
// the provider did not report it.
const NoValue int64 = -1

// Sample sources.
const (
	// SampleGateway: read from an upstream response's headers.
	SampleGateway = "gateway"
	// SampleStatusline: read from the JSON Claude Code hands its status-line
	// command (rate_limits), by tokenmeter statusline.
	SampleStatusline = "statusline"
)

// Sample is one reading of a provider's rate-limit counter, as a response
// header (or Claude Code's status line) reported it. The series of a
// counter is its samples with the same Provider, Credential and Counter, in
// Time order. Stores keep samples compactly: the capture keeps a sample
// when a value changed, or once a minute per counter while nothing changes.
type Sample struct {
	Time time.Time
	// Provider is the gateway route: "anthropic", "openai", or the name of
	// an OpenAI-compatible upstream.
	Provider string
	// Credential is the Credential.ID the request was sent with; empty when
	// it is not known (status-line samples, which carry no credential).
	Credential string
	// Counter names the counter:
	//   - Anthropic standard limits: "anthropic-ratelimit-requests",
	//     "anthropic-ratelimit-tokens", "anthropic-ratelimit-input-tokens",
	//     "anthropic-ratelimit-output-tokens"; Priority Tier
	//     "anthropic-priority-input-tokens", "anthropic-priority-output-tokens";
	//   - Anthropic subscription windows: "unified-5h", "unified-7d",
	//     "unified-7d_sonnet", "unified-overage", ... and "unified" for the
	//     account summary (status, reset, representative claim);
	//   - OpenAI: "x-ratelimit-requests", "x-ratelimit-tokens", ...;
	//   - "retry-after": Reset is when the provider said to retry;
	//   - any other header whose name contains "ratelimit": the header's
	//     lower-case name, its value in Raw.
	Counter string
	// Limit and Remaining are the counter's limit and what is left of it;
	// NoValue when not reported.
	Limit, Remaining int64
	// Utilization is the used share of the window in basis points (1/100 of
	// a percent: 0.38 is 3800, 1.13 is 11300; it can exceed 10000);
	// NoValue when not reported.
	Utilization int64
	// Reset is when the counter resets, as advertised; zero if not.
	Reset time.Time
	// Status is the provider's verdict ("allowed", "allowed_warning",
	// "rejected"), or for the "unified" summary "status/claim" such as
	// "allowed/five_hour"; empty if none.
	Status string
	// Raw keeps values that could not be parsed or have no field here,
	// as "header: value" lines. Never a secret: only rate-limit headers
	// are read.
	Raw string
	// Source is SampleGateway or SampleStatusline.
	Source string
}

// SameValues reports whether s and o carry the same reading (everything
// but Time and Source), so that o adds nothing to s's series.
func (s Sample) SameValues(o Sample) bool {
	return s.Provider == o.Provider && s.Credential == o.Credential && s.Counter == o.Counter &&
		s.Limit == o.Limit && s.Remaining == o.Remaining && s.Utilization == o.Utilization &&
		s.Reset.Equal(o.Reset) && s.Status == o.Status && s.Raw == o.Raw
}

// SampleQuery selects samples. Empty fields match everything; a zero
// Since or Until leaves that side open (Since inclusive, Until exclusive).
// Limit, when positive, keeps the latest Limit samples. Samples come in
// Time order (ties by provider, credential, counter).
type SampleQuery struct {
	Provider, Credential, Counter string
	Since, Until                  time.Time
	Limit                         int
}

// Anomaly kinds: those the counter watch detects, and reconciliation's.
// An alert rule may name only these (AnomalyKinds).
const (
	// AnomalyEarlyReset: the counter's used share fell (remaining rose)
	// before the advertised reset, by more than the window's sliding can
	// explain.
	AnomalyEarlyReset = "early_reset"
	// AnomalyDrift: over a span, the counter moved by an amount that
	// disagrees with the ledger's usage for the credential by more than a
	// tolerance.
	AnomalyDrift = "drift"
	// AnomalyResetMoved: the advertised reset time jumped.
	AnomalyResetMoved = "reset_moved"
	// AnomalyLimitChanged: the counter's limit changed.
	AnomalyLimitChanged = "limit_changed"
	// AnomalyThrottling: a burst of 429 or 529 responses.
	AnomalyThrottling = "throttling"
	// AnomalyReconcile: a reconciliation run found final discrepancies
	// beyond its tolerance (internal/reconcile).
	AnomalyReconcile = "reconcile"
)

// AnomalyKinds lists every anomaly kind, in the order docs list them.
var AnomalyKinds = []string{AnomalyEarlyReset, AnomalyDrift, AnomalyResetMoved, AnomalyLimitChanged, AnomalyThrottling, AnomalyReconcile}

// Anomaly is something a provider's counters did that the ledger cannot
// explain, stored with the evidence for it.
type Anomaly struct {
	// ID is assigned by the store.
	ID   int64
	Kind string
	// Provider, Credential (a Credential.ID, or empty) and Counter name the
	// series; Counter is empty for anomalies of no one counter
	// (throttling).
	Provider, Credential, Counter string
	// Detected is when it was detected; [Start, End] the span it covers
	// (Start identifies it: see CounterStore.AddAnomaly).
	Detected, Start, End time.Time
	// Summary is one line for people. It never holds a secret.
	Summary string
	// Evidence is the full evidence document, a JSON object: the samples
	// before and after, the ledger's usage over the span, the advertised
	// reset, the detector's reasoning.
	Evidence json.RawMessage
}

// CounterStore keeps the provider-counter samples and the anomalies found
// in them. It is part of Store.
type CounterStore interface {
	// AddSamples stores samples in one transaction. A series holds one
	// sample per microsecond: a later one at the same Time replaces it.
	AddSamples(ctx context.Context, samples []Sample) error

	// Samples returns the samples q selects, in Time order.
	Samples(ctx context.Context, q SampleQuery) ([]Sample, error)

	// PruneSamples deletes the samples older than before and reports how
	// many.
	PruneSamples(ctx context.Context, before time.Time) (int, error)

	// AddAnomaly stores a (its ID is ignored) and returns its ID. An
	// anomaly is stored once: when one with the same Kind, Provider,
	// Credential, Counter and Start exists, AddAnomaly stores nothing and
	// returns the existing one's ID (so a detector that sees the same
	// thing again, after a restart or on another replica, adds nothing).
	// It returns EINVALID for an anomaly without Kind or Start, or whose
	// Evidence is not a JSON object.
	AddAnomaly(ctx context.Context, a Anomaly) (int64, error)

	// Anomalies returns the anomalies detected at or after since, oldest
	// first.
	Anomalies(ctx context.Context, since time.Time) ([]Anomaly, error)

	// Anomaly returns the anomaly with id, or ENOTFOUND.
	Anomaly(ctx context.Context, id int64) (Anomaly, error)
}
