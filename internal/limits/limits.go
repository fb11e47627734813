// Package limits enforces tokenmeter's limits (tokenmeter.Limit): it turns
// each limit's window spec into the window that holds now, reserves a
// request's worst case against every hard limit that applies through the
// store's one-transaction Reserve, and computes what the gateway tells the
// client (the tightest limit, what remains, when it resets, and how long a
// refused client should wait).
//
// An Enforcer keeps the list of limits for CacheTTL, so a request to which
// no hard limit applies costs no store access at all.
package limits

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/window"
)

// DefaultCacheTTL is how long an Enforcer reuses the list of limits: the
// longest a new, changed or deleted limit takes to reach a running gateway.
const DefaultCacheTTL = time.Second

// blockLookback is how far back the start of the current 5-hour block is
// looked for (see Window).
const blockLookback = 24 * time.Hour

// Store is what an Enforcer needs of the ledger.
type Store interface {
	Limits(ctx context.Context) ([]tokenmeter.Limit, error)
	Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error)
	Reserve(ctx context.Context, r tokenmeter.Reservation, checks []tokenmeter.LimitCheck) ([]tokenmeter.LimitState, bool, error)
	ReleaseReservation(ctx context.Context, requestKey string) error
}

// Enforcer checks requests against the hard limits in a store. It is safe
// for concurrent use.
type Enforcer struct {
	// CacheTTL is how long the list of limits is reused; zero means
	// DefaultCacheTTL, negative reads it for every request.
	CacheTTL time.Duration
	// Now returns the current time.
	Now func() time.Time
	// CanonicalModel maps a model name to the name model: scopes are
	// compared by (the price table's Canonical, so that an alias and its
	// snapshots are one model); nil compares names as given (through
	// tokenmeter.ModelBase, as the store does).
	CanonicalModel func(string) string

	store Store

	mu     sync.Mutex
	loaded time.Time
	hard   []compiled
	// blocks holds the current 5-hour block of each 5h-block limit (by
	// name and scope) until it ends, so history is read once per block.
	blocks map[string][2]time.Time
}

type compiled struct {
	limit tokenmeter.Limit
	spec  window.Spec
}

// New returns an Enforcer on store.
func New(store Store) *Enforcer {
	return &Enforcer{CacheTTL: DefaultCacheTTL, Now: time.Now, store: store}
}

// Compile parses a limit's window.
func Compile(l tokenmeter.Limit) (window.Spec, error) {
	spec, err := window.ParseString(l.Window)
	if err != nil {
		return window.Spec{}, fmt.Errorf("limit %s: %w", l.Name, err)
	}
	return spec, nil
}

// hardLimits returns the hard limits, from the cache when it is fresh.
func (e *Enforcer) hardLimits(ctx context.Context, now time.Time) ([]compiled, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.loaded.IsZero() && e.CacheTTL >= 0 && now.Sub(e.loaded) < e.ttl() && !now.Before(e.loaded) {
		return e.hard, nil
	}
	all, err := e.store.Limits(ctx)
	if err != nil {
		return nil, fmt.Errorf("read limits: %w", err)
	}
	var hard []compiled
	for _, l := range all {
		if l.Mode != tokenmeter.LimitHard {
			continue
		}
		spec, err := Compile(l)
		if err != nil {
			return nil, err
		}
		if kind, value, _ := tokenmeter.ParseScope(l.Scope); kind == tokenmeter.ScopeModel && e.CanonicalModel != nil {
			// The store matches the models of recorded calls against the
			// scope through ModelBase; the canonical name is what a
			// snapshot's base is.
			l.Scope = tokenmeter.ScopeModel + ":" + e.CanonicalModel(value)
		}
		hard = append(hard, compiled{limit: l, spec: spec})
	}
	e.hard, e.loaded = hard, now
	return hard, nil
}

func (e *Enforcer) ttl() time.Duration {
	if e.CacheTTL == 0 {
		return DefaultCacheTTL
	}
	return e.CacheTTL
}

