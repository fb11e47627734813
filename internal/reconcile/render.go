package reconcile

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/textsafe"
)

// MaxTableRows bounds the discrepancies the table shows (JSON, CSV and
// HTML list them all).
const MaxTableRows = 50

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }

func fmtValue(cat string, v int64) string {
	if cat == tokenmeter.CategoryCost {
		return "$" + tokenmeter.Micros(v).String()
	}
	return strconv.FormatInt(v, 10)
}

func fmtDiff(cat string, v int64) string {
	s := fmtValue(cat, v)
	if v > 0 {
		return "+" + s
	}
	return s
}

// WriteTable writes rep for people: the summary, then the discrepancies,
// largest first.
func WriteTable(w io.Writer, rep Report) error {
	s := rep.Summary
	fmt.Fprintf(w, "%s reconciliation %s to %s (UTC), %s buckets, by %s, tolerance %s, lag %s\n",
		rep.Provider, rep.Since.UTC().Format(time.RFC3339), rep.Until.UTC().Format(time.RFC3339), Describe(rep.Bucket), rep.By, rep.Tolerance, rep.Lag)
	fmt.Fprintf(w, "rows %d: %d match, %d mismatch, %d provider-only, %d ledger-only; %d not final\n",
		s.Rows, s.Matched, s.Mismatched, s.ProviderOnly, s.LedgerOnly, s.NotFinal)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TOTAL\tPROVIDER\tLEDGER\tDIFF\t")
	pf, lf := Figures{Usage: s.ProviderUsage, Requests: s.ProviderRequests}, Figures{Usage: s.LedgerUsage, Requests: s.LedgerRequests}
	for _, c := range Categories(rep.Provider) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", c, pf.Value(c), lf.Value(c), fmtDiff(c, pf.Value(c)-lf.Value(c)))
	}
	if s.HasCost {
		c := tokenmeter.CategoryCost
		fmt.Fprintf(tw, "cost\t%s\t%s\t%s\t\n", fmtValue(c, int64(s.ProviderCost)), fmtValue(c, int64(s.LedgerCost)), fmtDiff(c, int64(s.ProviderCost-s.LedgerCost)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if s.CostUnavailable != "" {
		fmt.Fprintf(w, "cost not compared: the provider refused the cost report (%s)\n", s.CostUnavailable)
	}
	if s.LedgerEstimatedRequests > 0 || s.LedgerUnknownRequests > 0 {
		fmt.Fprintf(w, "the ledger's figures include %d calls with usage estimated (%d tokens) and %d with usage unknown (cut or unread responses)\n",
			s.LedgerEstimatedRequests, s.LedgerEstimatedTokens, s.LedgerUnknownRequests)
	}
	if len(rep.Discrepancies) == 0 {
		fmt.Fprintln(w, "every bucket matches")
		return nil
	}
	fmt.Fprintf(w, "\n%s (%d final and beyond tolerance), largest first:\n", plural(len(rep.Discrepancies), "discrepancy", "discrepancies"), s.Beyond)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "BUCKET (UTC)\tMODEL\t"
	if rep.By == "key" {
		header += "KEY\t"
	}
	fmt.Fprintln(tw, header+"CLASS\tCATEGORY\tPROVIDER\tLEDGER\tDIFF\tNOTE")
	for i, d := range rep.Discrepancies {
		if i == MaxTableRows {
			fmt.Fprintf(tw, "... %d more (see --json, --csv or --html)\n", len(rep.Discrepancies)-i)
			break
		}
		model := textsafe.Terminal(d.Model)
		if model == "" {
			model = "(all)"
		}
		line := fmtTime(d.Start) + "\t" + model + "\t"
		if rep.By == "key" {
			line += textsafe.Terminal(d.Key) + "\t"
		}
		note := ""
		switch {
		case !d.Final:
			note = "not final"
		case !d.Beyond:
			note = "within tolerance"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\n", line, d.Class, d.Category, fmtValue(d.Category, d.Provider), fmtValue(d.Category, d.Ledger), fmtDiff(d.Category, d.Diff()), note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch rep.Status {
	case tokenmeter.ReconcileOK:
		fmt.Fprintln(w, "\nwithin tolerance")
	case tokenmeter.ReconcileDiscrepancies:
		fmt.Fprintf(w, "\n%s beyond tolerance\n", plural(s.Beyond, "discrepancy", "discrepancies"))
	}
	return nil
}

// WriteJSON writes rep as one JSON document: the run's fields, summary,
// discrepancies (largest first), rows and daily costs.
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteCSV writes one line per row compared, provider, ledger and their
// difference (provider minus ledger) side by side for each category, then
// one line per day (and model) of cost, whose token columns are empty.
// Names (models, keys, principals) go through textsafe.CSVCell, so no
// spreadsheet evaluates them.
func WriteCSV(w io.Writer, rep Report) error {
	cw := csv.NewWriter(w)
	cats := Categories(rep.Provider)
	header := []string{"start", "end", "model", "key", "principals", "class", "final"}
	for _, c := range cats {
		header = append(header, "provider_"+c, "ledger_"+c, "difference_"+c)
	}
	header = append(header, "provider_cost_usd", "ledger_cost_usd", "difference_cost_usd")
	cw.Write(header)
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	for _, r := range rep.Rows {
		text := textsafe.CSVCell
		line := []string{ts(r.Start), ts(r.End), text(r.Model), text(r.Key), text(r.Principals), r.Class, strconv.FormatBool(r.Final)}
		for _, c := range cats {
			p, l := r.Provider.Value(c), r.Ledger.Value(c)
			line = append(line, strconv.FormatInt(p, 10), strconv.FormatInt(l, 10), strconv.FormatInt(p-l, 10))
		}
		cw.Write(append(line, "", "", ""))
	}
	for _, d := range rep.Costs {
		model := d.Model
		if model == "" {
			model = "(all models)"
		}
		line := []string{ts(d.Start), ts(d.End), textsafe.CSVCell(model), "", "", d.Class, strconv.FormatBool(d.Final)}
		for range cats {
			line = append(line, "", "", "")
		}
		cw.Write(append(line, d.Provider.String(), d.Ledger.String(), (d.Provider - d.Ledger).String()))
	}
	cw.Flush()
	return cw.Error()
}

var page = template.Must(template.New("reconcile").Funcs(template.FuncMap{
	"time":  fmtTime,
	"value": fmtValue,
	"diff":  fmtDiff,
	"width": Describe,
	"utc":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"get":   func(f Figures, c string) int64 { return f.Value(c) },
	"sub":   func(a, b int64) int64 { return a - b },
	"subm":  func(a, b tokenmeter.Micros) int64 { return int64(a - b) },
	"money": func(m tokenmeter.Micros) string { return "$" + m.String() },
	"title": func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"short": shortCategory,
	"day":   func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"n":     plural,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title .Provider}} usage reconciliation {{utc .Since}} to {{utc .Until}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:80em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.bad{background:#fde8e8}.soft{color:#777}.ok{color:#176b2c;font-weight:600}.warn{color:#a11;font-weight:600}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}
</style></head><body>
<h1>{{title .Provider}} usage reconciliation</h1>
<p>The provider's own usage report{{if .Summary.HasCost}} and cost report{{end}} compared with tokenmeter's ledger, bucket by bucket and model by model{{if eq .By "key"}} and API key{{end}}.</p>
<dl>
<dt>Span (UTC)</dt><dd>{{utc .Since}} to {{utc .Until}}</dd>
<dt>Buckets</dt><dd>{{.Summary.Buckets}} of {{width .Bucket}}</dd>
<dt>Tolerance</dt><dd>{{.Tolerance}}</dd>
<dt>Reporting lag</dt><dd>{{.Lag}} (buckets ending later than {{time .Ran}} minus the lag are not final)</dd>
<dt>Run at</dt><dd>{{utc .Ran}}</dd>
<dt>Result</dt><dd>{{if eq .Status "ok"}}<span class="ok">within tolerance</span>{{else}}<span class="warn">{{n .Summary.Beyond "discrepancy" "discrepancies"}} beyond tolerance</span>{{end}}</dd>
</dl>
<h2>Totals</h2>
<table><tr><th class="l">Category</th><th>Provider</th><th>Ledger</th><th>Provider − ledger</th></tr>
{{$p := .}}{{range .Categories}}<tr><td class="l">{{.}}</td><td>{{get $p.ProviderFigures .}}</td><td>{{get $p.LedgerFigures .}}</td><td>{{diff . (sub (get $p.ProviderFigures .) (get $p.LedgerFigures .))}}</td></tr>
{{end}}{{if .Summary.HasCost}}<tr><td class="l">cost</td><td>{{money .Summary.ProviderCost}}</td><td>{{money .Summary.LedgerCost}}</td><td>{{diff "cost_micros" (subm .Summary.ProviderCost .Summary.LedgerCost)}}</td></tr>{{end}}
</table>
{{if .Summary.CostUnavailable}}<p class="warn">Cost not compared: the provider refused the cost report ({{.Summary.CostUnavailable}}).</p>{{end}}
<p>Rows: {{.Summary.Rows}} ({{.Summary.Matched}} match, {{.Summary.Mismatched}} mismatch, {{.Summary.ProviderOnly}} provider-only, {{.Summary.LedgerOnly}} ledger-only; {{.Summary.NotFinal}} not final).
<em>provider-only</em>: billed but never seen by the gateway (traffic that bypassed it, or a lost record); <em>ledger-only</em>: seen by the gateway, not in the provider's report; <em>mismatch</em>: both saw it and disagree.</p>
<h2>Discrepancies, largest first</h2>
{{if .Discrepancies}}<table><tr><th class="l">Bucket (UTC)</th><th class="l">Model</th>{{if eq .By "key"}}<th class="l">API key</th><th class="l">Ledger principals</th>{{end}}<th class="l">Class</th><th class="l">Category</th><th>Provider</th><th>Ledger</th><th>Difference</th><th class="l">Note</th></tr>
{{range .Discrepancies}}<tr{{if and .Final .Beyond}} class="bad"{{end}}><td class="l">{{time .Start}}</td><td class="l">{{if .Model}}{{.Model}}{{else}}(all models){{end}}</td>{{if eq $p.By "key"}}<td class="l">{{.Key}}</td><td class="l">{{.Principals}}</td>{{end}}<td class="l">{{.Class}}</td><td class="l">{{.Category}}</td><td>{{value .Category .Provider}}</td><td>{{value .Category .Ledger}}</td><td>{{diff .Category .Diff}}</td><td class="l">{{if not .Final}}<span class="soft">not final</span>{{else if not .Beyond}}<span class="soft">within tolerance</span>{{end}}</td></tr>
{{end}}</table>{{else}}<p class="ok">None: every bucket matches.</p>{{end}}
{{if .Costs}}<h2>Cost by day</h2>
<table><tr><th class="l">Day (UTC)</th><th class="l">Model</th><th>Provider</th><th>Ledger</th><th>Difference</th><th class="l">Class</th></tr>
{{range .Costs}}<tr{{if and .Final .Beyond}} class="bad"{{end}}><td class="l">{{day .Start}}</td><td class="l">{{if .Model}}{{.Model}}{{else}}(all models){{end}}</td><td>{{money .Provider}}</td><td>{{money .Ledger}}</td><td>{{diff "cost_micros" (subm .Provider .Ledger)}}</td><td class="l">{{.Class}}{{if not .Final}} (not final){{end}}</td></tr>
{{end}}</table>{{end}}
<h2>Every row compared</h2>
<table><tr><th class="l">Bucket (UTC)</th><th class="l">Model</th>{{if eq .By "key"}}<th class="l">API key</th>{{end}}<th class="l">Class</th>{{range .Categories}}<th title="{{.}}">{{short .}}<br>provider / ledger</th>{{end}}</tr>
{{range .Rows}}{{$r := .}}<tr><td class="l">{{time .Start}}</td><td class="l">{{.Model}}</td>{{if eq $p.By "key"}}<td class="l">{{.Key}}</td>{{end}}<td class="l">{{.Class}}{{if not .Final}} (not final){{end}}</td>{{range $p.Categories}}<td>{{get $r.Provider .}} / {{get $r.Ledger .}}</td>{{end}}</tr>
{{end}}</table>
<p class="soft">Generated by tokenmeter. Token categories: input_tokens is uncached input (for OpenAI, input minus cached); cache categories are the cached parts; output includes reasoning. Amounts in US dollars.</p>
</body></html>
`))

// htmlReport adds what the template needs to a Report.
type htmlReport struct {
	Report
	Categories                     []string
	ProviderFigures, LedgerFigures Figures
}

// WriteHTML writes rep as a self-contained page (no scripts, no external
// assets) a person can read and attach to a support ticket.
func WriteHTML(w io.Writer, rep Report) error {
	s := rep.Summary
	return page.Execute(w, htmlReport{Report: rep, Categories: Categories(rep.Provider),
		ProviderFigures: Figures{Usage: s.ProviderUsage, Requests: s.ProviderRequests},
		LedgerFigures:   Figures{Usage: s.LedgerUsage, Requests: s.LedgerRequests}})
}

// plural returns "1 discrepancy" or "2 discrepancies".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// shortCategory is a category's column heading.
func shortCategory(c string) string {
	switch c {
	case tokenmeter.CategoryInput:
		return "input"
	case tokenmeter.CategoryOutput:
		return "output"
	case tokenmeter.CategoryCacheWrite5m:
		return "cache write 5m"
	case tokenmeter.CategoryCacheWrite1h:
		return "cache write 1h"
	case tokenmeter.CategoryCacheWrite:
		return "cache write"
	case tokenmeter.CategoryCacheRead:
		return "cache read"
	case tokenmeter.CategoryWebSearch:
		return "web searches"
	case tokenmeter.CategoryRequests:
		return "requests"
	}
	return c
}
