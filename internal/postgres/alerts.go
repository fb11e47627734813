package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tokenmeter/tokenmeter"
)

// SetAlertRule implements tokenmeter.AlertStore.
func (db *DB) SetAlertRule(ctx context.Context, r tokenmeter.AlertRule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.Source = ""
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("set alert rule %s: %w", r.Name, err)
	}
	return db.inTx(ctx, "set alert rule", func(tx pgx.Tx) error {
		if _, err := exec(ctx, tx, `INSERT INTO alert_rules (name, rule) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET rule = EXCLUDED.rule`, r.Name, string(b)); err != nil {
			return FormatError(fmt.Errorf("set alert rule %s: %w", r.Name, err))
		}
		return nil
	})
}

// AlertRules implements tokenmeter.AlertStore.
func (db *DB) AlertRules(ctx context.Context) ([]tokenmeter.AlertRule, error) {
	rows, err := query(ctx, db.pool, `SELECT name, rule FROM alert_rules ORDER BY name`)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query alert rules: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.AlertRule
	for rows.Next() {
		var name, body string
		if err := rows.Scan(&name, &body); err != nil {
			return nil, fmt.Errorf("scan alert rule: %w", err)
		}
		var r tokenmeter.AlertRule
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, fmt.Errorf("alert rule %s: %w", name, err)
		}
		r.Name, r.Source = name, "ledger"
		out = append(out, r)
	}
	return out, FormatError(rows.Err())
}

// DeleteAlertRule implements tokenmeter.AlertStore.
func (db *DB) DeleteAlertRule(ctx context.Context, name string) error {
	return db.inTx(ctx, "delete alert rule", func(tx pgx.Tx) error {
		ct, err := exec(ctx, tx, `DELETE FROM alert_rules WHERE name = $1`, name)
		if err != nil {
			return FormatError(fmt.Errorf("delete alert rule %s: %w", name, err))
		}
		if ct.RowsAffected() == 0 {
			return tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no alert rule named %q", name)
		}
		return nil
	})
}

const alertColumns = `id, key, grp, rule, kind, severity, state, subject, summary,
	window_start_us, window_end_us, fired_us, resolved_us, details`

func scanAlert(row pgx.Row) (tokenmeter.Alert, error) {
	var a tokenmeter.Alert
	var kind, severity, state, details string
	var ws, we, fired, resolved int64
	if err := row.Scan(&a.ID, &a.Key, &a.Group, &a.Rule, &kind, &severity, &state, &a.Subject, &a.Summary,
		&ws, &we, &fired, &resolved, &details); err != nil {
		return a, err
	}
	a.Kind, a.Severity, a.State = tokenmeter.AlertKind(kind), tokenmeter.Severity(severity), tokenmeter.AlertState(state)
	a.WindowStart, a.WindowEnd, a.Fired, a.Resolved = fromMicros(ws), fromMicros(we), fromMicros(fired), fromMicros(resolved)
	if details != "" {
		a.Details = json.RawMessage(details)
	}
	return a, nil
}

