package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenmeter/tokenmeter"
)

const limitColumns = `name, scope, metric, max, win, mode, created_us`

func scanLimit(s scanner) (tokenmeter.Limit, error) {
	var l tokenmeter.Limit
	var metric, mode string
	var created int64
	if err := s.Scan(&l.Name, &l.Scope, &metric, &l.Max, &l.Window, &mode, &created); err != nil {
		return l, err
	}
	l.Metric, l.Mode, l.Created = tokenmeter.LimitMetric(metric), tokenmeter.LimitMode(mode), fromMicros(created)
	return l, nil
}

// SetLimit implements tokenmeter.LimitStore.
func (db *DB) SetLimit(ctx context.Context, l tokenmeter.Limit) error {
	if err := l.Validate(); err != nil {
		return err
	}
	return db.keyTx(ctx, "set limit", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO limits (`+limitColumns+`) VALUES (?,?,?,?,?,?,?)
			ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, metric = excluded.metric, max = excluded.max,
			win = excluded.win, mode = excluded.mode`,
			l.Name, l.Scope, string(l.Metric), l.Max, l.Window, string(l.Mode), micros(l.Created))
		if err != nil {
			return FormatError(fmt.Errorf("set limit %s: %w", l.Name, err))
		}
		return nil
	})
}

// Limits implements tokenmeter.LimitStore.
func (db *DB) Limits(ctx context.Context) ([]tokenmeter.Limit, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+limitColumns+` FROM limits ORDER BY name`)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query limits: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.Limit
	for rows.Next() {
		l, err := scanLimit(rows)
		if err != nil {
			return nil, fmt.Errorf("scan limit: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// DeleteLimit implements tokenmeter.LimitStore.
func (db *DB) DeleteLimit(ctx context.Context, name string) error {
	return db.keyTx(ctx, "delete limit", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM limits WHERE name = ?`, name)
		if err != nil {
			return FormatError(fmt.Errorf("delete limit %s: %w", name, err))
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no limit named %q", name)
		}
		return nil
	})
}

// scopeFilter returns the SQL condition (and its argument) that selects
// the rows of scope in usage_rollup and limit_reservations.
func scopeFilter(scope string) (string, []any, error) {
	kind, value, err := tokenmeter.ParseScope(scope)
	if err != nil {
		return "", nil, err
	}
	switch kind {
	case tokenmeter.ScopeKey:
		return "principal = ?", []any{"key:" + value}, nil
	case tokenmeter.ScopeProject:
		return "project = ?", []any{value}, nil
	case tokenmeter.ScopeModel:
		// The alias and its dated snapshots (see tokenmeter.ModelBase).
		base := tokenmeter.ModelBase(value)
		if strings.ContainsAny(base, "*?[]") {
			return "model = ?", []any{value}, nil
		}
		return "(model = ? OR model = ? OR model GLOB ? OR model GLOB ?)", []any{value, base,
			base + "-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]",
			base + "-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"}, nil
	}
	return "1", nil, nil
}

// metricSQL is the SQL expression of a metric over usage_rollup rows.
func metricSQL(m tokenmeter.LimitMetric) string {
	switch m {
	case tokenmeter.MetricTokens:
		return "input_tokens + output_tokens + cache_write_5m + cache_write_1h + cache_read"
	case tokenmeter.MetricInputTokens:
		return "input_tokens"
	case tokenmeter.MetricOutputTokens:
		return "output_tokens"
	case tokenmeter.MetricRequests:
		return "requests"
	}
	return "cost_micros"
}

// reservedSQL is the SQL expression of a metric over limit_reservations.
func reservedSQL(m tokenmeter.LimitMetric) string {
	switch m {
	case tokenmeter.MetricTokens:
		return "total_tokens"
	case tokenmeter.MetricInputTokens:
		return "input_tokens"
	case tokenmeter.MetricOutputTokens:
		return "output_tokens"
	case tokenmeter.MetricRequests:
		return "1"
	}
	return "cost_micros"
}

