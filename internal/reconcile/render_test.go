package reconcile_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/reconcile"
)

// TestRenderHostileNames: model names and key ids come from the provider's
// report and from clients (through the ledger); the table shows them
// without control characters and the CSV without a cell a spreadsheet
// would evaluate (issue 13 item 6).
func TestRenderHostileNames(t *testing.T) {
	h := func(n int) time.Time { return day0.Add(time.Duration(n) * time.Hour) }
	model, key := "\x1b[2J\x1b]0;owned\x07=1+1", "@SUM(A1:A9)"
	usage := reconcile.UsagePage{Rows: []reconcile.UsageRow{{Start: h(1), End: h(2), Model: model, APIKeyID: key, Usage: tokenmeter.Usage{InputTokens: 10}}}}
	ledger := []tokenmeter.UsageBucket{bucket(h(1), "anthropic", "-2+3", "=cmd|' /C calc'!A0", tokenmeter.Usage{InputTokens: 4}, 1)}
	opts := reconcile.Options{Provider: "anthropic", Since: day0, Until: h(24), Bucket: time.Hour, By: "key", Now: h(30)}
	rep := reconcile.Compare(opts, usage, nil, ledger)
	var table, out bytes.Buffer
	if err := reconcile.WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(table.String(), "\x1b\x07") || !strings.Contains(table.String(), "=1+1") {
		t.Errorf("table:\n%q", table.String())
	}
	if err := reconcile.WriteCSV(&out, rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	texts := 0
	for _, row := range rows[1:] {
		for c, cell := range row {
			if c >= 7 { // figures: numbers, negative ones included
				continue
			}
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("CSV cell %q starts a formula", cell)
			}
			if strings.HasPrefix(cell, "'") {
				texts++
			}
		}
	}
	if texts < 3 {
		t.Errorf("%d neutralised cells, want the model, key and principal of each side:\n%v", texts, rows)
	}
}
