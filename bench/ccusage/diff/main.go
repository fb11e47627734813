// Command diff compares the daily reports of tokenmeter and ccusage with the
// ground truth of a corpus written by bench/ccgen, token category by token
// category and day by day, and exits 1 when tokenmeter differs from the
// truth in any token category.
//
//	diff -truth TRUTH.json [-tokenmeter TM.json] [-ccusage CC.json] [-corpus DIR] [-days=false]
//
// TM.json is `tokenmeter report daily --json --tz UTC`; CC.json is
// `ccusage claude daily --json --offline --timezone UTC`. With -corpus, diff
// also replays ccusage 20.0.24's rules on the corpus (see model.go) and
// breaks its difference from the truth down by cause.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/tokenmeter/tokenmeter/bench/ccgen/corpus"
)

func main() {
	code, err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "diff:", err)
		}
		os.Exit(2)
	}
	os.Exit(code)
}

// figs are one day's (or the total's) figures from one source. Requests is
// -1 when the source does not report it; cost is in USD.
type figs struct {
	in, out, cw, cr int64
	requests        int64
	cost            float64
}

func (f figs) total() int64 { return f.in + f.out + f.cw + f.cr }

// report is one source's figures by date (YYYY-MM-DD) and in total.
type report struct {
	name   string
	days   map[string]figs
	totals figs
}

func run(args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	truthPath := fs.String("truth", "", "ground truth `file` written by ccgen -truth (required)")
	tmPath := fs.String("tokenmeter", "", "`file` with tokenmeter report daily --json --tz UTC")
	ccPath := fs.String("ccusage", "", "`file` with ccusage claude daily --json --offline --timezone UTC")
	dir := fs.String("corpus", "", "corpus `directory` (holding projects/): replay ccusage's rules to explain its difference")
	perDay := fs.Bool("days", true, "print every day, not only the totals")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	if *truthPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 0, errors.New("-truth is required and there are no arguments")
	}
	truth, tr, err := readTruth(*truthPath)
	if err != nil {
		return 0, err
	}
	var tm, cc *report
	if *tmPath != "" {
		if tm, err = readTokenmeter(*tmPath); err != nil {
			return 0, err
		}
	}
	if *ccPath != "" {
		if cc, err = readCCUsage(*ccPath); err != nil {
			return 0, err
		}
	}
	fmt.Fprintf(stdout, "Corpus: seed %d, %d lines, %d files, %.1f MB; %d requests\n\n",
		tr.Seed, tr.Lines, tr.Files, float64(tr.Bytes)/1e6, tr.Totals.Requests)
	fmt.Fprintln(stdout, "Totals (Δ% = relative to the truth)")
	table(stdout, "", truth.totals, tm, cc, func(r *report) (figs, bool) { return r.totals, true })
	code := 0
	if tm != nil {
		bad := mismatches(truth, tm)
		if len(bad) == 0 {
			fmt.Fprintln(stdout, "\ntokenmeter: every token category matches the truth on every day.")
		} else {
			code = 1
			fmt.Fprintf(stdout, "\ntokenmeter differs from the truth in %d places:\n", len(bad))
			for i, b := range bad {
				if i == 20 {
					fmt.Fprintf(stdout, "  ... and %d more\n", len(bad)-20)
					break
				}
				fmt.Fprintln(stdout, "  "+b)
			}
		}
	}
	if *dir != "" {
		m, err := replay(*dir)
		if err != nil {
			return 0, err
		}
		explain(stdout, tr, m, cc)
	}
	if *perDay {
		dates := make([]string, 0, len(truth.days))
		for d := range truth.days {
			dates = append(dates, d)
		}
		for _, r := range []*report{tm, cc} {
			if r == nil {
				continue
			}
			for d := range r.days {
				if _, ok := truth.days[d]; !ok {
					dates = append(dates, d)
				}
			}
		}
		slices.Sort(dates)
		fmt.Fprintln(stdout, "\nPer day (Δ% = relative to the truth)")
		for _, d := range dates {
			table(stdout, d, truth.days[d], tm, cc, func(r *report) (figs, bool) { f, ok := r.days[d]; return f, ok })
		}
	}
	return code, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func readTruth(path string) (*report, *corpus.Truth, error) {
	var t corpus.Truth
	if err := readJSON(path, &t); err != nil {
		return nil, nil, err
	}
	conv := func(f corpus.Figures) figs {
		return figs{f.InputTokens, f.OutputTokens, f.CacheCreationInputTokens, f.CacheReadInputTokens, f.Requests, float64(f.CostMicros) / 1e6}
	}
	r := &report{name: "truth", days: map[string]figs{}, totals: conv(t.Totals)}
	for _, d := range t.Days {
		r.days[d.Date] = conv(d.Totals)
	}
	return r, &t, nil
}

