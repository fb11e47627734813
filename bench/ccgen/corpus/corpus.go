// Package corpus writes a synthetic, reproducible Claude Code transcript
// tree (the projects/ folder under ~/.claude) together with its ground
// truth: what a correct meter must report for it.
//
// The tree imitates what Claude Code 1.0.x to 2.1.x write (see
// shared/reference/local-logs.md §1): one folder per working directory,
// session files, subagent files in the three layouts, and every kind of
// duplicate and damaged line a meter meets in practice. Generate streams the
// files to disk with bounded memory; the same Options give byte-identical
// files.
//
// # Ground truth
//
// A request is one distinct message.id among the valid assistant lines of
// the tree, in any file, sidechain or not, including the assistant lines
// wrapped in agent_progress lines (data.message). A valid assistant line is
// a complete line that parses as a JSON object whose message has an id, a
// model and a usage object. Of a request's lines, the one with the largest
// total (input + output + cache writes + cache reads) is kept; its usage and
// the UTC date of its timestamp are the request's. Lines of model
// "<synthetic>" or with isApiErrorMessage, and lines whose usage is all
// zero, are not requests. Malformed lines and the cut last line of a file
// count nothing. A usage object without a cache_creation split (Claude Code
// 1.0.x) has all of cache_creation_input_tokens as 5-minute writes. Cost is
// pricing.Default().Cost(model, timestamp, usage, false) per request.
//
// Every line of one response, and every copy of it, has a timestamp on the
// same UTC date, so the day of a request does not depend on which of its
// equal lines is kept.
package corpus

