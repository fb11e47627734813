package tokenmeter

import (
	"context"
	"time"
)

// DefaultCallLimit and MaxCallLimit bound CallQuery.Limit.
const (
	DefaultCallLimit = 100
	MaxCallLimit     = 1000
)

// CallStore lists recent calls, newest first, for the dashboard's Requests
// page and /api/requests. It is part of Store.
type CallStore interface {
	// RecentCalls returns the completed events (one per call; revisions
	// are not calls) that match q, newest first: Time descending, then Seq
	// descending. It reads an index range backwards from Before (or the
	// end), however large the ledger; a filter that matches few calls
	// reads further back.
	RecentCalls(ctx context.Context, q CallQuery) ([]Event, error)
}

// CallQuery selects recent calls. Empty string fields match anything; a
// set field must equal the event's field exactly.
type CallQuery struct {
	// Before, when set, keeps calls strictly before it (paging: pass the
	// Time of the last call of the previous page, and BeforeSeq its Seq).
	Before    time.Time
	BeforeSeq int64
	// Since, when set, keeps calls at or after it.
	Since time.Time

	Provider  string
	Model     string
	Principal string
	Project   string
	Outcome   Outcome
	// Limit is the most calls returned: 0 means DefaultCallLimit, more than
	// MaxCallLimit is cut to it.
	Limit int
}

// EffectiveLimit returns Limit with the defaults applied.
func (q CallQuery) EffectiveLimit() int {
	switch {
	case q.Limit <= 0:
		return DefaultCallLimit
	case q.Limit > MaxCallLimit:
		return MaxCallLimit
	}
	return q.Limit
}
