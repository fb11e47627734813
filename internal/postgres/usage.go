package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledgerrules"
)

// sumColumns are the rollup value columns summed over rows (bigint, since
// PostgreSQL sums bigints as numeric).
var sumColumns = func() string {
	parts := make([]string, len(ledgerrules.Columns))
	for i, c := range ledgerrules.Columns {
		switch c {
		case "first_us":
			parts[i] = "MIN(first_us)"
		case "last_us":
			parts[i] = "MAX(last_us)"
		default:
			parts[i] = "SUM(" + c + ")::bigint"
		}
	}
	return strings.Join(parts, ", ")
}()

// Usage implements tokenmeter.Store, as ledgerrules.PlanUsage says: from
// the 15-minute rows, from them and the daily rows, or from the events.
// Sums of events are grouped by kind and usage state in SQL and turned
// into contributions by tokenmeter.SumContribution, so the rules of
// Event.Contribution are applied here as everywhere, not written again in
// SQL.
func (db *DB) Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error) {
	p, err := ledgerrules.PlanUsage(q)
	if err != nil {
		return nil, err
	}
	var out []tokenmeter.UsageBucket
	if p.From == ledgerrules.FromEvents {
		out, err = db.usageFromEvents(ctx, p, q)
	} else {
		out, err = db.usageFromRollups(ctx, p)
	}
	if err != nil {
		return nil, err
	}
	if q.Bucket == 0 {
		for i := range out {
			out[i].Start = time.Time{}
		}
	}
	slices.SortFunc(out, compareBuckets)
	return out, nil
}

func compareBuckets(a, b tokenmeter.UsageBucket) int {
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	for _, p := range [][2]string{{string(a.Source), string(b.Source)}, {a.Provider, b.Provider}, {a.Model, b.Model},
		{a.Principal, b.Principal}, {a.Project, b.Project}, {string(a.Outcome), string(b.Outcome)}, {a.Session, b.Session}} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}

func (db *DB) usageFromRollups(ctx context.Context, p ledgerrules.UsagePlan) ([]tokenmeter.UsageBucket, error) {
	cols := `source, provider, model, principal, project, outcome, ` + strings.Join(ledgerrules.Columns, ", ")
	var stmt string
	args := []any{p.Bucket, p.Since, p.Until}
	if p.From == ledgerrules.FromRollup {
		stmt = `SELECT bucket_us, ` + cols + ` FROM usage_rollup WHERE bucket_us >= $2::bigint AND bucket_us < $3::bigint AND $1::bigint > 0`
	} else {
		// The daily rows for the whole UTC days of [DayFrom, DayTo), the
		// 15-minute rows for the rest of the span.
		stmt = `SELECT (bucket_us / $1::bigint) * $1::bigint, source, provider, model, principal, project, outcome, ` + sumColumns + `
		FROM (SELECT bucket_us, ` + cols + ` FROM usage_rollup WHERE bucket_us >= $2::bigint AND bucket_us < LEAST($3::bigint, $4::bigint)
		UNION ALL SELECT bucket_us, ` + cols + ` FROM usage_rollup WHERE bucket_us >= GREATEST($2::bigint, $5::bigint) AND bucket_us < $3::bigint
		UNION ALL SELECT bucket_us, ` + cols + ` FROM usage_rollup_day WHERE bucket_us >= $4::bigint AND bucket_us < $5::bigint) r
		GROUP BY 1, source, provider, model, principal, project, outcome`
		args = append(args, p.DayFrom, p.DayTo)
	}
	rows, err := query(ctx, db.pool, stmt, args...)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query usage: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.UsageBucket
	for rows.Next() {
		var k ledgerrules.Key
		var r ledgerrules.Row
		dest := append([]any{&k.Bucket, &k.Source, &k.Provider, &k.Model, &k.Principal, &k.Project, &k.Outcome}, r.Targets()...)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scan usage: %w", err)
		}
		b := r.Bucket(k)
		b.Start = time.UnixMicro(k.Bucket).UTC()
		out = append(out, b)
	}
	return out, FormatError(rows.Err())
}

