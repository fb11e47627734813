package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledgerrules"
)

// The write path.
//
// Every transaction that appends locks the chain_head row first, seals its
// events after the head it holds, and updates the row with its last event
// before committing: one writer at a time, across every replica, extends
// the one chain. It is sent in as few round trips as the batch allows:
//
//   - Fast (Append, the gateway's path): the events are sealed after the
//     head this process saw last, with no read, and sent in one round trip
//     that claims the head (claim_head locks it and says whether it is
//     still the one guessed), inserts the events, adds to the rollups,
//     deletes the completed calls' reservations, moves the head and
//     commits, every statement guarded by the head being the guessed one.
//     A wrong guess writes nothing; a key already in the ledger fails the
//     insert and rolls it all back. Either way the batch takes the slow
//     path, and after wrong guesses the fast path is skipped for a while
//     (replicas taking turns).
//   - Slow: one round trip locks the head and reads it, which of the
//     batch's keys are in the ledger, and (imports) which calls the
//     gateway recorded under the batch's request and response ids; the
//     decisions are made (ledgerrules.Write); a second round trip writes
//     and commits. A revision or settlement, which needs what the ledger
//     holds for a call, costs a round trip more each.
//
// The commit is made with synchronous_commit off, followed in the same
// round trip by a transaction that waits for the WAL to be flushed past it
// (flushSQL): the caller returns only once the append is on disk, but the
// head row's lock is released before the flush, so the other replicas'
// appends, and their flushes, overlap instead of queueing behind it. The
// fast path runs as the implicit transaction of one pipeline (a failure
// rolls it back at once); the slow path in an explicit one.

// flushSQL is a transaction that waits, with synchronous_commit on (the
// session's setting), until the WAL is on disk up to its own commit, and
// so past every commit made before it on the connection. It must write a
// WAL record for its commit to wait: a transactional logical-decoding
// message of no content is the smallest.
const flushSQL = `SELECT pg_logical_emit_message(true, 'tokenmeter', '')`

// chainHead is the last event's seq and hash.
type chainHead struct {
	seq   int64
	hash  string
	known bool
}

// errMoved says a guess of the head was wrong.
var errMoved = errors.New("the chain head moved")

// Append implements tokenmeter.Store.
func (db *DB) Append(ctx context.Context, events []tokenmeter.Event) (int, error) {
	res, err := db.write(ctx, events, nil, false)
	return res.Duplicates, err
}

// Import implements tokenmeter.Store.
func (db *DB) Import(ctx context.Context, events []tokenmeter.Event, files []tokenmeter.ImportFile) (tokenmeter.ImportResult, error) {
	return db.write(ctx, events, files, true)
}

func (db *DB) write(ctx context.Context, events []tokenmeter.Event, files []tokenmeter.ImportFile, imported bool) (tokenmeter.ImportResult, error) {
	if db.ReadOnly {
		return tokenmeter.ImportResult{}, errors.New("postgres: database opened read-only")
	}
	if len(events) == 0 && len(files) == 0 {
		return tokenmeter.ImportResult{}, nil
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return tokenmeter.ImportResult{}, FormatError(fmt.Errorf("append: %w", err))
	}
	defer conn.Release()
	if head, ok := db.guess(imported || len(files) > 0); ok {
		res, err := db.writeFast(ctx, conn, events, head)
		if err == nil {
			db.guessed(true)
			db.fastAppends.Add(1)
			return res, nil
		}
		var pe *pgconn.PgError
		if !errors.Is(err, errMoved) && (!errors.As(err, &pe) || pe.Code != "23505") {
			rollbackConn(conn)
			return tokenmeter.ImportResult{}, FormatError(fmt.Errorf("append: %w", err))
		}
		db.guessed(false) // the pipeline's transaction was rolled back: on to the slow path
	}
	res, err := db.writeSlow(ctx, conn, events, files, imported)
	if err != nil {
		rollbackConn(conn)
		return tokenmeter.ImportResult{}, err
	}
	db.slowAppends.Add(1)
	return res, nil
}

// guess returns the head to seal a batch after without reading it, if the
// fast path is to be tried.
func (db *DB) guess(slow bool) (chainHead, bool) {
	db.headMu.Lock()
	defer db.headMu.Unlock()
	if slow || !db.head.known {
		return chainHead{}, false
	}
	if db.fastSkip > 0 {
		db.fastSkip--
		return chainHead{}, false
	}
	return db.head, true
}

