package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/bench/ccgen/corpus"
	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

const testLines = 8000

// generate runs the command as a user would and returns the output
// directory and the truth it wrote.
func generate(t *testing.T, seed string) (string, *corpus.Truth) {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-out", dir, "-seed", seed, "-lines", "8000", "-truth", filepath.Join(dir, "truth.json"), "-q"}
	if err := run(args, io.Discard, io.Discard); err != nil {
		t.Fatalf("run(%q): %v", args, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tr corpus.Truth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatalf("truth.json: %v", err)
	}
	return dir, &tr
}

// TestDeterministic checks that two runs with the same seed write the same
// bytes, and that another seed writes something else.
func TestDeterministic(t *testing.T) {
	d1, _ := generate(t, "7")
	d2, _ := generate(t, "7")
	f1, f2 := readTree(t, d1), readTree(t, d2)
	if len(f1) != len(f2) {
		t.Fatalf("same seed: %d files, then %d", len(f1), len(f2))
	}
	for name, b := range f1 {
		if !bytes.Equal(b, f2[name]) {
			t.Errorf("same seed: %s differs between runs", name)
		}
	}
	d3, _ := generate(t, "8")
	if f3 := readTree(t, d3); bytes.Equal(f1["truth.json"], f3["truth.json"]) {
		t.Errorf("seeds 7 and 8 gave the same truth")
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// tline is the part of a transcript line the recount reads.
type tline struct {
	Type        string `json:"type"`
	IsSidechain bool   `json:"isSidechain"`
	IsAPIError  bool   `json:"isApiErrorMessage"`
	RequestID   string `json:"requestId"`
	Timestamp   string `json:"timestamp"`
	UUID        string `json:"uuid"`
	SessionID   string `json:"sessionId"`
	Message     *struct {
		ID    string `json:"id"`
		Model string `json:"model"`
		Usage *struct {
			Input         int64 `json:"input_tokens"`
			Output        int64 `json:"output_tokens"`
			CacheWrite    int64 `json:"cache_creation_input_tokens"`
			CacheRead     int64 `json:"cache_read_input_tokens"`
			CacheCreation *struct {
				E5m int64 `json:"ephemeral_5m_input_tokens"`
				E1h int64 `json:"ephemeral_1h_input_tokens"`
			} `json:"cache_creation"`
			ServerToolUse *struct {
				WebSearch int64 `json:"web_search_requests"`
			} `json:"server_tool_use"`
		} `json:"usage"`
	} `json:"message"`
	Data *struct {
		Type    string `json:"type"`
		Message *tline `json:"message"`
	} `json:"data"`
}

type kept struct {
	u     tokenmeter.Usage
	model string
	ts    time.Time
	date  string // of the first line seen; every line must share it
	main  bool   // a line with isSidechain false
	reqID bool
}

// recount is an independent count of a tree with encoding/json, following
// the truth rules in the corpus package documentation.
type recount struct {
	req                                                        map[string]*kept
	lines, files, bytes                                        int64
	assistant, usageLines, malformed, cut, progress, apiErrors int64
	spaced, noReqLines, emptyFiles, flat, nested, aside        int64
	reqIDs                                                     map[string]map[string]bool // message.id -> requestIds
	uuidFiles                                                  map[string]map[string]bool // uuid of a usage line -> files
	sidechainInSession                                         int64
}

var (
	flatRe   = regexp.MustCompile(`^projects/[A-Za-z0-9-]+/agent-[0-9a-f]{8}\.jsonl$`)
	nestedRe = regexp.MustCompile(`^projects/[A-Za-z0-9-]+/[0-9a-f-]{36}/subagents/agent-[a-z0-9_-]+\.jsonl$`)
	asideRe  = regexp.MustCompile(`/agent-aside_question-[0-9a-f]+\.jsonl$`)
)

func count(t *testing.T, dir string) *recount {
	t.Helper()
	rc := &recount{req: map[string]*kept{}, reqIDs: map[string]map[string]bool{}, uuidFiles: map[string]map[string]bool{}}
	root := filepath.Join(dir, "projects")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		rc.files++
		switch {
		case flatRe.MatchString(rel):
			rc.flat++
		case nestedRe.MatchString(rel):
			rc.nested++
			if asideRe.MatchString(rel) {
				rc.aside++
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rc.bytes += int64(len(b))
		if len(b) == 0 {
			rc.emptyFiles++
			return nil
		}
		session := !strings.Contains(rel, "/agent-")
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 64<<20)
		var last string
		for sc.Scan() {
			rc.lines++
			if ts := rc.line(t, rel, sc.Bytes(), session); ts != "" {
				if ts < last {
					t.Errorf("%s:%d: timestamp %s after %s", rel, rc.lines, ts, last)
				}
				last = ts
			}
		}
		if b[len(b)-1] != '\n' {
			rc.cut++
			rc.malformed-- // counted by line as malformed; it is the cut tail
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// line counts one line and returns its timestamp, if it has one.
func (rc *recount) line(t *testing.T, file string, b []byte, session bool) string {
	var l tline
	if err := json.Unmarshal(b, &l); err != nil {
		rc.malformed++
		return ""
	}
	rc.usage(t, file, b, &l, session)
	return l.Timestamp
}

func (rc *recount) usage(t *testing.T, file string, b []byte, l *tline, session bool) {
	if l.IsSidechain && session {
		rc.sidechainInSession++
	}
	a := l
	switch {
	case l.Type == "assistant":
		rc.assistant++
	case l.Type == "progress" && l.Data != nil && l.Data.Type == "agent_progress" && l.Data.Message != nil:
		a = l.Data.Message
		rc.progress++
	default:
		return
	}
	if a.IsAPIError || a.Message == nil || a.Message.Model == "<synthetic>" {
		rc.apiErrors++
		return
	}
	m := a.Message
	if m.ID == "" || m.Model == "" || m.Usage == nil {
		t.Errorf("%s: assistant line without id, model or usage: %.200s", file, b)
		return
	}
	u := tokenmeter.Usage{InputTokens: m.Usage.Input, OutputTokens: m.Usage.Output, CacheReadTokens: m.Usage.CacheRead}
	if cc := m.Usage.CacheCreation; cc != nil {
		u.CacheWrite5mTokens, u.CacheWrite1hTokens = cc.E5m, cc.E1h
		if cc.E5m+cc.E1h != m.Usage.CacheWrite {
			t.Errorf("%s: cache_creation split %d+%d != %d", file, cc.E5m, cc.E1h, m.Usage.CacheWrite)
		}
	} else {
		u.CacheWrite5mTokens = m.Usage.CacheWrite
	}
	if st := m.Usage.ServerToolUse; st != nil {
		u.WebSearchRequests = st.WebSearch
	}
	if u.TotalTokens() == 0 {
		return
	}
	rc.usageLines++
	if bytes.Contains(b, []byte(`"usage": {`)) {
		rc.spaced++
	}
	if a.RequestID == "" {
		rc.noReqLines++
	}
	ts, err := time.Parse(time.RFC3339Nano, a.Timestamp)
	if err != nil || len(a.Timestamp) != 24 {
		t.Errorf("%s: timestamp %q: %v", file, a.Timestamp, err)
		return
	}
	k := rc.req[m.ID]
	if k == nil {
		k = &kept{date: ts.Format(time.DateOnly)}
		rc.req[m.ID] = k
	}
	if d := ts.Format(time.DateOnly); d != k.date {
		t.Errorf("%s: lines of %s on two dates: %s and %s", file, m.ID, k.date, d)
	}
	if k.model == "" || u.TotalTokens() > k.u.TotalTokens() {
		k.u, k.model, k.ts = u, m.Model, ts
	}
	k.main = k.main || !a.IsSidechain
	k.reqID = k.reqID || a.RequestID != ""
	if rc.reqIDs[m.ID] == nil {
		rc.reqIDs[m.ID] = map[string]bool{}
	}
	rc.reqIDs[m.ID][a.RequestID] = true
	if l.Type == "assistant" {
		if rc.uuidFiles[a.UUID] == nil {
			rc.uuidFiles[a.UUID] = map[string]bool{}
		}
		rc.uuidFiles[a.UUID][file] = true
	}
}

// figures sums the kept lines per date and model as the truth does.
func (rc *recount) figures(t *testing.T) (days []corpus.Day, totals corpus.Figures) {
	t.Helper()
	tbl := pricing.Default()
	byDay := map[string]map[string]*corpus.Figures{}
	for id, k := range rc.req {
		cost, ok := tbl.Cost(k.model, k.ts, k.u, false)
		if !ok {
			t.Errorf("%s: no price for %s", id, k.model)
		}
		f := corpus.Figures{
			Requests:                   1,
			InputTokens:                k.u.InputTokens,
			OutputTokens:               k.u.OutputTokens,
			CacheCreation5mInputTokens: k.u.CacheWrite5mTokens,
			CacheCreation1hInputTokens: k.u.CacheWrite1hTokens,
			CacheCreationInputTokens:   k.u.CacheWriteTokens(),
			CacheReadInputTokens:       k.u.CacheReadTokens,
			WebSearchRequests:          k.u.WebSearchRequests,
			CostMicros:                 int64(cost),
		}
		date := k.ts.UTC().Format(time.DateOnly)
		if byDay[date] == nil {
			byDay[date] = map[string]*corpus.Figures{}
		}
		if byDay[date][k.model] == nil {
			byDay[date][k.model] = &corpus.Figures{}
		}
		add(byDay[date][k.model], f)
		add(&totals, f)
	}
	dates := make([]string, 0, len(byDay))
	for d := range byDay {
		dates = append(dates, d)
	}
	slices.Sort(dates)
	for _, d := range dates {
		day := corpus.Day{Date: d}
		var names []string
		for m := range byDay[d] {
			names = append(names, m)
		}
		slices.Sort(names)
		for _, m := range names {
			day.Models = append(day.Models, corpus.ModelFigures{Model: m, Figures: *byDay[d][m]})
			add(&day.Totals, *byDay[d][m])
		}
		days = append(days, day)
	}
	return days, totals
}

func add(f *corpus.Figures, g corpus.Figures) {
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

// TestTruthRecount checks the truth against a naive recount of the files
// with encoding/json, and that every hostile kind of line and file is there.
func TestTruthRecount(t *testing.T) {
	dir, tr := generate(t, "1")
	rc := count(t, dir)
	days, totals := rc.figures(t)
	if diff := cmp.Diff(days, tr.Days); diff != "" {
		t.Errorf("days: recount -> truth (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(totals, tr.Totals); diff != "" {
		t.Errorf("totals: recount -> truth (-got +want):\n%s", diff)
	}
	var sidechain, noReq, longCtx, web, oneHour int64
	for _, k := range rc.req {
		if !k.main {
			sidechain++
		}
		if !k.reqID {
			noReq++
		}
		if k.u.PromptTokens() > 200_000 {
			longCtx++
		}
		if k.u.WebSearchRequests > 0 {
			web++
		}
		if k.u.CacheWrite1hTokens > 0 {
			oneHour++
		}
	}
	// Copies found by looking at the files: a usage line's uuid in two
	// files is a resume copy (progress copies are not counted by uuid); a
	// message.id under two requestIds is a /btw replay.
	var copied, replayed int64
	for _, files := range rc.uuidFiles {
		if len(files) > 1 {
			copied++
		}
	}
	for _, ids := range rc.reqIDs {
		if len(ids) > 1 {
			replayed++
		}
	}
	c := tr.Counts
	checks := []struct {
		name      string
		got, want int64
	}{
		{"lines", rc.lines, tr.Lines},
		{"files", rc.files, tr.Files},
		{"bytes", rc.bytes, tr.Bytes},
		{"assistant_lines", rc.assistant, c.AssistantLines},
		{"duplicate_lines", rc.usageLines - int64(len(rc.req)), c.DuplicateLines},
		{"malformed_lines", rc.malformed, c.MalformedLines},
		{"truncated_tails", rc.cut, c.TruncatedTails},
		{"progress_copies", rc.progress, c.ProgressCopies},
		{"api_error_lines", rc.apiErrors, c.APIErrorLines},
		{"spaced_lines", rc.spaced, c.SpacedLines},
		{"no_request_id_lines", rc.noReqLines, c.NoRequestIDLines},
		{"no_request_id", noReq, c.NoRequestID},
		{"sidechain_requests", sidechain, c.SidechainRequests},
		{"long_context_requests", longCtx, c.LongContextRequests},
		{"web_search_requests", web, c.WebSearchRequests},
		{"one_hour_cache_requests", oneHour, c.OneHourCacheRequests},
		{"empty_files", rc.emptyFiles, c.EmptyFiles},
		{"flat_agent_files", rc.flat, c.FlatAgentFiles},
		{"nested_agent_files", rc.nested, c.NestedAgentFiles},
		{"aside_files", rc.aside, c.AsideFiles},
		{"inline_sidechain_lines", rc.sidechainInSession, c.InlineSidechainLines},
		{"btw_replays", replayed, c.BtwReplays},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: recount %d, truth %d", ch.name, ch.got, ch.want)
		}
	}
	if copied == 0 || copied > c.ResumeCopies {
		t.Errorf("usage lines found in two files: %d, truth's resume_copies %d", copied, c.ResumeCopies)
	}
	// Every hostile kind is there at least once, even in a small corpus.
	for _, k := range []struct {
		name string
		n    int64
	}{
		{"duplicate_lines", c.DuplicateLines}, {"malformed_lines", c.MalformedLines},
		{"truncated_tails", c.TruncatedTails}, {"sidechain_requests", c.SidechainRequests},
		{"resume_copies", c.ResumeCopies}, {"btw_replays", c.BtwReplays},
		{"progress_copies", c.ProgressCopies}, {"no_request_id", c.NoRequestID},
		{"api_error_lines", c.APIErrorLines}, {"usage_limit_lines", c.UsageLimitLines},
		{"zero_usage_lines", c.ZeroUsageLines}, {"spaced_lines", c.SpacedLines},
		{"split_same_usage", c.SplitSameUsage}, {"split_partial_output", c.SplitPartialOutput},
		{"long_context_requests", c.LongContextRequests}, {"one_hour_cache_requests", c.OneHourCacheRequests},
		{"web_search_requests", c.WebSearchRequests}, {"inline_sidechain_lines", c.InlineSidechainLines},
		{"flat_agent_files", c.FlatAgentFiles}, {"nested_agent_files", c.NestedAgentFiles},
		{"aside_files", c.AsideFiles}, {"empty_files", c.EmptyFiles}, {"no_usage_files", c.NoUsageFiles},
	} {
		if k.n == 0 {
			t.Errorf("%s: none in a %d-line corpus", k.name, testLines)
		}
	}
	if len(tr.Models) != 5 {
		t.Errorf("models: got %d, want the 5 of the mix", len(tr.Models))
	}
}