// Request is what the gateway knows of a call before forwarding it.
type Request struct {
	RequestKey string
	Instance   string
	Principal  string
	Project    string
	Model      string
	// Usage and Cost are the call's worst case (see WorstCase).
	Usage tokenmeter.Usage
	Cost  tokenmeter.Micros
	// CostUnknown says the request's model has no price, so its cost
	// cannot be bounded: a cost_usd limit that applies refuses it.
	CostUnknown bool
}

// Decision is the outcome of Reserve.
type Decision struct {
	// Allowed is false when a hard limit refuses the request.
	Allowed bool
	// Reserved says a reservation was recorded: the call's completed event
	// releases it, or ReleaseReservation must.
	Reserved bool
	// Limit is the refusing limit, or (when allowed) the tightest hard
	// limit that applies; Applies is false when none applies.
	Applies bool
	Limit   tokenmeter.Limit
	// Remaining is what Limit allows after this request's reservation
	// (before it, when refused), never negative.
	Remaining int64
	// Reset is when Limit's window ends (for a rolling window: when all
	// it counts now has left it).
	Reset time.Time
	// RetryAfter is, for a refusal, how long until the window has freed
	// enough for this request.
	RetryAfter time.Duration
	// Need is, for a refusal, what the request's worst case counts in
	// Limit's metric (micro-dollars for cost_usd): what it asked to
	// reserve.
	Need int64
	// Refusal, when not empty, says why Limit refuses the request whatever
	// the window holds (no price for its model under a cost_usd limit):
	// retrying does not help.
	Refusal string
}

// Reserve reserves req's worst case against every hard limit that applies
// to it, in one store transaction. It reads nothing from the store when no
// hard limit applies (beyond refreshing the cached list of limits).
func (e *Enforcer) Reserve(ctx context.Context, req Request) (Decision, error) {
	now := e.Now()
	hard, err := e.hardLimits(ctx, now)
	if err != nil {
		return Decision{}, err
	}
	model := req.Model
	if e.CanonicalModel != nil && model != "" {
		model = e.CanonicalModel(model)
	}
	var apply []compiled
	for _, c := range hard {
		kind, _, _ := tokenmeter.ParseScope(c.limit.Scope)
		// A request that names no model (or one the gateway could not
		// read) may be for any model: every model: limit applies to it.
		if tokenmeter.ScopeApplies(c.limit.Scope, req.Principal, req.Project, model) || (kind == tokenmeter.ScopeModel && model == "") {
			apply = append(apply, c)
		}
	}
	if len(apply) == 0 {
		return Decision{Allowed: true}, nil
	}
	if req.CostUnknown {
		for _, c := range apply {
			if c.limit.Metric == tokenmeter.MetricCost {
				_, reset, err := e.window(ctx, c, now)
				if err != nil {
					return Decision{}, err
				}
				return Decision{Applies: true, Limit: c.limit, Reset: reset,
					Refusal: "model " + strconvQuote(req.Model) + " has no price, so its cost cannot be held within a cost_usd limit (add it with --prices)"}, nil
			}
		}
	}
	checks := make([]tokenmeter.LimitCheck, len(apply))
	resets := make([]time.Time, len(apply))
	for i, c := range apply {
		start, end, err := e.window(ctx, c, now)
		if err != nil {
			return Decision{}, err
		}
		checks[i] = tokenmeter.LimitCheck{Limit: c.limit, Since: start}
		resets[i] = end
	}
	r := tokenmeter.Reservation{RequestKey: req.RequestKey, Instance: req.Instance, Time: now,
		Principal: req.Principal, Project: req.Project, Model: model, Usage: req.Usage, Cost: req.Cost}
	states, ok, err := e.store.Reserve(ctx, r, checks)
	if err != nil {
		return Decision{}, fmt.Errorf("reserve: %w", err)
	}
	d := Decision{Allowed: ok, Reserved: ok, Applies: true}
	if !ok {
		// Report the limit that refuses and how long until it admits the
		// request; of several, the one that frees up last.
		for i, st := range states {
			need := st.Limit.Metric.Of(req.Usage, 1, req.Cost)
			if st.Used+st.Reserved+need <= st.Limit.Max {
				continue
			}
			wait, err := retryAfter(ctx, e.store, apply[i], st, need, now, resets[i])
			if err != nil {
				return Decision{}, err
			}
			if d.Limit.Name == "" || wait > d.RetryAfter {
				d.Limit, d.Remaining, d.Reset, d.RetryAfter, d.Need = st.Limit, st.Remaining(), resets[i], wait, need
			}
		}
		return d, nil
	}
	// The tightest limit: the smallest share of its maximum left.
	best := -1.0
	for i, st := range states {
		st.Reserved += st.Limit.Metric.Of(req.Usage, 1, req.Cost)
		share := float64(st.Remaining()) / float64(st.Limit.Max)
		if best < 0 || share < best {
			best = share
			d.Limit, d.Remaining, d.Reset = st.Limit, st.Remaining(), resets[i]
		}
	}
	return d, nil
}

