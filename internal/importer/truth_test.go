package importer_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/bench/ccgen/corpus"
	"github.com/tokenmeter/tokenmeter/internal/importer"
	"github.com/tokenmeter/tokenmeter/internal/importer/claudecode"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// dayModel is one cell of the comparison with the ground truth.
type dayModel struct{ Day, Model string }

type cell struct {
	Requests, Input, Output, Write5m, Write1h, Read, WebSearch, Cost int64
}

func truthCells(tr *corpus.Truth) map[dayModel]cell {
	out := map[dayModel]cell{}
	for _, d := range tr.Days {
		for _, m := range d.Models {
			out[dayModel{d.Date, m.Model}] = cell{m.Requests, m.InputTokens, m.OutputTokens, m.CacheCreation5mInputTokens,
				m.CacheCreation1hInputTokens, m.CacheReadInputTokens, m.WebSearchRequests, m.CostMicros}
		}
	}
	return out
}

func ledgerCells(t *testing.T, db *sqlite.DB) map[dayModel]cell {
	t.Helper()
	bs, err := db.Usage(ctx, tokenmeter.UsageQuery{Bucket: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	out := map[dayModel]cell{}
	for _, b := range bs {
		k := dayModel{b.Start.Format("2006-01-02"), b.Model}
		c := out[k]
		u := b.Usage
		c.Requests += b.Requests
		c.Input += u.InputTokens
		c.Output += u.OutputTokens
		c.Write5m += u.CacheWrite5mTokens
		c.Write1h += u.CacheWrite1hTokens
		c.Read += u.CacheReadTokens
		c.WebSearch += u.WebSearchRequests
		c.Cost += int64(b.Cost)
		out[k] = c
	}
	return out
}

func openLedger(t *testing.T) *sqlite.DB {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestGroundTruth imports generated corpora (streaming duplicates,
// sidechains, resumed sessions, /btw replays, progress copies, malformed
// and cut lines, several models) and checks the ledger equals the
// generator's ground truth exactly, per UTC day and model. Small batches
// put copies of one response in different ledger transactions.
func TestGroundTruth(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		dir := t.TempDir()
		tr, err := corpus.Generate(dir, corpus.Options{Seed: seed, Lines: 15000, Days: 10})
		if err != nil {
			t.Fatal(err)
		}
		db := openLedger(t)
		opts := importer.Options{Store: db, Dirs: []string{filepath.Join(dir, "projects")}, Workers: 2, BatchEvents: 300,
			Now: func() time.Time { return time.Now().Add(time.Hour) }}
		st, err := importer.Run(ctx, claudecode.Format{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(truthCells(tr), ledgerCells(t, db)); diff != "" {
			t.Errorf("seed %d: ledger differs from the ground truth (-truth +ledger):\n%s", seed, diff)
		}
		if st.Added != int(tr.Totals.Requests) {
			t.Errorf("seed %d: %d calls added, truth has %d requests", seed, st.Added, tr.Totals.Requests)
		}
		// Importing the same corpus again adds nothing and reads nothing
		// but the files that end in a cut line.
		again, err := importer.Run(ctx, claudecode.Format{}, opts)
		if err != nil || again.Added != 0 || again.Revised != 0 || again.Lines != 0 {
			t.Errorf("seed %d: second import %+v, %v; want nothing added or read", seed, again, err)
		}
	}
}

// TestGroundTruthGrowing replays a corpus as if Claude Code were writing
// it: every file grows in three steps cut at arbitrary bytes (mid-line),
// with an import after each step while the files are fresh, then one
// after they settle. The result must equal the truth.
func TestGroundTruthGrowing(t *testing.T) {
	src := t.TempDir()
	tr, err := corpus.Generate(src, corpus.Options{Seed: 7, Lines: 8000, Days: 5})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	dst := t.TempDir()
	db := openLedger(t)
	now := time.Now()
	opts := importer.Options{Store: db, Dirs: []string{filepath.Join(dst, "projects")}, Workers: 2, BatchEvents: 200,
		Now: func() time.Time { return now }}
	for step := 1; step <= 3; step++ {
		for i, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			// Cut points differ per file and step: 1/3, 2/3, all, moved
			// by a few bytes so lines are split.
			cut := len(b) * step / 3
			if step < 3 {
				cut = min(len(b), cut+(i*7)%13)
			}
			out := filepath.Join(dst, mustRel(t, src, p))
			os.MkdirAll(filepath.Dir(out), 0o755)
			if err := os.WriteFile(out, b[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := importer.Run(ctx, claudecode.Format{}, opts); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Hour) // every file has settled
	if _, err := importer.Run(ctx, claudecode.Format{}, opts); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(truthCells(tr), ledgerCells(t, db)); diff != "" {
		t.Errorf("ledger after a growing import differs from the ground truth (-truth +ledger):\n%s", diff)
	}
}

func mustRel(t *testing.T, base, p string) string {
	t.Helper()
	r, err := filepath.Rel(base, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
