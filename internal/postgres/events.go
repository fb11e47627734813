package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenmeter/tokenmeter"
)

// columns are the events table's columns, in the order eventRows and
// scanEvent use (the SQLite store's order).
const columns = `seq, key, request_key, kind, time_us, source, instance, provider, endpoint, model, stream,
	principal, project, tags, upstream_request_id, status, outcome, reason,
	input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read, reasoning_tokens, web_search, web_fetch,
	usage_known, raw_usage, latency_us, ttfb_us, cost_micros, cost_known, prev_hash, hash, session,
	response_id, estimate, hold_tokens, hold_input, hold_output, hold_cost, service_tier`

// columnTypes are the columns' PostgreSQL types, for unnest.
var columnTypes = []string{"bigint", "text", "text", "text", "bigint", "text", "text", "text", "text", "text", "boolean",
	"text", "text", "text", "text", "integer", "text", "text",
	"bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint",
	"boolean", "text", "bigint", "bigint", "bigint", "boolean", "text", "text", "text",
	"text", "text", "bigint", "bigint", "bigint", "bigint", "text"}

// unnest returns "SELECT * FROM unnest($first::t1[], ...)" for types.
func unnest(first int, types []string) string {
	var b strings.Builder
	b.WriteString("SELECT * FROM unnest(")
	for i, t := range types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(first+i) + "::" + t + "[]")
	}
	b.WriteString(")")
	return b.String()
}

// insertEventsSQL inserts the events of an eventRows; a duplicate key (or
// seq) fails the statement.
var insertEventsSQL = `INSERT INTO events (` + columns + `) ` + unnest(1, columnTypes)

// eventRows are events laid out as one array per column, so that a batch
// of any size is one statement (and one prepared statement).
type eventRows struct {
	seq, timeUS                                         []int64
	key, requestKey, kind, source, instance             []string
	provider, endpoint, model                           []string
	stream, usageKnown, costKnown                       []bool
	principal, project, tags, upstream, outcome, reason []string
	status                                              []int32
	in, out, cw5, cw1, cr, reas, ws, wf                 []int64
	raw, prev, hash, session, resp, estimate, tier      []string
	lat, ttfb, cost, ht, hi, ho, hc                     []int64
}

func (r *eventRows) len() int { return len(r.seq) }

func (r *eventRows) add(ev *tokenmeter.Event) {
	u := ev.Usage
	r.seq = append(r.seq, ev.Seq)
	r.key = append(r.key, ev.Key)
	r.requestKey = append(r.requestKey, ev.RequestKey)
	r.kind = append(r.kind, string(ev.Kind))
	r.timeUS = append(r.timeUS, ev.Time.UnixMicro())
	r.source = append(r.source, string(ev.Source))
	r.instance = append(r.instance, ev.Instance)
	r.provider = append(r.provider, ev.Provider)
	r.endpoint = append(r.endpoint, ev.Endpoint)
	r.model = append(r.model, ev.Model)
	r.stream = append(r.stream, ev.Stream)
	r.principal = append(r.principal, ev.Principal)
	r.project = append(r.project, ev.Project)
	r.tags = append(r.tags, ev.Tags)
	r.upstream = append(r.upstream, ev.UpstreamRequestID)
	r.status = append(r.status, int32(ev.Status))
	r.outcome = append(r.outcome, string(ev.Outcome))
	r.reason = append(r.reason, ev.Reason)
	r.in, r.out, r.cw5, r.cw1 = append(r.in, u.InputTokens), append(r.out, u.OutputTokens), append(r.cw5, u.CacheWrite5mTokens), append(r.cw1, u.CacheWrite1hTokens)
	r.cr, r.reas, r.ws, r.wf = append(r.cr, u.CacheReadTokens), append(r.reas, u.ReasoningTokens), append(r.ws, u.WebSearchRequests), append(r.wf, u.WebFetchRequests)
	r.usageKnown = append(r.usageKnown, ev.UsageKnown)
	r.raw = append(r.raw, string(ev.RawUsage))
	r.lat, r.ttfb = append(r.lat, ev.Latency.Microseconds()), append(r.ttfb, ev.TTFB.Microseconds())
	r.cost = append(r.cost, int64(ev.Cost))
	r.costKnown = append(r.costKnown, ev.CostKnown)
	r.prev, r.hash, r.session = append(r.prev, ev.PrevHash), append(r.hash, ev.Hash), append(r.session, ev.Session)
	r.resp, r.estimate, r.tier = append(r.resp, ev.ResponseID), append(r.estimate, ev.Estimate), append(r.tier, ev.ServiceTier)
	h := ev.Hold
	r.ht, r.hi, r.ho, r.hc = append(r.ht, h.Tokens), append(r.hi, h.InputTokens), append(r.ho, h.OutputTokens), append(r.hc, int64(h.Cost))
}

