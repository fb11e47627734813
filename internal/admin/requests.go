package admin

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/report"
)

// Call is one recent call as /api/requests shows it: who, what, how much
// and how it ended; never a prompt, a completion or a credential.
type Call struct {
	Seq        int64  `json:"seq"`
	Time       string `json:"time"`
	RequestKey string `json:"request_id"`
	Source     string `json:"source"`
	Provider   string `json:"provider"`
	Endpoint   string `json:"endpoint"`
	Model      string `json:"model"`
	Stream     bool   `json:"stream"`
	// Key is the principal: "key:NAME", "cred:HASHPREFIX" or "".
	Key        string `json:"key"`
	Project    string `json:"project"`
	Status     int    `json:"status"`
	Outcome    string `json:"outcome"`
	Reason     string `json:"reason,omitempty"`
	UsageKnown bool   `json:"usage_known"`
	// UsageState is "known", "estimated" or "unknown"; Estimate is the
	// basis of an estimate.
	UsageState string `json:"usage_state"`
	Estimate   string `json:"estimate,omitempty"`
	// ServiceTier is the provider's tier that served the call, which its
	// cost was priced at (OpenAI's flex, priority, ...).
	ServiceTier string  `json:"service_tier,omitempty"`
	CostKnown   bool    `json:"cost_known"`
	LatencyMS   float64 `json:"latency_ms"`
	TTFBMS      float64 `json:"ttfb_ms"`
	report.Figures
}

// ToCall is how /api/requests shows a completed event.
func ToCall(ev tokenmeter.Event) Call {
	c := Call{Seq: ev.Seq, Time: ev.Time.UTC().Format(time.RFC3339Nano), RequestKey: ev.RequestKey, Source: string(ev.Source),
		Provider: ev.Provider, Endpoint: ev.Endpoint, Model: ev.Model, Stream: ev.Stream, Key: ev.Principal, Project: ev.Project,
		Status: ev.Status, Outcome: string(ev.Outcome), Reason: ev.Reason, UsageKnown: ev.UsageKnown, CostKnown: ev.CostKnown,
		UsageState: string(ev.UsageState()), Estimate: ev.Estimate, ServiceTier: ev.ServiceTier,
		LatencyMS: float64(ev.Latency.Microseconds()) / 1000, TTFBMS: float64(ev.TTFB.Microseconds()) / 1000}
	b := tokenmeter.UsageBucket{Outcome: ev.Outcome}
	if contrib, ok := ev.Contribution(); ok {
		b.Add(contrib)
	}
	c.Figures.Add(b)
	return c
}

