package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/textsafe"
)

// JSON writes the report as indented JSON.
func JSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// CSV writes one header line and one line per row, then a TOTAL line.
// Session and blocks reports add their own columns after the common ones.
// Text cells (names clients and logs chose: models, keys, projects,
// sessions) go through textsafe.CSVCell, so no spreadsheet evaluates them.
func CSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	head := []string{"period", "key", "input_tokens", "output_tokens", "cache_creation_input_tokens",
		"cache_read_input_tokens", "reasoning_tokens", "total_tokens", "requests", "cost_usd",
		"usage_unknown_requests", "cost_unknown_requests", "outcome_unknown_requests",
		"usage_estimated_requests", "estimated_tokens"}
	switch r.Kind {
	case Session:
		head = append(head, "session", "project", "first_activity", "last_activity", "models")
	case Blocks:
		head = append(head, "start", "end", "first_activity", "last_activity", "active", "gap", "models",
			"tokens_per_minute", "cost_usd_per_hour", "projected_total_tokens", "projected_cost_usd", "remaining_minutes")
	}
	cw.Write(head)
	text := textsafe.CSVCell
	line := func(period, key string, f Figures, extra []string) {
		cw.Write(append([]string{text(period), text(key), i(f.InputTokens), i(f.OutputTokens), i(f.CacheCreationInputTokens),
			i(f.CacheReadInputTokens), i(f.ReasoningTokens), i(f.TotalTokens), i(f.Requests),
			tokenmeter.Micros(f.CostMicros).String(), i(f.UsageUnknown), i(f.CostUnknown), i(f.OutcomeUnknown),
			i(f.UsageEstimated), i(f.EstimatedTokens)}, extra...))
	}
	for _, row := range r.Rows {
		var extra []string
		switch {
		case r.Kind == Session && row.SessionInfo != nil:
			extra = []string{text(row.Session), text(row.Project), csvTime(row.FirstActivity), csvTime(row.LastActivity), text(strings.Join(row.Models, ";"))}
		case r.Kind == Blocks && row.BlockInfo != nil:
			extra = []string{csvTime(row.Start), csvTime(row.End), csvTime(row.FirstActivity), csvTime(row.LastActivity),
				strconv.FormatBool(row.Active), strconv.FormatBool(row.Gap), text(strings.Join(row.Models, ";")), "", "", "", "", ""}
			if b := row.BurnRate; b != nil {
				extra[7], extra[8] = strconv.FormatFloat(b.TokensPerMinute, 'f', 2, 64), tokenmeter.Micros(b.CostMicrosPerHour).String()
			}
			if p := row.Projection; p != nil {
				extra[9], extra[10], extra[11] = i(p.TotalTokens), tokenmeter.Micros(p.CostMicros).String(), i(p.RemainingMinutes)
			}
		}
		line(row.Period, row.Key, row.Figures, extra)
	}
	line("TOTAL", "", r.Totals, nil)
	cw.Flush()
	return cw.Error()
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Width is the width, in characters, that table output fits.
const Width = 80

