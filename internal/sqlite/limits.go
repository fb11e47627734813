package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

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

// Reserve implements tokenmeter.LimitStore (see reserve.go).
func (db *DB) Reserve(ctx context.Context, r tokenmeter.Reservation, checks []tokenmeter.LimitCheck) ([]tokenmeter.LimitState, bool, error) {
	if db.w == nil {
		return nil, false, errors.New("sqlite: database opened read-only")
	}
	return db.reserve(ctx, r, checks)
}

// ReleaseReservation implements tokenmeter.LimitStore.
func (db *DB) ReleaseReservation(ctx context.Context, requestKey string) error {
	if db.w == nil {
		return errors.New("sqlite: database opened read-only")
	}
	db.rs.mu.Lock()
	db.rs.release(requestKey)
	db.rs.mu.Unlock()
	return nil
}

// ReleaseReservations implements tokenmeter.LimitStore. Releasing all of
// them also clears the limit_reservations table, where tokenmeter 0.x
// before the in-memory reserver kept them.
func (db *DB) ReleaseReservations(ctx context.Context, instances []string) (int, error) {
	if db.w == nil {
		return 0, errors.New("sqlite: database opened read-only")
	}
	if instances == nil {
		if _, err := db.w.ExecContext(ctx, `DELETE FROM limit_reservations`); err != nil {
			return 0, FormatError(fmt.Errorf("release reservations: %w", err))
		}
	}
	db.rs.mu.Lock()
	defer db.rs.mu.Unlock()
	var n int
	for key, r := range db.rs.held {
		if instances == nil || slices.Contains(instances, r.Instance) {
			db.rs.release(key)
			n++
		}
	}
	return n, nil
}
