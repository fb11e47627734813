package tokenmeter

import (
	"context"
	"time"
)

// Store is the ledger's storage contract. The SQLite store (internal/sqlite)
// is the embedded default; a PostgreSQL store shared by several gateway
// replicas satisfies the same contract. Implementations are safe for
// concurrent use.
//
// Every capability that needs counts (reports, limits, alerts,
// reconciliation, the dashboard) reads them from here; none keeps counters
// of its own.
type Store interface {
	// Append appends events in one transaction, in order, extending the hash
	// chain (see Seal). An event whose Key is already in the ledger is
	// skipped, as are its duplicates within the batch; Append reports how
	// many were skipped. When Append returns nil the events survive a crash
	// of the process (and, with synchronous commits, of the machine).
	// Appending a proxied call's completed event removes the call's
	// reservation (see LimitStore) by the time Append returns, never before
	// its usage counts.
	Append(ctx context.Context, events []Event) (skipped int, err error)

	// OpenCalls returns, for every call whose started event has no completed
	// event, the latest event of that call (started or progress), oldest
	// first. Instances lists the writers to consider; nil means all.
	OpenCalls(ctx context.Context, instances []string) ([]Event, error)

	// Scan calls fn for each event with Seq > afterSeq in Seq order, until fn
	// returns an error or the events run out. It is how verify walks the chain.
	Scan(ctx context.Context, afterSeq int64, fn func(*Event) error) error

	// Usage aggregates completed (and revised) events whose Time is in [q.Since, q.Until)
	// into buckets of q.Bucket width (aligned to the Unix epoch in UTC),
	// grouped by provider, model, principal, project and outcome.
	Usage(ctx context.Context, q UsageQuery) ([]UsageBucket, error)

	// Import is Append for importers, with completed events only. An event
	// is skipped as recorded when the gateway metered the call (a proxied
	// call carries the same non-empty UpstreamRequestID or ResponseID) and
	// its usage is known. When the gateway's record of the call is
	// estimated or unknown, the imported figure settles it instead: a
	// KindRetracted event withdraws the gateway's figures and a KindRevised
	// event states the imported ones, under the gateway's call (counted in
	// ImportResult.Settled), so the call counts once, with the provider's
	// figure. When its
	// Key is in the ledger it is a duplicate, unless its usage covers (see
	// Usage.Covers) what the ledger holds for the call: then a KindRevised
	// event with the difference is appended. The files' import state is
	// saved in the same transaction as the events.
	Import(ctx context.Context, events []Event, files []ImportFile) (ImportResult, error)

	// ImportFiles returns the import state saved for source's files.
	ImportFiles(ctx context.Context, source Source) ([]ImportFile, error)

	KeyStore
	LimitStore
	CredentialStore
	CounterStore
	CallStore
	ReconcileStore
	AlertStore

	// Close releases the store. It does not wait for callers of Append.
	Close() error
}

// KeyStore keeps the virtual keys (see VirtualKey): their hashes, never
// their secrets. It is part of Store.
type KeyStore interface {
	// CreateKey adds a key. It returns EINVALID for a key that fails
	// VirtualKey.Validate and ECONFLICT when the name (revoked keys
	// included) or the hash is taken.
	CreateKey(ctx context.Context, k VirtualKey) error

	// Keys returns every key, revoked ones included, by name.
	Keys(ctx context.Context) ([]VirtualKey, error)

	// KeyByHash returns the key whose current secret hashes to hash (see
	// HashKey), revoked or expired ones included; ENOTFOUND if none does
	// (a rotated key's old hash among them).
	KeyByHash(ctx context.Context, hash string) (VirtualKey, error)

	// RevokeKey marks the key named name revoked at at. It returns
	// ENOTFOUND for an unknown name and ECONFLICT for a key already revoked.
	RevokeKey(ctx context.Context, name string, at time.Time) error

	// RotateKey replaces the key's hash and prefix (the old secret stops
	// working at once) and records at as its rotation time. It returns
	// ENOTFOUND for an unknown name, ECONFLICT for a revoked or expired
	// (at at) key or a hash already taken, and EINVALID for a malformed
	// hash or prefix.
	RotateKey(ctx context.Context, name, newHash, newPrefix string, at time.Time) error
}

// UsageQuery selects completed events for aggregation. A zero Since or Until
// leaves that side open. Bucket must be zero (one bucket for the whole
// span, its Start left zero) or a positive multiple of a minute; 15 minutes
// lets callers roll buckets up into days in any time zone.
//
// Stores may answer from aggregates they maintain with every append (the
// SQLite store keeps 15-minute rollups) when the query allows it; the
// answer is the same as summing the events. FromEvents forces summing the
// events, which verify uses to check the aggregates.
type UsageQuery struct {
	Since, Until time.Time
	Bucket       time.Duration
	// BySession also groups by Session (always summed from events).
	BySession bool
	// ByTags also groups by the events' Tags, the x-tokenmeter-tags text
	// as recorded (always summed from events); not with BySession.
	ByTags     bool
	FromEvents bool
}

// RollupBucket is the width of the pre-aggregated buckets a store may
// keep; queries whose Since, Until and Bucket are multiples of it can be
// answered from them.
const RollupBucket = 15 * time.Minute

// UsageBucket is the sum of the completed events in one bucket and group.
type UsageBucket struct {
	Start     time.Time
	Source    Source
	Provider  string
	Model     string
	Principal string
	Project   string
	Outcome   Outcome
	Session   string // only with UsageQuery.BySession
	Tags      string // only with UsageQuery.ByTags

	// First and Last are the times of the earliest and latest event summed.
	First, Last time.Time

	Requests int64
	Usage    Usage
	Cost     Micros
	// UsageUnknown counts calls whose usage could not be read;
	// UsageEstimated counts calls whose usage is an estimate, and
	// EstimatedTokens is the part of Usage's tokens those estimates make
	// up; CostUnknown counts calls with usage (or an estimate) but no
	// price. See Event.Contribution.
	UsageUnknown    int64
	UsageEstimated  int64
	EstimatedTokens int64
	CostUnknown     int64
	// Hold is what hard limits charge beyond Usage and Cost for calls
	// whose usage is not known (see Hold); reports leave it out.
	Hold Hold
}

// Add adds c to b's sums (not First and Last).
func (b *UsageBucket) Add(c Contribution) {
	b.Requests += c.Requests
	b.Usage = b.Usage.Add(c.Usage)
	b.Cost += c.Cost
	b.UsageUnknown += c.UsageUnknown
	b.UsageEstimated += c.UsageEstimated
	b.EstimatedTokens += c.EstimatedTokens
	b.CostUnknown += c.CostUnknown
	b.Hold = b.Hold.Add(c.Hold)
}
