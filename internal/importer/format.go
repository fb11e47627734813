// Package importer reads the usage logs that AI coding tools already write
// (Claude Code transcripts, Codex CLI sessions) into the ledger.
//
// The driver (Run, Watch) finds a format's files under its directories,
// reads each from where the last import stopped, hands complete lines to the
// format's Parser and writes the events with the file's new position in one
// ledger transaction (tokenmeter.Store.Import). So an import is incremental
// (only new bytes are read), idempotent (event keys are derived from the
// logs' own ids, and a re-read file adds nothing), and crash-safe (a file's
// position never runs ahead of the events read up to it). A line still being
// written (no newline yet) is left for the next run. Bad input (unreadable
// files, garbage, over-long lines) is reported as a Warning naming the file
// and line, and the rest is imported.
package importer

import (
	"fmt"

	"github.com/tokenmeter/tokenmeter"
)

// Format is one kind of log.
type Format interface {
	// Source names the events the format produces.
	Source() tokenmeter.Source
	// Match reports whether a file found under one of the format's
	// directories is one of its logs.
	Match(path string) bool
	// Open starts reading path at a saved position: state is what the
	// Parser's End returned for that position ("" at the start of a file).
	Open(path, state string) Parser
}

// Parser reads one file's new lines, in order, and turns them into events.
type Parser interface {
	// Line reads one complete line (newline removed) numbered n (1-based)
	// that starts at byte offset off. A non-empty result is a warning about
	// the line (it is skipped; reading goes on).
	Line(line []byte, n, off int64) (warning string)
	// End is called after the last complete line; next is the offset just
	// past it. settled reports whether the file has stopped changing, so
	// that a response whose lines may still be arriving can be emitted.
	// End returns the events read (RequestKey, Key, Kind, Time, Source,
	// Provider, Model, Usage and the rest; the driver prices them), the
	// offset the next import resumes from (at most next: a parser may hold
	// back lines it could not finish), and the state to resume with.
	End(next int64, settled bool) (events []tokenmeter.Event, resume int64, state string)
}

// Warning is a problem with one file or line; the import goes on without it.
type Warning struct {
	Path string `json:"path"`
	Line int64  `json:"line,omitempty"` // 0: the file as a whole
	Msg  string `json:"message"`
}

func (w Warning) String() string {
	if w.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", w.Path, w.Line, w.Msg)
	}
	return w.Path + ": " + w.Msg
}
