package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledgerrules"
)

// Hard-limit enforcement on the embedded ledger.
//
// One process writes a SQLite ledger (serve holds the data directory's
// lock), and a restart releases every reservation anyway, so the open
// reservations need not be rows: they live in memory, in a reserver, next
// to the window usage of each limit check. A check's usage is read from
// usage_rollup once, together with the sequence number of the newest event
// that read saw, and from then on moved by the commits of this DB's own
// appends (those with newer events) as they return. Reserve is then a few
// map lookups under one mutex instead of a write transaction.
//
// The bookkeeping is exact for this process's writes: a commit's usage is
// added, and the reservations of the calls it completes removed, in one
// step under the mutex, after the commit; a reader that runs in between
// sees the usage already (its snapshot is newer) and the reservation still
// (it is removed after), which can only count more. Writes by another
// process (a separate `tokenmeter import`) are seen when a check's usage is
// read again, which happens at least every ReserveRefresh.

// DefaultReserveRefresh is how often, at most, Reserve re-reads a limit
// check's usage from the ledger to pick up other processes' writes.
const DefaultReserveRefresh = time.Second

// reserver holds the open reservations and the cached window usage.
type reserver struct {
	mu sync.Mutex
	// sums is the usage of each limit check's scope and metric since a
	// window start.
	sums map[sumKey]*sum
	// held is the open reservations by request key; heldSums their total
	// per scope and metric.
	held     map[string]tokenmeter.Reservation
	heldSums map[scopeMetric]*heldSum
}

type scopeMetric struct {
	scope  string
	metric tokenmeter.LimitMetric
}

type sumKey struct {
	scopeMetric
	since int64 // on the rollup grid, in Unix microseconds
}

type sum struct {
	scope tokenmeter.LimitScope
	used  int64
	asOf  int64     // the newest event seq the stored usage includes
	read  time.Time // when used was read from the ledger
	hit   time.Time // when a Reserve last used it
}

type heldSum struct {
	scope tokenmeter.LimitScope
	total int64
}

// rolled is what one commit added to the usage rollups.
type rolled struct {
	lastSeq  int64
	events   []*tokenmeter.Event // completed, revised and retracted events
	released []string            // request keys of completed proxied calls
}

// reserve implements DB.Reserve.
func (db *DB) reserve(ctx context.Context, r tokenmeter.Reservation, checks []tokenmeter.LimitCheck) ([]tokenmeter.LimitState, bool, error) {
	rs := &db.rs
	now := time.Now()
	refresh := db.ReserveRefresh
	if refresh == 0 {
		refresh = DefaultReserveRefresh
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	states := make([]tokenmeter.LimitState, 0, len(checks))
	ok := true
	for _, c := range checks {
		since := ledgerrules.CheckSince(c)
		k := sumKey{scopeMetric{c.Limit.Scope, c.Limit.Metric}, since}
		s := rs.sums[k]
		if s == nil || refresh < 0 || now.Sub(s.read) >= refresh || now.Before(s.read) {
			fresh, err := db.readSum(ctx, c.Limit, since)
			if err != nil {
				return nil, false, err
			}
			fresh.read = now
			if rs.sums == nil {
				rs.sums = make(map[sumKey]*sum)
			}
			if s == nil {
				// A window moved on (or a limit is new): drop the checks no
				// request has used for a minute, since every commit walks
				// them all.
				for k, old := range rs.sums {
					if now.Sub(old.hit) > time.Minute {
						delete(rs.sums, k)
					}
				}
			}
			s = fresh
			rs.sums[k] = s
		}
		s.hit = now
		st := tokenmeter.LimitState{Limit: c.Limit, Used: s.used, Reserved: rs.heldTotal(k.scopeMetric, s.scope)}
		states = append(states, st)
		if st.Used+st.Reserved+r.Charge(c.Limit.Metric) > c.Limit.Max {
			ok = false
		}
	}
	if !ok {
		return states, false, nil
	}
	rs.release(r.RequestKey) // a retried reservation replaces the earlier one
	if rs.held == nil {
		rs.held = make(map[string]tokenmeter.Reservation)
	}
	rs.held[r.RequestKey] = r
	for sm, h := range rs.heldSums {
		if h.scope.Applies(r.Principal, r.Project, r.Model) {
			h.total += r.Charge(sm.metric)
		}
	}
	return states, true, nil
}

// heldTotal returns the open reservations that count toward sm (whose
// parsed scope is sc), summing them the first time sm is asked for.
func (rs *reserver) heldTotal(sm scopeMetric, sc tokenmeter.LimitScope) int64 {
	if h := rs.heldSums[sm]; h != nil {
		return h.total
	}
	h := &heldSum{scope: sc}
	for _, r := range rs.held {
		if sc.Applies(r.Principal, r.Project, r.Model) {
			h.total += r.Charge(sm.metric)
		}
	}
	if rs.heldSums == nil {
		rs.heldSums = make(map[scopeMetric]*heldSum)
	}
	rs.heldSums[sm] = h
	return h.total
}

// release removes the reservation of key, if any; rs.mu is held.
func (rs *reserver) release(key string) bool {
	r, ok := rs.held[key]
	if !ok {
		return false
	}
	delete(rs.held, key)
	for sm, h := range rs.heldSums {
		if h.scope.Applies(r.Principal, r.Project, r.Model) {
			h.total -= r.Charge(sm.metric)
		}
	}
	return true
}

// committed applies a commit's rollup additions to the cached usage and
// removes the reservations of the calls it completed.
func (rs *reserver) committed(c rolled) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, key := range c.released {
		rs.release(key)
	}
	if len(c.events) == 0 {
		return
	}
	for k, s := range rs.sums {
		if c.lastSeq <= s.asOf {
			continue // the usage was read after this commit
		}
		for _, ev := range c.events {
			t := ev.Time.UnixMicro()
			if ledgerrules.Trunc(t, ledgerrules.Width) < k.since || !s.scope.Applies(ev.Principal, ev.Project, ev.Model) {
				continue
			}
			contrib, _ := ev.Contribution()
			s.used += contrib.Charge(k.metric)
		}
	}
}

