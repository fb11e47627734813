// Package status computes the live view of the ledger: the active 5-hour
// block with its burn rate and projection, today and this week. The status
// command renders it as text or JSON; the statusline command (Claude Code's
// status line hook) renders it as one short line.
//
// Every query is on the store's 15-minute rollup grid (aligned Since, open
// Until, bucket widths that are multiples of 15 minutes, never BySession
// or FromEvents), so a status costs a few index range reads however large
// the ledger is.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/report"
)

// DefaultLookback is how far back Reader looks for the active block.
//
// Blocks chain: where one starts depends on the one before, back to the
// last pause of more than 5 hours. Reader computes blocks over the last
// FirstLookback first; if that holds a pause of more than 5 hours before
// the active block (or none before its first call), the block's start is
// exact. Otherwise it computes them again over DefaultLookback. Only usage
// without such a pause for the whole lookback (3 days around the clock)
// can place the start differently from a computation over all history;
// Block.StartExact then reads false.
const DefaultLookback = 72 * time.Hour

// FirstLookback is the first, cheaper, look back for the active block;
// for people who pause at night it is enough.
const FirstLookback = 24 * time.Hour

// BlockBucket is the width of the buckets blocks are computed from. An
// hour divides every block boundary (blocks start on whole UTC hours), so
// report.SplitBlocks splits hourly buckets as it splits 15-minute ones,
// with a quarter of the rows to read. The one call it can misplace, a call
// exactly 5 hours after its block's start that shares its bucket with
// later calls, is a little more likely in an hour than in 15 minutes.
const BlockBucket = time.Hour

// UsageSource is the part of tokenmeter.Store that status reads.
type UsageSource interface {
	Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error)
}

// Reader computes a Status from a store.
type Reader struct {
	Store UsageSource
	// Loc is the time zone of today and this week; nil means time.Local.
	Loc *time.Location
	// Lookback bounds the search for the active block; zero means
	// DefaultLookback.
	Lookback time.Duration
}

// Status is the live view. Its JSON field names are a stable interface
// (docs/reports.md).
type Status struct {
	Generated time.Time `json:"generated_at"`
	TimeZone  string    `json:"time_zone"`
	// Block is the active 5-hour block, null when there is none.
	Block *Block `json:"block"`
	// LastActivity is the time of the latest call within the lookback;
	// absent when there was none.
	LastActivity time.Time `json:"last_activity,omitzero"`
	Today        Period    `json:"today"`
	// Week is absent when not asked for (the status line).
	Week *Period `json:"week,omitempty"`
}

// Block is the active 5-hour block.
type Block struct {
	Start time.Time `json:"start"`
	// Reset is the block's end, Start + 5 h.
	Reset            time.Time `json:"reset"`
	FirstActivity    time.Time `json:"first_activity"`
	LastActivity     time.Time `json:"last_activity"`
	RemainingMinutes int64     `json:"remaining_minutes"`
	// StartExact is false when the lookback held no pause of more than
	// 5 hours before the block (see DefaultLookback).
	StartExact bool     `json:"start_exact"`
	Models     []string `json:"models"`
	report.Figures
	// BurnRate and Projection are null until BurnRateFrom, report.MinBurnSpan
	// after the block's first call (report.BurnRateAt).
	BurnRate     *report.BurnRate   `json:"burn_rate"`
	Projection   *report.Projection `json:"projection"`
	BurnRateFrom time.Time          `json:"burn_rate_from"`
}

// Period is the usage of today or this week, in Status.TimeZone.
type Period struct {
	// Period names the day, or the Monday that starts the week (YYYY-MM-DD).
	Period string `json:"period"`
	// Start is the period's first instant.
	Start time.Time `json:"start"`
	report.Figures
}