// guessed records whether a guess of the head was right: after n wrong
// guesses in a row the next 2^n (at most 64) appends read the head first.
func (db *DB) guessed(right bool) {
	db.headMu.Lock()
	defer db.headMu.Unlock()
	if right {
		db.fastMiss = 0
		return
	}
	db.fastMiss = min(db.fastMiss+1, 6)
	db.fastSkip = 1 << db.fastMiss
}

// saw records a head this process committed or read.
func (db *DB) saw(seq int64, hash string) {
	db.headMu.Lock()
	defer db.headMu.Unlock()
	if !db.head.known || seq >= db.head.seq {
		db.head = chainHead{seq: seq, hash: hash, known: true}
	}
}

// rollbackConn ends a failed transaction on conn, if one is open, so the
// connection goes back to the pool clean (or is dropped by it).
func rollbackConn(conn *pgxpool.Conn) {
	if conn.Conn().PgConn().TxStatus() != 'I' && !conn.Conn().IsClosed() {
		exec(context.Background(), conn, "ROLLBACK")
	}
}

// async queues, at the start of a transaction (explicit, or the implicit
// one of a pipeline), that its commit does not wait for the disk.
func async(b *pgx.Batch) { queue(b, "SET LOCAL synchronous_commit = off") }

// commit queues the commit of a transaction started with async and the
// wait for its WAL to reach the disk (flushSQL).
func commit(b *pgx.Batch) {
	queue(b, "COMMIT")
	queue(b, flushSQL)
}

// writeFast sends the whole append in one round trip, sealed after head.
func (db *DB) writeFast(ctx context.Context, conn *pgxpool.Conn, events []tokenmeter.Event, head chainHead) (tokenmeter.ImportResult, error) {
	pb := &pgBatch{db: db, conn: conn, seq: head.seq, prev: head.hash, guess: true}
	out, err := ledgerrules.Write(ctx, pb, events, false)
	if err != nil {
		return tokenmeter.ImportResult{}, err
	}
	claimed := false
	b := &pgx.Batch{}
	async(b) // the pipeline's implicit transaction
	queue(b, `SELECT claim_head($1, $2)`, head.seq, head.hash).queryRow(func(r pgx.Row) error { return r.Scan(&claimed) })
	pb.finish(b, out, nil, &head)
	queue(b, "COMMIT")
	// The flush, only if this batch's last event is in the ledger (the
	// head may have moved past it already, another replica's append).
	queue(b, flushSQL+` FROM events WHERE seq = $1 AND hash = $2`, pb.seq, pb.prev)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return tokenmeter.ImportResult{}, err
	}
	if !claimed {
		return tokenmeter.ImportResult{}, errMoved
	}
	db.saw(pb.seq, pb.prev)
	return out.ImportResult, nil
}

// writeSlow reads the head and what the decisions need, decides, and
// writes.
func (db *DB) writeSlow(ctx context.Context, conn *pgxpool.Conn, events []tokenmeter.Event, files []tokenmeter.ImportFile, imported bool) (tokenmeter.ImportResult, error) {
	pb := &pgBatch{db: db, conn: conn, exists: map[string]bool{}, checked: map[string]bool{}}
	b := &pgx.Batch{}
	queue(b, "BEGIN")
	async(b)
	queue(b, `SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE`).queryRow(func(r pgx.Row) error { return r.Scan(&pb.seq, &pb.prev) })
	if len(events) > 0 {
		keys := make([]string, 0, len(events))
		var ids, resps []string
		for i := range events {
			ev := &events[i]
			if !pb.checked[ev.Key] {
				pb.checked[ev.Key] = true
				keys = append(keys, ev.Key)
			}
			if ev.UpstreamRequestID != "" {
				ids = append(ids, ev.UpstreamRequestID)
			}
			if ev.ResponseID != "" {
				resps = append(resps, ev.ResponseID)
			}
		}
		queue(b, `SELECT key FROM events WHERE key = ANY($1)`, keys).query(func(rows pgx.Rows) error {
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err != nil {
					return err
				}
				pb.exists[k] = true
			}
			return rows.Err()
		})
		pb.byID, pb.byResp = map[string]string{}, map[string]string{}
		if imported && (len(ids) > 0 || len(resps) > 0) {
			queue(b, `SELECT upstream_request_id, response_id, request_key FROM events
				WHERE source = 'proxy' AND ((upstream_request_id = ANY($1) AND upstream_request_id <> '') OR (response_id = ANY($2) AND response_id <> ''))`,
				ids, resps).query(func(rows pgx.Rows) error {
				for rows.Next() {
					var id, resp, key string
					if err := rows.Scan(&id, &resp, &key); err != nil {
						return err
					}
					pb.recordCall(id, resp, key)
				}
				return rows.Err()
			})
		}
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return tokenmeter.ImportResult{}, FormatError(fmt.Errorf("append: read the chain head: %w", err))
	}
	out, err := ledgerrules.Write(ctx, pb, events, imported)
	if err != nil {
		return tokenmeter.ImportResult{}, err
	}
	b = &pgx.Batch{}
	pb.finish(b, out, files, nil)
	commit(b)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return tokenmeter.ImportResult{}, FormatError(fmt.Errorf("append: commit: %w", err))
	}
	db.saw(pb.seq, pb.prev)
	return out.ImportResult, nil
}

