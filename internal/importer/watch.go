package importer

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultRescan is how often Watch walks the directories in full, to catch
// what file notifications miss (new directories created between a watch and
// its first file, file systems without notifications).
const DefaultRescan = time.Minute

// Watch imports everything once, then follows the directories: a file that
// is written to is read again (only its new bytes) shortly after, and
// Settle after its last write so that a response held back while it was
// streaming is imported. report is called after every pass that read
// something. Watch returns when ctx ends (nil) or the ledger fails.
func Watch(ctx context.Context, f Format, opts Options, report func(Stats)) error {
	if opts.BatchEvents == 0 {
		// A watcher usually shares the ledger with the gateway (serve
		// --import): short transactions keep the gateway's commits waiting
		// for milliseconds, not for a whole batch of a big first pass.
		opts.BatchEvents = 1000
	}
	im := newRun(f, opts)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	watchTree := func() {
		for _, dir := range im.o.Dirs {
			filepath.WalkDir(walkRoot(dir), func(path string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					w.Add(filepath.Clean(path)) // a failure (limit reached) is covered by the rescan
				}
				return nil
			})
		}
	}
	watchTree()
	pass := func(paths []string) error {
		before := im.warns
		st, err := im.importFiles(ctx, paths)
		if err != nil {
			return err
		}
		if st.Read > 0 || im.warns != before {
			report(st)
		}
		return nil
	}
	if err := pass(im.discover(ctx)); err != nil {
		return ignoreCancel(err)
	}

	const debounce = 200 * time.Millisecond
	dirty := make(map[string]bool)       // files written since the last pass
	settle := make(map[string]time.Time) // files to read again once settled
	tick := time.NewTicker(debounce)
	defer tick.Stop()
	rescan := time.NewTicker(DefaultRescan)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					w.Add(ev.Name)
					filepath.WalkDir(ev.Name, func(path string, d fs.DirEntry, err error) error {
						if err == nil && d.IsDir() {
							w.Add(path)
						} else if err == nil && f.Match(path) {
							dirty[path] = true
						}
						return nil
					})
					continue
				}
			}
			if (ev.Has(fsnotify.Write) || ev.Has(fsnotify.Create)) && f.Match(ev.Name) {
				dirty[ev.Name] = true
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			im.warn(Warning{Path: strings.Join(im.o.Dirs, ","), Msg: "file notifications: " + err.Error()})
		case now := <-tick.C:
			var paths []string
			for p := range dirty {
				paths = append(paths, p)
				settle[p] = now.Add(im.o.Settle)
			}
			clear(dirty)
			for p, at := range settle {
				if !now.Before(at) {
					paths = append(paths, p)
					delete(settle, p)
				}
			}
			if len(paths) == 0 {
				continue
			}
			if err := pass(dedupe(paths)); err != nil {
				return ignoreCancel(err)
			}
		case <-rescan.C:
			watchTree()
			if err := pass(im.discover(ctx)); err != nil {
				return ignoreCancel(err)
			}
		}
	}
}

func dedupe(paths []string) []string {
	seen := make(map[string]bool, len(paths))
	out := paths[:0]
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
