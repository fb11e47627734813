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
	return db.keyTx(ctx, "set alert rule", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO alert_rules (name, rule) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET rule = excluded.rule`, r.Name, string(b))
		if err != nil {
			return FormatError(fmt.Errorf("set alert rule %s: %w", r.Name, err))
		}
		return nil
	})
}

// AlertRules implements tokenmeter.AlertStore.
func (db *DB) AlertRules(ctx context.Context) ([]tokenmeter.AlertRule, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT name, rule FROM alert_rules ORDER BY name`)
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
	return out, rows.Err()
}

// DeleteAlertRule implements tokenmeter.AlertStore.
func (db *DB) DeleteAlertRule(ctx context.Context, name string) error {
	return db.keyTx(ctx, "delete alert rule", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM alert_rules WHERE name = ?`, name)
		if err != nil {
			return FormatError(fmt.Errorf("delete alert rule %s: %w", name, err))
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no alert rule named %q", name)
		}
		return nil
	})
}

const alertColumns = `id, key, grp, rule, kind, severity, state, subject, summary,
	window_start_us, window_end_us, fired_us, resolved_us, details`

func scanAlert(s scanner) (tokenmeter.Alert, error) {
	var a tokenmeter.Alert
	var kind, severity, state, details string
	var ws, we, fired, resolved int64
	if err := s.Scan(&a.ID, &a.Key, &a.Group, &a.Rule, &kind, &severity, &state, &a.Subject, &a.Summary,
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

// queryer is a *sql.Tx or *sql.DB.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// alertWhere reads one alert (without history) through q.
func alertWhere(ctx context.Context, q queryer, cond string, arg any) (tokenmeter.Alert, error) {
	a, err := scanAlert(q.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE `+cond, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return a, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no such alert")
	}
	if err != nil {
		return a, FormatError(fmt.Errorf("read alert: %w", err))
	}
	return a, nil
}

// history fills in the history of alerts (by id) through q.
func history(ctx context.Context, q queryer, alerts []tokenmeter.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	idx := make(map[int64]int, len(alerts))
	minID, maxID := alerts[0].ID, alerts[0].ID
	for i, a := range alerts {
		idx[a.ID] = i
		minID, maxID = min(minID, a.ID), max(maxID, a.ID)
	}
	rows, err := q.QueryContext(ctx, `SELECT alert_id, time_us, state, summary FROM alert_history
		WHERE alert_id BETWEEN ? AND ? ORDER BY alert_id, rowid`, minID, maxID)
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
		if i, ok := idx[id]; ok {
			alerts[i].History = append(alerts[i].History, tokenmeter.AlertChange{Time: fromMicros(at), State: tokenmeter.AlertState(state), Summary: summary})
		}
	}
	return rows.Err()
}

