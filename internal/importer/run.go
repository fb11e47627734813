package importer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// MaxLine is the longest line a parser is given. Longer lines (Claude Code
// writes file-history snapshots of hundreds of megabytes) are skipped
// without being held in memory, with a warning.
const MaxLine = 16 << 20

// DefaultSettle is how long a file must have been left alone before a
// parser may treat its last lines as final.
const DefaultSettle = 10 * time.Second

// headBytes is how much of a file's beginning its identity covers, so that
// a file replaced under the same path (and the same inode) is noticed.
const headBytes = 1024

// Options configure an import.
type Options struct {
	Store  tokenmeter.Store
	Prices *pricing.Table // nil: the embedded table
	// Dirs are searched recursively for the format's files. A missing
	// directory is a warning, not an error, unless MissingOK.
	Dirs []string
	// MissingOK makes a missing directory of Dirs no warning: they are
	// default places, which may never exist (serve --import watches them
	// all).
	MissingOK bool
	// Settle: see DefaultSettle. Zero means DefaultSettle.
	Settle time.Duration
	// Workers read files in parallel; zero means GOMAXPROCS.
	Workers int
	// BatchEvents is how many events, at most, are written per ledger
	// transaction (whole files are never split); zero means 20000.
	BatchEvents int
	// Warn receives each warning as it happens; nil discards them (they
	// are counted in Stats either way).
	Warn func(Warning)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Stats summarises an import.
type Stats struct {
	Files     int   `json:"files"`           // log files found
	Read      int   `json:"files_read"`      // files with new bytes that were read
	Unchanged int   `json:"files_unchanged"` // files skipped without reading
	Reread    int   `json:"files_reread"`    // files truncated or replaced, read again from the start
	Lines     int64 `json:"lines"`           // complete lines read
	Bytes     int64 `json:"bytes"`           // bytes read
	Events    int   `json:"events"`          // usage events found in the new lines
	Added     int   `json:"events_added"`    // events new to the ledger
	// Duplicates were in the ledger already (read before, or the same
	// response in another file); Recorded were metered by the gateway.
	Duplicates   int   `json:"duplicates"`
	Recorded     int   `json:"already_recorded"`
	Revised      int   `json:"revised"`              // imported before with less usage: the difference was added
	UnknownPrice int   `json:"unknown_price_events"` // added events whose model has no price
	HeldBack     int64 `json:"bytes_held_back"`      // bytes left for the next run (lines still being written)
	Warnings     int   `json:"warnings"`
}

func (s *Stats) add(o Stats) {
	s.Files += o.Files
	s.Read += o.Read
	s.Unchanged += o.Unchanged
	s.Reread += o.Reread
	s.Lines += o.Lines
	s.Bytes += o.Bytes
	s.Events += o.Events
	s.Added += o.Added
	s.Duplicates += o.Duplicates
	s.Recorded += o.Recorded
	s.Revised += o.Revised
	s.UnknownPrice += o.UnknownPrice
	s.HeldBack += o.HeldBack
	s.Warnings += o.Warnings
}

// fileResult is one file's new events and position, written together.
type fileResult struct {
	events []tokenmeter.Event
	state  tokenmeter.ImportFile
	stats  Stats
}

// Run imports every file of format f under opts.Dirs once. It returns an
// error only when the import could not proceed (the ledger failed, or ctx
// was cancelled); problems with single files and lines are warnings.
func Run(ctx context.Context, f Format, opts Options) (Stats, error) {
	im := newRun(f, opts)
	paths := im.discover(ctx)
	return im.importFiles(ctx, paths)
}

type run struct {
	f       Format
	o       Options
	priorMu sync.Mutex // guards prior
	prior   map[string]tokenmeter.ImportFile
	missing map[string]bool // directories already reported missing
	warnMu  sync.Mutex
	warns   int
	// outside holds the symbolic links already reported as pointing out
	// of their directory (guarded by warnMu), so a watch says it once.
	outside map[string]bool
}

func newRun(f Format, o Options) *run {
	if o.Prices == nil {
		o.Prices = pricing.Default()
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.BatchEvents <= 0 {
		o.BatchEvents = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &run{f: f, o: o}
}

func (im *run) warn(w Warning) {
	im.warnMu.Lock()
	im.warns++
	im.warnMu.Unlock()
	if im.o.Warn != nil {
		im.o.Warn(w)
	}
}

// discover walks the directories and returns the format's files, sorted.
// Broken symbolic links and unreadable directories are warnings.
func (im *run) discover(ctx context.Context) []string {
	var paths []string
	seen := make(map[string]bool)
	for _, dir := range im.o.Dirs {
		if _, err := os.Stat(dir); err != nil {
			// Said once per run or watch: a default directory that does
			// not exist (yet) is not news every minute.
			if !im.missing[dir] && !(im.o.MissingOK && errors.Is(err, fs.ErrNotExist)) {
				if im.missing == nil {
					im.missing = make(map[string]bool)
				}
				im.missing[dir] = true
				im.warn(Warning{Path: dir, Msg: "cannot read directory: " + pathError(err)})
			}
			continue
		}
		delete(im.missing, dir)
		filepath.WalkDir(walkRoot(dir), func(path string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && path != dir {
					return nil // removed while we walked
				}
				im.warn(Warning{Path: path, Msg: "cannot read: " + pathError(err)})
				return nil
			}
			if d.IsDir() || !im.f.Match(path) {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if st, err := os.Stat(path); err != nil {
					im.warn(Warning{Path: path, Msg: "broken symbolic link: " + pathError(err)})
					return nil
				} else if st.IsDir() {
					return nil
				}
			} else if !d.Type().IsRegular() {
				return nil
			}
			if !seen[path] {
				seen[path] = true
				paths = append(paths, path)
			}
			return nil
		})
	}
	sort.Strings(paths)
	return paths
}

// walkRoot returns dir as filepath.WalkDir should be given it: a
// directory that is itself a symbolic link (a ~/.claude kept elsewhere)
// with a trailing separator, so that WalkDir walks its target instead of
// reporting the link; the paths below it still start with dir.
func walkRoot(dir string) string {
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return strings.TrimSuffix(dir, string(filepath.Separator)) + string(filepath.Separator)
	}
	return dir
}

// pathError describes a file system error without repeating the path.
func pathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// importFiles reads paths on Workers goroutines and writes their results
// on this one, in batches.
func (im *run) importFiles(ctx context.Context, paths []string) (Stats, error) {
	var total Stats
	total.Files = len(paths)
	if im.prior == nil {
		files, err := im.o.Store.ImportFiles(ctx, im.f.Source())
		if err != nil {
			return total, err
		}
		im.prior = make(map[string]tokenmeter.ImportFile, len(files))
		for _, f := range files {
			im.prior[f.Path] = f
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan string)
	results := make(chan fileResult, 2*im.o.Workers)
	var wg sync.WaitGroup
	for range im.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				r, ok := im.readFile(p)
				if ok {
					select {
					case results <- r:
					case <-ctx.Done():
						return
					}
				} else {
					select {
					case results <- fileResult{stats: r.stats}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, p := range paths {
			select {
			case jobs <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	// The ledger writer runs on its own goroutine, one batch behind the
	// collector, so files are read while the previous batch is written.
	type batch struct {
		events []tokenmeter.Event
		files  []tokenmeter.ImportFile
	}
	batches := make(chan batch, 1)
	var (
		werr    error
		written Stats
		wdone   = make(chan struct{})
	)
	go func() {
		defer close(wdone)
		for b := range batches {
			if werr != nil {
				continue // drain
			}
			res, err := im.o.Store.Import(ctx, b.events, b.files)
			if err != nil {
				werr = fmt.Errorf("write to the ledger: %w", err)
				cancel()
				continue
			}
			written.Added += res.Added
			written.Duplicates += res.Duplicates
			written.Recorded += res.Recorded
			written.Revised += res.Revised
			for i := range b.events {
				if b.events[i].Seq != 0 && !b.events[i].CostKnown && b.events[i].UsageKnown {
					written.UnknownPrice++
				}
			}
			im.priorMu.Lock()
			for _, f := range b.files {
				im.prior[f.Path] = f
			}
			im.priorMu.Unlock()
		}
	}()
	var cur batch
	flush := func() {
		if len(cur.events) == 0 && len(cur.files) == 0 {
			return
		}
		// Within a batch, events go in key order: the key index is then
		// updated page by page rather than at random (it makes the write
		// about a fifth faster). Copies of one response from several files
		// become one, the fullest reading; the ledger revises across
		// batches. The order is sorted through indexes: moving the events
		// themselves costs more than the sort.
		idx := make([]int32, len(cur.events))
		for i := range idx {
			idx[i] = int32(i)
		}
		evs := cur.events
		sort.SliceStable(idx, func(a, b int) bool { return evs[idx[a]].Key < evs[idx[b]].Key })
		out := make([]tokenmeter.Event, 0, len(evs))
		for _, i := range idx {
			ev := &evs[i]
			if n := len(out); n > 0 && out[n-1].Key == ev.Key {
				if ev.Usage.Covers(out[n-1].Usage) {
					out[n-1] = *ev
				}
				total.Duplicates++
				continue
			}
			out = append(out, *ev)
		}
		cur.events = out
		select {
		case batches <- cur:
		case <-ctx.Done():
		}
		cur = batch{}
	}
	for r := range results {
		total.add(r.stats)
		if r.state.Path == "" {
			continue
		}
		cur.events = append(cur.events, r.events...)
		cur.files = append(cur.files, r.state)
		if len(cur.events) >= im.o.BatchEvents || len(cur.files) >= 4096 {
			flush()
		}
	}
	flush()
	close(batches)
	<-wdone
	total.Added, total.Recorded, total.Revised, total.UnknownPrice = written.Added, written.Recorded, written.Revised, written.UnknownPrice
	total.Duplicates += written.Duplicates
	err := werr
	if err == nil {
		err = ctx.Err()
	}
	total.Warnings = im.warns
	return total, err
}

// linkInside reports whether path, if it is a symbolic link, resolves to
// a file inside the directory of Options.Dirs it was found under (that
// directory's own links resolved too, so a ~/.claude that is itself a
// link works). An import reads what it was pointed at: a link in a
// transcript directory to a file elsewhere (another user's logs, a file
// that is no transcript) is skipped and said so once, not followed.
// Paths that are not links are inside by construction.
func (im *run) linkInside(path string) (inside bool, why string) {
	li, err := os.Lstat(path)
	if err != nil || li.Mode()&fs.ModeSymlink == 0 {
		return true, "" // not a link (or gone: the open says so)
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false, "broken symbolic link: " + pathError(err)
	}
	clean := filepath.Clean(path)
	for _, dir := range im.o.Dirs {
		dir = filepath.Clean(dir)
		if clean != dir && !strings.HasPrefix(clean, dir+string(filepath.Separator)) {
			continue
		}
		root, err := filepath.EvalSymlinks(dir)
		if err != nil {
			continue
		}
		if target == root || strings.HasPrefix(target, root+string(filepath.Separator)) {
			return true, ""
		}
	}
	return false, "symbolic link to a file outside the directory being imported: skipped (import that file's directory with --dir to include it)"
}

// readFile reads one file's new lines. ok is false when there is nothing
// to write (the file is unchanged or could not be read).
func (im *run) readFile(path string) (r fileResult, ok bool) {
	if inside, why := im.linkInside(path); !inside {
		im.warnMu.Lock()
		said := im.outside[path]
		if im.outside == nil {
			im.outside = make(map[string]bool)
		}
		im.outside[path] = true
		im.warnMu.Unlock()
		if !said {
			im.warn(Warning{Path: path, Msg: why})
		}
		return r, false
	}
	// Most files are unchanged since the last run: a stat tells, without
	// opening them.
	st, err := os.Stat(path)
	if err != nil {
		im.warn(Warning{Path: path, Msg: "cannot open: " + pathError(err)})
		return r, false
	}
	size, mod := st.Size(), st.ModTime().UTC().Truncate(time.Microsecond)
	node := fileNode(st)
	im.priorMu.Lock()
	prior, havePrior := im.prior[path]
	im.priorMu.Unlock()
	if havePrior && prior.Size == size && prior.ModTime.Equal(mod) && prior.Offset == size && strings.HasPrefix(prior.Identity, node+":") {
		r.stats.Unchanged++
		return r, false
	}
	fh, err := os.Open(path)
	if err != nil {
		im.warn(Warning{Path: path, Msg: "cannot open: " + pathError(err)})
		return r, false
	}
	defer fh.Close()
	if st, err = fh.Stat(); err != nil {
		im.warn(Warning{Path: path, Msg: "cannot stat: " + pathError(err)})
		return r, false
	}
	size, mod, node = st.Size(), st.ModTime().UTC().Truncate(time.Microsecond), fileNode(st)
	headLen := min(size, headBytes)
	head := make([]byte, headLen)
	if _, err := io.ReadFull(fh, head); err != nil {
		im.warn(Warning{Path: path, Msg: "cannot read: " + pathError(err)})
		return r, false
	}
	identity := func(n int64) string {
		sum := sha256.Sum256(head[:n])
		return node + ":" + strconv.FormatInt(n, 10) + ":" + hex.EncodeToString(sum[:8])
	}
	offset, line, state := int64(0), int64(0), ""
	if havePrior {
		// Resume if this is the same file, grown: the same node, at least
		// as long as what was consumed, with the same first bytes.
		var n int64
		if parts := strings.Split(prior.Identity, ":"); len(parts) >= 3 {
			n, _ = strconv.ParseInt(parts[len(parts)-2], 10, 64)
		}
		if n <= headLen && prior.Identity == identity(n) && size >= prior.Offset {
			offset, line, state = prior.Offset, prior.Line, prior.State
		} else {
			r.stats.Reread++
		}
	}
	if _, err := fh.Seek(offset, io.SeekStart); err != nil {
		im.warn(Warning{Path: path, Msg: "cannot seek: " + pathError(err)})
		return r, false
	}
	r.stats.Read++
	p := im.f.Open(path, state)
	next, lineNo, err := im.scan(fh, path, offset, line, p, &r.stats)
	if err != nil {
		// Keep what was read before the error; the next run resumes there.
		im.warn(Warning{Path: path, Line: lineNo + 1, Msg: "read error: " + pathError(err)})
	}
	settled := im.o.Now().Sub(st.ModTime()) >= im.o.Settle
	events, resume, newState := p.End(next, settled)
	if resume > next || resume < offset {
		resume = next // a parser may only hold back what it was given
	}
	if resume < next {
		// Lines held back are re-read next time; count them from there.
		lineNo -= countLines(path, resume, next)
	}
	r.stats.HeldBack += size - resume
	for i := range events {
		ev := &events[i]
		if ev.UsageKnown {
			ev.Cost, ev.CostKnown = im.o.Prices.Cost(ev.Model, ev.Time, ev.Usage, false)
		}
	}
	r.stats.Events += len(events)
	r.events = events
	r.state = tokenmeter.ImportFile{Source: im.f.Source(), Path: path, Identity: identity(min(resume, headLen)),
		Size: size, ModTime: mod, Offset: resume, Line: lineNo, State: newState}
	return r, true
}

// scan hands the complete lines after offset to p. It returns the offset
// just past the last complete line and its number.
func (im *run) scan(rd io.Reader, path string, offset, lineNo int64, p Parser, stats *Stats) (next, n int64, err error) {
	br := bufio.NewReaderSize(rd, 256<<10)
	var long []byte // a line longer than the buffer, being assembled
	tooLong := false
	pos := offset
	for {
		chunk, rerr := br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			if !tooLong {
				if len(long)+len(chunk) > MaxLine {
					tooLong, long = true, nil
				} else {
					long = append(long, chunk...)
				}
			}
			pos += int64(len(chunk))
			continue
		}
		if rerr != nil {
			// EOF (or an error) before a newline: the partial line stays
			// for the next run.
			if rerr == io.EOF {
				rerr = nil
			}
			return offset, lineNo, rerr
		}
		pos += int64(len(chunk))
		lineNo++
		stats.Lines++
		stats.Bytes += pos - offset
		switch {
		case tooLong:
			im.warn(Warning{Path: path, Line: lineNo, Msg: fmt.Sprintf("line longer than %d MiB skipped", MaxLine>>20)})
		case long != nil:
			long = append(long, chunk...)
			if w := p.Line(trimEOL(long), lineNo, offset); w != "" {
				im.warn(Warning{Path: path, Line: lineNo, Msg: w})
			}
		default:
			if w := p.Line(trimEOL(chunk), lineNo, offset); w != "" {
				im.warn(Warning{Path: path, Line: lineNo, Msg: w})
			}
		}
		long, tooLong = nil, false
		offset = pos
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

// countLines counts the newlines in path's bytes [from, to).
func countLines(path string, from, to int64) int64 {
	fh, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer fh.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for from < to {
		k, err := fh.ReadAt(buf[:min(int64(len(buf)), to-from)], from)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		from += int64(k)
		if err != nil {
			break
		}
	}
	return n
}
