package importer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/importer"
	"github.com/tokenmeter/tokenmeter/internal/importer/claudecode"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

var ctx = context.Background()

// line returns a final transcript line of response id with output tokens.
func line(id string, output int) string {
	return fmt.Sprintf(`{"parentUuid":null,"isSidechain":false,"cwd":"/home/u/app","sessionId":"s1","version":"2.0.14","type":"assistant",`+
		`"message":{"model":"claude-sonnet-4-5-20250929","id":"msg_%s","type":"message","role":"assistant","content":[],"stop_reason":"end_turn",`+
		`"usage":{"input_tokens":10,"output_tokens":%d,"cache_read_input_tokens":100}},"requestId":"req_%s","uuid":"u%s","timestamp":"2026-11-20T10:00:00.000Z"}`+"\n",
		id, output, id, id)
}

type fixture struct {
	t     *testing.T
	dir   string
	db    *sqlite.DB
	warns []importer.Warning
	mu    sync.Mutex
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	dir := filepath.Join(t.TempDir(), "projects")
	os.MkdirAll(filepath.Join(dir, "-home-u-app"), 0o755)
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &fixture{t: t, dir: dir, db: db, now: time.Now().Add(time.Hour)}
}

func (f *fixture) path(name string) string { return filepath.Join(f.dir, "-home-u-app", name) }