// pgBatch is the PostgreSQL side of ledgerrules.Write. The events it
// stores wait in pending until the next round trip, which is the commit's
// unless a decision needs to read the ledger first (flush).
type pgBatch struct {
	db      *DB
	conn    *pgxpool.Conn
	seq     int64  // the chain head: the last event sealed
	prev    string // and its hash
	guess   bool   // the fast path: every key is taken to be new (the insert checks)
	exists  map[string]bool
	checked map[string]bool // keys whose presence exists records
	added   map[string]bool // keys stored by this batch
	pending eventRows
	byID    map[string]string // the gateway's calls by upstream request id
	byResp  map[string]string // and by response id
}

// recordCall notes that the gateway recorded call key with these ids.
func (b *pgBatch) recordCall(id, resp, key string) {
	if id != "" && b.byID[id] == "" {
		b.byID[id] = key
	}
	if resp != "" && b.byResp[resp] == "" {
		b.byResp[resp] = key
	}
}

// Insert implements ledgerrules.Batch.
func (b *pgBatch) Insert(ctx context.Context, ev *tokenmeter.Event) (bool, error) {
	if b.added[ev.Key] || b.exists[ev.Key] {
		return false, nil
	}
	if !b.guess && !b.checked[ev.Key] {
		// A key the ledger derived (a revision, a retraction): whether it
		// is there is found out by inserting it.
		if err := b.flush(ctx); err != nil {
			return false, err
		}
		tokenmeter.Seal(ev, b.seq+1, b.prev)
		var one eventRows
		one.add(ev)
		var seq int64
		err := queryRow(ctx, b.conn, insertEventsSQL+` ON CONFLICT (key) DO NOTHING RETURNING seq`, one.args()...).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		} else if err != nil {
			return false, FormatError(fmt.Errorf("insert event %s: %w", ev.Key, err))
		}
	} else {
		tokenmeter.Seal(ev, b.seq+1, b.prev)
		b.pending.add(ev)
	}
	b.seq, b.prev = ev.Seq, ev.Hash
	if b.added == nil {
		b.added = map[string]bool{}
	}
	b.added[ev.Key] = true
	if ev.Source == tokenmeter.SourceProxy && b.byID != nil {
		b.recordCall(ev.UpstreamRequestID, ev.ResponseID, ev.RequestKey)
	}
	return true, nil
}

// flush inserts the pending events.
func (b *pgBatch) flush(ctx context.Context) error {
	if b.pending.len() == 0 {
		return nil
	}
	if _, err := exec(ctx, b.conn, insertEventsSQL, b.pending.args()...); err != nil {
		return FormatError(fmt.Errorf("insert events: %w", err))
	}
	b.pending = eventRows{}
	return nil
}

// Recorded implements ledgerrules.Batch: the calls were read with the head.
func (b *pgBatch) Recorded(ctx context.Context, ev *tokenmeter.Event) (string, error) {
	if k := b.byID[ev.UpstreamRequestID]; ev.UpstreamRequestID != "" && k != "" {
		return k, nil
	}
	if k := b.byResp[ev.ResponseID]; ev.ResponseID != "" && k != "" {
		return k, nil
	}
	return "", nil
}

// sumsSQL sums what the ledger holds for one call: its completed event
// (by key) and its revisions and retractions (events_corrections).
const sumsSQL = `SELECT COUNT(*), COALESCE(SUM(input_tokens), 0)::bigint, COALESCE(SUM(output_tokens), 0)::bigint,
	COALESCE(SUM(cache_write_5m), 0)::bigint, COALESCE(SUM(cache_write_1h), 0)::bigint, COALESCE(SUM(cache_read), 0)::bigint,
	COALESCE(SUM(reasoning_tokens), 0)::bigint, COALESCE(SUM(web_search), 0)::bigint, COALESCE(SUM(web_fetch), 0)::bigint,
	COALESCE(SUM(cost_micros), 0)::bigint, COALESCE(MIN(time_us), 0),
	COALESCE(MAX(source) FILTER (WHERE kind = 'completed'), ''),
	COALESCE(MAX(provider) FILTER (WHERE kind = 'completed'), ''),
	COALESCE(MAX(model) FILTER (WHERE kind = 'completed'), ''),
	COALESCE(MAX(principal) FILTER (WHERE kind = 'completed'), ''),
	COALESCE(MAX(project) FILTER (WHERE kind = 'completed'), ''),
	COALESCE(MAX(session) FILTER (WHERE kind = 'completed'), ''),
	COALESCE(MAX(outcome) FILTER (WHERE kind = 'completed'), '')
	FROM events WHERE (key = $1 AND kind = 'completed') OR (request_key = $2 AND kind IN ('revised', 'retracted'))`