// requests serves GET /api/requests (admin) and /api/me/requests (a
// virtual key, its own calls only): recent calls, newest first, filtered
// by provider, model, key, project and outcome, limit at most
// tokenmeter.MaxCallLimit, paged with before and before_seq (the next
// object of the previous answer).
func (h *Handler) requests(w http.ResponseWriter, r *http.Request, c caller) error {
	store, ok := h.Store.(tokenmeter.CallStore)
	if !ok {
		return &httpError{http.StatusNotImplemented, "not_implemented", "this store cannot list calls"}
	}
	v := r.URL.Query()
	q := tokenmeter.CallQuery{Provider: v.Get("provider"), Model: v.Get("model"), Principal: v.Get("key"),
		Project: v.Get("project"), Outcome: tokenmeter.Outcome(v.Get("outcome"))}
	for name := range v {
		switch name {
		case "provider", "model", "key", "project", "outcome", "limit", "before", "before_seq", "since":
		default:
			return tokenmeter.Errorf(tokenmeter.EINVALID, "unknown parameter %q (want provider, model, key, project, outcome, limit, before, before_seq, since)", name)
		}
	}
	var err error
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 {
			return tokenmeter.Errorf(tokenmeter.EINVALID, "limit must be a positive number")
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"before", &q.Before}, {"since", &q.Since}} {
		if s := v.Get(t.name); s != "" {
			if *t.dst, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return tokenmeter.Errorf(tokenmeter.EINVALID, "%s must be an RFC 3339 time", t.name)
			}
		}
	}
	if s := v.Get("before_seq"); s != "" {
		if q.BeforeSeq, err = strconv.ParseInt(s, 10, 64); err != nil || q.BeforeSeq < 1 {
			return tokenmeter.Errorf(tokenmeter.EINVALID, "before_seq must be a positive number")
		}
	}
	if c.role == roleKey {
		q.Principal = "key:" + c.key.Name
	}
	evs, err := store.RecentCalls(r.Context(), q)
	if err != nil {
		return err
	}
	type next struct {
		Before    string `json:"before"`
		BeforeSeq int64  `json:"before_seq"`
	}
	out := struct {
		Requests []Call `json:"requests"`
		Next     *next  `json:"next,omitempty"`
	}{Requests: []Call{}}
	for _, ev := range evs {
		out.Requests = append(out.Requests, ToCall(ev))
	}
	if n := len(evs); n > 0 && n == q.EffectiveLimit() {
		out.Next = &next{evs[n-1].Time.UTC().Format(time.RFC3339Nano), evs[n-1].Seq}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// hourly serves GET /api/hourly (admin) and /api/me/hourly (a virtual
// key's own calls): the report data by local hour, in the JSON of
// /api/usage with report "hourly" and periods "YYYY-MM-DDTHH:00". It takes
// since, until, by (model, key, project, tag, or provider: the Provider
// counters page sets the ledger beside each provider's counters) and tz;
// without since it covers the last 48 hours.
func (h *Handler) hourly(w http.ResponseWriter, r *http.Request, c caller) error {
	v := r.URL.Query()
	if v.Has("kind") {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "unknown parameter \"kind\" (want since, until, by, tz)")
	}
	q, err := h.reportQuery(v)
	if err != nil {
		return err
	}
	switch q.By {
	case report.ByNone, report.ByModel, report.ByKey, report.ByProject, report.ByTag, "provider":
	default:
		return tokenmeter.Errorf(tokenmeter.EINVALID, "unknown grouping %q (want model, key, project, tag or provider)", q.By)
	}
	now := h.now()
	var src interface {
		Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error)
	} = h.Store
	if c.role == roleKey {
		src = principalUsage{store: h.Store, principal: "key:" + c.key.Name}
	}
	rep := &report.Report{Kind: "hourly", By: q.By, TimeZone: q.Loc.String(), Created: now.UTC(), Rows: []report.Row{}}
	uq := tokenmeter.UsageQuery{Bucket: tokenmeter.RollupBucket, ByTags: q.By == report.ByTag}
	if q.Since.IsZero() {
		// The start of the local hour 47 hours back (zones at :30 and :45
		// offsets start their hours off the UTC hour).
		t := now.In(q.Loc)
		uq.Since = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, q.Loc).Add(-47 * time.Hour)
	} else {
		uq.Since = report.DayStart(q.Since, q.Loc)
		rep.Since = uq.Since.Format(time.DateOnly)
	}
	if !q.Until.IsZero() {
		d := report.DayStart(q.Until, q.Loc)
		uq.Until = d.AddDate(0, 0, 1)
		rep.Until = d.Format(time.DateOnly)
	}
	if !uq.Until.IsZero() && uq.Until.Before(uq.Since) {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "until is before since")
	}
	buckets, err := src.Usage(r.Context(), uq)
	if err != nil {
		return err
	}
	type rowKey struct{ period, key string }
	rows := map[rowKey]*report.Row{}
	for _, b := range buckets {
		t := b.Start.In(q.Loc)
		period := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, q.Loc).Format("2006-01-02T15:00")
		keys := []string{""}
		switch q.By {
		case report.ByModel:
			keys[0] = orNone(b.Model)
		case report.ByKey:
			keys[0] = orNone(b.Principal)
		case report.ByProject:
			keys[0] = orNone(b.Project)
		case report.ByTag:
			keys = report.TagKeys(b.Tags) // a call in each of its tags' rows, once in the totals
		case "provider":
			keys[0] = orNone(b.Provider)
		}
		for _, key := range keys {
			k := rowKey{period: period, key: key}
			row := rows[k]
			if row == nil {
				row = &report.Row{Period: k.period, Key: k.key}
				rows[k] = row
			}
			row.Add(b)
		}
		rep.Totals.Add(b)
	}
	for _, row := range rows {
		rep.Rows = append(rep.Rows, *row)
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if a.Period != b.Period {
			return a.Period < b.Period
		}
		return a.Key < b.Key
	})
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// orNone labels an empty group as the reports do.
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