// eventSums sums the completed, revised and retracted events in
// [$2, $3) per bucket ($1 wide), group, kind and usage state.
func eventSums(session string) string {
	part := func(kind string) string {
		return `SELECT time_us, kind, source, provider, model, principal, project, outcome, ` + session + ` AS session,
			usage_known, estimate <> '' AS estimated, cost_known, input_tokens, output_tokens, cache_write_5m, cache_write_1h,
			cache_read, reasoning_tokens, web_search, web_fetch, cost_micros, hold_tokens, hold_input, hold_output, hold_cost
			FROM events WHERE kind = '` + kind + `' AND time_us >= $2::bigint AND time_us < $3::bigint`
	}
	// One arm per kind, so each reads its partial time index.
	return `SELECT (time_us / $1::bigint) * $1::bigint, source, provider, model, principal, project, outcome, session,
		kind, usage_known, estimated, cost_known, COUNT(*), MIN(time_us), MAX(time_us),
		SUM(input_tokens)::bigint, SUM(output_tokens)::bigint, SUM(cache_write_5m)::bigint, SUM(cache_write_1h)::bigint,
		SUM(cache_read)::bigint, SUM(reasoning_tokens)::bigint, SUM(web_search)::bigint, SUM(web_fetch)::bigint,
		SUM(cost_micros)::bigint, SUM(hold_tokens)::bigint, SUM(hold_input)::bigint, SUM(hold_output)::bigint, SUM(hold_cost)::bigint
		FROM (` + part("completed") + ` UNION ALL ` + part("revised") + ` UNION ALL ` + part("retracted") + `) e
		GROUP BY 1, source, provider, model, principal, project, outcome, session, kind, usage_known, estimated, cost_known`
}

func (db *DB) usageFromEvents(ctx context.Context, p ledgerrules.UsagePlan, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error) {
	session := "''" // the extra group: session or tags
	if q.BySession {
		session = "session"
	} else if q.ByTags {
		session = "tags"
	}
	rows, err := query(ctx, db.pool, eventSums(session), p.Bucket, p.Since, p.Until)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query usage: %w", err))
	}
	defer rows.Close()
	type group struct {
		ledgerrules.Key
		session string
	}
	sums := map[group]*ledgerrules.Row{}
	var order []group
	for rows.Next() {
		var (
			g              group
			ev             tokenmeter.Event
			kind           string
			estimated      bool
			n, first, last int64
			cost, holdCost int64
			u              = &ev.Usage
		)
		if err := rows.Scan(&g.Bucket, &g.Source, &g.Provider, &g.Model, &g.Principal, &g.Project, &g.Outcome, &g.session,
			&kind, &ev.UsageKnown, &estimated, &ev.CostKnown, &n, &first, &last,
			&u.InputTokens, &u.OutputTokens, &u.CacheWrite5mTokens, &u.CacheWrite1hTokens, &u.CacheReadTokens,
			&u.ReasoningTokens, &u.WebSearchRequests, &u.WebFetchRequests, &cost,
			&ev.Hold.Tokens, &ev.Hold.InputTokens, &ev.Hold.OutputTokens, &holdCost); err != nil {
			return nil, fmt.Errorf("scan usage: %w", err)
		}
		ev.Kind, ev.Cost, ev.Hold.Cost = tokenmeter.Kind(kind), tokenmeter.Micros(cost), tokenmeter.Micros(holdCost)
		if estimated {
			ev.Estimate = "estimated" // only its presence counts
		}
		r := sums[g]
		if r == nil {
			r = &ledgerrules.Row{First: first, Last: last}
			sums[g] = r
			order = append(order, g)
		}
		r.Contribution.Add(tokenmeter.SumContribution(&ev, n))
		r.First, r.Last = min(r.First, first), max(r.Last, last)
	}
	if err := rows.Err(); err != nil {
		return nil, FormatError(fmt.Errorf("query usage: %w", err))
	}
	out := make([]tokenmeter.UsageBucket, 0, len(order))
	for _, g := range order {
		b := sums[g].Bucket(g.Key)
		b.Start, b.Session = time.UnixMicro(g.Bucket).UTC(), g.session
		if q.ByTags {
			b.Tags, b.Session = g.session, ""
		}
		out = append(out, b)
	}
	return out, nil
}

// CheckAggregates compares usage_total and usage_total_day with the
// rollups they sum (which verify compares with the events) and describes
// the first bucket that differs, "" if none does (see ledger.Verify).
func (db *DB) CheckAggregates(ctx context.Context) (string, error) {
	for _, t := range [][2]string{{"usage_total", "usage_rollup"}, {"usage_total_day", "usage_rollup_day"}} {
		var bucket int64
		err := queryRow(ctx, db.pool, `SELECT COALESCE(t.bucket_us, s.bucket_us) FROM `+t[0]+` t
			FULL JOIN (SELECT bucket_us, `+sumColumns+` FROM `+t[1]+` GROUP BY bucket_us) s ON s.bucket_us = t.bucket_us
			WHERE (t.*) IS DISTINCT FROM (s.*) LIMIT 1`).Scan(&bucket)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		} else if err != nil {
			return "", FormatError(fmt.Errorf("check %s: %w", t[0], err))
		}
		return fmt.Sprintf("the usage totals (%s) at %s do not match the aggregated usage: the aggregates were altered",
			t[0], time.UnixMicro(bucket).UTC().Format(time.RFC3339)), nil
	}
	return "", nil
}
