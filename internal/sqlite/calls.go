package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokenmeter/tokenmeter"
)

// RecentCalls implements tokenmeter.CallStore. It walks the index of
// completed events by time (migration 0008) backwards from q.Before, so a
// page costs its own rows plus those the filters skip: never a sort, and a
// scan of the whole index only for a filter that matches fewer calls than
// the page holds.
func (db *DB) RecentCalls(ctx context.Context, q tokenmeter.CallQuery) ([]tokenmeter.Event, error) {
	where := []string{"kind = ?"}
	args := []any{string(tokenmeter.KindCompleted)}
	if !q.Before.IsZero() {
		if q.BeforeSeq > 0 {
			where = append(where, "(time_us < ? OR (time_us = ? AND seq < ?))")
			args = append(args, q.Before.UnixMicro(), q.Before.UnixMicro(), q.BeforeSeq)
		} else {
			where = append(where, "time_us < ?")
			args = append(args, q.Before.UnixMicro())
		}
	}
	if !q.Since.IsZero() {
		where = append(where, "time_us >= ?")
		args = append(args, q.Since.UnixMicro())
	}
	for _, f := range []struct{ col, v string }{
		{"provider", q.Provider}, {"model", q.Model}, {"principal", q.Principal},
		{"project", q.Project}, {"outcome", string(q.Outcome)},
	} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	args = append(args, q.EffectiveLimit())
	rows, err := db.r.QueryContext(ctx, `SELECT `+columns+` FROM events WHERE `+strings.Join(where, " AND ")+
		` ORDER BY time_us DESC, seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("query recent calls: %w", err)
	}
	defer rows.Close()
	out := []tokenmeter.Event{}
	for rows.Next() {
		var ev tokenmeter.Event
		if err := scanEvent(rows, &ev); err != nil {
			return nil, fmt.Errorf("scan recent call: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query recent calls: %w", err)
	}
	return out, nil
}