// Table writes the report for people, in columns that fit Width
// characters: when the full set of token columns does not fit, cache
// writes and reads share one column, then the request count goes, and
// long names are shortened with "…".
func Table(w io.Writer, r *Report) error {
	var lead []column
	var cells [][]string // the lead cells of each row, then of the totals
	switch r.Kind {
	case Session:
		third := column{head: "Project", flex: 12, trimLeft: true}
		if r.By != ByNone {
			third = column{head: strings.ToUpper(r.By[:1]) + r.By[1:], flex: 12}
		}
		lead = []column{{head: "Session"}, {head: "Last active"}, third}
		for _, row := range r.Rows {
			third := row.Key
			if r.By == ByNone {
				third = row.Project
			}
			cells = append(cells, []string{shortSession(row.Session), row.LastActivity.In(loc(r)).Format("01-02 15:04"), third})
		}
		cells = append(cells, []string{"Total", "", ""})
	case Blocks:
		lead = []column{{head: "Block start"}, {head: "Status"}}
		for _, row := range r.Rows {
			cells = append(cells, []string{row.Start.In(loc(r)).Format("2006-01-02 15:04"), blockStatus(row)})
		}
		cells = append(cells, []string{"Total", ""})
	default:
		first := column{head: "Date"}
		switch r.Kind {
		case Models:
			first = column{head: "Model", flex: 16}
		case Weekly:
			first.head = "Week of"
		case Monthly:
			first.head = "Month"
		}
		lead = []column{first}
		if r.By != "" && r.Kind != Models {
			lead = append(lead, column{head: strings.ToUpper(r.By[:1]) + r.By[1:], flex: 16})
		}
		for _, row := range r.Rows {
			c := []string{row.Period}
			if r.Kind == Models {
				c = []string{row.Key}
			} else if r.By != "" {
				c = append(c, row.Key)
			}
			cells = append(cells, c)
		}
		total := []string{"Total"}
		if r.By != "" && r.Kind != Models {
			total = append(total, "")
		}
		cells = append(cells, total)
	}
	figs := make([]Figures, 0, len(r.Rows)+1)
	for _, row := range r.Rows {
		figs = append(figs, row.Figures)
	}
	figs = append(figs, r.Totals)
	var t *table
	for layout := wideFigures; layout <= narrowestFigures; layout++ {
		t = &table{cols: append(append([]column{}, lead...), figureColumns(layout)...)}
		for n, c := range cells {
			row := append(append([]string{}, c...), figureCells(figs[n], layout)...)
			if n < len(r.Rows) && r.Rows[n].BlockInfo != nil && r.Rows[n].Gap {
				row = append(append([]string{}, c...), make([]string, len(row)-len(c))...)
			}
			t.rows = append(t.rows, row)
		}
		if t.fits(Width) {
			break
		}
	}
	if err := t.write(w, Width); err != nil {
		return err
	}
	var notes [][]string // paragraphs of lines, each after a blank line
	if r.Kind == Blocks {
		for _, row := range r.Rows {
			if row.BlockInfo != nil && row.Active {
				notes = append(notes, activeNote(row, loc(r)))
			}
		}
	}
	if t := r.Totals; t.UsageUnknown > 0 || t.OutcomeUnknown > 0 || t.CostUnknown > 0 || t.UsageEstimated > 0 {
		note := fmt.Sprintf("Note: %d calls with usage unknown, %d with outcome unknown (gateway stopped mid-call), %d unpriced",
			t.UsageUnknown, t.OutcomeUnknown, t.CostUnknown)
		if t.UsageEstimated > 0 {
			note = fmt.Sprintf("Note: %d calls with usage estimated (%s of the tokens above; cut streams and responses not read in full), %d with usage unknown, %d with outcome unknown (gateway stopped mid-call), %d unpriced",
				t.UsageEstimated, i(t.EstimatedTokens), t.UsageUnknown, t.OutcomeUnknown, t.CostUnknown)
		}
		if len(r.Unpriced) > 0 {
			note += fmt.Sprintf(" (%s)", textsafe.Terminal(strings.Join(r.Unpriced, ", ")))
		}
		notes = append(notes, []string{note + "."})
	}
	for _, para := range notes {
		fmt.Fprintln(w)
		for _, n := range para {
			for _, l := range wrap(n, Width) {
				fmt.Fprintln(w, l)
			}
		}
	}
	return nil
}

func loc(r *Report) *time.Location {
	if r.loc != nil {
		return r.loc
	}
	if l, err := time.LoadLocation(r.TimeZone); err == nil {
		return l
	}
	return time.UTC
}

// shortSession is a session id cut to 8 characters, like a short commit
// hash (the JSON and CSV carry it whole).
func shortSession(s string) string {
	switch {
	case s == "":
		return NoSession
	case utf8.RuneCountInString(s) > 8:
		return string([]rune(s)[:8])
	}
	return s
}

