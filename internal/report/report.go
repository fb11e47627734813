// Package report turns the ledger's completed events into usage reports:
// per day, week or month (in a chosen time zone), per model, per session or
// per 5-hour block, optionally grouped by model, key (principal) or
// project, rendered as a table for people or as JSON and CSV for machines.
//
// Every figure is summed from the ledger at the time of the report; the
// package keeps no state. Token and money sums are exact integers; cost_usd
// in JSON is derived from integer micro-dollars for display.
package report

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Kinds of report.
const (
	Daily   = "daily"
	Weekly  = "weekly"
	Monthly = "monthly"
	Models  = "models"
	Session = "session"
	Blocks  = "blocks"
)

// Groupings.
const (
	ByNone    = ""
	ByModel   = "model"
	ByKey     = "key"
	ByProject = "project"
	// ByTag splits rows by the tags of x-tokenmeter-tags (comma-separated):
	// a call with several tags is in the row of each, and once in the
	// totals.
	ByTag = "tag"
)

// bucket is the grid the store aggregates on: 15 minutes divides every
// time zone offset in use, so buckets roll up exactly into local days.
const bucket = 15 * time.Minute

// Query selects a report.
type Query struct {
	Kind string
	By   string
	// Since and Until are local dates (inclusive) in Loc; zero means open.
	Since, Until time.Time
	Loc          *time.Location
}

// Figures are the sums of one row or of the totals.
type Figures struct {
	InputTokens              int64   `json:"input_tokens"`
	OutputTokens             int64   `json:"output_tokens"`
	CacheCreationInputTokens int64   `json:"cache_creation_input_tokens"`
	CacheCreation5mTokens    int64   `json:"cache_creation_5m_input_tokens"`
	CacheCreation1hTokens    int64   `json:"cache_creation_1h_input_tokens"`
	CacheReadInputTokens     int64   `json:"cache_read_input_tokens"`
	ReasoningTokens          int64   `json:"reasoning_tokens"`
	TotalTokens              int64   `json:"total_tokens"`
	Requests                 int64   `json:"requests"`
	CostUSD                  float64 `json:"cost_usd"`
	CostMicros               int64   `json:"cost_micros"`
	// UsageUnknown counts calls whose usage could not be read (including
	// calls cut by a crash, outcome unknown); CostUnknown counts calls with
	// usage but no price; OutcomeUnknown counts calls cut by a crash.
	UsageUnknown   int64 `json:"usage_unknown_requests"`
	CostUnknown    int64 `json:"cost_unknown_requests"`
	OutcomeUnknown int64 `json:"outcome_unknown_requests"`
	// UsageEstimated counts calls whose usage is the gateway's estimate (a
	// stream the client cut, a response the meter could not read in
	// full); EstimatedTokens is the part of TotalTokens they make up.
	UsageEstimated  int64 `json:"usage_estimated_requests"`
	EstimatedTokens int64 `json:"estimated_tokens"`
	Errors          int64 `json:"error_requests"`
}

// Add adds the bucket b to the figures.
func (f *Figures) Add(b tokenmeter.UsageBucket) {
	f.InputTokens += b.Usage.InputTokens
	f.OutputTokens += b.Usage.OutputTokens
	f.CacheCreation5mTokens += b.Usage.CacheWrite5mTokens
	f.CacheCreation1hTokens += b.Usage.CacheWrite1hTokens
	f.CacheCreationInputTokens += b.Usage.CacheWriteTokens()
	f.CacheReadInputTokens += b.Usage.CacheReadTokens
	f.ReasoningTokens += b.Usage.ReasoningTokens
	f.TotalTokens += b.Usage.TotalTokens()
	f.Requests += b.Requests
	f.CostMicros += int64(b.Cost)
	f.CostUSD = tokenmeter.Micros(f.CostMicros).USD()
	f.UsageUnknown += b.UsageUnknown
	f.UsageEstimated += b.UsageEstimated
	f.EstimatedTokens += b.EstimatedTokens
	f.CostUnknown += b.CostUnknown
	switch b.Outcome {
	case tokenmeter.OutcomeUnknown:
		f.OutcomeUnknown += b.Requests
	case tokenmeter.OutcomeError, tokenmeter.OutcomeFailed:
		f.Errors += b.Requests
	}
}