// window is Window, with the 5-hour block of a limit kept until it ends.
// (A block taken to start at now by a request that is then refused may
// start earlier than history later says; that only counts more.)
func (e *Enforcer) window(ctx context.Context, c compiled, now time.Time) (start, end time.Time, err error) {
	if c.spec.Kind != window.FiveHourBlock {
		return Window(ctx, e.store, c.limit, c.spec, now)
	}
	key := c.limit.Name + "\x00" + c.limit.Scope
	e.mu.Lock()
	b, ok := e.blocks[key]
	e.mu.Unlock()
	if ok && !now.Before(b[0]) && now.Before(b[1]) {
		return b[0], b[1], nil
	}
	if start, end, err = Window(ctx, e.store, c.limit, c.spec, now); err != nil {
		return start, end, err
	}
	e.mu.Lock()
	if e.blocks == nil {
		e.blocks = make(map[string][2]time.Time)
	}
	e.blocks[key] = [2]time.Time{start, end}
	e.mu.Unlock()
	return start, end, nil
}

// Release removes the reservation of a call that will not be completed in
// the ledger.
func (e *Enforcer) Release(ctx context.Context, requestKey string) error {
	return e.store.ReleaseReservation(ctx, requestKey)
}

// Window returns the window of limit l (with spec, parsed from l.Window)
// that holds now: [start, end) for fixed windows, [now-Length, now+Length)
// reported as (now-Length, Reset) for rolling ones, and for 5-hour blocks
// the block of the scope's latest calls, found by folding window.BlockAt
// over the scope's usage of the last 24 hours (a block chain that has run
// without a 5-hour gap for longer than that is taken to start within it).
func Window(ctx context.Context, s Store, l tokenmeter.Limit, spec window.Spec, now time.Time) (start, reset time.Time, err error) {
	switch spec.Kind {
	case window.Rolling:
		start, _ = spec.At(now)
		return start, spec.Reset(now), nil
	case window.FiveHourBlock:
		since := now.Add(-blockLookback).Truncate(tokenmeter.RollupBucket)
		buckets, err := s.Usage(ctx, tokenmeter.UsageQuery{Since: since, Bucket: tokenmeter.RollupBucket})
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("limit %s: read usage: %w", l.Name, err)
		}
		var firsts []time.Time
		for _, b := range buckets {
			if tokenmeter.ScopeApplies(l.Scope, b.Principal, b.Project, b.Model) && b.Requests > 0 && b.First.Before(now) {
				firsts = append(firsts, b.First)
			}
		}
		slices.SortFunc(firsts, func(a, b time.Time) int { return a.Compare(b) })
		var latest time.Time
		for _, t := range firsts {
			latest, _ = window.BlockAt(latest, t)
		}
		start, end := spec.Current(latest, now)
		return start, end, nil
	}
	start, end := spec.At(now)
	return start, end, nil
}

