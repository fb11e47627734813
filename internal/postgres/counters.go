package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	if db.ReadOnly {
		return errors.New("postgres: database opened read-only")
	}
	first, last := c.FirstSeen, c.LastSeen
	if last.IsZero() {
		last = first
	}
	if first.IsZero() || first.After(last) {
		first = last
	}
	_, err := exec(ctx, db.pool, `INSERT INTO credentials (id, provider, hint, first_seen_us, last_seen_us, virtual_keys) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET last_seen_us = GREATEST(credentials.last_seen_us, EXCLUDED.last_seen_us),
		first_seen_us = LEAST(credentials.first_seen_us, EXCLUDED.first_seen_us),
		virtual_keys = credentials.virtual_keys OR EXCLUDED.virtual_keys`,
		c.ID, c.Provider, c.Hint, micros(first), micros(last), c.VirtualKeys)
	if err != nil {
		return FormatError(fmt.Errorf("note credential %s: %w", c.ID, err))
	}
	return nil
}

// Credentials implements tokenmeter.CredentialStore.
func (db *DB) Credentials(ctx context.Context) ([]tokenmeter.Credential, error) {
	rows, err := query(ctx, db.pool, `SELECT id, provider, hint, first_seen_us, last_seen_us, virtual_keys FROM credentials ORDER BY id`)
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
	return out, FormatError(rows.Err())
}

const sampleColumns = `provider, credential, counter, time_us, limit_value, remaining, utilization, reset_us, status, raw, source`

// AddSamples implements tokenmeter.CounterStore. A sample replaces one of
// its series at the same microsecond (the last of a batch wins).
func (db *DB) AddSamples(ctx context.Context, samples []tokenmeter.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	if db.ReadOnly {
		return errors.New("postgres: database opened read-only")
	}
	type key struct {
		provider, credential, counter string
		at                            int64
	}
	last := make(map[key]int, len(samples))
	for i, s := range samples {
		last[key{s.Provider, s.Credential, s.Counter, micros(s.Time)}] = i
	}
	var provider, credential, counter, status, raw, source []string
	var at, limit, remaining, util, reset []int64
	for i, s := range samples {
		if last[key{s.Provider, s.Credential, s.Counter, micros(s.Time)}] != i {
			continue
		}
		provider, credential, counter = append(provider, s.Provider), append(credential, s.Credential), append(counter, s.Counter)
		at, limit, remaining = append(at, micros(s.Time)), append(limit, s.Limit), append(remaining, s.Remaining)
		util, reset = append(util, s.Utilization), append(reset, micros(s.Reset))
		status, raw, source = append(status, s.Status), append(raw, s.Raw), append(source, s.Source)
	}
	_, err := exec(ctx, db.pool, `INSERT INTO counter_samples (`+sampleColumns+`) `+
		unnest(1, []string{"text", "text", "text", "bigint", "bigint", "bigint", "bigint", "bigint", "text", "text", "text"})+`
		ON CONFLICT (provider, credential, counter, time_us) DO UPDATE SET limit_value = EXCLUDED.limit_value,
		remaining = EXCLUDED.remaining, utilization = EXCLUDED.utilization, reset_us = EXCLUDED.reset_us,
		status = EXCLUDED.status, raw = EXCLUDED.raw, source = EXCLUDED.source`,
		provider, credential, counter, at, limit, remaining, util, reset, status, raw, source)
	if err != nil {
		return FormatError(fmt.Errorf("add samples: %w", err))
	}
	return nil
}

