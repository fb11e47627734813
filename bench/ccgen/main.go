// Command ccgen writes a synthetic, reproducible Claude Code transcript tree
// (DIR/projects/...) and its ground truth as JSON, for testing and
// benchmarking tokenmeter's importer against ccusage. See package
// github.com/tokenmeter/tokenmeter/bench/ccgen/corpus for what it writes
// and what the truth means.
//
//	go run ./bench/ccgen -out DIR [-seed 1] [-lines 1000000] [-days 60] [-end 2026-11-20] [-truth FILE]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tokenmeter/tokenmeter/bench/ccgen/corpus"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ccgen:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ccgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("out", "", "`directory` to write projects/ into (required; should be empty)")
	seed := fs.Uint64("seed", 1, "random seed; the same seed and flags give byte-identical output")
	lines := fs.Int("lines", corpus.DefaultLines, "approximate number of lines to write")
	days := fs.Int("days", corpus.DefaultDays, "number of days the sessions spread over")
	end := fs.String("end", corpus.DefaultEnd, "last `date` (YYYY-MM-DD, UTC)")
	truth := fs.String("truth", "", "write the ground truth JSON to `file` instead of stdout")
	quiet := fs.Bool("q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-out DIR is required and there are no arguments")
	}
	if *lines <= 0 || *days <= 0 {
		return errors.New("-lines and -days must be positive")
	}
	last, err := time.Parse(time.DateOnly, *end)
	if err != nil {
		return fmt.Errorf("-end: %w", err)
	}
	o := corpus.Options{Seed: *seed, Lines: *lines, Days: *days, End: last}
	if !*quiet {
		o.Progress = stderr
	}
	began := time.Now()
	t, err := corpus.Generate(*dir, o)
	if err != nil {
		return err
	}
	took := time.Since(began)
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *truth == "" {
		_, err = stdout.Write(b)
	} else {
		err = os.WriteFile(*truth, b, 0o644)
	}
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintf(stderr, "ccgen: wrote %d files, %d lines, %.1f MB in %.1fs; %d requests, $%.2f\n",
			t.Files, t.Lines, float64(t.Bytes)/1e6, took.Seconds(), t.Totals.Requests, float64(t.Totals.CostMicros)/1e6)
	}
	return nil
}
