package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/importer"
	"github.com/tokenmeter/tokenmeter/internal/importer/claudecode"
	"github.com/tokenmeter/tokenmeter/internal/importer/codex"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// ExitWarnings is import's exit status when it imported what it could but
// skipped files or lines it could not read.
const ExitWarnings = 4

// maxPrintedWarnings bounds the warnings import prints one by one.
const maxPrintedWarnings = 50

// importFormat returns the importer for a log kind and its default dirs.
func importFormat(kind string) (importer.Format, []string, error) {
	home, _ := os.UserHomeDir()
	switch kind {
	case "claude-code":
		return claudecode.Format{}, claudecode.DefaultDirs(os.Getenv, home), nil
	case "codex":
		return codex.Format{}, codex.DefaultDirs(os.Getenv, home), nil
	}
	return nil, nil, usageError("import", "unknown log kind %q (want claude-code or codex)", kind)
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import")
	lf := addLedgerFlags(fs)
	var dirs stringList
	fs.Var(&dirs, "dir", "search this `DIR` for logs instead of the default ones (repeatable)")
	watch := fs.Bool("watch", false, "keep running and import new lines as they are written")
	asJSON := fs.Bool("json", false, "write the summary as JSON")
	prices := fs.String("prices", "", "price `FILE` overriding or extending the embedded table (default: the config's prices:)")
	quiet := fs.Bool("quiet", false, "print only warnings and errors")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError("import", "name the logs: claude-code or codex")
	}
	if len(pos) > 1 {
		return usageError("import", "unexpected argument %q (one kind of log at a time; directories go in --dir)", pos[1])
	}
	format, defaults, err := importFormat(pos[0])
	if err != nil {
		return err
	}
	explicit := len(dirs) > 0
	if !explicit {
		dirs = existing(defaults)
		if len(dirs) == 0 {
			where := "no default directory: HOME is not set"
			if len(defaults) > 0 {
				where = "looked in " + strings.Join(defaults, ", ")
			}
			return fmt.Errorf("no %s logs found (%s); pass --dir DIR", pos[0], where)
		}
	} else {
		for _, d := range dirs {
			if st, err := os.Stat(d); err != nil || !st.IsDir() {
				return usageError("import", "--dir %s: not a readable directory", d)
			}
		}
	}
	cfg, err := lf.loadConfig()
	if err != nil {
		return err
	}
	pricePath := *prices
	if pricePath == "" {
		pricePath = cfg.Prices
	}
	table, err := loadPrices(pricePath)
	if err != nil {
		return &exitError{code: 2, msg: "import: " + err.Error()}
	}
	choice, existed, err := lf.exists()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(choice.Dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	db := sqlite.NewDB(choice.Path())
	db.CacheKiB = cacheKiB()
	if os.Getenv("GOMEMLIMIT") == "" {
		// Batches of events are short-lived garbage: collecting sooner
		// keeps the import's footprint small at little cost (the ledger
		// writer, not the parsers, sets the pace).
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(48 << 20))
	}
	if err := db.Open(); err != nil {
		return fmt.Errorf("open the ledger at %s: %w", choice.Path(), err)
	}
	defer db.Close()
	if !*quiet || !existed {
		wrote(stderr, choice, !existed)
	}

	var (
		mu      sync.Mutex
		printed int
	)
	opts := importer.Options{Store: db, Prices: table, Dirs: dirs, Warn: func(w importer.Warning) {
		mu.Lock()
		defer mu.Unlock()
		if printed < maxPrintedWarnings {
			fmt.Fprintln(stderr, "tokenmeter: warning:", w)
		}
		printed++
	}}
	if *watch {
		return importer.Watch(ctx, format, opts, func(st importer.Stats) {
			if st.Added > 0 || !*quiet {
				printImportSummary(stdout, pos[0], st, *asJSON, time.Now())
			}
		})
	}
	start := time.Now()
	st, err := importer.Run(ctx, format, opts)
	if err != nil && ctx.Err() != nil {
		// Interrupted: what was committed stays, and the next run resumes
		// exactly there.
		printImportSummary(stdout, pos[0], st, *asJSON, start)
		return &exitError{code: 130, msg: "interrupted; what was imported is kept, and the next import resumes where this one stopped"}
	}
	if err != nil {
		return err
	}
	if !*quiet || *asJSON {
		printImportSummary(stdout, pos[0], st, *asJSON, start)
	}
	if st.Files == 0 {
		fmt.Fprintf(stderr, "tokenmeter: warning: no %s log files in %s: nothing was imported\n", pos[0], strings.Join(dirs, ", "))
	}
	if st.Warnings > 0 {
		msg := fmt.Sprintf("%d warnings", st.Warnings)
		if st.Warnings > maxPrintedWarnings {
			msg += fmt.Sprintf(" (the first %d shown)", maxPrintedWarnings)
		}
		return &exitError{code: ExitWarnings, msg: msg + ": the rest was imported"}
	}
	return nil
}

// cacheKiB is the import's SQLite page cache: a one-off import is a short
// burst and keeps its memory small. TOKENMETER_CACHE_KIB overrides it.
func cacheKiB() int {
	if v, err := strconv.Atoi(os.Getenv("TOKENMETER_CACHE_KIB")); err == nil && v > 0 {
		return v
	}
	return 8 << 10
}

func existing(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

func printImportSummary(w io.Writer, kind string, st importer.Stats, asJSON bool, start time.Time) {
	if asJSON {
		json.NewEncoder(w).Encode(st)
		return
	}
	fmt.Fprintf(w, "%s: %d files (%d read, %d unchanged), %d lines, %d calls found: %d new",
		kind, st.Files, st.Read, st.Unchanged, st.Lines, st.Events, st.Added)
	if st.Duplicates > 0 {
		// Copies within the files read (a resumed session's, a streamed
		// response's) as well as calls imported by an earlier run.
		fmt.Fprintf(w, ", %d duplicates (copies of calls counted once)", st.Duplicates)
	}
	if st.Revised > 0 {
		fmt.Fprintf(w, ", %d revised upwards", st.Revised)
	}
	if st.Recorded > 0 {
		fmt.Fprintf(w, ", %d recorded by the gateway", st.Recorded)
	}
	if st.UnknownPrice > 0 {
		fmt.Fprintf(w, ", %d with no price for their model", st.UnknownPrice)
	}
	fmt.Fprintf(w, " (%s)\n", time.Since(start).Round(time.Millisecond))
}