// Row is one line of a report.
type Row struct {
	Period string `json:"period,omitempty"`
	Key    string `json:"key,omitempty"`
	// SessionInfo is set on the rows of a session report, BlockInfo on
	// those of a blocks report.
	*SessionInfo
	*BlockInfo
	// FirstActivity and LastActivity are the times of the row's earliest
	// and latest call (session and blocks reports).
	FirstActivity time.Time `json:"first_activity,omitzero"`
	LastActivity  time.Time `json:"last_activity,omitzero"`
	// Models lists the models in the row, for reports not grouped by model.
	Models []string `json:"models,omitempty"`
	Figures
}

// SessionInfo names the session of a session report's row.
type SessionInfo struct {
	// Session is the client's session id; empty for calls that carry none
	// (gateway calls), which share one row keyed "(no session)".
	Session string `json:"session"`
	// Project is the session's project; several are joined with ", ".
	Project string `json:"project"`
}

// BlockInfo describes the block of a blocks report's row.
type BlockInfo struct {
	Start      time.Time   `json:"start"`
	End        time.Time   `json:"end"`
	Active     bool        `json:"active"`
	Gap        bool        `json:"gap"`
	BurnRate   *BurnRate   `json:"burn_rate"`
	Projection *Projection `json:"projection"`
}

// Report is a computed report. Its JSON form is the fixed interface that
// scripts rely on: rows and totals.
type Report struct {
	Kind     string    `json:"report"`
	By       string    `json:"by,omitempty"`
	TimeZone string    `json:"time_zone"`
	Since    string    `json:"since,omitempty"`
	Until    string    `json:"until,omitempty"`
	Rows     []Row     `json:"rows"`
	Totals   Figures   `json:"totals"`
	Unpriced []string  `json:"unpriced_models,omitempty"`
	Created  time.Time `json:"generated_at"`

	loc *time.Location // the zone of Build's query
}

// usageSource is the part of tokenmeter.Store a report reads.
type usageSource interface {
	Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error)
}

// CheckQuery returns the EINVALID error Build would return for q, naming
// what is wrong with it, without reading anything.
func CheckQuery(q Query) error {
	switch q.Kind {
	case Daily, Weekly, Monthly, Models, Session, Blocks:
	default:
		return tokenmeter.Errorf(tokenmeter.EINVALID, "unknown report %q (want daily, weekly, monthly, session, blocks or models)", q.Kind)
	}
	switch q.By {
	case ByNone, ByModel, ByKey, ByProject, ByTag:
	default:
		return tokenmeter.Errorf(tokenmeter.EINVALID, "unknown grouping %q (want model, key, project or tag)", q.By)
	}
	if q.Kind == Session && q.By == ByTag {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "the session report cannot be grouped by tag")
	}
	if q.Kind == Blocks && q.By != ByNone {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "the blocks report cannot be grouped (--by): a block spans every model, key and project")
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "--until %s is before --since %s", q.Until.Format(time.DateOnly), q.Since.Format(time.DateOnly))
	}
	return nil
}