import (
	"fmt"
	"io"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

// Defaults for Options.
const (
	DefaultLines = 1_000_000
	DefaultDays  = 60
	DefaultEnd   = "2026-11-20" // YYYY-MM-DD
)

// Options choose the corpus.
type Options struct {
	// Seed selects the corpus: the same Seed and options give byte-identical
	// files and the same Truth.
	Seed uint64
	// Lines is the number of lines to write, roughly: generation stops at
	// the end of the session that reaches it. Zero means DefaultLines.
	Lines int
	// Days is the number of days the sessions spread over, ending with End.
	// Zero means DefaultDays.
	Days int
	// End is the last day of the corpus; only its UTC date is used. The zero
	// value means DefaultEnd.
	End time.Time
	// Progress, when not nil, receives a progress line now and then.
	Progress io.Writer
}

// Truth is what a correct meter reports for a corpus; see the package
// documentation for the rules it follows. Its JSON form is what
// `go run ./bench/ccgen -truth FILE` writes.
type Truth struct {
	Seed  uint64 `json:"seed"`
	Lines int64  `json:"lines"` // lines written, the cut last lines included
	Files int64  `json:"files"` // .jsonl files written, empty ones included
	Bytes int64  `json:"bytes"` // bytes written
	// Days lists the UTC dates that have requests, in order, each with its
	// models in name order.
	Days []Day `json:"days"`
	// Models holds each model's totals over all days, in name order.
	Models []ModelFigures `json:"models"`
	Totals Figures        `json:"totals"`
	Counts Counts         `json:"counts"`
}

// Day is the figures of one UTC date.
type Day struct {
	Date   string         `json:"date"` // YYYY-MM-DD
	Models []ModelFigures `json:"models"`
	Totals Figures        `json:"totals"`
}

// ModelFigures is the figures of one model (the name as written in the
// transcript, e.g. claude-sonnet-4-5-20250929).
type ModelFigures struct {
	Model string `json:"model"`
	Figures
}

// Figures are summed over requests. CacheCreationInputTokens is the sum of
// the 5-minute and 1-hour writes. CostMicros is the sum of the per-request
// costs in micro-dollars (each rounded by pricing.Price.Cost).
type Figures struct {
	Requests                   int64 `json:"requests"`
	InputTokens                int64 `json:"input_tokens"`
	OutputTokens               int64 `json:"output_tokens"`
	CacheCreation5mInputTokens int64 `json:"cache_creation_5m_input_tokens"`
	CacheCreation1hInputTokens int64 `json:"cache_creation_1h_input_tokens"`
	CacheCreationInputTokens   int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens       int64 `json:"cache_read_input_tokens"`
	WebSearchRequests          int64 `json:"web_search_requests"`
	CostMicros                 int64 `json:"cost_micros"`
}

// Usage returns f's token counts as a tokenmeter.Usage (web fetches and
// reasoning tokens are not part of the truth and stay zero).
func (f Figures) Usage() tokenmeter.Usage {
	return tokenmeter.Usage{
		InputTokens:        f.InputTokens,
		OutputTokens:       f.OutputTokens,
		CacheWrite5mTokens: f.CacheCreation5mInputTokens,
		CacheWrite1hTokens: f.CacheCreation1hInputTokens,
		CacheReadTokens:    f.CacheReadInputTokens,
		WebSearchRequests:  f.WebSearchRequests,
	}
}

// TotalTokens returns input + output + cache writes + cache reads.
func (f Figures) TotalTokens() int64 {
	return f.InputTokens + f.OutputTokens + f.CacheCreationInputTokens + f.CacheReadInputTokens
}

func (f *Figures) add(g Figures) {
	f.Requests += g.Requests
	f.InputTokens += g.InputTokens
	f.OutputTokens += g.OutputTokens
	f.CacheCreation5mInputTokens += g.CacheCreation5mInputTokens
	f.CacheCreation1hInputTokens += g.CacheCreation1hInputTokens
	f.CacheCreationInputTokens += g.CacheCreationInputTokens
	f.CacheReadInputTokens += g.CacheReadInputTokens
	f.WebSearchRequests += g.WebSearchRequests
	f.CostMicros += g.CostMicros
}

// Counts tell how many of each kind of line and file the corpus holds. A
// "usage line" is a valid assistant line that is a request's line (not an
// API error, usage not all zero), standalone or wrapped in an agent_progress
// line.
type Counts struct {
	// AssistantLines counts complete lines of type "assistant", API errors
	// and zero-usage lines included, agent_progress lines not.
	AssistantLines int64 `json:"assistant_lines"`
	// DuplicateLines is usage lines minus requests: what summing every line
	// would count twice.
	DuplicateLines int64 `json:"duplicate_lines"`
	// MalformedLines counts lines that are not valid JSON (random bytes, NUL
	// runs, JSON cut short, two objects run together), not the cut last
	// lines.
	MalformedLines int64 `json:"malformed_lines"`
	// TruncatedTails counts files whose last line is cut short (no trailing
	// newline). Each belongs to a response found nowhere else.
	TruncatedTails int64 `json:"truncated_tails"`
	// SidechainRequests counts requests all of whose lines have isSidechain
	// true (subagent and /btw answers).
	SidechainRequests int64 `json:"sidechain_requests"`
	// ResumeCopies counts usage lines copied verbatim into a resumed
	// session's file (same uuid, ids, timestamp and usage; sessionId the new
	// session's for most, the old one's for some).
	ResumeCopies int64 `json:"resume_copies"`
	// BtwReplays counts usage lines in subagents/agent-aside_question-*.jsonl
	// files that replay a parent response (same message.id, another
	// requestId, isSidechain true).
	BtwReplays int64 `json:"btw_replays"`
	// ProgressCopies counts agent_progress lines wrapping a subagent's
	// assistant line that is also in the subagent's own file.
	ProgressCopies int64 `json:"progress_copies"`
	// NoRequestID counts requests whose lines have no requestId, and
	// NoRequestIDLines their usage lines.
	NoRequestID      int64 `json:"no_request_id"`
	NoRequestIDLines int64 `json:"no_request_id_lines"`
	// APIErrorLines counts isApiErrorMessage lines (model <synthetic>, zero
	// usage); UsageLimitLines those of them saying
	// "Claude AI usage limit reached|<unix seconds>".
	APIErrorLines   int64 `json:"api_error_lines"`
	UsageLimitLines int64 `json:"usage_limit_lines"`
	// ZeroUsageLines counts assistant lines of a real model whose usage is
	// all zero (an aborted response); they are not requests.
	ZeroUsageLines int64 `json:"zero_usage_lines"`
	// SpacedLines counts usage lines written with a space after ':' and
	// ',' (ccusage skips them).
	SpacedLines int64 `json:"spaced_lines"`
	// SplitSameUsage counts responses written as 2-4 lines with the same
	// usage on each; SplitPartialOutput those whose lines before the last
	// say output_tokens 1..9 and stop_reason null.
	SplitSameUsage     int64 `json:"split_same_usage"`
	SplitPartialOutput int64 `json:"split_partial_output"`
	// LongContextRequests counts requests whose input side (input + cache
	// writes + cache reads) exceeds 200,000 tokens.
	LongContextRequests int64 `json:"long_context_requests"`
	// OneHourCacheRequests and WebSearchRequests count requests with
	// 1-hour cache writes and with web searches.
	OneHourCacheRequests int64 `json:"one_hour_cache_requests"`
	WebSearchRequests    int64 `json:"web_search_requests"`
	// InlineSidechainLines counts isSidechain lines in session files
	// (Claude Code 1.0.x subagents).
	InlineSidechainLines int64 `json:"inline_sidechain_lines"`
	// FlatAgentFiles counts projects/<p>/agent-<8hex>.jsonl files (2.0.x),
	// NestedAgentFiles projects/<p>/<session>/subagents/agent-<id>.jsonl
	// files (2.1.x) and AsideFiles the agent-aside_question-* ones among them.
	FlatAgentFiles   int64 `json:"flat_agent_files"`
	NestedAgentFiles int64 `json:"nested_agent_files"`
	AsideFiles       int64 `json:"aside_files"`
	// EmptyFiles counts files of zero bytes and NoUsageFiles files with
	// lines but no usage line.
	EmptyFiles   int64 `json:"empty_files"`
	NoUsageFiles int64 `json:"no_usage_files"`
	// Projects counts project folders and Sessions main session files.
	Projects int64 `json:"projects"`
	Sessions int64 `json:"sessions"`
}

// Generate writes a corpus under dir (dir/projects/...) and returns its
// truth. dir may exist; files of an earlier corpus in it are not removed, so
// use an empty directory.
func Generate(dir string, o Options) (*Truth, error) {
	if o.Lines == 0 {
		o.Lines = DefaultLines
	}
	if o.Days == 0 {
		o.Days = DefaultDays
	}
	if o.End.IsZero() {
		end, err := time.Parse(time.DateOnly, DefaultEnd)
		if err != nil {
			return nil, err
		}
		o.End = end
	}
	if o.Lines < 0 || o.Days < 0 {
		return nil, fmt.Errorf("corpus: lines %d and days %d must be positive", o.Lines, o.Days)
	}
	g := newGen(dir, o)
	return g.run()
}
