package tokenmeter

import (
	"context"
	"strings"
	"time"
)

// LimitMetric is what a limit counts.
type LimitMetric string

// The metrics a limit can count.
const (
	// MetricTokens counts input + output + cache write + cache read tokens
	// (Usage.TotalTokens), as ccusage's total does.
	MetricTokens       LimitMetric = "tokens"
	MetricInputTokens  LimitMetric = "input_tokens"
	MetricOutputTokens LimitMetric = "output_tokens"
	MetricRequests     LimitMetric = "requests"
	// MetricCost counts money in Micros (the CLI reads and prints dollars).
	MetricCost LimitMetric = "cost_usd"
)

// LimitMode says what happens when a limit is reached.
type LimitMode string

// Limit modes.
const (
	// LimitSoft never refuses a request; it feeds alerts.
	LimitSoft LimitMode = "soft"
	// LimitHard refuses, before forwarding, a request whose worst case
	// would take usage in the window past Max.
	LimitHard LimitMode = "hard"
)

// Limit is a budget or rate limit on the usage of one scope over a window.
type Limit struct {
	// Name identifies the limit (same rules as a key name).
	Name string `json:"name"`
	// Scope is "global", "key:NAME" (calls whose principal is key:NAME),
	// "project:NAME" or "model:NAME".
	Scope  string      `json:"scope"`
	Metric LimitMetric `json:"metric"`
	// Max is the most the window may hold: tokens, requests, or Micros for
	// MetricCost.
	Max int64 `json:"max"`
	// Window is the window spec in the form window.Spec.String returns
	// ("day 00:00 Europe/Berlin", "rolling:1h", "5h-block"). The root
	// package does not parse it; internal/window does.
	Window  string    `json:"window"`
	Mode    LimitMode `json:"mode"`
	Created time.Time `json:"created"`
}

// Validate checks the fields a store requires of a limit (the window is
// checked by whoever parses it). Messages name the CLI flag at fault.
func (l Limit) Validate() error {
	if err := ValidateKeyName(l.Name); err != nil {
		return Errorf(EINVALID, "limit name %q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", l.Name)
	}
	if _, _, err := ParseScope(l.Scope); err != nil {
		return err
	}
	switch l.Metric {
	case MetricTokens, MetricInputTokens, MetricOutputTokens, MetricRequests, MetricCost:
	default:
		return Errorf(EINVALID, "--metric: unknown metric %q (want tokens, input_tokens, output_tokens, requests or cost_usd)", l.Metric)
	}
	if l.Max <= 0 {
		return Errorf(EINVALID, "--max: must be positive")
	}
	if strings.TrimSpace(l.Window) == "" {
		return Errorf(EINVALID, "--window: missing")
	}
	switch l.Mode {
	case LimitSoft, LimitHard:
	default:
		return Errorf(EINVALID, "--mode: unknown mode %q (want soft or hard)", l.Mode)
	}
	if l.Created.IsZero() {
		return Errorf(EINVALID, "limit creation time required")
	}
	return nil
}

// Scope kinds.
const (
	ScopeGlobal  = "global"
	ScopeKey     = "key"
	ScopeProject = "project"
	ScopeModel   = "model"
)

// ParseScope splits a scope into its kind (ScopeGlobal, ScopeKey,
// ScopeProject, ScopeModel) and value.
func ParseScope(s string) (kind, value string, err error) {
	if s == ScopeGlobal {
		return ScopeGlobal, "", nil
	}
	kind, value, ok := strings.Cut(s, ":")
	switch {
	case !ok || (kind != ScopeKey && kind != ScopeProject && kind != ScopeModel):
		return "", "", Errorf(EINVALID, "--scope: %q is not global, key:NAME, project:NAME or model:NAME", s)
	case value == "":
		return "", "", Errorf(EINVALID, "--scope: %q names no %s", s, kind)
	case kind == ScopeKey:
		if err := ValidateKeyName(value); err != nil {
			return "", "", Errorf(EINVALID, "--scope: %s", ErrorMessage(err))
		}
	case ValidateProject(value) != nil:
		return "", "", Errorf(EINVALID, "--scope: %s name must be at most 200 characters of printable text", kind)
	}
	return kind, value, nil
}

// ScopeApplies reports whether a call with these labels counts toward a
// limit of scope.
func ScopeApplies(scope, principal, project, model string) bool {
	sc, err := CompileScope(scope)
	return err == nil && sc.Applies(principal, project, model)
}

// LimitScope is a parsed limit scope: the one rule of which calls count
// toward a limit, for callers that test many calls against one scope
// (stores summing usage, reservations) without parsing it each time.
type LimitScope struct {
	// Kind is ScopeGlobal, ScopeKey, ScopeProject or ScopeModel; Value is
	// the key name, project or model (empty for ScopeGlobal).
	Kind, Value string
	// Base is ModelBase(Value) for a model scope: a call's model matches
	// when it is Value, or when its own ModelBase is Base.
	Base string
}

