package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// TestAlertOutboxSurvivesReopen: an alert, its history and its pending
// deliveries are on disk when FireAlert returns; a reopened ledger (and a
// read-only reader) sees them, and the deliveries can be claimed again.
func TestAlertOutboxSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	payload := func(a tokenmeter.Alert) ([]byte, error) { return []byte(`{"id":1}`), nil }
	a, fired, err := db.FireAlert(ctx, tokenmeter.Alert{Key: "k", Group: "g", Rule: "r", Kind: tokenmeter.AlertThreshold,
		Severity: tokenmeter.SeverityInfo, Subject: "limit x", Summary: "50%", Fired: at}, []string{"hook", "log"}, payload)
	if err != nil || !fired {
		t.Fatal(fired, err)
	}
	ds, err := db.ClaimDeliveries(ctx, at, at.Add(time.Minute), 10)
	if err != nil || len(ds) != 2 {
		t.Fatalf("claim: %+v %v", ds, err)
	}
	if err := db.DeliveryFailed(ctx, ds[0].ID, at.Add(10*time.Second), "webhook answered 503"); err != nil {
		t.Fatal(err)
	}
	db.Close() // the claim of ds[1] is left to lapse, as after a crash

	ro := sqlite.NewDB(path)
	ro.ReadOnly = true
	if err := ro.Open(); err != nil {
		t.Fatal(err)
	}
	list, err := ro.Alerts(ctx, tokenmeter.AlertQuery{})
	ro.Close()
	if err != nil || len(list) != 1 || list[0].ID != a.ID || len(list[0].History) != 1 {
		t.Fatalf("read-only Alerts = %+v, %v", list, err)
	}

	db2 := sqlite.NewDB(path)
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	got, err := db2.ClaimDeliveries(ctx, at.Add(30*time.Second), at.Add(time.Hour), 10)
	if err != nil || len(got) != 1 || got[0].ID != ds[0].ID || got[0].LastError != "webhook answered 503" || got[0].Attempts != 2 {
		t.Fatalf("claim after reopen at +30s = %+v, %v; want the failed one only (the other is still claimed)", got, err)
	}
	got, err = db2.ClaimDeliveries(ctx, at.Add(2*time.Minute), at.Add(time.Hour), 10)
	if err != nil || len(got) != 1 || got[0].ID != ds[1].ID || got[0].Attempts != 2 {
		t.Fatalf("claim after the lapse = %+v, %v; want the lapsed one", got, err)
	}
}

// TestCallOutcomesPlan: error-rate rules follow the ledger through a
// range of its primary key, never a scan of every event.
func TestCallOutcomesPlan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`EXPLAIN QUERY PLAN SELECT seq, time_us, kind, source, provider, status, outcome FROM events
		WHERE seq > ? ORDER BY seq LIMIT ?`, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	if !strings.Contains(plan.String(), "INTEGER PRIMARY KEY (rowid>?)") {
		t.Errorf("CallOutcomes plan:\n%s\nwant a search of the primary key", plan.String())
	}
}