// retryAfter returns how long until limit c admits a request needing need
// more, given its state st: for fixed windows and 5-hour blocks, until the
// window resets; for rolling windows, until enough of the oldest usage has
// left the window (usage counts by 15-minute bucket, until the bucket's
// end is Length in the past). Reservations free up when their calls
// complete, which cannot be foreseen; a request that needs them gone, or
// more than Max, gets the full window length.
func retryAfter(ctx context.Context, s Store, c compiled, st tokenmeter.LimitState, need int64, now, reset time.Time) (time.Duration, error) {
	wait := reset.Sub(now)
	if c.spec.Kind != window.Rolling {
		return max(wait, time.Second), nil
	}
	excess := st.Used + st.Reserved + need - st.Limit.Max
	if excess > st.Used || need > st.Limit.Max {
		return max(wait, time.Second), nil
	}
	start, _ := c.spec.At(now)
	buckets, err := s.Usage(ctx, tokenmeter.UsageQuery{Since: start.Truncate(tokenmeter.RollupBucket), Until: now.Truncate(tokenmeter.RollupBucket).Add(tokenmeter.RollupBucket), Bucket: tokenmeter.RollupBucket})
	if err != nil {
		return 0, fmt.Errorf("limit %s: read usage: %w", st.Limit.Name, err)
	}
	var freed int64
	for _, b := range buckets { // in bucket order
		if !tokenmeter.ScopeApplies(st.Limit.Scope, b.Principal, b.Project, b.Model) {
			continue
		}
		freed += b.Charge(st.Limit.Metric)
		if freed >= excess {
			at := b.Start.Add(tokenmeter.RollupBucket + c.spec.Length)
			return max(at.Sub(now), time.Second), nil
		}
	}
	return max(wait, time.Second), nil
}

// DefaultBytesPerToken is the input estimate's divisor: a request body of
// n bytes is taken to hold at most n/3 input tokens (JSON text averages
// about 4 bytes a token; images, sent as base64, far more).
const DefaultBytesPerToken = 3

// DefaultMaxOutput is the output reserved for a request that sets no
// max_tokens (OpenAI's may be omitted).
const DefaultMaxOutput = 32_000

// WorstCase returns the usage reserved for a request whose body is
// bodyBytes long and which asks for at most maxOutput output tokens (zero:
// defaultOutput): bodyBytes/bytesPerToken input tokens (rounded up) and
// maxOutput output tokens.
func WorstCase(bodyBytes int, maxOutput int64, bytesPerToken int, defaultOutput int64) tokenmeter.Usage {
	if bytesPerToken <= 0 {
		bytesPerToken = DefaultBytesPerToken
	}
	if maxOutput <= 0 {
		maxOutput = defaultOutput
	}
	return tokenmeter.Usage{InputTokens: int64((bodyBytes + bytesPerToken - 1) / bytesPerToken), OutputTokens: maxOutput}
}

// Used returns the usage of limit l's scope in its metric from since
// (floored to the rollup grid, as Reserve counts it) to now, read from the
// store's Usage: what limits list shows. Reservations are not included.
func Used(ctx context.Context, s UsageSource, l tokenmeter.Limit, since, now time.Time) (int64, error) {
	return UsedIn(ctx, s, l, since.Truncate(tokenmeter.RollupBucket), now.Truncate(tokenmeter.RollupBucket).Add(tokenmeter.RollupBucket))
}

// UsageSource is the part of the store Used and UsedIn read.
type UsageSource interface {
	Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error)
}

// UsedIn returns the usage of limit l's scope in its metric in [since,
// until), both on the rollup grid, asking the store for one bucket (so it
// sums its aggregates in SQL and returns a row per group).
func UsedIn(ctx context.Context, s UsageSource, l tokenmeter.Limit, since, until time.Time) (int64, error) {
	buckets, err := s.Usage(ctx, tokenmeter.UsageQuery{Since: since, Until: until})
	if err != nil {
		return 0, fmt.Errorf("limit %s: read usage: %w", l.Name, err)
	}
	var used int64
	for _, b := range buckets {
		if tokenmeter.ScopeApplies(l.Scope, b.Principal, b.Project, b.Model) {
			used += b.Charge(l.Metric)
		}
	}
	return used, nil
}

// strconvQuote quotes a client-chosen model name for a message, bounded.
func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}