// enqueue writes one delivery of a's transition per sink.
func enqueue(ctx context.Context, tx *sql.Tx, a tokenmeter.Alert, at time.Time, sinks []string, payload func(tokenmeter.Alert) ([]byte, error)) error {
	if len(sinks) == 0 {
		return nil
	}
	body, err := payload(a)
	if err != nil {
		return fmt.Errorf("alert %d payload: %w", a.ID, err)
	}
	for _, s := range sinks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_outbox (alert_id, transition, sink, payload, created_us, next_us)
			VALUES (?,?,?,?,?,?) ON CONFLICT (alert_id, transition, sink) DO NOTHING`,
			a.ID, string(a.State), s, string(body), micros(at), micros(at)); err != nil {
			return FormatError(fmt.Errorf("enqueue alert %d to %s: %w", a.ID, s, err))
		}
	}
	return nil
}

// FireAlert implements tokenmeter.AlertStore.
func (db *DB) FireAlert(ctx context.Context, a tokenmeter.Alert, sinks []string, payload func(tokenmeter.Alert) ([]byte, error)) (out tokenmeter.Alert, fired bool, err error) {
	if a.Key == "" || a.Group == "" || a.Fired.IsZero() {
		return a, false, tokenmeter.Errorf(tokenmeter.EINVALID, "alert needs a key, a group and a firing time")
	}
	a.State, a.Resolved, a.History = tokenmeter.AlertFiring, time.Time{}, nil
	err = db.keyTx(ctx, "fire alert", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `INSERT INTO alerts (key, grp, rule, kind, severity, state, subject, summary,
			window_start_us, window_end_us, fired_us, resolved_us, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?)
			ON CONFLICT DO NOTHING`,
			a.Key, a.Group, a.Rule, string(a.Kind), string(a.Severity), string(a.State), a.Subject, a.Summary,
			micros(a.WindowStart), micros(a.WindowEnd), micros(a.Fired), string(a.Details))
		if err != nil {
			return FormatError(fmt.Errorf("fire alert: %w", err))
		}
		if n, _ := r.RowsAffected(); n == 0 {
			out, err = alertWhere(ctx, tx, `key = ?`, a.Key)
			if tokenmeter.ErrorCode(err) == tokenmeter.ENOTFOUND {
				out, err = alertWhere(ctx, tx, `grp = ? AND state = 'firing'`, a.Group)
			}
			if err != nil {
				return err
			}
			one := []tokenmeter.Alert{out}
			err = history(ctx, tx, one)
			out = one[0]
			return err
		}
		if a.ID, err = r.LastInsertId(); err != nil {
			return fmt.Errorf("fire alert: %w", err)
		}
		a.Fired = fromMicros(micros(a.Fired))
		a.WindowStart, a.WindowEnd = fromMicros(micros(a.WindowStart)), fromMicros(micros(a.WindowEnd))
		a.History = []tokenmeter.AlertChange{{Time: a.Fired, State: tokenmeter.AlertFiring, Summary: a.Summary}}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_history (alert_id, time_us, state, summary) VALUES (?,?,?,?)`,
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
	err = db.keyTx(ctx, "resolve alert", func(tx *sql.Tx) error {
		a, err := alertWhere(ctx, tx, `id = ?`, id)
		if err != nil {
			return err
		}
		if a.State != tokenmeter.AlertFiring {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "alert %d is already %s", id, a.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET state = 'resolved', resolved_us = ? WHERE id = ?`, micros(at), id); err != nil {
			return FormatError(fmt.Errorf("resolve alert %d: %w", id, err))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_history (alert_id, time_us, state, summary) VALUES (?,?,?,?)`,
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
	query := `SELECT ` + alertColumns + ` FROM alerts WHERE fired_us >= ?`
	if q.Firing {
		// Through the partial index of firing alerts (a handful), not
		// every alert ever fired, which the engine would walk every pass.
		query = `SELECT ` + alertColumns + ` FROM alerts INDEXED BY alerts_firing_group WHERE state = 'firing' AND fired_us >= ?`
	}
	rows, err := db.r.QueryContext(ctx, query+` ORDER BY fired_us DESC, id DESC`, micros(q.Since))
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
	if err := history(ctx, db.r, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Alert implements tokenmeter.AlertStore.
func (db *DB) Alert(ctx context.Context, id int64) (tokenmeter.Alert, error) {
	a, err := alertWhere(ctx, db.r, `id = ?`, id)
	if tokenmeter.ErrorCode(err) == tokenmeter.ENOTFOUND {
		return a, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no alert %d", id)
	}
	if err != nil {
		return a, err
	}
	out := []tokenmeter.Alert{a}
	if err := history(ctx, db.r, out); err != nil {
		return a, err
	}
	return out[0], nil
}

const deliveryColumns = `id, alert_id, transition, sink, payload, created_us, attempts, next_us, delivered_us, last_error`

func scanDelivery(s scanner) (tokenmeter.Delivery, error) {
	var d tokenmeter.Delivery
	var transition, payload string
	var created, next, delivered int64
	if err := s.Scan(&d.ID, &d.AlertID, &transition, &d.Sink, &payload, &created, &d.Attempts, &next, &delivered, &d.LastError); err != nil {
		return d, err
	}
	d.Transition, d.Payload = tokenmeter.AlertState(transition), json.RawMessage(payload)
	d.Created, d.Next, d.Delivered = fromMicros(created), fromMicros(next), fromMicros(delivered)
	return d, nil
}

// ClaimDeliveries implements tokenmeter.AlertStore.
func (db *DB) ClaimDeliveries(ctx context.Context, now, until time.Time, n int) (out []tokenmeter.Delivery, err error) {
	err = db.keyTx(ctx, "claim deliveries", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM alert_outbox
			WHERE delivered_us = 0 AND next_us <= ? AND claimed_until_us <= ? ORDER BY next_us, id LIMIT ?`,
			micros(now), micros(now), n)
		if err != nil {
			return FormatError(fmt.Errorf("claim deliveries: %w", err))
		}
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("scan delivery: %w", err)
			}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return FormatError(fmt.Errorf("claim deliveries: %w", err))
		}
		for i := range out {
			out[i].Attempts++
			if _, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET attempts = attempts + 1, claimed_until_us = ? WHERE id = ?`,
				micros(until), out[i].ID); err != nil {
				return FormatError(fmt.Errorf("claim delivery %d: %w", out[i].ID, err))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeliveryDone implements tokenmeter.AlertStore.
func (db *DB) DeliveryDone(ctx context.Context, id int64, at time.Time) error {
	return db.keyTx(ctx, "delivery done", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET delivered_us = ?, claimed_until_us = 0, last_error = ''
			WHERE id = ? AND delivered_us = 0`, max(micros(at), 1), id)
		if err != nil {
			return FormatError(fmt.Errorf("mark delivery %d done: %w", id, err))
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "delivery %d is unknown or already delivered", id)
		}
		return nil
	})
}

// DeliveryFailed implements tokenmeter.AlertStore.
func (db *DB) DeliveryFailed(ctx context.Context, id int64, next time.Time, errMsg string) error {
	if len(errMsg) > 1000 {
		errMsg = errMsg[:1000]
	}
	return db.keyTx(ctx, "delivery failed", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET next_us = ?, claimed_until_us = 0, last_error = ?
			WHERE id = ? AND delivered_us = 0`, micros(next), errMsg, id)
		if err != nil {
			return FormatError(fmt.Errorf("mark delivery %d failed: %w", id, err))
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "delivery %d is unknown or already delivered", id)
		}
		return nil
	})
}

// Deliveries implements tokenmeter.AlertStore.
func (db *DB) Deliveries(ctx context.Context, alertID int64) ([]tokenmeter.Delivery, error) {
	query, args := `SELECT `+deliveryColumns+` FROM alert_outbox ORDER BY id`, []any{}
	if alertID != 0 {
		query, args = `SELECT `+deliveryColumns+` FROM alert_outbox WHERE alert_id = ? ORDER BY id`, []any{alertID}
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
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
	return out, rows.Err()
}

// CallOutcomes implements tokenmeter.AlertStore (a rowid range).
func (db *DB) CallOutcomes(ctx context.Context, afterSeq int64, limit int) ([]tokenmeter.CallOutcome, int64, error) {
	if limit <= 0 {
		return nil, afterSeq, nil
	}
	if afterSeq < 0 {
		var last int64
		if err := db.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&last); err != nil {
			return nil, afterSeq, FormatError(fmt.Errorf("read the last event: %w", err))
		}
		afterSeq = max(0, last+afterSeq)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT seq, time_us, kind, source, provider, status, outcome FROM events
		WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, afterSeq, FormatError(fmt.Errorf("read call outcomes: %w", err))
	}
	defer rows.Close()
	next := afterSeq
	var out []tokenmeter.CallOutcome
	for rows.Next() {
		var c tokenmeter.CallOutcome
		var at int64
		var kind, source, outcome string
		if err := rows.Scan(&c.Seq, &at, &kind, &source, &c.Provider, &c.Status, &outcome); err != nil {
			return nil, afterSeq, fmt.Errorf("scan call outcome: %w", err)
		}
		next = c.Seq
		if kind != string(tokenmeter.KindCompleted) || source != string(tokenmeter.SourceProxy) {
			continue
		}
		c.Time, c.Outcome = time.UnixMicro(at).UTC(), tokenmeter.Outcome(outcome)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, afterSeq, FormatError(fmt.Errorf("read call outcomes: %w", err))
	}
	return out, next, nil
}
