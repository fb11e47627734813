package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenmeter/tokenmeter"
)

const runColumns = `id, provider, ran_us, since_us, until_us, bucket_ns, by_, tolerance, lag_ns, status, error, summary`

// AddReconcileRun implements tokenmeter.ReconcileStore.
func (db *DB) AddReconcileRun(ctx context.Context, run tokenmeter.ReconcileRun) (int64, error) {
	summary, err := json.Marshal(run.Summary)
	if err != nil {
		return 0, fmt.Errorf("add reconcile run: %w", err)
	}
	var id int64
	err = db.inTx(ctx, "add reconcile run", func(tx pgx.Tx) error {
		if err := queryRow(ctx, tx, `INSERT INTO reconcile_runs (provider, ran_us, since_us, until_us, bucket_ns, by_, tolerance, lag_ns, status, error, summary)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
			run.Provider, micros(run.Ran), micros(run.Since), micros(run.Until), int64(run.Bucket), run.By,
			run.Tolerance, int64(run.Lag), run.Status, run.Error, string(summary)).Scan(&id); err != nil {
			return FormatError(fmt.Errorf("add reconcile run: %w", err))
		}
		if len(run.Discrepancies) == 0 {
			return nil
		}
		var n []int32
		var start, end, prov, ledger []int64
		var model, key, principals, class, category []string
		var final, beyond []bool
		for i, d := range run.Discrepancies {
			n, start, end = append(n, int32(i)), append(start, micros(d.Start)), append(end, micros(d.End))
			model, key, principals = append(model, d.Model), append(key, d.Key), append(principals, d.Principals)
			class, category = append(class, d.Class), append(category, d.Category)
			prov, ledger, final, beyond = append(prov, d.Provider), append(ledger, d.Ledger), append(final, d.Final), append(beyond, d.Beyond)
		}
		_, err := exec(ctx, tx, `INSERT INTO reconcile_discrepancies
			(run_id, n, start_us, end_us, model, key, principals, class, category, provider, ledger, final, beyond)
			SELECT $1, * FROM unnest($2::integer[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
			$10::bigint[], $11::bigint[], $12::boolean[], $13::boolean[])`,
			id, n, start, end, model, key, principals, class, category, prov, ledger, final, beyond)
		if err != nil {
			return FormatError(fmt.Errorf("add reconcile run: discrepancies: %w", err))
		}
		return nil
	})
	return id, err
}

func scanRun(row pgx.Row) (tokenmeter.ReconcileRun, error) {
	var r tokenmeter.ReconcileRun
	var ran, since, until, bucket, lag int64
	var summary string
	if err := row.Scan(&r.ID, &r.Provider, &ran, &since, &until, &bucket, &r.By, &r.Tolerance, &lag, &r.Status, &r.Error, &summary); err != nil {
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
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := query(ctx, db.pool, `SELECT `+runColumns+` FROM reconcile_runs
		WHERE ($1 = '' OR provider = $1) ORDER BY id DESC LIMIT $2`, provider, lim)
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
	r, err := scanRun(queryRow(ctx, db.pool, `SELECT `+runColumns+` FROM reconcile_runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no reconcile run %d", id)
	} else if err != nil {
		return r, FormatError(fmt.Errorf("reconcile run %d: %w", id, err))
	}
	rows, err := query(ctx, db.pool, `SELECT start_us, end_us, model, key, principals, class, category, provider, ledger, final, beyond
		FROM reconcile_discrepancies WHERE run_id = $1 ORDER BY n`, id)
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