// Sums implements ledgerrules.Batch.
func (b *pgBatch) Sums(ctx context.Context, requestKey string) (tokenmeter.CallSums, error) {
	var (
		s               tokenmeter.CallSums
		cost, timeUS    int64
		source, outcome string
		u               = &s.Usage
	)
	if err := b.flush(ctx); err != nil {
		return s, err
	}
	err := queryRow(ctx, b.conn, sumsSQL, tokenmeter.EventKey(requestKey, tokenmeter.KindCompleted), requestKey).Scan(&s.Events,
		&u.InputTokens, &u.OutputTokens, &u.CacheWrite5mTokens, &u.CacheWrite1hTokens, &u.CacheReadTokens,
		&u.ReasoningTokens, &u.WebSearchRequests, &u.WebFetchRequests, &cost, &timeUS,
		&source, &s.Provider, &s.Model, &s.Principal, &s.Project, &s.Session, &outcome)
	if err != nil {
		return s, FormatError(fmt.Errorf("read usage of %s: %w", requestKey, err))
	}
	s.Cost, s.Time = tokenmeter.Micros(cost), time.UnixMicro(timeUS).UTC()
	s.Source, s.Outcome = tokenmeter.Source(source), tokenmeter.Outcome(outcome)
	return s, nil
}

// Completed implements ledgerrules.Batch.
func (b *pgBatch) Completed(ctx context.Context, requestKey string) (tokenmeter.Event, bool, bool, error) {
	var ev tokenmeter.Event
	var retracted bool
	if err := b.flush(ctx); err != nil {
		return ev, false, false, err
	}
	row := queryRow(ctx, b.conn, `SELECT `+columns+`, EXISTS (SELECT 1 FROM events r WHERE r.key = $2) FROM events WHERE key = $1`,
		tokenmeter.EventKey(requestKey, tokenmeter.KindCompleted), tokenmeter.EventKey(requestKey, tokenmeter.KindRetracted))
	if err := scanEvent(row, &ev, &retracted); errors.Is(err, pgx.ErrNoRows) {
		return ev, false, false, nil
	} else if err != nil {
		return ev, false, false, FormatError(fmt.Errorf("read call %s: %w", requestKey, err))
	}
	return ev, retracted, true, nil
}

// finish queues the rest of the transaction after the decisions: the
// pending events, the rollups, the end of the completed calls'
// reservations, the files' import state and the new head. With guess set
// (the fast path), each statement writes only while the head is guess.
func (b *pgBatch) finish(q *pgx.Batch, out ledgerrules.Result, files []tokenmeter.ImportFile, guess *chainHead) {
	guarded := func(sql string, where bool, args ...any) {
		if guess != nil {
			if where {
				sql += " WHERE " + headIs(len(args))
			} else {
				sql += " AND " + headIs(len(args))
			}
			args = append(args, guess.seq, guess.hash)
		}
		queue(q, sql, args...)
	}
	if b.pending.len() > 0 {
		guarded(insertEventsSQL, true, b.pending.args()...)
	}
	if len(out.Rollup) > 0 {
		days := out.Rollup.Days()
		for _, t := range []struct {
			stmt rollupStmt
			rows ledgerrules.Sums
		}{
			{rollupStmts[0], out.Rollup}, {rollupStmts[1], days}, {rollupStmts[2], totals(out.Rollup)}, {rollupStmts[3], totals(days)},
		} {
			args := rollupArgs(t.rows, t.stmt.keys)
			if guess == nil {
				queue(q, t.stmt.plain, args...)
			} else {
				queue(q, t.stmt.guarded, append(args, guess.seq, guess.hash)...)
			}
		}
	}
	if len(out.Released) > 0 {
		guarded(`DELETE FROM reservations WHERE request_key = ANY($1)`, false, out.Released)
	}
	if len(files) > 0 {
		var src, path, ident, state []string
		var size, mod, off, line []int64
		for _, f := range files {
			src, path, ident, state = append(src, string(f.Source)), append(path, f.Path), append(ident, f.Identity), append(state, f.State)
			size, mod, off, line = append(size, f.Size), append(mod, f.ModTime.UnixMicro()), append(off, f.Offset), append(line, f.Line)
		}
		queue(q, `INSERT INTO import_files (source, path, identity, size, mod_us, "offset", line, state) `+
			unnest(1, []string{"text", "text", "text", "bigint", "bigint", "bigint", "bigint", "text"})+`
			ON CONFLICT (source, path) DO UPDATE SET identity = EXCLUDED.identity, size = EXCLUDED.size,
			mod_us = EXCLUDED.mod_us, "offset" = EXCLUDED."offset", line = EXCLUDED.line, state = EXCLUDED.state`,
			src, path, ident, size, mod, off, line, state)
	}
	if out.Stored {
		guarded(`UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1`, false, b.seq, b.prev)
	}
}

