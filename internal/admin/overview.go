package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/report"
	"github.com/tokenmeter/tokenmeter/internal/status"
)

// overviewChunk is the longest span one query of /api/overview sums; the
// month's spans are read in parallel on the store's reader connections.
const overviewChunk = 4 * 24 * time.Hour

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
	principal := ""
	if c.role == roleKey {
		principal = "key:" + c.key.Name
		src = principalUsage{store: h.Store, principal: principal}
	}
	now := h.now()
	day := report.DayStart(now, loc)
	week := report.WeekStart(now, loc)
	month := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, loc)
	out := Overview{Generated: now.UTC(), TimeZone: loc.String(),
		Today: status.Period{Period: day.Format(time.DateOnly), Start: day.UTC()},
		Week:  status.Period{Period: week.Format(time.DateOnly), Start: week.UTC()},
		Month: status.Period{Period: month.Format("2006-01"), Start: month.UTC()}}
	// Each rollup row is read once: the span from the earliest of the
	// three starts is cut at every start (and into spans of at most
	// overviewChunk, read in parallel), and each period sums the spans
	// from its start on.
	starts := []time.Time{day, week, month}
	first := slices.MinFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	var spans [][2]time.Time
	for from := first; ; {
		to := time.Time{} // open: the last span runs to now and beyond
		for _, s := range starts {
			if s.After(from) && (to.IsZero() || s.Before(to)) {
				to = s
			}
		}
		if end := from.Add(overviewChunk); !to.IsZero() && end.Before(to) || to.IsZero() && end.Before(day) {
			to = end
		}
		spans = append(spans, [2]time.Time{from, to})
		if to.IsZero() {
			break
		}
		from = to
	}
	// Spans that end before today are closed: the gateway appends calls
	// at their completion time, so only an import or a revision changes
	// them. They are kept for overviewCacheTTL; today's is always read.
	key := overviewKey{zone: loc.String(), principal: principal, day: day.Unix()}
	sums, ok := h.overviewCache.get(key, now)
	if !ok {
		sums = make([][]tokenmeter.UsageBucket, len(spans))
	}
	errs := make([]error, len(spans))
	var wg sync.WaitGroup
	for i, sp := range spans {
		if ok && !sp[1].IsZero() {
			continue // closed, from the cache
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], errs[i] = src.Usage(r.Context(), tokenmeter.UsageQuery{Since: sp[0], Until: sp[1]})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("read usage since %s: %w", first.Format(time.DateOnly), err)
	}
	if !ok {
		h.overviewCache.put(key, sums, now)
	}
	for i, sp := range spans {
		for _, p := range []*status.Period{&out.Today, &out.Week, &out.Month} {
			if !sp[0].Before(p.Start) {
				for _, b := range sums[i] {
					p.Add(b)
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// overviewCacheTTL is how long /api/overview reuses the sums of the days
// before today; a call imported into a past day shows in the week and
// month after at most this long. Today's figures are always read.
const overviewCacheTTL = time.Minute

// overviewCacheMax bounds the cached answers (zones × keys).
const overviewCacheMax = 256

type overviewKey struct {
	zone, principal string
	day             int64
}

type overviewEntry struct {
	sums    [][]tokenmeter.UsageBucket // per span; the last (today's) is not reused
	expires time.Time
}

// overviewCache keeps the closed spans' sums of /api/overview. The zero
// value is ready to use and safe for concurrent use.
type overviewCache struct {
	mu      sync.Mutex
	entries map[overviewKey]overviewEntry
}

// get returns a copy of the sums cached for k, if they have not expired.
func (c *overviewCache) get(k overviewKey, now time.Time) ([][]tokenmeter.UsageBucket, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return slices.Clone(e.sums), true
}

func (c *overviewCache) put(k overviewKey, sums [][]tokenmeter.UsageBucket, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= overviewCacheMax {
		c.entries = map[overviewKey]overviewEntry{}
	}
	c.entries[k] = overviewEntry{sums: slices.Clone(sums), expires: now.Add(overviewCacheTTL)}
}
