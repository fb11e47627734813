package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/admin"
	"github.com/tokenmeter/tokenmeter/internal/report"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

const requestsToken = "requests-test-token-0123456789"

// requestsHandler is an admin API over a ledger of three calls.
func requestsHandler(t testing.TB) *admin.Handler {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var evs []tokenmeter.Event
	for i, p := range []string{"key:alice", "key:bob", "cred:0123456789abcdef"} {
		ev := storetest.Event("r"+p, t0.Add(time.Duration(i)*time.Minute), tokenmeter.Usage{InputTokens: int64(10 * (i + 1)), OutputTokens: 5})
		ev.Principal = p
		evs = append(evs, ev)
	}
	if _, err := db.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	h := admin.New(db, admin.HashToken(requestsToken), slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.Loc = time.UTC
	h.Now = func() time.Time { return t0.Add(time.Hour) }
	return h
}

func get(h http.Handler, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://x"+path, nil)
	r.Header.Set("Authorization", "Bearer "+requestsToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestRequestsAndHourly(t *testing.T) {
	h := requestsHandler(t)
	for _, tc := range []struct {
		path string
		want int // calls
	}{
		{"/api/requests", 3}, {"/api/requests?key=key:alice", 1}, {"/api/requests?limit=2", 2},
		{"/api/requests?outcome=error", 0}, {"/api/requests?before=2026-11-30T10:01:00Z", 1},
	} {
		rec := get(h, tc.path)
		var out struct {
			Requests []admin.Call
			Next     *struct{ Before string }
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil || len(out.Requests) != tc.want {
			t.Errorf("GET %s = %d %s; want %d calls", tc.path, rec.Code, rec.Body, tc.want)
		}
		if strings.Contains(rec.Body.String(), `"raw_usage"`) {
			t.Errorf("GET %s shows raw usage", tc.path)
		}
	}
	rec := get(h, "/api/hourly?by=key&since=2026-11-30")
	var rep struct {
		Rows   []struct{ Period, Key string }
		Totals struct {
			InputTokens int64 `json:"input_tokens"`
		}
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &rep) != nil || len(rep.Rows) != 3 || rep.Totals.InputTokens != 60 || rep.Rows[0].Period != "2026-11-30T10:00" {
		t.Errorf("GET /api/hourly?by=key = %d %s; want 3 rows at 10:00, 60 input tokens", rec.Code, rec.Body)
	}
	for _, bad := range []string{"/api/requests?limit=0", "/api/requests?limit=x", "/api/requests?before=yesterday",
		"/api/requests?before_seq=-1", "/api/requests?bogus=1", "/api/hourly?by=colour", "/api/hourly?kind=daily",
		"/api/hourly?since=2026-13-01", "/api/hourly?since=2026-11-30&until=2026-11-01", "/api/hourly?tz=Mars/Olympus"} {
		if rec := get(h, bad); rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s = %d %s; want 400", bad, rec.Code, rec.Body)
		}
	}
}

// FuzzRequestsQuery: any query string gets 200 or a JSON 400, never a
// panic or a 500.
func FuzzRequestsQuery(f *testing.F) {
	for _, s := range []string{"limit=5&key=key:alice", "before=2026-11-30T10:01:00Z&before_seq=2", "by=provider&since=2026-11-30", "limit=99999999999999999999", "%zz&&=="} {
		f.Add(s)
	}
	h := requestsHandler(f)
	f.Fuzz(func(t *testing.T, q string) {
		for _, path := range []string{"/api/requests?", "/api/hourly?"} {
			r, err := http.NewRequest("GET", "http://x"+path, nil)
			if err != nil {
				t.Skip()
			}
			r.URL.RawQuery = q
			r.Header.Set("Authorization", "Bearer "+requestsToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != 200 && rec.Code != 400 {
				t.Fatalf("GET %s%s = %d %s", path, q, rec.Code, rec.Body)
			}
		}
	})
}

// TestOverviewPeriods: /api/overview's today, week and month equal the
// totals of the daily, weekly and monthly reports from each period's
// start (the ledger here holds calls after now too), when the
// week starts before the month and when it starts after it, in a zone
// with a half-hour offset.
func TestOverviewPeriods(t *testing.T) {
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)
	var evs []tokenmeter.Event
	for i := range 45 * 24 {
		ev := storetest.Event(fmt.Sprintf("c%d", i), start.Add(time.Duration(i)*time.Hour+17*time.Minute), tokenmeter.Usage{InputTokens: int64(i), OutputTokens: 3})
		ev.Principal = []string{"key:alice", "key:bob"}[i%2]
		evs = append(evs, ev)
	}
	if _, err := db.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Asia/Kolkata")
	for _, now := range []time.Time{
		time.Date(2026, 11, 4, 15, 0, 0, 0, loc), // Wednesday: the month (Sunday 1st) starts before the week
		time.Date(2026, 12, 2, 9, 0, 0, 0, loc),  // Wednesday: the week (Monday 30 Nov) starts before the month
		time.Date(2026, 11, 30, 0, 5, 0, 0, loc), // Monday, just after midnight
	} {
		h := admin.New(db, admin.HashToken(requestsToken), slog.New(slog.NewTextHandler(io.Discard, nil)))
		h.Loc, h.Now = loc, func() time.Time { return now }
		rec := get(h, "/api/overview")
		var ov struct {
			Today, Week, Month struct {
				Period string
				report.Figures
			}
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &ov) != nil {
			t.Fatalf("GET /api/overview at %v = %d %s", now, rec.Code, rec.Body)
		}
		day := report.DayStart(now, loc)
		for _, c := range []struct {
			kind  string
			since time.Time
			got   report.Figures
		}{{report.Daily, day, ov.Today.Figures}, {report.Weekly, report.WeekStart(now, loc), ov.Week.Figures},
			{report.Monthly, time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, loc), ov.Month.Figures}} {
			// Both run from the period's start on, without an end.
			rep, err := report.Build(context.Background(), db, report.Query{Kind: c.kind, Since: c.since, Loc: loc}, now)
			if err != nil {
				t.Fatal(err)
			}
			if c.got != rep.Totals || c.got.Requests == 0 {
				t.Errorf("at %v, %s from %v: overview %+v; report %+v", now, c.kind, c.since, c.got, rep.Totals)
			}
		}
	}
}

// TestOverviewCache: a call in today shows at once; a call imported into
// a past day shows in the week and month once the cache (a minute) ends.
func TestOverviewCache(t *testing.T) {
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) // Thursday
	h := admin.New(db, admin.HashToken(requestsToken), slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.Loc, h.Now = time.UTC, func() time.Time { return now }
	read := func() (today, week, month int64) {
		var ov struct{ Today, Week, Month struct{ Requests int64 } }
		rec := get(h, "/api/overview")
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &ov) != nil {
			t.Fatalf("GET /api/overview = %d %s", rec.Code, rec.Body)
		}
		return ov.Today.Requests, ov.Week.Requests, ov.Month.Requests
	}
	add := func(name string, at time.Time) {
		if _, err := db.Append(context.Background(), []tokenmeter.Event{storetest.Event(name, at, tokenmeter.Usage{InputTokens: 1})}); err != nil {
			t.Fatal(err)
		}
	}
	add("past", now.AddDate(0, 0, -2))
	if d, w, m := read(); d != 0 || w != 1 || m != 1 {
		t.Fatalf("overview = %d, %d, %d; want 0, 1, 1", d, w, m)
	}
	add("today", now.Add(-time.Hour))
	add("imported", now.AddDate(0, 0, -3))
	if d, w, m := read(); d != 1 || w != 2 || m != 2 {
		t.Errorf("overview after a call today and an import = %d, %d, %d; want 1, 2, 2 (today live, past days cached)", d, w, m)
	}
	now = now.Add(time.Minute)
	if d, w, m := read(); d != 1 || w != 3 || m != 3 {
		t.Errorf("overview a minute later = %d, %d, %d; want 1, 3, 3", d, w, m)
	}
}
