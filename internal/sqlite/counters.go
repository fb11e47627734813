package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

var (
	_ tokenmeter.CredentialStore = (*DB)(nil)
	_ tokenmeter.CounterStore    = (*DB)(nil)
)

// NoteCredential implements tokenmeter.CredentialStore.
func (db *DB) NoteCredential(ctx context.Context, c tokenmeter.Credential) error {
	if !tokenmeter.ValidCredentialID(c.ID) {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "credential id %q is not of the form cred:<16 hex digits>", c.ID)
	}
	first, last := c.FirstSeen, c.LastSeen
	if last.IsZero() {
		last = first
	}
	if first.IsZero() || first.After(last) {
		first = last
	}
	return db.keyTx(ctx, "note credential", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO credentials (id, provider, hint, first_seen_us, last_seen_us, virtual_keys) VALUES (?,?,?,?,?,?)
			ON CONFLICT (id) DO UPDATE SET last_seen_us = max(last_seen_us, excluded.last_seen_us),
			first_seen_us = min(first_seen_us, excluded.first_seen_us), virtual_keys = max(virtual_keys, excluded.virtual_keys)`,
			c.ID, c.Provider, c.Hint, micros(first), micros(last), c.VirtualKeys)
		if err != nil {
			return FormatError(fmt.Errorf("note credential %s: %w", c.ID, err))
		}
		return nil
	})
}

// Credentials implements tokenmeter.CredentialStore.
func (db *DB) Credentials(ctx context.Context) ([]tokenmeter.Credential, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, provider, hint, first_seen_us, last_seen_us, virtual_keys FROM credentials ORDER BY id`)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query credentials: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.Credential
	for rows.Next() {
		var c tokenmeter.Credential
		var first, last int64
		if err := rows.Scan(&c.ID, &c.Provider, &c.Hint, &first, &last, &c.VirtualKeys); err != nil {
			return nil, fmt.Errorf("scan credential: %w", err)
		}
		c.FirstSeen, c.LastSeen = fromMicros(first), fromMicros(last)
		out = append(out, c)
	}
	return out, rows.Err()
}

const sampleColumns = `provider, credential, counter, time_us, limit_value, remaining, utilization, reset_us, status, raw, source`

// AddSamples implements tokenmeter.CounterStore.
func (db *DB) AddSamples(ctx context.Context, samples []tokenmeter.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	return db.keyTx(ctx, "add samples", func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO counter_samples (`+sampleColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return FormatError(fmt.Errorf("add samples: %w", err))
		}
		defer st.Close()
		for _, s := range samples {
			if _, err := st.ExecContext(ctx, s.Provider, s.Credential, s.Counter, micros(s.Time), s.Limit, s.Remaining,
				s.Utilization, micros(s.Reset), s.Status, s.Raw, s.Source); err != nil {
				return FormatError(fmt.Errorf("add sample: %w", err))
			}
		}
		return nil
	})
}

// Samples implements tokenmeter.CounterStore.
func (db *DB) Samples(ctx context.Context, q tokenmeter.SampleQuery) ([]tokenmeter.Sample, error) {
	var where []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("provider", q.Provider)
	eq("credential", q.Credential)
	eq("counter", q.Counter)
	if !q.Since.IsZero() {
		where = append(where, "time_us >= ?")
		args = append(args, q.Since.UnixMicro())
	}
	if !q.Until.IsZero() {
		where = append(where, "time_us < ?")
		args = append(args, q.Until.UnixMicro())
	}
	query := `SELECT ` + sampleColumns + ` FROM counter_samples`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Limit > 0 {
		// The latest Limit samples, returned oldest first.
		query = `SELECT * FROM (` + query + ` ORDER BY time_us DESC, provider DESC, credential DESC, counter DESC LIMIT ?) ORDER BY time_us, provider, credential, counter`
		args = append(args, q.Limit)
	} else {
		query += " ORDER BY time_us, provider, credential, counter"
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query samples: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.Sample
	for rows.Next() {
		var s tokenmeter.Sample
		var at, reset int64
		if err := rows.Scan(&s.Provider, &s.Credential, &s.Counter, &at, &s.Limit, &s.Remaining, &s.Utilization,
			&reset, &s.Status, &s.Raw, &s.Source); err != nil {
			return nil, fmt.Errorf("scan sample: %w", err)
		}
		s.Time, s.Reset = fromMicros(at), fromMicros(reset)
		out = append(out, s)
	}
	return out, rows.Err()
}

// PruneSamples implements tokenmeter.CounterStore. The samples are keyed
// by series and then time, with no index on time alone (it would cost a
// third of the table's size), so it walks the series with one index seek
// each and deletes each series' old samples through the key, in a
// transaction of its own: the ledger's writer connection, which the
// gateway's commits share, is never held for a scan of the table.
func (db *DB) PruneSamples(ctx context.Context, before time.Time) (int, error) {
	var total int64
	var p, c, k string
	first := true
	for {
		q := `SELECT provider, credential, counter FROM counter_samples
			WHERE (provider, credential, counter) > (?, ?, ?) ORDER BY provider, credential, counter LIMIT 1`
		if first {
			q = `SELECT provider, credential, counter FROM counter_samples ORDER BY provider, credential, counter LIMIT 1`
		}
		var args []any
		if !first {
			args = []any{p, c, k}
		}
		err := db.r.QueryRowContext(ctx, q, args...).Scan(&p, &c, &k)
		if errors.Is(err, sql.ErrNoRows) {
			return int(total), nil
		}
		if err != nil {
			return int(total), FormatError(fmt.Errorf("prune samples: find series: %w", err))
		}
		first = false
		err = db.keyTx(ctx, "prune samples", func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM counter_samples WHERE provider = ? AND credential = ? AND counter = ? AND time_us < ?`,
				p, c, k, before.UnixMicro())
			if err != nil {
				return FormatError(fmt.Errorf("prune samples: %w", err))
			}
			n, _ := res.RowsAffected()
			total += n
			return nil
		})
		if err != nil {
			return int(total), err
		}
	}
}