// Read computes the status at now; week also computes this week.
func (r *Reader) Read(ctx context.Context, now time.Time, week bool) (*Status, error) {
	loc := r.Loc
	if loc == nil {
		loc = time.Local
	}
	lookback := r.Lookback
	if lookback <= 0 {
		lookback = DefaultLookback
	}
	st := &Status{Generated: now.UTC(), TimeZone: loc.String()}

	since := now.Add(-min(FirstLookback, lookback)).Truncate(BlockBucket)
	buckets, err := r.blockBuckets(ctx, since, time.Time{})
	if err != nil {
		return nil, err
	}
	blocks := report.SplitBlocks(buckets, now)
	exact := startExact(blocks, since)
	if n := len(blocks); n > 0 && !exact && now.Sub(blocks[n-1].Last) < report.BlockLength && lookback > FirstLookback {
		// A block may be active and its start depends on older calls.
		older := now.Add(-lookback).Truncate(BlockBucket)
		more, err := r.blockBuckets(ctx, older, since)
		if err != nil {
			return nil, err
		}
		blocks = report.SplitBlocks(append(more, buckets...), now)
		exact = startExact(blocks, older)
	}
	if len(blocks) == 0 && lookback > FirstLookback {
		// Nothing in the first look-back: the last call, if any, is older.
		older := now.Add(-lookback).Truncate(BlockBucket)
		more, err := r.Store.Usage(ctx, tokenmeter.UsageQuery{Since: older, Until: since, Bucket: 0})
		if err != nil {
			return nil, fmt.Errorf("read last activity: %w", err)
		}
		for _, b := range more {
			if b.Requests > 0 && b.Last.After(st.LastActivity) {
				st.LastActivity = b.Last.UTC()
			}
		}
	}
	if n := len(blocks); n > 0 {
		last := blocks[n-1]
		st.LastActivity = last.Last.UTC()
		if last.Active {
			models := last.Models
			if models == nil {
				models = []string{}
			}
			st.Block = &Block{
				Start: last.Start.UTC(), Reset: last.End.UTC(),
				FirstActivity: last.First.UTC(), LastActivity: last.Last.UTC(),
				RemainingMinutes: int64(last.End.Sub(now) / time.Minute),
				StartExact:       exact, Models: models, Figures: last.Figures,
				BurnRate: last.BurnRate, Projection: last.Projection,
				BurnRateFrom: last.First.Add(report.MinBurnSpan).UTC(),
			}
		}
	}

	// Today usually starts on a whole hour inside the first look back:
	// sum its buckets instead of asking the store again.
	day := report.DayStart(now, loc)
	if !day.Before(since) && day.Sub(since)%BlockBucket == 0 {
		st.Today = Period{Period: day.Format(time.DateOnly), Start: day.UTC()}
		for _, b := range buckets {
			if !b.Start.Before(day) {
				st.Today.Add(b)
			}
		}
	} else if st.Today, err = r.period(ctx, day, day.Format(time.DateOnly)); err != nil {
		return nil, err
	}
	if week {
		w := report.WeekStart(now, loc)
		p, err := r.period(ctx, w, w.Format(time.DateOnly))
		if err != nil {
			return nil, err
		}
		st.Week = &p
	}
	return st, nil
}

// blockBuckets reads the usage in [since, until) in BlockBucket buckets.
func (r *Reader) blockBuckets(ctx context.Context, since, until time.Time) ([]tokenmeter.UsageBucket, error) {
	buckets, err := r.Store.Usage(ctx, tokenmeter.UsageQuery{Since: since, Until: until, Bucket: BlockBucket})
	if err != nil {
		return nil, fmt.Errorf("read blocks: %w", err)
	}
	return buckets, nil
}

// startExact reports whether blocks computed from calls since since place
// the last block as a computation over all history would: a pause of more
// than 5 hours precedes it within the calls, or before the first of them.
func startExact(blocks []report.Block, since time.Time) bool {
	if len(blocks) == 0 {
		return true
	}
	if blocks[0].First.Sub(since) > report.BlockLength {
		return true
	}
	for _, b := range blocks {
		if b.Gap {
			return true
		}
	}
	return false
}

