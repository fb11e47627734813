// Package ledgerrules holds the parts of the ledger's meaning that every
// tokenmeter.Store implements alike and that are not vocabulary of the
// root package: how events are summed into the 15-minute and daily
// rollups, which usage queries those rollups answer, what a rollup row or
// a reservation charges a limit (as SQL derived from the root package's
// rules), and the order in which Append and Import decide what each event
// of a batch becomes (added, duplicate, revision, settlement).
//
// A store brings the SQL; the decisions are made here, once, so the
// SQLite and PostgreSQL stores cannot drift apart. It imports only the
// standard library and the root package.
package ledgerrules

import (
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Width is the rollups' bucket width (tokenmeter.RollupBucket) and
// DayWidth the daily rollups' (a UTC day), in microseconds.
const (
	Width    = int64(tokenmeter.RollupBucket / time.Microsecond)
	DayWidth = int64(24 * time.Hour / time.Microsecond)
)

// Trunc returns t rounded toward zero to a multiple of w, as SQL integer
// division does (t / w * w): the bucket of an event at t.
func Trunc(t, w int64) int64 { return t / w * w }

// Floor and Ceil round v down and up to a multiple of w.
func Floor(v, w int64) int64 { return v - ((v%w)+w)%w }

// Ceil rounds v up to a multiple of w.
func Ceil(v, w int64) int64 { return -Floor(-v, w) }

// Key identifies a rollup row: a bucket's start (Unix microseconds) and a
// group.
type Key struct {
	Bucket                                               int64
	Source, Provider, Model, Principal, Project, Outcome string
}

// Row is one rollup row's sums: the events' contributions (see
// tokenmeter.Event.Contribution) and the times of the earliest and latest
// of them, in Unix microseconds.
type Row struct {
	tokenmeter.Contribution
	First, Last int64
}

// Add adds o's sums to r.
func (r *Row) Add(o *Row) {
	r.Contribution.Add(o.Contribution)
	r.First, r.Last = min(r.First, o.First), max(r.Last, o.Last)
}

// Sums are the rollup rows one commit adds to, by key.
type Sums map[Key]*Row

// Add adds ev's contribution to its 15-minute row; events that add
// nothing (started, progress) are left out.
func (s Sums) Add(ev *tokenmeter.Event) {
	c, ok := ev.Contribution()
	if !ok {
		return
	}
	t := ev.Time.UnixMicro()
	k := Key{Trunc(t, Width), string(ev.Source), ev.Provider, ev.Model, ev.Principal, ev.Project, string(ev.Outcome)}
	r := s[k]
	if r == nil {
		r = &Row{First: t, Last: t}
		s[k] = r
	}
	r.Contribution.Add(c)
	r.First, r.Last = min(r.First, t), max(r.Last, t)
}

// Days returns s (15-minute rows) summed per UTC day: the daily rollup's
// additions.
func (s Sums) Days() Sums {
	days := make(Sums, len(s))
	for k, r := range s {
		d := k
		d.Bucket = Trunc(k.Bucket, DayWidth)
		if dr := days[d]; dr == nil {
			c := *r
			days[d] = &c
		} else {
			dr.Add(r)
		}
	}
	return days
}

// column is one value column of the rollup tables, in the order Columns
// lists them.
type column struct {
	name string
	ptr  func(*Row) *int64
}

var columns = []column{
	{"requests", func(r *Row) *int64 { return &r.Requests }},
	{"input_tokens", func(r *Row) *int64 { return &r.Usage.InputTokens }},
	{"output_tokens", func(r *Row) *int64 { return &r.Usage.OutputTokens }},
	{"cache_write_5m", func(r *Row) *int64 { return &r.Usage.CacheWrite5mTokens }},
	{"cache_write_1h", func(r *Row) *int64 { return &r.Usage.CacheWrite1hTokens }},
	{"cache_read", func(r *Row) *int64 { return &r.Usage.CacheReadTokens }},
	{"reasoning_tokens", func(r *Row) *int64 { return &r.Usage.ReasoningTokens }},
	{"web_search", func(r *Row) *int64 { return &r.Usage.WebSearchRequests }},
	{"web_fetch", func(r *Row) *int64 { return &r.Usage.WebFetchRequests }},
	{"cost_micros", func(r *Row) *int64 { return (*int64)(&r.Cost) }},
	{"usage_unknown", func(r *Row) *int64 { return &r.UsageUnknown }},
	{"cost_unknown", func(r *Row) *int64 { return &r.CostUnknown }},
	{"first_us", func(r *Row) *int64 { return &r.First }},
	{"last_us", func(r *Row) *int64 { return &r.Last }},
	{"usage_estimated", func(r *Row) *int64 { return &r.UsageEstimated }},
	{"estimated_tokens", func(r *Row) *int64 { return &r.EstimatedTokens }},
	{"hold_tokens", func(r *Row) *int64 { return &r.Hold.Tokens }},
	{"hold_input", func(r *Row) *int64 { return &r.Hold.InputTokens }},
	{"hold_output", func(r *Row) *int64 { return &r.Hold.OutputTokens }},
	{"hold_cost", func(r *Row) *int64 { return (*int64)(&r.Hold.Cost) }},
}

// Columns are the names of the rollup tables' value columns (after the key
// columns bucket_us, source, provider, model, principal, project and
// outcome), in the order Row.Values and Row.Targets use.
var Columns = func() []string {
	out := make([]string, len(columns))
	for i, c := range columns {
		out[i] = c.name
	}
	return out
}()

// Values returns r's value columns in Columns order.
func (r *Row) Values() []int64 {
	out := make([]int64, len(columns))
	for i, c := range columns {
		out[i] = *c.ptr(r)
	}
	return out
}

// Targets returns pointers to r's value columns in Columns order, for
// scanning a row of sums into r.
func (r *Row) Targets() []any {
	out := make([]any, len(columns))
	for i, c := range columns {
		out[i] = c.ptr(r)
	}
	return out
}

// Bucket returns the usage bucket of r's sums under key k's labels (its
// Start is left for the caller).
func (r *Row) Bucket(k Key) tokenmeter.UsageBucket {
	b := tokenmeter.UsageBucket{Source: tokenmeter.Source(k.Source), Provider: k.Provider, Model: k.Model,
		Principal: k.Principal, Project: k.Project, Outcome: tokenmeter.Outcome(k.Outcome),
		First: time.UnixMicro(r.First).UTC(), Last: time.UnixMicro(r.Last).UTC()}
	b.Add(r.Contribution)
	return b
}