func (f *fixture) write(name, content string) {
	f.t.Helper()
	if err := os.WriteFile(f.path(name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) append(name, content string) {
	f.t.Helper()
	fh, err := os.OpenFile(f.path(name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	fh.WriteString(content)
	fh.Close()
}

func (f *fixture) run() importer.Stats {
	f.t.Helper()
	f.warns = nil
	st, err := importer.Run(ctx, claudecode.Format{}, importer.Options{Store: f.db, Dirs: []string{f.dir}, Workers: 2,
		Now: func() time.Time { return f.now },
		Warn: func(w importer.Warning) {
			f.mu.Lock()
			f.warns = append(f.warns, w)
			f.mu.Unlock()
		}})
	if err != nil {
		f.t.Fatalf("import: %v", err)
	}
	return st
}

// totals returns the ledger's requests and output tokens.
func (f *fixture) totals() (requests, output int64) {
	f.t.Helper()
	bs, err := f.db.Usage(ctx, tokenmeter.UsageQuery{})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, b := range bs {
		requests += b.Requests
		output += b.Usage.OutputTokens
	}
	return
}

func (f *fixture) want(requests, output int64) {
	f.t.Helper()
	if r, o := f.totals(); r != requests || o != output {
		f.t.Errorf("ledger: %d requests, %d output tokens; want %d, %d", r, o, requests, output)
	}
}

func TestIncremental(t *testing.T) {
	f := newFixture(t)
	f.write("s1.jsonl", line("a", 1)+line("b", 2))
	if st := f.run(); st.Added != 2 || st.Read != 1 {
		t.Errorf("first import: %+v", st)
	}
	f.want(2, 3)
	// Nothing new: the file is not even read.
	if st := f.run(); st.Added != 0 || st.Read != 0 || st.Unchanged != 1 || st.Bytes != 0 {
		t.Errorf("second import: %+v", st)
	}
	// Appended lines, and only they, are read and added.
	size := int64(len(line("a", 1) + line("b", 2)))
	f.append("s1.jsonl", line("c", 4))
	if st := f.run(); st.Added != 1 || st.Lines != 1 || st.Bytes != int64(len(line("c", 4))) {
		t.Errorf("import after append: %+v (file was %d bytes)", st, size)
	}
	f.want(3, 7)
	// A new file with a copy of a response (a resumed session) adds only
	// its new response.
	f.write("s2.jsonl", line("c", 4)+line("d", 8))
	if st := f.run(); st.Added != 1 || st.Duplicates != 1 {
		t.Errorf("import of a resumed session: %+v", st)
	}
	f.want(4, 15)
}

func TestTruncatedAndReplaced(t *testing.T) {
	f := newFixture(t)
	f.write("s1.jsonl", line("a", 1)+line("b", 2)+line("c", 4))
	f.run()
	// Truncated (Claude Code rewrote it shorter): read again, nothing new.
	f.write("s1.jsonl", line("a", 1))
	if st := f.run(); st.Reread != 1 || st.Added != 0 || st.Duplicates != 1 {
		t.Errorf("import after truncation: %+v", st)
	}
	// Replaced by another file of the same size: read from the start.
	os.Remove(f.path("s1.jsonl"))
	f.write("s1.jsonl", line("x", 1))
	if st := f.run(); st.Reread != 1 || st.Added != 1 {
		t.Errorf("import after replacement: %+v", st)
	}
	f.want(4, 8)
	// Grown after the replacement: resumes from where it stopped.
	f.append("s1.jsonl", line("y", 16))
	if st := f.run(); st.Reread != 0 || st.Added != 1 || st.Lines != 1 {
		t.Errorf("import after growth: %+v", st)
	}
	f.want(5, 24)
}

func TestPartialLine(t *testing.T) {
	f := newFixture(t)
	full := line("b", 2)
	f.write("s1.jsonl", line("a", 1)+full[:40])
	if st := f.run(); st.Added != 1 || st.HeldBack != 40 {
		t.Errorf("import with a partial last line: %+v", st)
	}
	f.append("s1.jsonl", full[40:])
	if st := f.run(); st.Added != 1 || st.Lines != 1 {
		t.Errorf("import once the line is complete: %+v", st)
	}
	f.want(2, 3)
	if len(f.warns) != 0 {
		t.Errorf("warnings: %v", f.warns)
	}
}

func TestStreamingResponseHeldBack(t *testing.T) {
	f := newFixture(t)
	first := strings.Replace(line("b", 3), `"stop_reason":"end_turn"`, `"stop_reason":null`, 1)
	f.write("s1.jsonl", line("a", 1)+first)
	f.now = time.Now() // the file was just written: not settled
	if st := f.run(); st.Added != 1 || st.HeldBack != int64(len(first)) {
		t.Errorf("import while streaming: %+v", st)
	}
	f.append("s1.jsonl", line("b", 250))
	if st := f.run(); st.Added != 1 {
		t.Errorf("import after the final line: %+v", st)
	}
	f.want(2, 251) // the final count, not 3
	// A response that never gets its final line is imported once the file
	// has settled.
	f.append("s1.jsonl", strings.Replace(line("c", 7), `"stop_reason":"end_turn"`, `"stop_reason":null`, 1))
	f.run()
	f.want(2, 251)
	f.now = time.Now().Add(time.Minute)
	f.run()
	f.want(3, 258)
}

func TestRecordedByGateway(t *testing.T) {
	f := newFixture(t)
	proxied := storetest.Event("tmr_1", time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), tokenmeter.Usage{InputTokens: 10, OutputTokens: 1})
	proxied.UpstreamRequestID = "req_a"
	if _, err := f.db.Append(ctx, []tokenmeter.Event{proxied}); err != nil {
		t.Fatal(err)
	}
	f.write("s1.jsonl", line("a", 1)+line("b", 2))
	if st := f.run(); st.Added != 1 || st.Recorded != 1 {
		t.Errorf("import of a proxied call: %+v", st)
	}
	f.want(2, 3)
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	f.write("good.jsonl", line("a", 1)+"\x00\xff\xfe garbage\n"+line("b", 2))
	// A 50 MiB line (as file-history snapshots get) between two good ones.
	big := `{"type":"file-history-snapshot","snapshot":"` + strings.Repeat("x", 50<<20) + `"}` + "\n"
	f.write("big.jsonl", line("c", 4)+big+line("d", 8))
	f.write("binary.jsonl", "\x7fELF\x00\x00\x01\x02\x03\n\x00\x00")
	os.Symlink(filepath.Join(f.dir, "nowhere.jsonl"), f.path("broken.jsonl"))
	os.WriteFile(f.path("notes.txt"), []byte("not a transcript"), 0o644)
	st := f.run()
	f.want(4, 15)
	if st.Added != 4 || st.Warnings != 4 {
		t.Errorf("stats: %+v", st)
	}
	var got []string
	for _, w := range f.warns {
		got = append(got, w.String())
	}
	for _, want := range []string{"good.jsonl:2: not a JSON object", "big.jsonl:2: line longer than 16 MiB skipped",
		"binary.jsonl:1: not a JSON object", "broken.jsonl: broken symbolic link"} {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, want)
		}
		if !found {
			t.Errorf("no warning %q in %q", want, got)
		}
	}
}

func TestUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode; TestVanishingFiles covers files that cannot be opened")
	}
	f := newFixture(t)
	f.write("a.jsonl", line("a", 1))
	f.write("b.jsonl", line("b", 2))
	os.Chmod(f.path("b.jsonl"), 0)
	if st := f.run(); st.Added != 1 || st.Warnings != 1 || !strings.Contains(f.warns[0].String(), "b.jsonl: cannot open") {
		t.Errorf("stats %+v, warnings %v", st, f.warns)
	}
}