// args returns the arrays in column order.
func (r *eventRows) args() []any {
	return []any{r.seq, r.key, r.requestKey, r.kind, r.timeUS, r.source, r.instance, r.provider, r.endpoint, r.model, r.stream,
		r.principal, r.project, r.tags, r.upstream, r.status, r.outcome, r.reason,
		r.in, r.out, r.cw5, r.cw1, r.cr, r.reas, r.ws, r.wf,
		r.usageKnown, r.raw, r.lat, r.ttfb, r.cost, r.costKnown, r.prev, r.hash, r.session,
		r.resp, r.estimate, r.ht, r.hi, r.ho, r.hc, r.tier}
}

// scanEvent reads the columns (in order), and then extra, into ev.
func scanEvent(row pgx.Row, ev *tokenmeter.Event, extra ...any) error {
	var (
		timeUS, latUS, ttfbUS, cost, holdCost int64
		status                                int32
		kind, source, outcome, raw            string
		u                                     = &ev.Usage
	)
	dest := []any{&ev.Seq, &ev.Key, &ev.RequestKey, &kind, &timeUS, &source, &ev.Instance,
		&ev.Provider, &ev.Endpoint, &ev.Model, &ev.Stream,
		&ev.Principal, &ev.Project, &ev.Tags, &ev.UpstreamRequestID, &status, &outcome, &ev.Reason,
		&u.InputTokens, &u.OutputTokens, &u.CacheWrite5mTokens, &u.CacheWrite1hTokens, &u.CacheReadTokens,
		&u.ReasoningTokens, &u.WebSearchRequests, &u.WebFetchRequests,
		&ev.UsageKnown, &raw, &latUS, &ttfbUS, &cost, &ev.CostKnown, &ev.PrevHash, &ev.Hash, &ev.Session,
		&ev.ResponseID, &ev.Estimate, &ev.Hold.Tokens, &ev.Hold.InputTokens, &ev.Hold.OutputTokens, &holdCost, &ev.ServiceTier}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return err
	}
	ev.Kind, ev.Source, ev.Outcome = tokenmeter.Kind(kind), tokenmeter.Source(source), tokenmeter.Outcome(outcome)
	ev.Status = int(status)
	ev.Time = time.UnixMicro(timeUS).UTC()
	ev.Latency, ev.TTFB = time.Duration(latUS)*time.Microsecond, time.Duration(ttfbUS)*time.Microsecond
	ev.Cost, ev.Hold.Cost = tokenmeter.Micros(cost), tokenmeter.Micros(holdCost)
	ev.RawUsage = nil
	if raw != "" {
		ev.RawUsage = []byte(raw)
	}
	return nil
}

