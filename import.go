package tokenmeter

import "time"

// ImportFile is an importer's saved progress through one log file. Stores
// keep it next to the events read from the file and save both in one
// transaction (Store.Import), so progress is never recorded without the
// events read up to it, nor the reverse.
type ImportFile struct {
	Source Source `json:"source"`
	Path   string `json:"path"`
	// Identity tells a file from its replacement under the same path
	// (device and inode, plus a digest of its first bytes).
	Identity string `json:"identity"`
	// Size and ModTime are the file's as last read.
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	// Offset is where the next read starts: just past the last line that
	// was consumed. A line still being written lies beyond it.
	Offset int64 `json:"offset"`
	// Line is the number of lines before Offset, for warnings that name
	// a line.
	Line int64 `json:"line"`
	// State is the importer's own resume data for the file (for example
	// Codex's cumulative totals), opaque to the store.
	State string `json:"state,omitempty"`
}

// ImportResult says what a Store.Import call did with its events.
type ImportResult struct {
	Added int `json:"added"`
	// Duplicates were already in the ledger under the same key (the same
	// response seen in another file, or read before).
	Duplicates int `json:"duplicates"`
	// Recorded were already in the ledger as another call with the same
	// upstream request id: the gateway metered them.
	Recorded int `json:"recorded"`
	// Revised were in the ledger with less usage than this reading of
	// them: a revision event adds the difference.
	Revised int `json:"revised"`
	// Settled were metered by the gateway with estimated or unknown usage:
	// the imported figure replaced the gateway's (see Store.Import). They
	// are counted in Recorded too.
	Settled int `json:"settled,omitempty"`
}