// vanishing removes a directory when the first file is opened, after the
// walk has listed the directory's files.
type vanishing struct {
	claudecode.Format
	once sync.Once
	dir  string
}

func (v *vanishing) Open(path, state string) importer.Parser {
	v.once.Do(func() { os.RemoveAll(v.dir) })
	return v.Format.Open(path, state)
}

func TestVanishingFiles(t *testing.T) {
	f := newFixture(t)
	f.write("a.jsonl", line("a", 1))
	gone := filepath.Join(f.dir, "-home-u-zzz")
	os.MkdirAll(gone, 0o755)
	for i := range 3 {
		os.WriteFile(filepath.Join(gone, fmt.Sprintf("%d.jsonl", i)), []byte(line(fmt.Sprint("z", i), 1)), 0o644)
	}
	var warns []string
	var mu sync.Mutex
	st, err := importer.Run(ctx, &vanishing{dir: gone}, importer.Options{Store: f.db, Dirs: []string{f.dir}, Workers: 1,
		Warn: func(w importer.Warning) { mu.Lock(); warns = append(warns, w.String()); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 4 || st.Added != 1 || st.Warnings != 3 {
		t.Errorf("stats %+v, warnings %q", st, warns)
	}
	for _, w := range warns {
		if !strings.Contains(w, "cannot open: no such file") {
			t.Errorf("warning %q", w)
		}
	}
}

func TestMissingDir(t *testing.T) {
	f := newFixture(t)
	st, err := importer.Run(ctx, claudecode.Format{}, importer.Options{Store: f.db, Dirs: []string{filepath.Join(f.dir, "nope")}})
	if err != nil || st.Warnings != 1 || st.Files != 0 {
		t.Errorf("Run on a missing dir = %+v, %v; want one warning", st, err)
	}
}

func TestWatch(t *testing.T) {
	f := newFixture(t)
	f.write("s1.jsonl", line("a", 1))
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	reports := make(chan importer.Stats, 100)
	go func() {
		done <- importer.Watch(wctx, claudecode.Format{}, importer.Options{Store: f.db, Dirs: []string{f.dir}, Settle: 300 * time.Millisecond},
			func(st importer.Stats) { reports <- st })
	}()
	waitFor := func(requests int64) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			if r, _ := f.totals(); r == requests {
				return
			}
			select {
			case <-reports:
			case <-time.After(50 * time.Millisecond):
			case <-deadline:
				r, _ := f.totals()
				t.Fatalf("watch: ledger has %d requests, want %d", r, requests)
			}
		}
	}
	waitFor(1)
	f.append("s1.jsonl", line("b", 2))
	waitFor(2)
	// A new project directory and a file in it.
	os.MkdirAll(filepath.Join(f.dir, "-home-u-new", "sess", "subagents"), 0o755)
	os.WriteFile(filepath.Join(f.dir, "-home-u-new", "sess", "subagents", "agent-1.jsonl"), []byte(line("c", 4)), 0o644)
	waitFor(3)
	// A response still streaming is imported once the file settles.
	f.append("s1.jsonl", strings.Replace(line("d", 8), `"stop_reason":"end_turn"`, `"stop_reason":null`, 1))
	waitFor(4)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch: %v", err)
	}
	f.want(4, 15)
}