// CompileScope parses scope (see ParseScope).
func CompileScope(scope string) (LimitScope, error) {
	kind, value, err := ParseScope(scope)
	if err != nil {
		return LimitScope{}, err
	}
	sc := LimitScope{Kind: kind, Value: value}
	if kind == ScopeModel {
		sc.Base = ModelBase(value)
	}
	return sc, nil
}

// Applies reports whether a call with these labels counts toward a limit
// of scope s: every call for a global scope, the calls of the virtual key
// for a key scope (principal "key:NAME"), the calls tagged with the project
// for a project scope, and for a model scope the calls of the model, of an
// alias of it or of a dated snapshot of it (the same ModelBase).
func (s LimitScope) Applies(principal, project, model string) bool {
	switch s.Kind {
	case ScopeGlobal:
		return true
	case ScopeKey:
		return len(principal) == len("key:")+len(s.Value) && principal[:len("key:")] == "key:" && principal[len("key:"):] == s.Value
	case ScopeProject:
		return project == s.Value
	case ScopeModel:
		return model == s.Value || (model != "" && ModelBase(model) == s.Base)
	}
	return false
}

// ModelBase returns model without a dated-snapshot suffix
// ("claude-sonnet-4-5-20250929" and "gpt-4o-2024-08-06" become
// "claude-sonnet-4-5" and "gpt-4o"), so that a model: scope matches a call
// whether the request named the alias and the response the snapshot, or
// the other way round.
func ModelBase(model string) string {
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return s != ""
	}
	if n := len(model); n > 9 && model[n-9] == '-' && digits(model[n-8:]) {
		return model[:n-9]
	}
	if n := len(model); n > 11 && model[n-11] == '-' && model[n-6] == '-' && model[n-3] == '-' &&
		digits(model[n-10:n-6]) && digits(model[n-5:n-3]) && digits(model[n-2:]) {
		return model[:n-11]
	}
	return model
}

// Of returns the metric's value for usage u of requests calls costing cost.
func (m LimitMetric) Of(u Usage, requests int64, cost Micros) int64 {
	switch m {
	case MetricTokens:
		return u.TotalTokens()
	case MetricInputTokens:
		return u.InputTokens
	case MetricOutputTokens:
		return u.OutputTokens
	case MetricRequests:
		return requests
	case MetricCost:
		return int64(cost)
	}
	return 0
}

// Reservation is the worst case of a call admitted under hard limits,
// held in the store from before the call is forwarded until its completed
// event is appended (which releases it).
type Reservation struct {
	RequestKey string
	Instance   string
	Time       time.Time
	Principal  string
	Project    string
	Model      string
	Usage      Usage
	Cost       Micros
}

// Charge returns what r counts toward a limit of metric m while it is
// open: its worst case, as one request.
func (r Reservation) Charge(m LimitMetric) int64 { return m.Of(r.Usage, 1, r.Cost) }

// LimitCheck asks Reserve to check one limit over the window starting at
// Since (the window's end is now; usage is read from the store's
// RollupBucket-wide aggregates, so Since is floored to that grid, which
// can only count more).
type LimitCheck struct {
	Limit Limit
	Since time.Time
}

// LimitState is a limit's standing: Used counts completed usage in the
// window and Reserved the open reservations that apply (of any time: a
// reserved call may complete in a later window).
type LimitState struct {
	Limit    Limit
	Used     int64
	Reserved int64
}

// Remaining returns what the limit still allows, never negative.
func (s LimitState) Remaining() int64 { return max(0, s.Limit.Max-s.Used-s.Reserved) }

// LimitStore keeps limits and the reservations of hard enforcement. It is
// part of Store.
type LimitStore interface {
	// SetLimit creates the limit or replaces the one of the same name
	// (keeping its creation time). It returns EINVALID for a limit that
	// fails Limit.Validate.
	SetLimit(ctx context.Context, l Limit) error

	// Limits returns every limit, by name.
	Limits(ctx context.Context) ([]Limit, error)

	// DeleteLimit removes the limit named name; ENOTFOUND if there is none.
	DeleteLimit(ctx context.Context, name string) error

	// Reserve checks, atomically with respect to every other Reserve and
	// Append (on every replica sharing the store), that for every check
	// the usage in its window plus the open reservations that apply plus r
	// stays within the limit's Max, and if so records r. (The SQLite store
	// does this under one lock in memory, see internal/sqlite/reserve.go;
	// a store shared by replicas needs one serialized transaction.) It returns the
	// state of every check before r was added, and whether r was recorded.
	Reserve(ctx context.Context, r Reservation, checks []LimitCheck) (states []LimitState, ok bool, err error)

	// ReleaseReservation removes the reservation of a call that will not
	// be completed in the ledger (refused after reserving). Appending a
	// call's completed event releases its reservation by itself.
	ReleaseReservation(ctx context.Context, requestKey string) error

	// ReleaseReservations removes the reservations left by instances (nil:
	// all) and returns how many. Call it at start-up after recovery.
	ReleaseReservations(ctx context.Context, instances []string) (int, error)
}
