package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tokenmeter/tokenmeter"
)

// JSON writes the report as indented JSON.
func JSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// CSV writes one header line and one line per row, then a TOTAL line.
func CSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	head := []string{"period", "key", "input_tokens", "output_tokens", "cache_creation_input_tokens",
		"cache_read_input_tokens", "reasoning_tokens", "total_tokens", "requests", "cost_usd",
		"usage_unknown_requests", "cost_unknown_requests", "outcome_unknown_requests"}
	cw.Write(head)
	line := func(period, key string, f Figures) {
		cw.Write([]string{period, key, i(f.InputTokens), i(f.OutputTokens), i(f.CacheCreationInputTokens),
			i(f.CacheReadInputTokens), i(f.ReasoningTokens), i(f.TotalTokens), i(f.Requests),
			tokenmeter.Micros(f.CostMicros).String(), i(f.UsageUnknown), i(f.CostUnknown), i(f.OutcomeUnknown)})
	}
	for _, row := range r.Rows {
		line(row.Period, row.Key, row.Figures)
	}
	line("TOTAL", "", r.Totals)
	cw.Flush()
	return cw.Error()
}

// Table writes the report for people, in columns that fit 80 characters.
func Table(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	first := "Date"
	switch {
	case r.Kind == Models:
		first = "Model"
	case r.Kind == Weekly:
		first = "Week of"
	case r.Kind == Monthly:
		first = "Month"
	}
	cols := []string{first}
	if r.By != "" && r.Kind != Models {
		cols = append(cols, strings.ToUpper(r.By[:1])+r.By[1:])
	}
	cols = append(cols, "Input", "Output", "Cache W", "Cache R", "Total", "Reqs", "Cost $")
	fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	for _, row := range r.Rows {
		cells := []string{row.Period}
		if r.Kind == Models {
			cells = []string{trim(row.Key, 26)}
		} else if r.By != "" {
			cells = append(cells, trim(row.Key, 22))
		}
		fmt.Fprintln(tw, strings.Join(append(cells, figures(row.Figures)...), "\t")+"\t")
	}
	total := []string{"Total"}
	if r.By != "" && r.Kind != Models {
		total = append(total, "")
	}
	fmt.Fprintln(tw, strings.Join(append(total, figures(r.Totals)...), "\t")+"\t")
	if err := tw.Flush(); err != nil {
		return err
	}
	if t := r.Totals; t.UsageUnknown > 0 || t.OutcomeUnknown > 0 || t.CostUnknown > 0 {
		fmt.Fprintf(w, "\nNote: %d calls with usage unknown, %d with outcome unknown (gateway stopped mid-call), %d unpriced",
			t.UsageUnknown, t.OutcomeUnknown, t.CostUnknown)
		if len(r.Unpriced) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(r.Unpriced, ", "))
		}
		fmt.Fprintln(w, ".")
	}
	return nil
}

func figures(f Figures) []string {
	cost := fmt.Sprintf("%.2f", tokenmeter.Micros(f.CostMicros).USD())
	if f.CostMicros < 1_000_000 {
		cost = fmt.Sprintf("%.4f", tokenmeter.Micros(f.CostMicros).USD())
	}
	if f.CostUnknown > 0 {
		cost += "+?"
	}
	return []string{human(f.InputTokens), human(f.OutputTokens), human(f.CacheCreationInputTokens),
		human(f.CacheReadInputTokens), human(f.TotalTokens), i(f.Requests), cost}
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

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