// TestMissingDirs: a directory that does not exist is a warning, unless
// the directories are defaults that may never exist (MissingOK, serve
// --import).
func TestMissingDirs(t *testing.T) {
	f := newFixture(t)
	f.write("s.jsonl", line("msg_1", 5))
	missing := filepath.Join(t.TempDir(), "nowhere")
	for _, ok := range []bool{false, true} {
		var warns []importer.Warning
		st, err := importer.Run(ctx, claudecode.Format{}, importer.Options{Store: f.db, Dirs: []string{missing, f.dir}, MissingOK: ok,
			Now: func() time.Time { return f.now }, Warn: func(w importer.Warning) { warns = append(warns, w) }})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 1, true: 0}[ok]; st.Warnings != want || len(warns) != want {
			t.Errorf("MissingOK %v: %d warnings %v; want %d", ok, st.Warnings, warns, want)
		}
		if st.Files != 1 {
			t.Errorf("MissingOK %v: %d files; want the one in the directory that exists", ok, st.Files)
		}
	}
}

// TestSymlinks: an import stays inside the directory it was given: a link
// to a transcript elsewhere is skipped with a warning (once, also while
// watching), a link to a file inside the directory is read, and a
// directory that is itself a link works. A line that is not JSON is
// reported by its position and size, never its bytes (issue 13 item 12).
func TestSymlinks(t *testing.T) {
	f := newFixture(t)
	outside := filepath.Join(t.TempDir(), "elsewhere")
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "other-user.jsonl"), []byte(line("x", 1000)), 0o644)
	os.Symlink(filepath.Join(outside, "other-user.jsonl"), f.path("linked-out.jsonl"))
	os.MkdirAll(filepath.Join(f.dir, "-home-u-lib"), 0o755)
	os.WriteFile(filepath.Join(f.dir, "-home-u-lib", "real.jsonl"), []byte(line("a", 1)), 0o644)
	os.Symlink(filepath.Join(f.dir, "-home-u-lib", "real.jsonl"), f.path("linked-in.jsonl"))
	f.write("secret.jsonl", "password=hunter2 not json\n"+line("b", 2))
	st := f.run()
	f.want(2, 3) // a and b; x stays out
	var got []string
	for _, w := range f.warns {
		got = append(got, w.String())
	}
	joined := strings.Join(got, "\n")
	if !strings.Contains(joined, "linked-out.jsonl: symbolic link to a file outside the directory being imported: skipped") || st.Warnings != 2 {
		t.Errorf("warnings %q (stats %+v); want the outside link named", got, st)
	}
	if !strings.Contains(joined, "secret.jsonl:1: not a JSON object (skipped; 25 bytes)") || strings.Contains(joined, "hunter2") || strings.Contains(joined, "password") {
		t.Errorf("warnings %q; want the bad line's position and size, not its content", got)
	}

	// The whole tree reached through a link (a ~/.claude that is a link).
	linked := filepath.Join(t.TempDir(), "projects-link")
	os.Symlink(f.dir, linked)
	db2 := sqlite.NewDB(filepath.Join(t.TempDir(), "ledger.db"))
	if err := db2.Open(); err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var warns []string
	st, err := importer.Run(ctx, claudecode.Format{}, importer.Options{Store: db2, Dirs: []string{linked}, Workers: 1,
		Now: func() time.Time { return f.now }, Warn: func(w importer.Warning) { warns = append(warns, w.String()) }})
	if err != nil || st.Added != 2 || len(warns) != 2 {
		t.Errorf("import through a linked directory: %+v, %v, warnings %q; want a and b, and the same two warnings", st, err, warns)
	}
}
