package reconcile_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/reconcile"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// TestHalfReadReport: a report whose second page is malformed is one
// error naming the page and the field; a scheduled run stores it as a
// failed run with no discrepancies, and nothing else reaches the ledger.
func TestHalfReadReport(t *testing.T) {
	pages := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages++
		if r.URL.Query().Get("page") == "" {
			fmt.Fprintf(w, `{"data":[{"starting_at":%q,"ending_at":%q,"results":[{"uncached_input_tokens":5,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"cache_read_input_tokens":0,"output_tokens":1,"model":"m"}]}],"has_more":true,"next_page":"p2"}`,
				day0.Format(time.RFC3339), day0.Add(time.Hour).Format(time.RFC3339))
			return
		}
		fmt.Fprintf(w, `{"data":[{"starting_at":%q,"ending_at":%q,"results":[{"uncached_input_tokens":5,"cache_read_input_tokens":0,"output_tokens":"1"}]}],"has_more":false}`,
			day0.Add(time.Hour).Format(time.RFC3339), day0.Add(2*time.Hour).Format(time.RFC3339))
	}))
	defer srv.Close()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	in := reconcile.Input{Options: reconcile.Options{Provider: "anthropic", Since: day0, Until: day0.Add(2 * time.Hour), Bucket: time.Hour, Now: day0.Add(3 * time.Hour)},
		Client: &reconcile.Client{Provider: "anthropic", BaseURL: srv.URL, AdminKey: adminKey}, Ledger: db}
	_, err := reconcile.Run(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "anthropic usage report page 2: data[0].results[0].output_tokens: want a non-negative integer") {
		t.Errorf("Run error = %v, want one naming page 2 and the field", err)
	}
	sched := &reconcile.Schedule{Input: in, Every: time.Hour, Store: db, Anomalies: db, Now: func() time.Time { return day0.Add(90 * time.Minute) },
		Log: slog.New(slog.DiscardHandler)}
	run, err := sched.Once(context.Background())
	if err == nil || run.ID == 0 || run.Status != tokenmeter.ReconcileFailed || !strings.Contains(run.Error, "page 2") {
		t.Errorf("Once = %+v, %v; want a stored failed run", run, err)
	}
	stored, err := db.ReconcileRun(context.Background(), run.ID)
	if err != nil || stored.Status != tokenmeter.ReconcileFailed || len(stored.Discrepancies) != 0 || stored.Summary.Rows != 0 {
		t.Errorf("stored %+v, %v; want a failed run without rows or discrepancies", stored, err)
	}
	if as, err := db.Anomalies(context.Background(), time.Time{}); err != nil || len(as) != 0 {
		t.Errorf("anomalies %+v, %v; want none", as, err)
	}
	if strings.Contains(stored.Error, adminKey) {
		t.Errorf("the stored error shows the admin key: %s", stored.Error)
	}
}