// readSum reads the usage of l's scope and metric since since (on the
// rollup grid) from the rollups, with the newest event seq the read saw:
// one statement, so one snapshot. What a row charges is
// ledgerrules.ChargeSQL; which rows count is tokenmeter.LimitScope's rule:
// a key or project scope selects its rows by that label, and a model
// scope's rows are summed per model and matched here.
func (db *DB) readSum(ctx context.Context, l tokenmeter.Limit, since int64) (*sum, error) {
	sc, err := tokenmeter.CompileScope(l.Scope)
	if err != nil {
		return nil, err
	}
	cond, arg, group := "1", any(nil), "''"
	switch sc.Kind {
	case tokenmeter.ScopeKey:
		cond, arg = "principal = ?", "key:"+sc.Value
	case tokenmeter.ScopeProject:
		cond, arg = "project = ?", sc.Value
	case tokenmeter.ScopeModel:
		group = "model"
	}
	// Whole UTC days before today from the daily rows, the rest (the
	// partial first day, today, any later time) from the 15-minute ones:
	// a month's window reads a row per day and group, so the read, made
	// under the reserver's lock, stays short.
	d0, d1 := ledgerrules.LimitSpan(since, time.Now().UnixMicro())
	m := ledgerrules.ChargeSQL(l.Metric)
	part := func(table, span string) string {
		return `SELECT ` + group + ` AS g, ` + m + ` AS c FROM ` + table + ` WHERE ` + span + ` AND ` + cond
	}
	q := `SELECT g, SUM(c) FROM (` + part("usage_rollup", "bucket_us >= ? AND bucket_us < ?") +
		` UNION ALL ` + part("usage_rollup", "bucket_us >= ?") +
		` UNION ALL ` + part("usage_rollup_day", "bucket_us >= ? AND bucket_us < ?") + `) GROUP BY g
		UNION ALL SELECT NULL, (SELECT COALESCE(MAX(seq), 0) FROM events)`
	with := func(args ...any) []any {
		if arg != nil {
			args = append(args, arg)
		}
		return args
	}
	var all []any
	all = append(all, with(since, d0)...)
	all = append(all, with(d1)...)
	all = append(all, with(d0, d1)...)
	rows, err := db.r.QueryContext(ctx, q, all...)
	if err != nil {
		return nil, FormatError(fmt.Errorf("read usage of limit %s: %w", l.Name, err))
	}
	defer rows.Close()
	s := &sum{scope: sc}
	for rows.Next() {
		var g sql.NullString
		var c int64
		if err := rows.Scan(&g, &c); err != nil {
			return nil, FormatError(fmt.Errorf("read usage of limit %s: %w", l.Name, err))
		}
		switch {
		case !g.Valid:
			s.asOf = c
		case sc.Kind != tokenmeter.ScopeModel || sc.Applies("", "", g.String):
			s.used += c
		}
	}
	if err := rows.Err(); err != nil {
		return nil, FormatError(fmt.Errorf("read usage of limit %s: %w", l.Name, err))
	}
	return s, nil
}

// OpenReservations returns how many reservations are open: the calls
// admitted under hard limits whose completed event is not yet appended.
func (db *DB) OpenReservations() int {
	db.rs.mu.Lock()
	defer db.rs.mu.Unlock()
	return len(db.rs.held)
}