// period sums the usage from start on, in one bucket. Local midnights are
// on the 15-minute grid in every time zone in use, so the store answers
// from its aggregates (the SQLite store: whole UTC days from its daily
// rows, the rest from the 15-minute ones).
func (r *Reader) period(ctx context.Context, start time.Time, name string) (Period, error) {
	p := Period{Period: name, Start: start.UTC()}
	buckets, err := r.Store.Usage(ctx, tokenmeter.UsageQuery{Since: start})
	if err != nil {
		return p, fmt.Errorf("read usage since %s: %w", name, err)
	}
	for _, b := range buckets {
		p.Add(b)
	}
	return p, nil
}

// JSON writes s as indented JSON.
func JSON(w io.Writer, s *Status) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// Text writes s for people, in lines that fit 80 columns.
func Text(w io.Writer, s *Status) error {
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	now := s.Generated.In(loc)
	fmt.Fprintf(w, "tokenmeter status at %s (%s)\n\n", now.Format("2006-01-02 15:04"), s.TimeZone)
	labels := []string{}
	figs := []report.Figures{}
	if b := s.Block; b != nil {
		fmt.Fprintf(w, "Block      %s to %s, resets in %s\n", clock(b.Start, now, loc), clock(b.Reset, now, loc),
			report.Duration(b.Reset.Sub(s.Generated)))
		if b.BurnRate != nil {
			fmt.Fprintf(w, "Burn rate  %s tokens/min, %s/h\n", report.Tokens(int64(b.BurnRate.TokensPerMinute+0.5)),
				report.Dollars(b.BurnRate.CostMicrosPerHour))
			fmt.Fprintf(w, "At reset   %s tokens, %s (projected)\n", report.Tokens(b.Projection.TotalTokens),
				report.Dollars(b.Projection.CostMicros))
		} else {
			fmt.Fprintf(w, "Burn rate  from %s (%s after the block's first call)\n",
				clock(b.BurnRateFrom, now, loc), report.Duration(report.MinBurnSpan))
		}
		if !b.StartExact {
			fmt.Fprintf(w, "Note       no 5-hour pause in the last %s; the block start is approximate\n",
				report.Duration(DefaultLookback))
		}
		labels = append(labels, "Block")
		figs = append(figs, b.Figures)
	} else if !s.LastActivity.IsZero() {
		fmt.Fprintf(w, "Block      none active (last call %s ago)\n", report.Duration(s.Generated.Sub(s.LastActivity)))
	} else {
		fmt.Fprintf(w, "Block      none active (no calls in the last %s)\n", report.Duration(DefaultLookback))
	}
	fmt.Fprintln(w)
	labels = append(labels, "Today")
	figs = append(figs, s.Today.Figures)
	if s.Week != nil {
		labels = append(labels, "Week")
		figs = append(figs, s.Week.Figures)
	}
	if err := report.FiguresTable(w, "", labels, figs); err != nil {
		return err
	}
	if s.Week != nil {
		fmt.Fprintf(w, "\nToday is %s; the week started on Monday %s.\n", s.Today.Period, s.Week.Period)
	}
	// Calls not metered in full are in the figures above, and said so.
	if t := figs[len(figs)-1]; t.UsageEstimated > 0 || t.UsageUnknown > 0 {
		fmt.Fprintf(w, "\nOf the %s: %d calls with usage estimated (%s tokens), %d with usage unknown.\n",
			strings.ToLower(labels[len(labels)-1]), t.UsageEstimated, report.Tokens(t.EstimatedTokens), t.UsageUnknown)
	}
	return nil
}

// clock formats t as a local time of day, with the date when it is not
// now's day.
func clock(t, now time.Time, loc *time.Location) string {
	t = t.In(loc)
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	return t.Format("Mon 15:04")
}