// blockStatus is a block's second column: the time from its start to its
// last call, the time left in the active block, or the length of a gap.
func blockStatus(row Row) string {
	switch {
	case row.Gap:
		return "gap " + Duration(row.End.Sub(row.Start))
	case row.Active && row.Projection != nil:
		return "ACTIVE " + Duration(time.Duration(row.Projection.RemainingMinutes)*time.Minute) + " left"
	case row.Active:
		return "ACTIVE"
	}
	return Duration(row.LastActivity.Sub(row.Start))
}

// activeNote describes the active block's burn rate and projection.
func activeNote(row Row, l *time.Location) []string {
	if row.BurnRate == nil {
		return []string{fmt.Sprintf("Active block: resets at %s; burn rate from %s (%s after its first call).",
			row.End.In(l).Format("15:04"), row.FirstActivity.Add(MinBurnSpan).In(l).Format("15:04"), Duration(MinBurnSpan))}
	}
	b, p := row.BurnRate, row.Projection
	return []string{
		fmt.Sprintf("Active block: burn rate %s tokens/min, %s/h.", human(int64(math.Round(b.TokensPerMinute))), Dollars(b.CostMicrosPerHour)),
		fmt.Sprintf("Projected at reset (%s): %s tokens, %s.", row.End.In(l).Format("15:04"), human(p.TotalTokens), Dollars(p.CostMicros)),
	}
}

// FiguresTable writes a table of labelled figures (the status command's
// block, today and week) in the layout of the reports.
func FiguresTable(w io.Writer, head string, labels []string, figs []Figures) error {
	var t *table
	for layout := wideFigures; layout <= narrowestFigures; layout++ {
		t = &table{cols: append([]column{{head: head, flex: 8}}, figureColumns(layout)...)}
		for n, f := range figs {
			t.rows = append(t.rows, append([]string{labels[n]}, figureCells(f, layout)...))
		}
		if t.fits(Width) {
			break
		}
	}
	return t.write(w, Width)
}

// Duration formats d as "2h13m" (or "45m"), rounded down to the minute.
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	m := int64(d / time.Minute)
	if m < 60 {
		return fmt.Sprintf("%dm", m)
	}
	if m >= 48*60 {
		return fmt.Sprintf("%dd%02dh", m/(24*60), m/60%24)
	}
	return fmt.Sprintf("%dh%02dm", m/60, m%60)
}

// Dollars formats micro-dollars for people: "$12.30", or "$0.0042" below
// a dollar.
func Dollars(m int64) string {
	if m < 1_000_000 && m > -1_000_000 {
		return fmt.Sprintf("$%.4f", tokenmeter.Micros(m).USD())
	}
	return fmt.Sprintf("$%.2f", tokenmeter.Micros(m).USD())
}

// Figure layouts, widest first.
const (
	wideFigures      = iota // Input Output Cache W Cache R Total Reqs Cost
	narrowFigures           // cache writes and reads in one column
	narrowestFigures        // and no request count
)

func figureColumns(layout int) []column {
	cols := []column{{head: "Input", right: true}, {head: "Output", right: true}}
	if layout == wideFigures {
		cols = append(cols, column{head: "Cache W", right: true}, column{head: "Cache R", right: true})
	} else {
		cols = append(cols, column{head: "Cache", right: true})
	}
	cols = append(cols, column{head: "Total", right: true})
	if layout != narrowestFigures {
		cols = append(cols, column{head: "Reqs", right: true})
	}
	return append(cols, column{head: "Cost $", right: true})
}

func figureCells(f Figures, layout int) []string {
	cost := fmt.Sprintf("%.2f", tokenmeter.Micros(f.CostMicros).USD())
	if f.CostMicros < 1_000_000 {
		cost = fmt.Sprintf("%.4f", tokenmeter.Micros(f.CostMicros).USD())
	}
	if f.CostUnknown > 0 {
		cost += "+?"
	}
	cells := []string{human(f.InputTokens), human(f.OutputTokens)}
	if layout == wideFigures {
		cells = append(cells, human(f.CacheCreationInputTokens), human(f.CacheReadInputTokens))
	} else {
		cells = append(cells, human(f.CacheCreationInputTokens+f.CacheReadInputTokens))
	}
	cells = append(cells, human(f.TotalTokens))
	if layout != narrowestFigures {
		cells = append(cells, i(f.Requests))
	}
	return append(cells, cost)
}