// Build computes the report q from the store at time now.
func Build(ctx context.Context, store usageSource, q Query, now time.Time) (*Report, error) {
	if q.Loc == nil {
		q.Loc = time.Local
	}
	if err := CheckQuery(q); err != nil {
		return nil, err
	}
	uq := tokenmeter.UsageQuery{Bucket: bucket}
	rep := &Report{Kind: q.Kind, By: q.By, TimeZone: q.Loc.String(), Created: now.UTC(), loc: q.Loc}
	if !q.Since.IsZero() {
		uq.Since = dayStart(q.Since, q.Loc)
		rep.Since = uq.Since.Format(time.DateOnly)
	}
	if !q.Until.IsZero() {
		uq.Until = dayStart(q.Until, q.Loc).AddDate(0, 0, 1)
		rep.Until = dayStart(q.Until, q.Loc).Format(time.DateOnly)
	}
	if q.Kind == Session {
		uq.Bucket, uq.BySession = 0, true
	}
	if q.By == ByTag && q.Kind != Models {
		uq.ByTags = true
	}
	buckets, err := store.Usage(ctx, uq)
	if err != nil {
		return nil, err
	}
	switch q.Kind {
	case Session:
		buildSessions(rep, q, buckets)
		return rep, nil
	case Blocks:
		buildBlocks(rep, q, buckets, now)
		return rep, nil
	}
	type rowKey struct{ period, key string }
	rows := map[rowKey]*Row{}
	models := map[rowKey]map[string]bool{}
	unpriced := map[string]bool{}
	for _, b := range buckets {
		for _, key := range groupKeys(q, b) {
			k := rowKey{key: key}
			if q.Kind != Models {
				k.period = period(q.Kind, b.Start.In(q.Loc))
			}
			r := rows[k]
			if r == nil {
				r = &Row{Period: k.period, Key: k.key}
				rows[k] = r
				models[k] = map[string]bool{}
			}
			r.Add(b)
			if b.Model != "" {
				models[k][b.Model] = true
			}
		}
		rep.Totals.Add(b)
		if b.CostUnknown > 0 {
			unpriced[label(b.Model)] = true
		}
	}
	for k, r := range rows {
		if q.By != ByModel && q.Kind != Models {
			r.Models = sortedKeys(models[k])
		}
		rep.Rows = append(rep.Rows, *r)
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if a.Period != b.Period {
			return a.Period < b.Period
		}
		if q.Kind == Models && a.CostMicros != b.CostMicros {
			return a.CostMicros > b.CostMicros
		}
		return a.Key < b.Key
	})
	if rep.Rows == nil {
		rep.Rows = []Row{}
	}
	rep.Unpriced = sortedKeys(unpriced)
	return rep, nil
}

// groupKeys returns the keys of the rows b counts in: one, or with
// --by tag one per tag (Tags split at commas, each once).
func groupKeys(q Query, b tokenmeter.UsageBucket) []string {
	if q.By != ByTag || q.Kind == Models {
		return []string{groupKey(q, b)}
	}
	return TagKeys(b.Tags)
}

// TagKeys returns the row keys of a call recorded with tags (the text of
// x-tokenmeter-tags): each comma-separated tag once, or "(none)".
func TagKeys(tags string) []string {
	var out []string
	for _, t := range strings.Split(tags, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return []string{label("")}
	}
	return out
}

func groupKey(q Query, b tokenmeter.UsageBucket) string {
	by := q.By
	if q.Kind == Models {
		by = ByModel
	}
	switch by {
	case ByModel:
		return label(b.Model)
	case ByKey:
		return label(b.Principal)
	case ByProject:
		return label(b.Project)
	}
	return ""
}

func label(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// period names the day, ISO week or month containing t.
func period(kind string, t time.Time) string {
	switch kind {
	case Weekly:
		// Weeks start on Monday; the period is named by its Monday.
		return WeekStart(t, t.Location()).Format(time.DateOnly)
	case Monthly:
		return t.Format("2006-01")
	}
	return t.Format(time.DateOnly)
}

// DayStart returns the start of t's day in loc.
func DayStart(t time.Time, loc *time.Location) time.Time { return dayStart(t.In(loc), loc) }

// WeekStart returns the start of t's week in loc. Weeks start on Monday,
// as in the weekly report.
func WeekStart(t time.Time, loc *time.Location) time.Time {
	d := DayStart(t, loc)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

func dayStart(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseDate parses a YYYY-MM-DD flag value in loc.
func ParseDate(s string, loc *time.Location) (time.Time, error) {
	t, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err != nil {
		return time.Time{}, tokenmeter.Errorf(tokenmeter.EINVALID, "date %q is not YYYY-MM-DD", s)
	}
	return t, nil
}

// String is used in errors and tests.
func (r Row) String() string { return fmt.Sprintf("%s %s %+v", r.Period, r.Key, r.Figures) }