// alertWhere reads one alert (without history) through q.
func alertWhere(ctx context.Context, q querier, cond string, arg any) (tokenmeter.Alert, error) {
	a, err := scanAlert(queryRow(ctx, q, `SELECT `+alertColumns+` FROM alerts WHERE `+cond, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no such alert")
	}
	if err != nil {
		return a, FormatError(fmt.Errorf("read alert: %w", err))
	}
	return a, nil
}

// history fills in the history of alerts through q.
func history(ctx context.Context, q querier, alerts []tokenmeter.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	idx := make(map[int64]int, len(alerts))
	ids := make([]int64, len(alerts))
	for i, a := range alerts {
		idx[a.ID], ids[i] = i, a.ID
	}
	rows, err := query(ctx, q, `SELECT alert_id, time_us, state, summary FROM alert_history
		WHERE alert_id = ANY($1) ORDER BY alert_id, id`, ids)
	if err != nil {
		return FormatError(fmt.Errorf("query alert history: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var id, at int64
		var state, summary string
		if err := rows.Scan(&id, &at, &state, &summary); err != nil {
			return fmt.Errorf("scan alert history: %w", err)
		}
		i := idx[id]
		alerts[i].History = append(alerts[i].History, tokenmeter.AlertChange{Time: fromMicros(at), State: tokenmeter.AlertState(state), Summary: summary})
	}
	return FormatError(rows.Err())
}

// enqueue writes one delivery of a's transition per sink.
func enqueue(ctx context.Context, tx pgx.Tx, a tokenmeter.Alert, at time.Time, sinks []string, payload func(tokenmeter.Alert) ([]byte, error)) error {
	if len(sinks) == 0 {
		return nil
	}
	body, err := payload(a)
	if err != nil {
		return fmt.Errorf("alert %d payload: %w", a.ID, err)
	}
	if _, err := exec(ctx, tx, `INSERT INTO alert_outbox (alert_id, transition, sink, payload, created_us, next_us)
		SELECT $1, $2, s, $3, $4, $4 FROM unnest($5::text[]) WITH ORDINALITY AS t(s, n) ORDER BY n
		ON CONFLICT (alert_id, transition, sink) DO NOTHING`,
		a.ID, string(a.State), string(body), micros(at), sinks); err != nil {
		return FormatError(fmt.Errorf("enqueue alert %d: %w", a.ID, err))
	}
	return nil
}

// FireAlert implements tokenmeter.AlertStore.
func (db *DB) FireAlert(ctx context.Context, a tokenmeter.Alert, sinks []string, payload func(tokenmeter.Alert) ([]byte, error)) (out tokenmeter.Alert, fired bool, err error) {
	if a.Key == "" || a.Group == "" || a.Fired.IsZero() {
		return a, false, tokenmeter.Errorf(tokenmeter.EINVALID, "alert needs a key, a group and a firing time")
	}
	a.State, a.Resolved, a.History = tokenmeter.AlertFiring, time.Time{}, nil
	err = db.inTx(ctx, "fire alert", func(tx pgx.Tx) error {
		err := queryRow(ctx, tx, `INSERT INTO alerts (key, grp, rule, kind, severity, state, subject, summary,
			window_start_us, window_end_us, fired_us, resolved_us, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12)
			ON CONFLICT DO NOTHING RETURNING id`,
			a.Key, a.Group, a.Rule, string(a.Kind), string(a.Severity), string(a.State), a.Subject, a.Summary,
			micros(a.WindowStart), micros(a.WindowEnd), micros(a.Fired), string(a.Details)).Scan(&a.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			// The key exists, or the group has a firing alert.
			out, err = alertWhere(ctx, tx, `key = $1`, a.Key)
			if tokenmeter.ErrorCode(err) == tokenmeter.ENOTFOUND {
				out, err = alertWhere(ctx, tx, `grp = $1 AND state = 'firing'`, a.Group)
			}
			if err != nil {
				return err
			}
			one := []tokenmeter.Alert{out}
			err = history(ctx, tx, one)
			out = one[0]
			return err
		} else if err != nil {
			return FormatError(fmt.Errorf("fire alert: %w", err))
		}
		a.Fired = fromMicros(micros(a.Fired))
		a.WindowStart, a.WindowEnd = fromMicros(micros(a.WindowStart)), fromMicros(micros(a.WindowEnd))
		a.History = []tokenmeter.AlertChange{{Time: a.Fired, State: tokenmeter.AlertFiring, Summary: a.Summary}}
		if _, err := exec(ctx, tx, `INSERT INTO alert_history (alert_id, time_us, state, summary) VALUES ($1, $2, $3, $4)`,
			a.ID, micros(a.Fired), string(a.State), a.Summary); err != nil {
			return FormatError(fmt.Errorf("fire alert: %w", err))
		}
		if err := enqueue(ctx, tx, a, a.Fired, sinks, payload); err != nil {
			return err
		}
		out, fired = a, true
		return nil
	})
	return out, fired, err
}

// ResolveAlert implements tokenmeter.AlertStore.
func (db *DB) ResolveAlert(ctx context.Context, id int64, at time.Time, summary string, sinks []string, payload func(tokenmeter.Alert) ([]byte, error)) (out tokenmeter.Alert, err error) {
	err = db.inTx(ctx, "resolve alert", func(tx pgx.Tx) error {
		a, err := alertWhere(ctx, tx, `id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		if a.State != tokenmeter.AlertFiring {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "alert %d is already %s", id, a.State)
		}
		if _, err := exec(ctx, tx, `UPDATE alerts SET state = 'resolved', resolved_us = $1 WHERE id = $2`, micros(at), id); err != nil {
			return FormatError(fmt.Errorf("resolve alert %d: %w", id, err))
		}
		if _, err := exec(ctx, tx, `INSERT INTO alert_history (alert_id, time_us, state, summary) VALUES ($1, $2, $3, $4)`,
			id, micros(at), string(tokenmeter.AlertResolved), summary); err != nil {
			return FormatError(fmt.Errorf("resolve alert %d: %w", id, err))
		}
		a.State, a.Resolved = tokenmeter.AlertResolved, fromMicros(micros(at))
		one := []tokenmeter.Alert{a}
		if err := history(ctx, tx, one); err != nil {
			return err
		}
		a = one[0]
		if err := enqueue(ctx, tx, a, at, sinks, payload); err != nil {
			return err
		}
		out = a
		return nil
	})
	return out, err
}

// Alerts implements tokenmeter.AlertStore.
func (db *DB) Alerts(ctx context.Context, q tokenmeter.AlertQuery) ([]tokenmeter.Alert, error) {
	cond := `fired_us >= $1`
	if q.Firing {
		cond = `state = 'firing' AND fired_us >= $1` // through alerts_firing_group: a handful of rows
	}
	rows, err := query(ctx, db.pool, `SELECT `+alertColumns+` FROM alerts WHERE `+cond+` ORDER BY fired_us DESC, id DESC`, micros(q.Since))
	if err != nil {
		return nil, FormatError(fmt.Errorf("query alerts: %w", err))
	}
	var out []tokenmeter.Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan alert: %w", err)
		}
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, FormatError(fmt.Errorf("query alerts: %w", err))
	}
	if err := history(ctx, db.pool, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Alert implements tokenmeter.AlertStore.
func (db *DB) Alert(ctx context.Context, id int64) (tokenmeter.Alert, error) {
	a, err := alertWhere(ctx, db.pool, `id = $1`, id)
	if tokenmeter.ErrorCode(err) == tokenmeter.ENOTFOUND {
		return a, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no alert %d", id)
	}
	if err != nil {
		return a, err
	}
	out := []tokenmeter.Alert{a}
	if err := history(ctx, db.pool, out); err != nil {
		return a, err
	}
	return out[0], nil
}

const deliveryColumns = `id, alert_id, transition, sink, payload, created_us, attempts, next_us, delivered_us, last_error`

func scanDelivery(row pgx.Row) (tokenmeter.Delivery, error) {
	var d tokenmeter.Delivery
	var transition, payload string
	var created, next, delivered, attempts int64
	if err := row.Scan(&d.ID, &d.AlertID, &transition, &d.Sink, &payload, &created, &attempts, &next, &delivered, &d.LastError); err != nil {
		return d, err
	}
	d.Attempts = int(attempts)
	d.Transition, d.Payload = tokenmeter.AlertState(transition), json.RawMessage(payload)
	d.Created, d.Next, d.Delivered = fromMicros(created), fromMicros(next), fromMicros(delivered)
	return d, nil
}

// ClaimDeliveries implements tokenmeter.AlertStore: one statement that
// locks the due deliveries nobody else is claiming (SKIP LOCKED), so two
// replicas never claim the same one.
func (db *DB) ClaimDeliveries(ctx context.Context, now, until time.Time, n int) ([]tokenmeter.Delivery, error) {
	if db.ReadOnly {
		return nil, errors.New("postgres: database opened read-only")
	}
	rows, err := query(ctx, db.pool, `UPDATE alert_outbox SET attempts = attempts + 1, claimed_until_us = $3
		WHERE id IN (SELECT id FROM alert_outbox WHERE delivered_us = 0 AND next_us <= $1 AND claimed_until_us <= $1
			ORDER BY next_us, id LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING `+deliveryColumns, micros(now), n, micros(until))
	if err != nil {
		return nil, FormatError(fmt.Errorf("claim deliveries: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("scan delivery: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, FormatError(fmt.Errorf("claim deliveries: %w", err))
	}
	slices.SortFunc(out, func(a, b tokenmeter.Delivery) int {
		if c := a.Next.Compare(b.Next); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return out, nil
}

// DeliveryDone implements tokenmeter.AlertStore.
func (db *DB) DeliveryDone(ctx context.Context, id int64, at time.Time) error {
	ct, err := exec(ctx, db.pool, `UPDATE alert_outbox SET delivered_us = $1, claimed_until_us = 0, last_error = ''
		WHERE id = $2 AND delivered_us = 0`, max(micros(at), 1), id)
	if err != nil {
		return FormatError(fmt.Errorf("mark delivery %d done: %w", id, err))
	}
	if ct.RowsAffected() == 0 {
		return tokenmeter.Errorf(tokenmeter.ECONFLICT, "delivery %d is unknown or already delivered", id)
	}
	return nil
}

// DeliveryFailed implements tokenmeter.AlertStore.
func (db *DB) DeliveryFailed(ctx context.Context, id int64, next time.Time, errMsg string) error {
	if len(errMsg) > 1000 {
		errMsg = errMsg[:1000]
	}
	ct, err := exec(ctx, db.pool, `UPDATE alert_outbox SET next_us = $1, claimed_until_us = 0, last_error = $2
		WHERE id = $3 AND delivered_us = 0`, micros(next), errMsg, id)
	if err != nil {
		return FormatError(fmt.Errorf("mark delivery %d failed: %w", id, err))
	}
	if ct.RowsAffected() == 0 {
		return tokenmeter.Errorf(tokenmeter.ECONFLICT, "delivery %d is unknown or already delivered", id)
	}
	return nil
}

// Deliveries implements tokenmeter.AlertStore.
func (db *DB) Deliveries(ctx context.Context, alertID int64) ([]tokenmeter.Delivery, error) {
	stmt, args := `SELECT `+deliveryColumns+` FROM alert_outbox ORDER BY id`, []any{}
	if alertID != 0 {
		stmt, args = `SELECT `+deliveryColumns+` FROM alert_outbox WHERE alert_id = $1 ORDER BY id`, []any{alertID}
	}
	rows, err := query(ctx, db.pool, stmt, args...)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query deliveries: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("scan delivery: %w", err)
		}
		out = append(out, d)
	}
	return out, FormatError(rows.Err())
}

// CallOutcomes implements tokenmeter.AlertStore (a range of the primary
// key).
func (db *DB) CallOutcomes(ctx context.Context, afterSeq int64, limit int) ([]tokenmeter.CallOutcome, int64, error) {
	if limit <= 0 {
		return nil, afterSeq, nil
	}
	if afterSeq < 0 {
		last, _, err := db.Head(ctx)
		if err != nil {
			return nil, afterSeq, err
		}
		afterSeq = max(0, last+afterSeq)
	}
	rows, err := query(ctx, db.pool, `SELECT seq, time_us, kind, source, provider, status, outcome FROM events
		WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	if err != nil {
		return nil, afterSeq, FormatError(fmt.Errorf("read call outcomes: %w", err))
	}
	defer rows.Close()
	next := afterSeq
	var out []tokenmeter.CallOutcome
	for rows.Next() {
		var c tokenmeter.CallOutcome
		var at int64
		var status int32
		var kind, source, outcome string
		if err := rows.Scan(&c.Seq, &at, &kind, &source, &c.Provider, &status, &outcome); err != nil {
			return nil, afterSeq, fmt.Errorf("scan call outcome: %w", err)
		}
		next = c.Seq
		if kind != string(tokenmeter.KindCompleted) || source != string(tokenmeter.SourceProxy) {
			continue
		}
		c.Time, c.Outcome, c.Status = time.UnixMicro(at).UTC(), tokenmeter.Outcome(outcome), int(status)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, afterSeq, FormatError(fmt.Errorf("read call outcomes: %w", err))
	}
	return out, next, nil
}