const anomalyColumns = `id, kind, provider, credential, counter, detected_us, start_us, end_us, summary, evidence`

// AddAnomaly implements tokenmeter.CounterStore.
func (db *DB) AddAnomaly(ctx context.Context, a tokenmeter.Anomaly) (int64, error) {
	if a.Kind == "" || a.Start.IsZero() {
		return 0, tokenmeter.Errorf(tokenmeter.EINVALID, "an anomaly needs a kind and a start time")
	}
	evidence := strings.TrimSpace(string(a.Evidence))
	if evidence == "" {
		evidence = "{}"
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(evidence), &obj); err != nil || obj == nil {
		return 0, tokenmeter.Errorf(tokenmeter.EINVALID, "anomaly evidence must be a JSON object")
	}
	var id int64
	err := db.keyTx(ctx, "add anomaly", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM anomalies WHERE kind = ? AND provider = ? AND credential = ? AND counter = ? AND start_us = ?`,
			a.Kind, a.Provider, a.Credential, a.Counter, micros(a.Start)).Scan(&id)
		if err == nil {
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return FormatError(fmt.Errorf("add anomaly: %w", err))
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO anomalies (kind, provider, credential, counter, detected_us, start_us, end_us, summary, evidence)
			VALUES (?,?,?,?,?,?,?,?,?)`,
			a.Kind, a.Provider, a.Credential, a.Counter, micros(a.Detected), micros(a.Start), micros(a.End), a.Summary, evidence)
		if err != nil {
			return FormatError(fmt.Errorf("add anomaly: %w", err))
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

func scanAnomaly(s scanner) (tokenmeter.Anomaly, error) {
	var a tokenmeter.Anomaly
	var detected, start, end int64
	var evidence string
	if err := s.Scan(&a.ID, &a.Kind, &a.Provider, &a.Credential, &a.Counter, &detected, &start, &end, &a.Summary, &evidence); err != nil {
		return a, err
	}
	a.Detected, a.Start, a.End = fromMicros(detected), fromMicros(start), fromMicros(end)
	a.Evidence = json.RawMessage(evidence)
	return a, nil
}

// Anomalies implements tokenmeter.CounterStore.
func (db *DB) Anomalies(ctx context.Context, since time.Time) ([]tokenmeter.Anomaly, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+anomalyColumns+` FROM anomalies WHERE detected_us >= ? ORDER BY detected_us, id`, micros(since))
	if err != nil {
		return nil, FormatError(fmt.Errorf("query anomalies: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.Anomaly
	for rows.Next() {
		a, err := scanAnomaly(rows)
		if err != nil {
			return nil, fmt.Errorf("scan anomaly: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Anomaly implements tokenmeter.CounterStore.
func (db *DB) Anomaly(ctx context.Context, id int64) (tokenmeter.Anomaly, error) {
	a, err := scanAnomaly(db.r.QueryRowContext(ctx, `SELECT `+anomalyColumns+` FROM anomalies WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no anomaly %d", id)
	} else if err != nil {
		return a, FormatError(fmt.Errorf("query anomaly %d: %w", id, err))
	}
	return a, nil
}
