package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

var _ tokenmeter.ReconcileStore = (*DB)(nil)

const runColumns = `id, provider, ran_us, since_us, until_us, bucket_ns, by_, tolerance, lag_ns, status, error, summary`

// AddReconcileRun implements tokenmeter.ReconcileStore.
func (db *DB) AddReconcileRun(ctx context.Context, run tokenmeter.ReconcileRun) (int64, error) {
	summary, err := json.Marshal(run.Summary)
	if err != nil {
		return 0, fmt.Errorf("add reconcile run: %w", err)
	}
	var id int64
	err = db.keyTx(ctx, "add reconcile run", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO reconcile_runs (provider, ran_us, since_us, until_us, bucket_ns, by_, tolerance, lag_ns, status, error, summary)
			VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
			run.Provider, micros(run.Ran), micros(run.Since), micros(run.Until), int64(run.Bucket), run.By,
			run.Tolerance, int64(run.Lag), run.Status, run.Error, string(summary))
		if err != nil {
			return FormatError(fmt.Errorf("add reconcile run: %w", err))
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("add reconcile run: %w", err)
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO reconcile_discrepancies
			(run_id, n, start_us, end_us, model, key, principals, class, category, provider, ledger, final, beyond)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return fmt.Errorf("add reconcile run: %w", err)
		}
		defer st.Close()
		for i, d := range run.Discrepancies {
			if _, err := st.ExecContext(ctx, id, i, micros(d.Start), micros(d.End), d.Model, d.Key, d.Principals,
				d.Class, d.Category, d.Provider, d.Ledger, d.Final, d.Beyond); err != nil {
				return FormatError(fmt.Errorf("add reconcile run: discrepancy %d: %w", i, err))
			}
		}
		return nil
	})
	return id, err
}

func scanRun(s scanner) (tokenmeter.ReconcileRun, error) {
	var r tokenmeter.ReconcileRun
	var ran, since, until, bucket, lag int64
	var summary string
	if err := s.Scan(&r.ID, &r.Provider, &ran, &since, &until, &bucket, &r.By, &r.Tolerance, &lag, &r.Status, &r.Error, &summary); err != nil {
		return r, err
	}
	r.Ran, r.Since, r.Until = fromMicros(ran), fromMicros(since), fromMicros(until)
	r.Bucket, r.Lag = time.Duration(bucket), time.Duration(lag)
	if err := json.Unmarshal([]byte(summary), &r.Summary); err != nil {
		return r, fmt.Errorf("reconcile run %d: summary: %w", r.ID, err)
	}
	return r, nil
}

// ReconcileRuns implements tokenmeter.ReconcileStore.
func (db *DB) ReconcileRuns(ctx context.Context, provider string, limit int) ([]tokenmeter.ReconcileRun, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+runColumns+` FROM reconcile_runs
		WHERE (? = '' OR provider = ?) ORDER BY id DESC LIMIT ?`, provider, provider, limit)
	if err != nil {
		return nil, FormatError(fmt.Errorf("list reconcile runs: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.ReconcileRun
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list reconcile runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, FormatError(fmt.Errorf("list reconcile runs: %w", err))
	}
	return out, nil
}

// ReconcileRun implements tokenmeter.ReconcileStore.
func (db *DB) ReconcileRun(ctx context.Context, id int64) (tokenmeter.ReconcileRun, error) {
	r, err := scanRun(db.r.QueryRowContext(ctx, `SELECT `+runColumns+` FROM reconcile_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no reconcile run %d", id)
	} else if err != nil {
		return r, FormatError(fmt.Errorf("reconcile run %d: %w", id, err))
	}
	rows, err := db.r.QueryContext(ctx, `SELECT start_us, end_us, model, key, principals, class, category, provider, ledger, final, beyond
		FROM reconcile_discrepancies WHERE run_id = ? ORDER BY n`, id)
	if err != nil {
		return r, FormatError(fmt.Errorf("reconcile run %d: %w", id, err))
	}
	defer rows.Close()
	for rows.Next() {
		var d tokenmeter.Discrepancy
		var start, end int64
		if err := rows.Scan(&start, &end, &d.Model, &d.Key, &d.Principals, &d.Class, &d.Category, &d.Provider, &d.Ledger, &d.Final, &d.Beyond); err != nil {
			return r, fmt.Errorf("reconcile run %d: %w", id, err)
		}
		d.Start, d.End = fromMicros(start), fromMicros(end)
		r.Discrepancies = append(r.Discrepancies, d)
	}
	if err := rows.Err(); err != nil {
		return r, FormatError(fmt.Errorf("reconcile run %d: %w", id, err))
	}
	return r, nil
}
