package report

import (
	"sort"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// NoSession keys the row of the calls that carry no session id (calls
// through the gateway, whose clients do not name a session).
const NoSession = "(no session)"

// buildSessions fills rep with one row per session (and per group of q.By
// within a session) from buckets of a BySession query with one time
// bucket, ordered by last activity.
func buildSessions(rep *Report, q Query, buckets []tokenmeter.UsageBucket) {
	type rowKey struct{ session, key string }
	type acc struct {
		row              *Row
		models, projects map[string]bool
	}
	rows := map[rowKey]*acc{}
	var order []rowKey
	unpriced := map[string]bool{}
	for _, b := range buckets {
		k := rowKey{session: b.Session}
		if q.By != ByNone {
			k.key = groupKey(q, b)
		} else if b.Session == "" {
			k.key = NoSession
		} else {
			k.key = b.Session
		}
		a := rows[k]
		if a == nil {
			a = &acc{row: &Row{Key: k.key, SessionInfo: &SessionInfo{Session: b.Session}, FirstActivity: b.First, LastActivity: b.Last},
				models: map[string]bool{}, projects: map[string]bool{}}
			rows[k] = a
			order = append(order, k)
		}
		r := a.row
		r.Add(b)
		rep.Totals.Add(b)
		if b.First.Before(r.FirstActivity) {
			r.FirstActivity = b.First
		}
		if b.Last.After(r.LastActivity) {
			r.LastActivity = b.Last
		}
		if b.Model != "" {
			a.models[b.Model] = true
		}
		if b.Project != "" {
			a.projects[b.Project] = true
		}
		if b.CostUnknown > 0 {
			unpriced[label(b.Model)] = true
		}
	}
	for _, k := range order {
		a := rows[k]
		a.row.Project = strings.Join(sortedKeys(a.projects), ", ")
		if q.By != ByModel {
			a.row.Models = sortedKeys(a.models)
		}
		rep.Rows = append(rep.Rows, *a.row)
	}
	sort.SliceStable(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if !a.LastActivity.Equal(b.LastActivity) {
			return a.LastActivity.Before(b.LastActivity)
		}
		if a.Session != b.Session {
			return a.Session < b.Session
		}
		return a.Key < b.Key
	})
	if rep.Rows == nil {
		rep.Rows = []Row{}
	}
	rep.Unpriced = sortedKeys(unpriced)
}

// buildBlocks fills rep with one row per 5-hour block (and gap) from
// 15-minute buckets.
func buildBlocks(rep *Report, q Query, buckets []tokenmeter.UsageBucket, now time.Time) {
	unpriced := map[string]bool{}
	for _, b := range buckets {
		rep.Totals.Add(b)
	}
	for _, bl := range SplitBlocks(buckets, now) {
		r := Row{
			Period:    bl.Start.In(q.Loc).Format(time.RFC3339),
			BlockInfo: &BlockInfo{Start: bl.Start.UTC(), End: bl.End.UTC(), Active: bl.Active, Gap: bl.Gap, BurnRate: bl.BurnRate, Projection: bl.Projection},
			Models:    bl.Models,
			Figures:   bl.Figures,
		}
		if !bl.Gap {
			r.FirstActivity, r.LastActivity = bl.First.UTC(), bl.Last.UTC()
		}
		for _, m := range bl.Unpriced {
			unpriced[m] = true
		}
		rep.Rows = append(rep.Rows, r)
	}
	if rep.Rows == nil {
		rep.Rows = []Row{}
	}
	rep.Unpriced = sortedKeys(unpriced)
}