// column is one column of a table.
type column struct {
	head  string
	right bool // align right (numbers)
	// flex, when positive, lets the column shrink down to flex characters
	// (cutting its cells with "…") so the table fits; trimLeft cuts the
	// start instead of the end (paths, whose last element says the most).
	flex     int
	trimLeft bool
}

// table is a plain-text table: columns two spaces apart, text left and
// numbers right aligned, no trailing spaces, and no control character
// from a cell (textsafe.Terminal).
type table struct {
	cols []column
	rows [][]string
}

const gutter = 2

// clean makes every cell safe for a terminal before widths are measured.
func (t *table) clean() {
	for _, row := range t.rows {
		for c, cell := range row {
			row[c] = textsafe.Terminal(cell)
		}
	}
}

func (t *table) widths() []int {
	ws := make([]int, len(t.cols))
	for c, col := range t.cols {
		ws[c] = utf8.RuneCountInString(col.head)
		for _, row := range t.rows {
			ws[c] = max(ws[c], utf8.RuneCountInString(row[c]))
		}
	}
	return ws
}

// fits reports whether the table fits width once its flexible columns
// are shrunk as far as they go.
func (t *table) fits(width int) bool {
	t.clean()
	total := 0
	for c, w := range t.widths() {
		if t.cols[c].flex > 0 {
			w = min(w, max(t.cols[c].flex, utf8.RuneCountInString(t.cols[c].head)))
		}
		total += w
	}
	return total+gutter*(len(t.cols)-1) <= width
}

func (t *table) write(w io.Writer, width int) error {
	t.clean()
	ws := t.widths()
	total := gutter * (len(ws) - 1)
	for _, x := range ws {
		total += x
	}
	// Shrink the flexible columns, widest first, one character at a time.
	for total > width {
		best := -1
		for c, col := range t.cols {
			if col.flex > 0 && ws[c] > max(col.flex, utf8.RuneCountInString(col.head)) && (best < 0 || ws[c] > ws[best]) {
				best = c
			}
		}
		if best < 0 {
			break
		}
		ws[best]--
		total--
	}
	var b strings.Builder
	line := func(cells []string) {
		b.Reset()
		for c, cell := range cells {
			if c > 0 {
				b.WriteString(strings.Repeat(" ", gutter))
			}
			cell = trim(cell, ws[c], t.cols[c].trimLeft)
			pad := strings.Repeat(" ", ws[c]-utf8.RuneCountInString(cell))
			if t.cols[c].right {
				b.WriteString(pad + cell)
			} else {
				b.WriteString(cell + pad)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	heads := make([]string, len(t.cols))
	for c, col := range t.cols {
		heads[c] = col.head
	}
	line(heads)
	for _, row := range t.rows {
		line(row)
	}
	return nil
}

// wrap breaks s into lines of at most width characters at spaces.
func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, word := range strings.Fields(s) {
		switch {
		case cur == "":
			cur = word
		case utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(word) <= width:
			cur += " " + word
		default:
			lines = append(lines, cur)
			cur = word
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// human abbreviates large counts (1234567 → 1.23M) so tables stay narrow.
func human(n int64) string {
	switch {
	case n >= 10_000_000_000:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1_000_000_000:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 100_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return i(n)
}

func i(n int64) string { return strconv.FormatInt(n, 10) }

// trim shortens s to n characters, marking the cut with "…".
func trim(s string, n int, left bool) string {
	r := []rune(s)
	if len(r) <= n || n < 1 {
		return s
	}
	if left {
		return "…" + string(r[len(r)-n+1:])
	}
	return string(r[:n-1]) + "…"
}

// Tokens abbreviates a token count for people: 1234567 → "1.23M".
func Tokens(n int64) string { return human(n) }
