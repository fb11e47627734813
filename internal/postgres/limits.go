package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledgerrules"
)

const limitColumns = `name, scope, metric, max, win, mode, created_us`

// SetLimit implements tokenmeter.LimitStore.
func (db *DB) SetLimit(ctx context.Context, l tokenmeter.Limit) error {
	if err := l.Validate(); err != nil {
		return err
	}
	_, err := exec(ctx, db.pool, `INSERT INTO limits (`+limitColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (name) DO UPDATE SET scope = EXCLUDED.scope, metric = EXCLUDED.metric, max = EXCLUDED.max,
		win = EXCLUDED.win, mode = EXCLUDED.mode`,
		l.Name, l.Scope, string(l.Metric), l.Max, l.Window, string(l.Mode), micros(l.Created))
	if err != nil {
		return FormatError(fmt.Errorf("set limit %s: %w", l.Name, err))
	}
	return nil
}

// Limits implements tokenmeter.LimitStore.
func (db *DB) Limits(ctx context.Context) ([]tokenmeter.Limit, error) {
	rows, err := query(ctx, db.pool, `SELECT `+limitColumns+` FROM limits ORDER BY name`)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query limits: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.Limit
	for rows.Next() {
		var l tokenmeter.Limit
		var metric, mode string
		var created int64
		if err := rows.Scan(&l.Name, &l.Scope, &metric, &l.Max, &l.Window, &mode, &created); err != nil {
			return nil, fmt.Errorf("scan limit: %w", err)
		}
		l.Metric, l.Mode, l.Created = tokenmeter.LimitMetric(metric), tokenmeter.LimitMode(mode), fromMicros(created)
		out = append(out, l)
	}
	return out, FormatError(rows.Err())
}

// DeleteLimit implements tokenmeter.LimitStore.
func (db *DB) DeleteLimit(ctx context.Context, name string) error {
	ct, err := exec(ctx, db.pool, `DELETE FROM limits WHERE name = $1`, name)
	if err != nil {
		return FormatError(fmt.Errorf("delete limit %s: %w", name, err))
	}
	if ct.RowsAffected() == 0 {
		return tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no limit named %q", name)
	}
	return nil
}

// scopeSQL is the condition selecting the rows (rollup rows or
// reservations, which both carry principal, project, model and
// model_base) that count toward a limit of scope sc: LimitScope.Applies,
// with tokenmeter.ModelBase computed when the row was written.
func scopeSQL(sc tokenmeter.LimitScope, arg func(any) string) string {
	switch sc.Kind {
	case tokenmeter.ScopeGlobal:
		return "true"
	case tokenmeter.ScopeKey:
		return "principal = " + arg("key:"+sc.Value)
	case tokenmeter.ScopeProject:
		return "project = " + arg(sc.Value)
	case tokenmeter.ScopeModel:
		return "(model = " + arg(sc.Value) + " OR (model <> '' AND model_base = " + arg(sc.Base) + "))"
	}
	return "false"
}

// Reserve implements tokenmeter.LimitStore: one transaction, in one round
// trip, that takes an advisory lock per limit checked (by name, in one
// order, so two reservations never wait for each other crosswise), and
// then, in one statement and so one snapshot taken after the locks, reads
// each limit's window usage from the rollups (a global limit from the
// totals) and every replica's open reservations that apply, and inserts r
// if every check leaves room. A completion, which moves a call from the
// reservations to the rollups in one transaction, is seen entirely or not
// at all. Reservations on different limits do not wait for each other; on
// the same limit they queue for the time the statement runs.
//
// The commit does not wait for the disk (synchronous_commit off): the
// reservation is visible to every replica at once, and reaches the disk
// with the next commit that waits, at the latest the call's started event,
// which the gateway makes durable before it forwards the call (strict
// durability) or answers it (normal); without one, PostgreSQL's WAL writer
// flushes it within its wal_writer_delay. A crash of the database server
// before then loses the reservation together with the started event,
// which leaves the call as unrecorded as any call in flight when the
// ledger fails (see docs/design.md).
func (db *DB) Reserve(ctx context.Context, r tokenmeter.Reservation, checks []tokenmeter.LimitCheck) ([]tokenmeter.LimitState, bool, error) {
	if db.ReadOnly {
		return nil, false, errors.New("postgres: database opened read-only")
	}
	stmt, args, keys, err := reserveSQL(r, checks, time.Now().UnixMicro())
	if err != nil {
		return nil, false, err
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	states := make([]tokenmeter.LimitState, len(checks))
	ok := len(checks) == 0
	b := &pgx.Batch{}
	async(b) // the pipeline's implicit transaction, committed at its end
	if len(keys) > 0 {
		queue(b, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, keys)
	}
	queue(b, stmt, args...).query(func(rows pgx.Rows) error {
		for rows.Next() {
			var i int
			var used, reserved, inserted int64
			if err := rows.Scan(&i, &used, &reserved, &inserted); err != nil {
				return err
			}
			states[i] = tokenmeter.LimitState{Limit: checks[i].Limit, Used: used, Reserved: reserved}
			ok = inserted > 0
		}
		return rows.Err()
	})
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, false, FormatError(fmt.Errorf("reserve: %w", err))
	}
	defer conn.Release()
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		rollbackConn(conn)
		return nil, false, FormatError(fmt.Errorf("reserve: %w", err))
	}
	if len(checks) == 0 {
		ok = true
	}
	return states, ok, nil
}

// reserveSQL returns Reserve's statement and its arguments for r and
// checks at now, and the advisory lock keys of the limits checked.
func reserveSQL(r tokenmeter.Reservation, checks []tokenmeter.LimitCheck, now int64) (string, []any, []int64, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var st []string
	var keys []int64
	for i, c := range checks {
		sc, err := tokenmeter.CompileScope(c.Limit.Scope)
		if err != nil {
			return "", nil, nil, err
		}
		since := ledgerrules.CheckSince(c)
		d0, d1 := ledgerrules.LimitSpan(since, now)
		charge := ledgerrules.ChargeSQL(c.Limit.Metric)
		sum := func(table, span string) string {
			return `(SELECT COALESCE(SUM(` + charge + `), 0)::bigint FROM ` + table + ` WHERE ` + span + ` AND ` + scopeSQL(sc, arg) + `)`
		}
		quarters, days := "usage_rollup", "usage_rollup_day"
		if sc.Kind == tokenmeter.ScopeGlobal {
			quarters, days = "usage_total", "usage_total_day"
		}
		used := sum(quarters, "bucket_us >= "+arg(since)+" AND bucket_us < "+arg(d0)) + " + " +
			sum(quarters, "bucket_us >= "+arg(d1)) + " + " +
			sum(days, "bucket_us >= "+arg(d0)+" AND bucket_us < "+arg(d1))
		reserved := `(SELECT COALESCE(SUM(` + ledgerrules.ReservationChargeSQL(c.Limit.Metric) + `), 0)::bigint FROM reservations WHERE ` + scopeSQL(sc, arg) + `)`
		st = append(st, `SELECT `+strconv.Itoa(i)+` AS i, `+used+` AS used, `+reserved+` AS reserved, `+
			arg(c.Limit.Max)+`::bigint AS mx, `+arg(r.Charge(c.Limit.Metric))+`::bigint AS need`)
		keys = append(keys, lockKey(c.Limit.Name))
	}
	if len(st) == 0 {
		st = append(st, `SELECT 0 AS i, 0::bigint AS used, 0::bigint AS reserved, 0::bigint AS mx, 0::bigint AS need WHERE false`)
	}
	vals := []string{arg(r.RequestKey), arg(r.Instance), arg(micros(r.Time)), arg(r.Principal), arg(r.Project), arg(r.Model), arg(tokenmeter.ModelBase(r.Model))}
	for _, v := range ledgerrules.ReservationValues(&r) {
		vals = append(vals, arg(v)+"::bigint")
	}
	cols := append([]string{"request_key", "instance", "time_us", "principal", "project", "model", "model_base"}, ledgerrules.ReservationColumns...)
	sets := make([]string, 0, len(cols)-1)
	for _, c := range cols[1:] {
		sets = append(sets, c+" = EXCLUDED."+c)
	}
	stmt := `WITH st AS (` + strings.Join(st, " UNION ALL ") + `),
	ins AS (INSERT INTO reservations (` + strings.Join(cols, ", ") + `)
		SELECT ` + strings.Join(vals, ", ") + ` WHERE NOT EXISTS (SELECT 1 FROM st WHERE used + reserved + need > mx)
		ON CONFLICT (request_key) DO UPDATE SET ` + strings.Join(sets, ", ") + ` RETURNING 1)
	SELECT i, used, reserved, (SELECT COUNT(*) FROM ins) FROM st ORDER BY i`
	return stmt, args, keys, nil
}

// ReleaseReservation implements tokenmeter.LimitStore. Like Reserve it
// does not wait for the disk: a release lost to a crash of the database
// server leaves the reservation held until its instance's are released.
func (db *DB) ReleaseReservation(ctx context.Context, requestKey string) error {
	if db.ReadOnly {
		return errors.New("postgres: database opened read-only")
	}
	b := &pgx.Batch{}
	async(b)
	queue(b, `DELETE FROM reservations WHERE request_key = $1`, requestKey)
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return FormatError(fmt.Errorf("release reservation: %w", err))
	}
	return nil
}

// ReleaseReservations implements tokenmeter.LimitStore: every replica's
// reservations when instances is nil.
func (db *DB) ReleaseReservations(ctx context.Context, instances []string) (int, error) {
	if db.ReadOnly {
		return 0, errors.New("postgres: database opened read-only")
	}
	var ct pgconn.CommandTag
	var err error
	if instances == nil {
		ct, err = exec(ctx, db.pool, `DELETE FROM reservations`)
	} else {
		ct, err = exec(ctx, db.pool, `DELETE FROM reservations WHERE instance = ANY($1)`, instances)
	}
	if err != nil {
		return 0, FormatError(fmt.Errorf("release reservations: %w", err))
	}
	return int(ct.RowsAffected()), nil
}

// OpenReservations returns how many reservations are open, on every
// replica: the calls admitted under hard limits whose completed event is
// not yet appended.
func (db *DB) OpenReservations(ctx context.Context) (int, error) {
	var n int
	if err := queryRow(ctx, db.pool, `SELECT COUNT(*) FROM reservations`).Scan(&n); err != nil {
		return 0, FormatError(fmt.Errorf("count reservations: %w", err))
	}
	return n, nil
}