// Scan implements tokenmeter.Store.
func (db *DB) Scan(ctx context.Context, afterSeq int64, fn func(*tokenmeter.Event) error) error {
	rows, err := query(ctx, db.pool, `SELECT `+columns+` FROM events WHERE seq > $1 ORDER BY seq`, afterSeq)
	if err != nil {
		return FormatError(fmt.Errorf("query events: %w", err))
	}
	defer rows.Close()
	var ev tokenmeter.Event
	for rows.Next() {
		ev = tokenmeter.Event{}
		if err := scanEvent(rows, &ev); err != nil {
			return fmt.Errorf("scan event after seq %d: %w", ev.Seq, err)
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return FormatError(rows.Err())
}

// Head returns the chain head: the seq and hash of the last event appended,
// or 0 and GenesisHash for an empty ledger. It is updated in every
// transaction that appends, so verify sees any event removed from the end.
func (db *DB) Head(ctx context.Context) (seq int64, hash string, err error) {
	if err := queryRow(ctx, db.pool, `SELECT seq, hash FROM chain_head WHERE id = 1`).Scan(&seq, &hash); err != nil {
		return 0, "", FormatError(fmt.Errorf("read chain head: %w", err))
	}
	return seq, hash, nil
}

// OpenCalls implements tokenmeter.Store.
func (db *DB) OpenCalls(ctx context.Context, instances []string) ([]tokenmeter.Event, error) {
	rows, err := query(ctx, db.pool, `SELECT DISTINCT ON (s.request_key) `+prefixed("s.")+` FROM events s
		WHERE s.kind IN ('started', 'progress')
		AND NOT EXISTS (SELECT 1 FROM events c WHERE c.key = s.request_key || '/completed')
		ORDER BY s.request_key, s.seq DESC`)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query open calls: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.Event
	for rows.Next() {
		var ev tokenmeter.Event
		if err := scanEvent(rows, &ev); err != nil {
			return nil, fmt.Errorf("scan open call: %w", err)
		}
		if instances == nil || slices.Contains(instances, ev.Instance) {
			out = append(out, ev)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, FormatError(fmt.Errorf("query open calls: %w", err))
	}
	slices.SortFunc(out, func(a, b tokenmeter.Event) int { return int(a.Seq - b.Seq) })
	return out, nil
}

// prefixed returns columns with each name prefixed (a table alias).
func prefixed(p string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// ImportFiles implements tokenmeter.Store.
func (db *DB) ImportFiles(ctx context.Context, source tokenmeter.Source) ([]tokenmeter.ImportFile, error) {
	rows, err := query(ctx, db.pool, `SELECT path, identity, size, mod_us, "offset", line, state FROM import_files
		WHERE source = $1 ORDER BY path`, string(source))
	if err != nil {
		return nil, FormatError(fmt.Errorf("query import state: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.ImportFile
	for rows.Next() {
		f := tokenmeter.ImportFile{Source: source}
		var mod int64
		if err := rows.Scan(&f.Path, &f.Identity, &f.Size, &mod, &f.Offset, &f.Line, &f.State); err != nil {
			return nil, fmt.Errorf("scan import state: %w", err)
		}
		f.ModTime = time.UnixMicro(mod).UTC()
		out = append(out, f)
	}
	return out, FormatError(rows.Err())
}

// RecentCalls implements tokenmeter.CallStore: a backward walk of the
// index of completed events by (time, seq).
func (db *DB) RecentCalls(ctx context.Context, q tokenmeter.CallQuery) ([]tokenmeter.Event, error) {
	where := []string{"kind = 'completed'"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !q.Before.IsZero() {
		if q.BeforeSeq > 0 {
			where = append(where, "(time_us, seq) < ("+arg(q.Before.UnixMicro())+", "+arg(q.BeforeSeq)+")")
		} else {
			where = append(where, "time_us < "+arg(q.Before.UnixMicro()))
		}
	}
	if !q.Since.IsZero() {
		where = append(where, "time_us >= "+arg(q.Since.UnixMicro()))
	}
	for _, f := range []struct{ col, v string }{
		{"provider", q.Provider}, {"model", q.Model}, {"principal", q.Principal},
		{"project", q.Project}, {"outcome", string(q.Outcome)},
	} {
		if f.v != "" {
			where = append(where, f.col+" = "+arg(f.v))
		}
	}
	limit := arg(q.EffectiveLimit())
	rows, err := query(ctx, db.pool, `SELECT `+columns+` FROM events WHERE `+strings.Join(where, " AND ")+
		` ORDER BY time_us DESC, seq DESC LIMIT `+limit, args...)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query recent calls: %w", err))
	}
	defer rows.Close()
	out := []tokenmeter.Event{}
	for rows.Next() {
		var ev tokenmeter.Event
		if err := scanEvent(rows, &ev); err != nil {
			return nil, fmt.Errorf("scan recent call: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, FormatError(fmt.Errorf("query recent calls: %w", err))
	}
	return out, nil
}