// limitQuery returns the statement (prepared once per metric and scope
// kind) and arguments that read a check's usage and open reservations.
// It must not run inside a write transaction: preparing needs the writer
// connection.
func (db *DB) limitQuery(c tokenmeter.LimitCheck) (*sql.Stmt, []any, error) {
	cond, args, err := scopeFilter(c.Limit.Scope)
	if err != nil {
		return nil, nil, err
	}
	since := c.Since.UnixMicro()
	since -= ((since % rollupWidth) + rollupWidth) % rollupWidth // floor to the rollup grid
	q := `SELECT (SELECT COALESCE(SUM(` + metricSQL(c.Limit.Metric) + `), 0) FROM usage_rollup WHERE bucket_us >= ? AND ` + cond + `),
		(SELECT COALESCE(SUM(` + reservedSQL(c.Limit.Metric) + `), 0) FROM limit_reservations WHERE ` + cond + `)`
	stmt, err := db.cached(q)
	if err != nil {
		return nil, nil, err
	}
	return stmt, append(append([]any{since}, args...), args...), nil
}

// cached returns query prepared on the writer connection, preparing it
// the first time (the limit queries are a few dozen texts at most).
func (db *DB) cached(query string) (*sql.Stmt, error) {
	if st, ok := db.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.w.Prepare(query)
	if err != nil {
		return nil, FormatError(fmt.Errorf("prepare limit query: %w", err))
	}
	if prev, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// Reserve implements tokenmeter.LimitStore.
func (db *DB) Reserve(ctx context.Context, r tokenmeter.Reservation, checks []tokenmeter.LimitCheck) (states []tokenmeter.LimitState, ok bool, err error) {
	if db.w == nil {
		return nil, false, errors.New("sqlite: database opened read-only")
	}
	stmts := make([]*sql.Stmt, len(checks))
	args := make([][]any, len(checks))
	for i, c := range checks {
		if stmts[i], args[i], err = db.limitQuery(c); err != nil {
			return nil, false, err
		}
	}
	insert, err := db.cached(`INSERT INTO limit_reservations (request_key, instance, time_us, principal, project, model,
		input_tokens, output_tokens, total_tokens, cost_micros) VALUES (?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return nil, false, err
	}
	err = db.keyTx(ctx, "reserve", func(tx *sql.Tx) error {
		ok = true
		states = make([]tokenmeter.LimitState, 0, len(checks))
		for i, c := range checks {
			st := tokenmeter.LimitState{Limit: c.Limit}
			if err := tx.StmtContext(ctx, stmts[i]).QueryRowContext(ctx, args[i]...).Scan(&st.Used, &st.Reserved); err != nil {
				return FormatError(fmt.Errorf("read usage of limit %s: %w", c.Limit.Name, err))
			}
			states = append(states, st)
			if st.Used+st.Reserved+c.Limit.Metric.Of(r.Usage, 1, r.Cost) > c.Limit.Max {
				ok = false
			}
		}
		if !ok {
			return nil
		}
		u := r.Usage
		if _, err := tx.StmtContext(ctx, insert).ExecContext(ctx,
			r.RequestKey, r.Instance, r.Time.UnixMicro(), r.Principal, r.Project, r.Model,
			u.InputTokens, u.OutputTokens, u.TotalTokens(), int64(r.Cost)); err != nil {
			return FormatError(fmt.Errorf("reserve for %s: %w", r.RequestKey, err))
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return states, ok, nil
}

// ReleaseReservation implements tokenmeter.LimitStore.
func (db *DB) ReleaseReservation(ctx context.Context, requestKey string) error {
	if db.w == nil {
		return errors.New("sqlite: database opened read-only")
	}
	if _, err := db.w.ExecContext(ctx, `DELETE FROM limit_reservations WHERE request_key = ?`, requestKey); err != nil {
		return FormatError(fmt.Errorf("release reservation of %s: %w", requestKey, err))
	}
	return nil
}

// ReleaseReservations implements tokenmeter.LimitStore.
func (db *DB) ReleaseReservations(ctx context.Context, instances []string) (int, error) {
	var n int64
	err := db.keyTx(ctx, "release reservations", func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if instances == nil {
			res, err = tx.ExecContext(ctx, `DELETE FROM limit_reservations`)
		} else {
			for _, in := range instances {
				if res, err = tx.ExecContext(ctx, `DELETE FROM limit_reservations WHERE instance = ?`, in); err != nil {
					break
				}
				k, _ := res.RowsAffected()
				n += k
			}
			res = nil
		}
		if err != nil {
			return FormatError(fmt.Errorf("release reservations: %w", err))
		}
		if res != nil {
			n, _ = res.RowsAffected()
		}
		return nil
	})
	return int(n), err
}