func readTokenmeter(path string) (*report, error) {
	type row struct {
		Period     string   `json:"period"`
		Key        string   `json:"key"`
		Input      int64    `json:"input_tokens"`
		Output     int64    `json:"output_tokens"`
		CacheWrite int64    `json:"cache_creation_input_tokens"`
		CacheRead  int64    `json:"cache_read_input_tokens"`
		Requests   int64    `json:"requests"`
		CostUSD    float64  `json:"cost_usd"`
		CostMicros *float64 `json:"cost_micros"`
	}
	var v struct {
		Rows   []row `json:"rows"`
		Totals row   `json:"totals"`
	}
	if err := readJSON(path, &v); err != nil {
		return nil, err
	}
	conv := func(x row) figs {
		f := figs{x.Input, x.Output, x.CacheWrite, x.CacheRead, x.Requests, x.CostUSD}
		if x.CostMicros != nil {
			f.cost = *x.CostMicros / 1e6
		}
		return f
	}
	r := &report{name: "tokenmeter", days: map[string]figs{}, totals: conv(v.Totals)}
	for _, x := range v.Rows {
		f := r.days[x.Period] // rows may be split by key; add them up
		g := conv(x)
		f.in, f.out, f.cw, f.cr, f.requests, f.cost = f.in+g.in, f.out+g.out, f.cw+g.cw, f.cr+g.cr, f.requests+g.requests, f.cost+g.cost
		r.days[x.Period] = f
	}
	return r, nil
}

func readCCUsage(path string) (*report, error) {
	type row struct {
		Date        string  `json:"date"`
		Input       int64   `json:"inputTokens"`
		Output      int64   `json:"outputTokens"`
		CacheCreate int64   `json:"cacheCreationTokens"`
		CacheRead   int64   `json:"cacheReadTokens"`
		TotalCost   float64 `json:"totalCost"`
	}
	var v struct {
		Daily  []row `json:"daily"`
		Totals row   `json:"totals"`
	}
	if err := readJSON(path, &v); err != nil {
		return nil, err
	}
	conv := func(x row) figs { return figs{x.Input, x.Output, x.CacheCreate, x.CacheRead, -1, x.TotalCost} }
	r := &report{name: "ccusage", days: map[string]figs{}, totals: conv(v.Totals)}
	for _, x := range v.Daily {
		r.days[x.Date] = conv(x)
	}
	return r, nil
}

// table prints truth and the other sources' figures for one day (or the
// totals when date is empty), one category a line.
func table(w io.Writer, date string, truth figs, tm, cc *report, pick func(*report) (figs, bool)) {
	if date == "" {
		fmt.Fprintf(w, "%-24s%18s", "", "truth")
		for _, r := range []*report{tm, cc} {
			if r != nil {
				fmt.Fprintf(w, " %18s %9s", r.name, "Δ%")
			}
		}
		fmt.Fprintln(w)
	}
	rows := []struct {
		name string
		get  func(figs) float64
		cost bool
	}{
		{"input", func(f figs) float64 { return float64(f.in) }, false},
		{"output", func(f figs) float64 { return float64(f.out) }, false},
		{"cache write", func(f figs) float64 { return float64(f.cw) }, false},
		{"cache read", func(f figs) float64 { return float64(f.cr) }, false},
		{"total tokens", func(f figs) float64 { return float64(f.total()) }, false},
		{"requests", func(f figs) float64 { return float64(f.requests) }, false},
		{"cost USD", func(f figs) float64 { return f.cost }, true},
	}
	for _, row := range rows {
		label := row.name
		if date != "" {
			label = date + " " + row.name
		}
		want := row.get(truth)
		fmt.Fprintf(w, "%-24s%s", label, num(want, row.cost))
		for _, r := range []*report{tm, cc} {
			if r == nil {
				continue
			}
			f, ok := pick(r)
			got := row.get(f)
			if !ok {
				got = 0
			}
			if row.name == "requests" && f.requests < 0 {
				fmt.Fprintf(w, " %18s %9s", "-", "")
				continue
			}
			fmt.Fprintf(w, " %s %9s", num(got, row.cost), pct(got, want))
		}
		fmt.Fprintln(w)
	}
}

func num(v float64, cost bool) string {
	if cost {
		return fmt.Sprintf("%18s", group(fmt.Sprintf("%.2f", v)))
	}
	return fmt.Sprintf("%18s", group(fmt.Sprintf("%.0f", v)))
}

// group puts thousands separators into a formatted number.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func pct(got, want float64) string {
	switch {
	case got == want:
		return "0"
	case want == 0:
		return "new"
	}
	p := (got - want) / want * 100
	if math.Abs(p) < 0.005 {
		return fmt.Sprintf("%+.4f%%", p)
	}
	return fmt.Sprintf("%+.2f%%", p)
}

// mismatches lists the token categories in which r differs from truth, by
// day and in total.
func mismatches(truth, r *report) []string {
	var bad []string
	check := func(where string, want, got figs) {
		for _, c := range []struct {
			name      string
			want, got int64
		}{
			{"input", want.in, got.in}, {"output", want.out, got.out},
			{"cache write", want.cw, got.cw}, {"cache read", want.cr, got.cr},
		} {
			if c.want != c.got {
				bad = append(bad, fmt.Sprintf("%s %s: %s got %d, truth %d", where, c.name, r.name, c.got, c.want))
			}
		}
	}
	dates := map[string]bool{}
	for d := range truth.days {
		dates[d] = true
	}
	for d := range r.days {
		dates[d] = true
	}
	sorted := make([]string, 0, len(dates))
	for d := range dates {
		sorted = append(sorted, d)
	}
	slices.Sort(sorted)
	for _, d := range sorted {
		check(d, truth.days[d], r.days[d])
	}
	check("total", truth.totals, r.totals)
	return bad
}
