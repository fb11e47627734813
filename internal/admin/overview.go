package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/report"
	"github.com/tokenmeter/tokenmeter/internal/status"
)

// overviewBucket is so wide that a day, a week or a month falls into at
// most two buckets: the store sums in SQL over its 15-minute rollups and
// returns a handful of rows (as status does for today and this week).
const overviewBucket = tokenmeter.RollupBucket << 20

// Overview is the answer of /api/overview: the usage of today, this week
// (from Monday) and this month, in TimeZone, each from the start of the
// period on. The figures equal those of `tokenmeter report
// daily|weekly|monthly --since START --json` for the same periods.
type Overview struct {
	Generated time.Time     `json:"generated_at"`
	TimeZone  string        `json:"time_zone"`
	Today     status.Period `json:"today"`
	Week      status.Period `json:"week"`
	Month     status.Period `json:"month"`
}

// overview serves GET /api/overview?tz= (admin) and /api/me/overview (a
// virtual key's own calls): the dashboard's period cards, read from the
// rollups in three index range reads however large the ledger.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request, c caller) error {
	for name := range r.URL.Query() {
		if name != "tz" {
			return tokenmeter.Errorf(tokenmeter.EINVALID, "unknown parameter %q (want tz)", name)
		}
	}
	loc, err := h.zone(r.URL.Query().Get("tz"))
	if err != nil {
		return err
	}
	var src interface {
		Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error)
	} = h.Store
	if c.role == roleKey {
		src = principalUsage{store: h.Store, principal: "key:" + c.key.Name}
	}
	now := h.now()
	day := report.DayStart(now, loc)
	week := report.WeekStart(now, loc)
	month := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, loc)
	out := Overview{Generated: now.UTC(), TimeZone: loc.String()}
	for _, p := range []struct {
		dst   *status.Period
		start time.Time
		name  string
	}{{&out.Today, day, day.Format(time.DateOnly)}, {&out.Week, week, week.Format(time.DateOnly)}, {&out.Month, month, month.Format("2006-01")}} {
		buckets, err := src.Usage(r.Context(), tokenmeter.UsageQuery{Since: p.start, Bucket: overviewBucket})
		if err != nil {
			return fmt.Errorf("read usage since %s: %w", p.name, err)
		}
		*p.dst = status.Period{Period: p.name, Start: p.start.UTC()}
		for _, b := range buckets {
			p.dst.Add(b)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