// rollupKeys are a rollup row's key columns and model_base; totalKeys a
// total's.
var (
	rollupKeys = []string{"bucket_us", "source", "provider", "model", "principal", "project", "outcome", "model_base"}
	totalKeys  = []string{"bucket_us"}
)

// totals sums rows per bucket, over every group.
func totals(rows ledgerrules.Sums) ledgerrules.Sums {
	out := make(ledgerrules.Sums)
	for k, r := range rows {
		t := ledgerrules.Key{Bucket: k.Bucket}
		if o := out[t]; o == nil {
			c := *r
			out[t] = &c
		} else {
			o.Add(r)
		}
	}
	return out
}

// rollupStmt adds rows to a rollup or total table: plain, and guarded by
// the head being the one whose seq and hash are its last two arguments.
type rollupStmt struct {
	keys           []string
	plain, guarded string
}

var rollupStmts = []rollupStmt{
	newRollupStmt("usage_rollup", rollupKeys), newRollupStmt("usage_rollup_day", rollupKeys),
	newRollupStmt("usage_total", totalKeys), newRollupStmt("usage_total_day", totalKeys),
}

// newRollupStmt returns the statements adding to table, whose key is keys
// (rollupKeys or totalKeys, model_base being no part of it).
func newRollupStmt(table string, keys []string) rollupStmt {
	types := []string{"bigint"}
	for range keys[1:] {
		types = append(types, "text")
	}
	sets := make([]string, 0, len(ledgerrules.Columns))
	for _, c := range ledgerrules.Columns {
		types = append(types, "bigint")
		switch c {
		case "first_us":
			sets = append(sets, c+" = LEAST("+table+"."+c+", EXCLUDED."+c+")")
		case "last_us":
			sets = append(sets, c+" = GREATEST("+table+"."+c+", EXCLUDED."+c+")")
		default:
			sets = append(sets, c+" = "+table+"."+c+" + EXCLUDED."+c)
		}
	}
	key := keys
	if len(keys) > 1 {
		key = keys[:len(keys)-1] // not model_base
	}
	insert := `INSERT INTO ` + table + ` (` + strings.Join(keys, ", ") + `, ` + strings.Join(ledgerrules.Columns, ", ") + `) ` + unnest(1, types)
	conflict := ` ON CONFLICT (` + strings.Join(key, ", ") + `) DO UPDATE SET ` + strings.Join(sets, ", ")
	return rollupStmt{keys: keys, plain: insert + conflict,
		guarded: insert + " WHERE " + headIs(len(types)) + conflict}
}

// headIs is the condition that the chain head is the one whose seq and
// hash are the statement's arguments n+1 and n+2.
func headIs(n int) string {
	return fmt.Sprintf("EXISTS (SELECT 1 FROM chain_head WHERE id = 1 AND seq = $%d AND hash = $%d)", n+1, n+2)
}

// rollupArgs lays rows out as rollupSQL's arrays for keys.
func rollupArgs(rows ledgerrules.Sums, keys []string) []any {
	var bucket []int64
	labels := make([][]string, len(keys)-1)
	vals := make([][]int64, len(ledgerrules.Columns))
	for k, r := range rows {
		bucket = append(bucket, k.Bucket)
		if len(labels) > 0 {
			for i, v := range []string{k.Source, k.Provider, k.Model, k.Principal, k.Project, k.Outcome, tokenmeter.ModelBase(k.Model)} {
				labels[i] = append(labels[i], v)
			}
		}
		for i, v := range r.Values() {
			vals[i] = append(vals[i], v)
		}
	}
	args := []any{bucket}
	for _, l := range labels {
		args = append(args, l)
	}
	for _, v := range vals {
		args = append(args, v)
	}
	return args
}
