// Command summarize turns the JSON lines written by bench/run.sh (loadgen
// results plus the script's completeness, memory, wrk and machine lines) into
// the markdown tables of docs/benchmarks.md: medians over the repetitions,
// differences and ratios against the bare proxy paired within each
// repetition, and the issue-2 targets marked met or not met.
//
//	go run ./bench/summarize bench/out/results.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Target labels used by run.sh, in table order.
var labels = []string{"upstream", "bare", "normal", "full", "strict"}

var names = map[string]string{
	"upstream": "fake-upstream, direct",
	"bare":     "bare ReverseProxy",
	"normal":   "tokenmeter `--sync normal`",
	"full":     "tokenmeter `--sync full`",
	"strict":   "tokenmeter `--durability strict`",
}

// metered are the labels of tokenmeter configurations.
var metered = []string{"normal", "full", "strict"}

// Issue 2 targets.
const (
	maxAddedP50us = 50
	maxAddedP99us = 300
	minRatio      = 0.70
	minRPS        = 5000
	maxMemMiB     = 150
)

// line is any line of results.jsonl; each mode fills the fields it uses.
type line struct {
	Mode       string             `json:"mode"`
	Label      string             `json:"label"`
	Rep        int                `json:"rep"`
	Conns      int                `json:"conns"`
	Warmup     int64              `json:"warmup"`
	Requests   int64              `json:"requests"`
	Errors     int64              `json:"errors"`
	Served     int64              `json:"served"`
	ServedFull int64              `json:"served_full"`
	Seconds    float64            `json:"seconds"`
	RPS        float64            `json:"rps"`
	P50us      float64            `json:"p50_us"`
	P90us      float64            `json:"p90_us"`
	P99us      float64            `json:"p99_us"`
	MaxUs      float64            `json:"max_us"`
	ProcCPU    map[string]float64 `json:"proc_cpu_s"`
	OtherLoad  float64            `json:"other_load"`
	Error      string             `json:"error_sample"`

	// completeness (run.sh, from the ledger after SIGKILL)
	Method            string `json:"method"`
	ServedThroughput  int64  `json:"served_throughput"`
	MissingThroughput int64  `json:"missing_throughput"`
	ServedAll         int64  `json:"served_all"`
	MissingAll        int64  `json:"missing_all"`
	Duplicates        int64  `json:"duplicates"`
	CompletedRows     int64  `json:"completed_rows"`
	Unfinished        int64  `json:"unfinished"`
	NotOK             int64  `json:"not_ok"`
	Verify            string `json:"verify"`

	// memory (run.sh)
	Streams     int64 `json:"streams"`
	Open        int64 `json:"open"`
	FirstEvent  int64 `json:"first_event"`
	BaselineKiB int64 `json:"baseline_kib"`
	MaxRSSKiB   int64 `json:"max_rss_kib"`
	HWMKiB      int64 `json:"hwm_kib"`
	AfterKiB    int64 `json:"after_kib"`
	Rows        int64 `json:"rows"`

	// wrk (run.sh)
	Non2xx int64 `json:"non2xx"`

	// machine (run.sh)
	CPU       string `json:"cpu"`
	Nproc     int    `json:"nproc"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit"`
	Kernel    string `json:"kernel"`
	Pin       string `json:"pin"`
	Params    string `json:"params"`
	Started   string `json:"started"`
	LoadAvg   string `json:"loadavg"`

	// quiet (run.sh): seconds spent waiting for other work to settle
	Budget int `json:"budget"`
}

