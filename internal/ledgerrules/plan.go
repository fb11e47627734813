package ledgerrules

import (
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// From says where a usage query's sums come from.
type From int

const (
	// FromEvents sums the events themselves: queries off the rollup grid,
	// by session or by tags, or asked to (verify).
	FromEvents From = iota
	// FromRollup reads the 15-minute rows as they are: the query's buckets
	// are theirs.
	FromRollup
	// FromRollups sums rows into the query's buckets: the daily rows for
	// the whole UTC days in [DayFrom, DayTo), the 15-minute rows for the
	// rest of the span.
	FromRollups
)

// Open ends of a span, in Unix microseconds.
const (
	MinTime = int64(-1 << 62)
	MaxTime = int64(1 << 62)
)

// UsagePlan is how a store answers a tokenmeter.UsageQuery. Times are Unix
// microseconds.
type UsagePlan struct {
	From From
	// Bucket is the result buckets' width: the query's, or MaxTime for one
	// bucket (whose Start the store leaves zero).
	Bucket int64
	// Since and Until bound the span (MinTime and MaxTime when open).
	Since, Until int64
	// DayFrom and DayTo bound the whole UTC days read from the daily rows
	// (FromRollups); equal when none are.
	DayFrom, DayTo int64
}

// PlanUsage returns how to answer q, or EINVALID for a bucket that is not
// zero or a positive whole number of minutes.
//
// A query whose Since, Until and Bucket lie on the 15-minute grid (open
// ends do) is answered from the rollups: a 15-minute bucket from the
// 15-minute rows directly; one bucket, or buckets of whole days, from the
// daily rows for every whole UTC day of the span and the 15-minute rows at
// its edges; other widths from the 15-minute rows. The rest, and queries by
// session or FromEvents, sum the events. Either way the answer is the same.
func PlanUsage(q tokenmeter.UsageQuery) (UsagePlan, error) {
	if q.Bucket < 0 || q.Bucket%time.Minute != 0 {
		return UsagePlan{}, tokenmeter.Errorf(tokenmeter.EINVALID, "usage bucket %v must be zero or a positive whole number of minutes", q.Bucket)
	}
	if q.BySession && q.ByTags {
		return UsagePlan{}, tokenmeter.Errorf(tokenmeter.EINVALID, "usage grouped by session and by tags at once")
	}
	p := UsagePlan{Bucket: q.Bucket.Microseconds(), Since: MinTime, Until: MaxTime}
	if p.Bucket == 0 {
		p.Bucket = MaxTime // one bucket, starting at 0
	}
	if !q.Since.IsZero() {
		p.Since = q.Since.UnixMicro()
	}
	if !q.Until.IsZero() {
		p.Until = q.Until.UnixMicro()
	}
	onGrid := func(v int64) bool { return v%Width == 0 || v == MinTime || v == MaxTime }
	switch {
	case q.FromEvents || q.BySession || q.ByTags || !onGrid(p.Since) || !onGrid(p.Until):
		p.From = FromEvents
	case p.Bucket == Width:
		p.From = FromRollup
	case q.Bucket == 0 || p.Bucket%Width == 0:
		p.From = FromRollups
		if q.Bucket == 0 || p.Bucket%DayWidth == 0 {
			p.DayFrom, p.DayTo = Ceil(p.Since, DayWidth), Floor(p.Until, DayWidth)
			if p.DayTo < p.DayFrom {
				p.DayFrom, p.DayTo = 0, 0
			}
		}
	default:
		p.From = FromEvents
	}
	return p, nil
}

// LimitSpan returns the whole UTC days [d0, d1) that a limit check's usage
// since since (on the 15-minute grid) reads from the daily rows at now:
// those before today. The rest, [since, d0) and from d1 on, comes from the
// 15-minute rows; d0 == d1 == since when no whole day is in the span.
func LimitSpan(since, now int64) (d0, d1 int64) {
	d0, d1 = Ceil(since, DayWidth), Floor(now, DayWidth)
	if d1 < d0 {
		return since, since
	}
	return d0, d1
}

// CheckSince returns a limit check's window start floored to the rollup
// grid, in Unix microseconds (which can only count more).
func CheckSince(c tokenmeter.LimitCheck) int64 { return Floor(c.Since.UnixMicro(), Width) }