// Samples implements tokenmeter.CounterStore.
func (db *DB) Samples(ctx context.Context, q tokenmeter.SampleQuery) ([]tokenmeter.Sample, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	for _, f := range []struct{ col, v string }{{"provider", q.Provider}, {"credential", q.Credential}, {"counter", q.Counter}} {
		if f.v != "" {
			where = append(where, f.col+" = "+arg(f.v))
		}
	}
	if !q.Since.IsZero() {
		where = append(where, "time_us >= "+arg(q.Since.UnixMicro()))
	}
	if !q.Until.IsZero() {
		where = append(where, "time_us < "+arg(q.Until.UnixMicro()))
	}
	stmt := `SELECT ` + sampleColumns + ` FROM counter_samples`
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Limit > 0 {
		// The latest Limit samples, returned oldest first.
		stmt = `SELECT * FROM (` + stmt + ` ORDER BY time_us DESC, provider DESC, credential DESC, counter DESC LIMIT ` + arg(q.Limit) +
			`) s ORDER BY time_us, provider, credential, counter`
	} else {
		stmt += " ORDER BY time_us, provider, credential, counter"
	}
	rows, err := query(ctx, db.pool, stmt, args...)
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
	return out, FormatError(rows.Err())
}

// PruneSamples implements tokenmeter.CounterStore.
func (db *DB) PruneSamples(ctx context.Context, before time.Time) (int, error) {
	if db.ReadOnly {
		return 0, errors.New("postgres: database opened read-only")
	}
	ct, err := exec(ctx, db.pool, `DELETE FROM counter_samples WHERE time_us < $1`, before.UnixMicro())
	if err != nil {
		return 0, FormatError(fmt.Errorf("prune samples: %w", err))
	}
	return int(ct.RowsAffected()), nil
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
	if db.ReadOnly {
		return 0, errors.New("postgres: database opened read-only")
	}
	// Inserted unless it exists; either way the one stored is returned,
	// whichever replica stored it.
	var id int64
	err := queryRow(ctx, db.pool, `WITH ins AS (
		INSERT INTO anomalies (kind, provider, credential, counter, detected_us, start_us, end_us, summary, evidence)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (kind, provider, credential, counter, start_us) DO NOTHING RETURNING id)
		SELECT id FROM ins UNION ALL
		SELECT id FROM anomalies WHERE kind = $1 AND provider = $2 AND credential = $3 AND counter = $4 AND start_us = $6
		LIMIT 1`,
		a.Kind, a.Provider, a.Credential, a.Counter, micros(a.Detected), micros(a.Start), micros(a.End), a.Summary, evidence).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		// Inserted by another transaction after this one's snapshot: read it now.
		err = queryRow(ctx, db.pool, `SELECT id FROM anomalies WHERE kind = $1 AND provider = $2 AND credential = $3 AND counter = $4 AND start_us = $5`,
			a.Kind, a.Provider, a.Credential, a.Counter, micros(a.Start)).Scan(&id)
	}
	if err != nil {
		return 0, FormatError(fmt.Errorf("add anomaly: %w", err))
	}
	return id, nil
}

func scanAnomaly(row pgx.Row) (tokenmeter.Anomaly, error) {
	var a tokenmeter.Anomaly
	var detected, start, end int64
	var evidence string
	if err := row.Scan(&a.ID, &a.Kind, &a.Provider, &a.Credential, &a.Counter, &detected, &start, &end, &a.Summary, &evidence); err != nil {
		return a, err
	}
	a.Detected, a.Start, a.End = fromMicros(detected), fromMicros(start), fromMicros(end)
	a.Evidence = json.RawMessage(evidence)
	return a, nil
}

// Anomalies implements tokenmeter.CounterStore.
func (db *DB) Anomalies(ctx context.Context, since time.Time) ([]tokenmeter.Anomaly, error) {
	rows, err := query(ctx, db.pool, `SELECT `+anomalyColumns+` FROM anomalies WHERE detected_us >= $1 ORDER BY detected_us, id`, micros(since))
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
	return out, FormatError(rows.Err())
}

// Anomaly implements tokenmeter.CounterStore.
func (db *DB) Anomaly(ctx context.Context, id int64) (tokenmeter.Anomaly, error) {
	a, err := scanAnomaly(queryRow(ctx, db.pool, `SELECT `+anomalyColumns+` FROM anomalies WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no anomaly %d", id)
	} else if err != nil {
		return a, FormatError(fmt.Errorf("query anomaly %d: %w", id, err))
	}
	return a, nil
}
