package metrics_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/metrics"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// TestAlertsFromIncremental: the alert counts stay exact as alerts are
// fired between scrapes, including one whose fired time is a little
// older than the newest already counted (another replica's clock), and
// resolving an alert counts nothing twice.
func TestAlertsFromIncremental(t *testing.T) {
	ctx := context.Background()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	payload := func(tokenmeter.Alert) ([]byte, error) { return []byte(`{}`), nil }
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	fire := func(key string, at time.Time, kind tokenmeter.AlertKind) tokenmeter.Alert {
		t.Helper()
		a, ok, err := db.FireAlert(ctx, tokenmeter.Alert{Key: key, Group: key, Rule: "r", Kind: kind, Severity: tokenmeter.SeverityWarning,
			Subject: "s", Summary: "s", WindowStart: at, WindowEnd: at.Add(time.Hour), Fired: at}, nil, payload)
		if err != nil || !ok {
			t.Fatalf("FireAlert(%s) = %v, %v", key, ok, err)
		}
		return a
	}
	read := metrics.AlertsFrom(db)
	check := func(when string, want map[tokenmeter.AlertKind]int64) {
		t.Helper()
		got, err := read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for kind, n := range want {
			if g := got[[2]string{string(kind), string(tokenmeter.SeverityWarning)}]; g != n {
				t.Errorf("%s: %s alerts = %d; want %d (all: %v)", when, kind, g, n, got)
			}
		}
	}
	check("empty", map[tokenmeter.AlertKind]int64{tokenmeter.AlertThreshold: 0})
	for i := range 5 {
		fire(fmt.Sprintf("a%d", i), t0.Add(time.Duration(i)*time.Minute), tokenmeter.AlertThreshold)
	}
	check("after five", map[tokenmeter.AlertKind]int64{tokenmeter.AlertThreshold: 5})
	check("read again", map[tokenmeter.AlertKind]int64{tokenmeter.AlertThreshold: 5})
	late := fire("late", t0.Add(2*time.Minute), tokenmeter.AlertAnomaly) // older than the newest counted
	fire("new", t0.Add(time.Hour), tokenmeter.AlertThreshold)
	if _, err := db.ResolveAlert(ctx, late.ID, t0.Add(2*time.Hour), "cleared", nil, payload); err != nil {
		t.Fatal(err)
	}
	check("after a late one, a new one and a resolution", map[tokenmeter.AlertKind]int64{tokenmeter.AlertThreshold: 6, tokenmeter.AlertAnomaly: 1})
}
