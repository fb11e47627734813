package importer_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter/bench/ccgen/corpus"
	"github.com/tokenmeter/tokenmeter/internal/importer"
	"github.com/tokenmeter/tokenmeter/internal/importer/claudecode"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// benchCorpus generates a 50,000-line corpus once per benchmark.
func benchCorpus(b *testing.B) (string, *corpus.Truth) {
	b.Helper()
	dir := b.TempDir()
	tr, err := corpus.Generate(dir, corpus.Options{Seed: 1, Lines: 50000, Days: 10})
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Join(dir, "projects"), tr
}

// BenchmarkImport is a first import of the corpus into an empty ledger:
// reading, de-duplicating, pricing and writing every call durably.
func BenchmarkImport(b *testing.B) {
	dir, tr := benchCorpus(b)
	b.SetBytes(tr.Bytes)
	later := func() time.Time { return time.Now().Add(time.Hour) }
	for b.Loop() {
		b.StopTimer()
		db := sqlite.NewDB(filepath.Join(b.TempDir(), "ledger.db"))
		db.CacheKiB = 16 << 10
		if err := db.Open(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		st, err := importer.Run(ctx, claudecode.Format{}, importer.Options{Store: db, Dirs: []string{dir}, Now: later})
		if err != nil || st.Added != int(tr.Totals.Requests) {
			b.Fatalf("import: %+v, %v; want %d calls", st, err, tr.Totals.Requests)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(tr.Totals.Requests)*float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkReimport is the import that finds nothing new.
func BenchmarkReimport(b *testing.B) {
	dir, tr := benchCorpus(b)
	db := sqlite.NewDB(filepath.Join(b.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	opts := importer.Options{Store: db, Dirs: []string{dir}, Now: func() time.Time { return time.Now().Add(time.Hour) }}
	if st, err := importer.Run(ctx, claudecode.Format{}, opts); err != nil || st.Added != int(tr.Totals.Requests) {
		b.Fatalf("first import: %+v, %v", st, err)
	}
	for b.Loop() {
		if st, err := importer.Run(ctx, claudecode.Format{}, opts); err != nil || st.Added != 0 {
			b.Fatalf("re-import: %+v, %v", st, err)
		}
	}
}

// BenchmarkParse reads every file through the transcript parser alone (no
// ledger): the importer's reading speed on one core.
func BenchmarkParse(b *testing.B) {
	dir, tr := benchCorpus(b)
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	b.SetBytes(tr.Bytes)
	for b.Loop() {
		n := 0
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				b.Fatal(err)
			}
			pr := claudecode.Format{}.Open(p, "")
			var off int64
			for len(data) > 0 {
				i := 0
				for i < len(data) && data[i] != '\n' {
					i++
				}
				if i == len(data) {
					break
				}
				pr.Line(data[:i], 0, off)
				off += int64(i + 1)
				data = data[i+1:]
			}
			evs, _, _ := pr.End(off, true)
			n += len(evs)
		}
		if n < int(tr.Totals.Requests) {
			b.Fatalf("parsed %d calls, want at least %d", n, tr.Totals.Requests)
		}
	}
}
