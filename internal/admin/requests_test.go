package admin_test

import (
	"context"
	"encoding/json"
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