func main() {
	in := io.Reader(os.Stdin)
	if len(os.Args) > 1 {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "summarize:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	var lines []line
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			fmt.Fprintf(os.Stderr, "summarize: skipping a line that is not JSON: %v\n", err)
			continue
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(1)
	}
	fmt.Print(summarize(lines))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// byRep indexes one mode's lines by label and repetition.
func byRep(lines []line, mode string) map[string]map[int]line {
	m := map[string]map[int]line{}
	for _, l := range lines {
		if l.Mode != mode {
			continue
		}
		if m[l.Label] == nil {
			m[l.Label] = map[int]line{}
		}
		m[l.Label][l.Rep] = l
	}
	return m
}

// collect returns f over the label's repetitions, and paired f(label) -
// f(base) (or the ratio) over the repetitions both have.
func collect(m map[string]map[int]line, label, base string, f func(line) float64) (vals, diffs, ratios []float64) {
	for rep, l := range m[label] {
		vals = append(vals, f(l))
		if b, ok := m[base][rep]; ok {
			diffs = append(diffs, f(l)-f(b))
			if f(b) != 0 {
				ratios = append(ratios, f(l)/f(b))
			}
		}
	}
	return vals, diffs, ratios
}

func signed(x float64) string {
	if x >= 0 {
		return fmt.Sprintf("+%.0f", x)
	}
	return fmt.Sprintf("%.0f", x)
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

type verdict struct{ addedP50, addedP99, ratio, rps float64 }

func summarize(lines []line) string {
	var b strings.Builder
	for _, l := range lines {
		if l.Mode == "machine" {
			fmt.Fprintf(&b, "Commit %s. Machine: %s, %d CPUs, %s, %s; started %s; load average before the run %s.\n",
				l.Commit, l.CPU, l.Nproc, l.Kernel, l.GoVersion, l.Started, l.LoadAvg)
			fmt.Fprintf(&b, "Parameters: %s; pinning: %s.\n", l.Params, l.Pin)
		}
		if l.Mode == "quiet" {
			fmt.Fprintf(&b, "Waited %.0f s (budget %d s) in total for other work on the machine to settle before measurements; "+
				"\"other load\" below is the share of the machine used by processes outside the benchmark during each measurement (median).\n", l.Seconds, l.Budget)
		}
	}
	b.WriteString("\n")

	lat := byRep(lines, "latency")
	thr := byRep(lines, "throughput")
	reps := 0
	for _, m := range lat {
		reps = max(reps, len(m))
	}
	verdicts := map[string]*verdict{}
	for _, lb := range metered {
		verdicts[lb] = &verdict{}
	}

	fmt.Fprintf(&b, "### One connection, sequential requests (median of %d runs, µs)\n\n", reps)
	b.WriteString("| target | p50 | p90 | p99 | p50 added vs direct | p99 added vs direct | p50 added vs bare | p99 added vs bare | other load |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, lb := range labels {
		if lat[lb] == nil {
			continue
		}
		p50, dp50u, _ := collect(lat, lb, "upstream", func(l line) float64 { return l.P50us })
		p90, _, _ := collect(lat, lb, "upstream", func(l line) float64 { return l.P90us })
		p99, dp99u, _ := collect(lat, lb, "upstream", func(l line) float64 { return l.P99us })
		_, dp50b, _ := collect(lat, lb, "bare", func(l line) float64 { return l.P50us })
		_, dp99b, _ := collect(lat, lb, "bare", func(l line) float64 { return l.P99us })
		other, _, _ := collect(lat, lb, lb, func(l line) float64 { return l.OtherLoad * 100 })
		vsBare50, vsBare99 := "—", "—"
		if lb != "bare" && len(dp50b) > 0 {
			vsBare50, vsBare99 = signed(median(dp50b)), signed(median(dp99b))
		}
		vsUp50, vsUp99 := "—", "—"
		if lb != "upstream" {
			vsUp50, vsUp99 = signed(median(dp50u)), signed(median(dp99u))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %.0f%% |\n",
			names[lb], median(p50), median(p90), median(p99), vsUp50, vsUp99, vsBare50, vsBare99, median(other))
		if v := verdicts[lb]; v != nil {
			v.addedP50, v.addedP99 = median(dp50b), median(dp99b)
		}
	}

	conns := 0
	for _, m := range thr {
		for _, l := range m {
			conns = l.Conns
		}
	}
	fmt.Fprintf(&b, "\n### Saturation: %d connections (median of %d runs)\n\n", conns, reps)
	b.WriteString("| target | req/s | min–max | vs bare | vs direct | p50 ms | p99 ms | p50 added vs bare (ms) | p99 added vs bare (ms) | proxy CPU µs/req | errors | other load |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, lb := range labels {
		if thr[lb] == nil {
			continue
		}
		rps, _, rBare := collect(thr, lb, "bare", func(l line) float64 { return l.RPS })
		_, _, rUp := collect(thr, lb, "upstream", func(l line) float64 { return l.RPS })
		p50, d50, _ := collect(thr, lb, "bare", func(l line) float64 { return l.P50us / 1000 })
		p99, d99, _ := collect(thr, lb, "bare", func(l line) float64 { return l.P99us / 1000 })
		cpu, _, _ := collect(thr, lb, lb, func(l line) float64 {
			if l.Requests == 0 {
				return 0
			}
			return l.ProcCPU[lb] / float64(l.Requests) * 1e6
		})
		other, _, _ := collect(thr, lb, lb, func(l line) float64 { return l.OtherLoad * 100 })
		var errs int64
		var sample string
		for _, l := range thr[lb] {
			errs += l.Errors
			if sample == "" {
				sample = l.Error
			}
		}
		errCell := fmt.Sprint(errs)
		if sample != "" {
			errCell += " (" + sample + ")"
		}
		vsBare, vsUp, d50c, d99c := "—", "—", "—", "—"
		if lb != "bare" {
			vsBare = fmt.Sprintf("%.0f%%", median(rBare)*100)
			d50c, d99c = fmt.Sprintf("%+.2f", median(d50)), fmt.Sprintf("%+.2f", median(d99))
		}
		if lb != "upstream" {
			vsUp = fmt.Sprintf("%.0f%%", median(rUp)*100)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f–%.0f | %s | %s | %.2f | %.2f | %s | %s | %.0f | %s | %.0f%% |\n",
			names[lb], median(rps), slices.Min(rps), slices.Max(rps), vsBare, vsUp, median(p50), median(p99), d50c, d99c, median(cpu), errCell, median(other))
		if v := verdicts[lb]; v != nil {
			v.ratio, v.rps = median(rBare), median(rps)
		}
	}

	if wrk := byRep(lines, "wrk"); len(wrk) > 0 {
		b.WriteString("\n### Cross-check with wrk (one 5 s run each, same connections, after the repetitions)\n\n")
		b.WriteString("| target | req/s | vs bare | p50 ms | p99 ms | non-2xx |\n|---|--:|--:|--:|--:|--:|\n")
		for _, lb := range labels {
			for _, l := range wrk[lb] {
				vs := "—"
				if bl, ok := wrk["bare"][l.Rep]; ok && lb != "bare" && bl.RPS > 0 {
					vs = fmt.Sprintf("%.0f%%", l.RPS/bl.RPS*100)
				}
				fmt.Fprintf(&b, "| %s | %.0f | %s | %.2f | %.2f | %d |\n", names[lb], l.RPS, vs, l.P50us/1000, l.P99us/1000, l.Non2xx)
			}
		}
	}

	lost := map[string]int64{}
	known := map[string]bool{}
	b.WriteString("\n### Completeness: responses served vs completed rows in the ledger (after SIGKILL)\n\n")
	b.WriteString("| target | served in throughput runs | missing | served in all runs | missing | calls completed twice | completed rows | not ok | started, never completed | verify | method |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, l := range lines {
		if l.Mode != "completeness" {
			continue
		}
		known[l.Label] = true
		lost[l.Label] = l.MissingAll
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", names[l.Label], l.ServedThroughput, l.MissingThroughput,
			l.ServedAll, l.MissingAll, l.Duplicates, l.CompletedRows, l.NotOK, l.Unfinished, l.Verify, l.Method)
	}

	var memMiB float64
	memKnown := false
	b.WriteString("\n### Memory with open streams\n\n")
	b.WriteString("| process | streams asked | open at the end of the hold | baseline RSS MiB | max RSS during hold MiB | peak RSS (VmHWM) MiB | RSS after cancel MiB | ledger rows for the streams | errors |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, l := range lines {
		if l.Mode != "memory" {
			continue
		}
		mib := func(k int64) float64 { return float64(k) / 1024 }
		rows := "—"
		if l.Label != "bare" {
			rows = fmt.Sprint(l.Rows)
			memMiB, memKnown = mib(l.HWMKiB), true
		}
		name := names[l.Label]
		if l.Label == "normal" {
			name = "tokenmeter serve (defaults)"
		}
		errCell := fmt.Sprint(l.Errors)
		if l.Error != "" {
			errCell += " (" + l.Error + ")"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %s | %s |\n", name, l.Streams, l.Open,
			mib(l.BaselineKiB), mib(l.MaxRSSKiB), mib(l.HWMKiB), mib(l.AfterKiB), rows, errCell)
	}

	b.WriteString("\n### Issue 2 targets\n\n")
	b.WriteString("| target | p50 added ≤ 50 µs | p99 added ≤ 300 µs | throughput ≥ 70% of bare | > 5,000 req/s | 0 rows lost |\n|---|---|---|---|---|---|\n")
	for _, lb := range metered {
		v := verdicts[lb]
		if lat[lb] == nil {
			continue
		}
		lostCell := "not counted"
		if known[lb] {
			lostCell = fmt.Sprintf("%s (%d lost)", mark(lost[lb] == 0), lost[lb])
		}
		fmt.Fprintf(&b, "| %s | %s (%s µs) | %s (%s µs) | %s (%.0f%%) | %s (%.0f) | %s |\n", names[lb],
			mark(v.addedP50 <= maxAddedP50us), signed(v.addedP50),
			mark(v.addedP99 <= maxAddedP99us), signed(v.addedP99),
			mark(v.ratio >= minRatio), v.ratio*100,
			mark(v.rps > minRPS), v.rps, lostCell)
	}
	if memKnown {
		fmt.Fprintf(&b, "\nPeak memory with open streams: %.1f MiB, target < %d MiB: %s.\n", memMiB, maxMemMiB, mark(memMiB < maxMemMiB))
	}
	return b.String()
}
