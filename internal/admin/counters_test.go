package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/admin"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// TestCounterRoutes: /api/anomalies (since, no evidence), /api/anomalies/{id}
// (evidence, 404, 400) and /api/counters (filters, limit, bad parameters).
func TestCounterRoutes(t *testing.T) {
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	cred := tokenmeter.CredentialID("k")
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Hour)
		if _, err := db.AddAnomaly(ctx, tokenmeter.Anomaly{Kind: tokenmeter.AnomalyResetMoved, Provider: "anthropic", Credential: cred,
			Counter: "unified-5h", Detected: at, Start: at, End: at, Summary: "moved", Evidence: json.RawMessage(`{"kind":"reset_moved"}`)}); err != nil {
			t.Fatal(err)
		}
		if err := db.AddSamples(ctx, []tokenmeter.Sample{{Time: at, Provider: "anthropic", Credential: cred, Counter: "unified-5h",
			Limit: tokenmeter.NoValue, Remaining: tokenmeter.NoValue, Utilization: int64(100 * i), Source: tokenmeter.SampleGateway}}); err != nil {
			t.Fatal(err)
		}
	}
	const tok = "test-admin-token-0123456789"
	srv := httptest.NewServer(admin.New(db, admin.HashToken(tok), slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()
	get := func(path string, out any) int {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode == 200 {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s: %v\n%s", path, err, b)
			}
		}
		return resp.StatusCode
	}
	var list struct{ Anomalies []admin.AnomalyJSON }
	if code := get("/api/anomalies?since=2026-11-30T11:00:00Z", &list); code != 200 || len(list.Anomalies) != 2 || list.Anomalies[0].Evidence != nil {
		t.Errorf("since 11:00: %d %+v; want two, without evidence", code, list.Anomalies)
	}
	var one admin.AnomalyJSON
	var ev struct{ Kind string }
	if code := get("/api/anomalies/1", &one); code != 200 || one.ID != 1 || json.Unmarshal(one.Evidence, &ev) != nil || ev.Kind != "reset_moved" {
		t.Errorf("/api/anomalies/1: %d %+v", code, one)
	}
	for path, want := range map[string]int{"/api/anomalies/99": 404, "/api/anomalies/x": 400, "/api/anomalies?since=yesterday": 400,
		"/api/counters?limit=0": 400, "/api/counters?limit=10001": 400, "/api/counters?until=soon": 400} {
		if code := get(path, nil); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
	var series struct {
		Samples []struct {
			Time          time.Time
			UtilizationBP *int64 `json:"utilization_bp"`
			Limit         *int64
		}
	}
	if code := get("/api/counters?counter=unified-5h&limit=2", &series); code != 200 || len(series.Samples) != 2 ||
		*series.Samples[1].UtilizationBP != 200 || series.Samples[0].Limit != nil {
		t.Errorf("/api/counters: %d %+v; want the latest two, no limit", code, series.Samples)
	}
	if code := get("/api/counters?provider=openai", &series); code != 200 || len(series.Samples) != 0 {
		t.Errorf("/api/counters?provider=openai: %d %+v", code, series.Samples)
	}
}
