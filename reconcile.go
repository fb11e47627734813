package tokenmeter

import (
	"context"
	"encoding/json"
	"time"
)

// Classes of a reconciliation row: how the provider's report and the
// ledger compare for one bucket × model (× API key).
const (
	// ReconcileMatch: both sides agree within the tolerance.
	ReconcileMatch = "match"
	// ReconcileProviderOnly: the provider reports usage the ledger never
	// saw (traffic that bypassed the gateway, or a lost record).
	ReconcileProviderOnly = "provider-only"
	// ReconcileLedgerOnly: the ledger holds usage the provider does not
	// report (not billed, or not yet reported).
	ReconcileLedgerOnly = "ledger-only"
	// ReconcileMismatch: both sides have usage and some category differs.
	ReconcileMismatch = "mismatch"
)

// Categories a discrepancy can be in. The token categories mean what
// Usage's fields mean; requests and cost are compared only where the
// provider reports them (cost in micro-dollars, per UTC day).
const (
	CategoryInput        = "input_tokens"
	CategoryOutput       = "output_tokens"
	CategoryCacheWrite5m = "cache_creation_5m_input_tokens"
	CategoryCacheWrite1h = "cache_creation_1h_input_tokens"
	CategoryCacheWrite   = "cache_creation_input_tokens" // both lifetimes, where the provider does not split them
	CategoryCacheRead    = "cache_read_input_tokens"
	CategoryWebSearch    = "web_search_requests"
	CategoryRequests     = "requests"
	CategoryCost         = "cost_micros"
)

// Reconcile run statuses.
const (
	ReconcileOK            = "ok"            // every final bucket within tolerance
	ReconcileDiscrepancies = "discrepancies" // some final bucket beyond tolerance
	ReconcileFailed        = "error"         // the report could not be read in full; nothing compared
)

// Discrepancy is one category of one reconciliation row where the
// provider's figure and the ledger's differ. Provider and Ledger are
// tokens, requests or micro-dollars (CategoryCost).
type Discrepancy struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Model is the model as the provider names it (the ledger's name when
	// the provider has no row), matched through ModelBase.
	Model string `json:"model"`
	// Key is the provider's API key id when reconciling by key; "" by
	// model. Principals lists the ledger principals matched to it.
	Key        string `json:"key,omitempty"`
	Principals string `json:"principals,omitempty"`
	Class      string `json:"class"`
	Category   string `json:"category"`
	Provider   int64  `json:"provider"`
	Ledger     int64  `json:"ledger"`
	// Final is false for buckets that end later than the run time minus
	// the provider's reporting lag: they may still change, and do not
	// count towards the run's status.
	Final bool `json:"final"`
	// Beyond reports that the difference exceeds the tolerance.
	Beyond bool `json:"beyond_tolerance"`
}

// Diff returns the provider's figure minus the ledger's.
func (d Discrepancy) Diff() int64 { return d.Provider - d.Ledger }

// MarshalJSON writes d's fields and "difference": Diff, the provider's
// figure minus the ledger's (negative when the ledger holds more). It is
// derived, so it is never stored and cannot disagree with the two figures;
// decoding ignores it.
func (d Discrepancy) MarshalJSON() ([]byte, error) {
	type fields Discrepancy // without this method
	return json.Marshal(struct {
		fields
		Difference int64 `json:"difference"`
	}{fields(d), d.Diff()})
}

// ReconcileSummary totals one run. Provider* are what the provider's
// reports say over the span, Ledger* what the ledger holds.
type ReconcileSummary struct {
	Buckets int `json:"buckets"` // buckets on the provider's grid in the span
	Rows    int `json:"rows"`    // bucket × model (× key) rows compared
	// Rows by class, and rows not final.
	Matched      int `json:"matched"`
	ProviderOnly int `json:"provider_only"`
	LedgerOnly   int `json:"ledger_only"`
	Mismatched   int `json:"mismatched"`
	NotFinal     int `json:"not_final"`
	// Beyond counts the final discrepancies beyond tolerance; non-zero
	// means status ReconcileDiscrepancies.
	Beyond int `json:"beyond_tolerance"`

	ProviderUsage    Usage `json:"provider_usage"`
	LedgerUsage      Usage `json:"ledger_usage"`
	ProviderRequests int64 `json:"provider_requests"`
	LedgerRequests   int64 `json:"ledger_requests"`
	// LedgerEstimatedRequests and LedgerEstimatedTokens are the ledger's
	// calls with estimated usage and the tokens of LedgerUsage they make
	// up; LedgerUnknownRequests its calls with usage unknown. A ledger
	// figure below the provider's with unknown calls in it is explained by
	// them before it is evidence.
	LedgerEstimatedRequests int64  `json:"ledger_usage_estimated_requests,omitempty"`
	LedgerEstimatedTokens   int64  `json:"ledger_estimated_tokens,omitempty"`
	LedgerUnknownRequests   int64  `json:"ledger_usage_unknown_requests,omitempty"`
	HasRequests             bool   `json:"has_requests"` // the provider reports request counts
	ProviderCost            Micros `json:"provider_cost_micros"`
	LedgerCost              Micros `json:"ledger_cost_micros"`
	HasCost                 bool   `json:"has_cost"` // the provider's cost report was read
	// CostUnavailable, when set, says why cost was not compared although
	// it was asked for: the provider refused the cost report (403: the
	// admin key lacks the scope; 404: not offered for the account). Tokens
	// and requests were compared all the same.
	CostUnavailable string `json:"cost_unavailable,omitempty"`
}

// ReconcileRun is one reconciliation of the ledger against a provider's
// usage (and cost) report, as stored by a scheduled run.
type ReconcileRun struct {
	ID        int64         `json:"id"` // assigned by the store
	Provider  string        `json:"provider"`
	Ran       time.Time     `json:"ran"`
	Since     time.Time     `json:"since"`
	Until     time.Time     `json:"until"`
	Bucket    time.Duration `json:"bucket_ns"`
	By        string        `json:"by"`        // "model" or "key"
	Tolerance string        `json:"tolerance"` // as given: "0", "100" (tokens) or "2%"
	Lag       time.Duration `json:"lag_ns"`
	Status    string        `json:"status"` // ReconcileOK, ReconcileDiscrepancies or ReconcileFailed
	// Error is why a failed run failed (never a credential).
	Error   string           `json:"error,omitempty"`
	Summary ReconcileSummary `json:"summary"`
	// Discrepancies are every difference found, largest first. Stores
	// return them only from ReconcileRun, not from ReconcileRuns.
	Discrepancies []Discrepancy `json:"discrepancies"`
}

// ReconcileStore keeps reconciliation runs and their discrepancies. It is
// part of Store.
type ReconcileStore interface {
	// AddReconcileRun stores run (its ID is ignored) with its
	// discrepancies in one transaction and returns the new ID.
	AddReconcileRun(ctx context.Context, run ReconcileRun) (int64, error)

	// ReconcileRuns returns the newest runs first, at most limit of them
	// (all when limit <= 0), of provider ("" for every provider), without
	// their discrepancies.
	ReconcileRuns(ctx context.Context, provider string, limit int) ([]ReconcileRun, error)

	// ReconcileRun returns the run with its discrepancies in the order
	// they were stored; ENOTFOUND when there is none.
	ReconcileRun(ctx context.Context, id int64) (ReconcileRun, error)
}
