package codex

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/importer"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

const (
	// FallbackModel is the model assumed for usage read before any
	// turn_context line names one, as ccusage does.
	FallbackModel = "gpt-5"
	// MaxTurnTokens bounds each count of one response: last_token_usage
	// and the difference between two running totals.
	MaxTurnTokens = jsonscan.MaxCount
	// MaxTotalTokens bounds each count of a session's running total. A
	// long session sends its whole context with every response, so its
	// total may pass MaxTurnTokens; a thousand times that is garbage.
	MaxTotalTokens = 1000 * MaxTurnTokens
)

// Reasons recorded on events whose usage needed a choice.
const (
	ReasonFallbackModel = "model not in log, assumed " + FallbackModel
	ReasonReset         = "running total went backwards; counted as a fresh start"
	ReasonNoBaseline    = "earlier usage of the session is not in this file; counted last_token_usage only"
	reasonCachedCapped  = "cached_input_tokens above input_tokens; capped"
	reasonWrittenCapped = "cache_write_input_tokens above the uncached input_tokens; capped"
	reasonReasonCapped  = "reasoning_output_tokens above output_tokens; capped"
)

const (
	stateVersion = 1
	maxID        = 128  // bytes of a session id
	maxModel     = 128  // bytes of a model name
	maxCwd       = 1024 // bytes of a working directory kept as the project
	maxCopied    = 16   // ancestors' session_meta lines remembered
)

// DefaultDirs returns the directories the Codex CLI writes sessions to:
// $CODEX_HOME/sessions and $CODEX_HOME/archived_sessions when CODEX_HOME is
// set, else the same under ~/.codex. A session archived after it was
// imported is read again under its new path and adds nothing: its events
// have the same keys.
func DefaultDirs(getenv func(string) string, home string) []string {
	root := ""
	if getenv != nil {
		root = getenv("CODEX_HOME")
	}
	if root == "" {
		if home == "" {
			return nil
		}
		root = filepath.Join(home, ".codex")
	}
	return []string{filepath.Join(root, "sessions"), filepath.Join(root, "archived_sessions")}
}

// Format is the Codex CLI rollout format.
type Format struct{}

var _ importer.Format = Format{}

// Source implements importer.Format.
func (Format) Source() tokenmeter.Source { return tokenmeter.SourceCodex }

// Match implements importer.Format: rollout-*.jsonl.
func (Format) Match(path string) bool {
	ok, _ := filepath.Match("rollout-*.jsonl", filepath.Base(path))
	return ok
}

// Open implements importer.Format. A state that cannot be read is reported
// with the first line, and reading goes on as from a file's start: the
// first running total then counts only its last_token_usage (see the
// package documentation).
func (Format) Open(path, state string) importer.Parser {
	p := &Parser{file: idFromPath(path)}
	p.st.V = stateVersion
	if state != "" {
		var s fileState
		if json.Unmarshal([]byte(state), &s) != nil || !s.valid() {
			p.warn = "saved import state unreadable; reading on without it"
		} else {
			p.st = s
		}
	}
	return p
}

// Parser reads one rollout file.
type Parser struct {
	file   string // the session id in the file name, for files whose session_meta is unread
	st     fileState
	events []tokenmeter.Event
	warn   string // about the saved state, returned with the first line
}

// fileState is what reading on from an offset needs to know.
type fileState struct {
	V       int    `json:"v"`
	Session string `json:"session,omitempty"`
	Parent  string `json:"parent,omitempty"` // as the file's own session_meta declares it
	Cwd     string `json:"cwd,omitempty"`
	Model   string `json:"model,omitempty"`
	// Root is the lineage root, fixed at the first token_count; until then
	// Copied holds the other sessions' session_meta lines read.
	Root   string  `json:"root,omitempty"`
	Copied []meta  `json:"copied,omitempty"`
	Totals *totals `json:"totals,omitempty"` // the last running total read
	// Covered is the usage of the file's own token_usage_record lines read
	// since that total: the next total has counted them already.
	Covered *totals `json:"covered,omitempty"`
	// Last is the usage of the event the last total gave, while no record
	// has followed it: a record with exactly that usage is the same
	// response, written after its total.
	Last *totals `json:"last,omitempty"`
}

type meta struct {
	ID     string `json:"id"`
	Parent string `json:"parent,omitempty"`
}

// totals are Codex's token counts (input includes cached and written,
// output includes reasoning).
type totals struct {
	Input     int64 `json:"input"`
	Cached    int64 `json:"cached"`
	Output    int64 `json:"output"`
	Reasoning int64 `json:"reasoning"`
	// Written is cache_write_input_tokens (Codex 0.16x), input written to
	// the prompt cache; 0 in older logs.
	Written int64 `json:"written,omitempty"`
}

func (s *fileState) valid() bool {
	ok := s.V == stateVersion && len(s.Copied) <= maxCopied &&
		(s.Session == "" || plainID(s.Session)) && (s.Parent == "" || plainID(s.Parent)) &&
		(s.Root == "" || plainID(s.Root)) && (s.Model == "" || plainModel(s.Model)) && len(s.Cwd) <= maxCwd
	for _, m := range s.Copied {
		ok = ok && plainID(m.ID) && (m.Parent == "" || plainID(m.Parent))
	}
	most := totals{MaxTotalTokens, MaxTotalTokens, MaxTotalTokens, MaxTotalTokens, MaxTotalTokens}
	for _, t := range []*totals{s.Totals, s.Covered, s.Last} {
		if t != nil {
			ok = ok && t.within(most) && totals{}.within(*t)
		}
	}
	return ok
}

// within reports whether every count of t is at most u's.
func (t totals) within(u totals) bool {
	return t.Input <= u.Input && t.Cached <= u.Cached && t.Output <= u.Output && t.Reasoning <= u.Reasoning && t.Written <= u.Written
}

func (t totals) minus(u totals) totals {
	return totals{t.Input - u.Input, t.Cached - u.Cached, t.Output - u.Output, t.Reasoning - u.Reasoning, t.Written - u.Written}
}

func (t totals) plus(u totals) totals {
	return totals{t.Input + u.Input, t.Cached + u.Cached, t.Output + u.Output, t.Reasoning + u.Reasoning, t.Written + u.Written}
}

func (t totals) largest() int64 { return max(t.Input, t.Cached, t.Output, t.Reasoning, t.Written) }

var (
	markTokenCount  = []byte("token_count")
	markRecord      = []byte("token_usage_record")
	markSessionMeta = []byte("session_meta")
	markTurnContext = []byte("turn_context")
)

// Line implements importer.Parser.
func (p *Parser) Line(b []byte, n, off int64) string {
	w := p.line(b)
	if p.warn != "" {
		if w != "" {
			w = p.warn + "; " + w
		} else {
			w = p.warn
		}
		p.warn = ""
	}
	return w
}

func (p *Parser) line(b []byte) string {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return ""
	}
	if t[0] != '{' || t[len(t)-1] != '}' {
		return "not a JSON object (skipped)"
	}
	if !bytes.Contains(t, markTokenCount) && !bytes.Contains(t, markRecord) && !bytes.Contains(t, markSessionMeta) && !bytes.Contains(t, markTurnContext) {
		return ""
	}
	var ts, typ, payload []byte
	if jsonscan.EachMember(t, func(k []byte, s, e int) {
		switch string(k) {
		case "timestamp":
			ts = t[s:e]
		case "type":
			typ = t[s:e]
		case "payload":
			payload = t[s:e]
		}
	}) != nil {
		return "not a JSON object (skipped)"
	}
	kind, ok := str(typ)
	if !ok {
		return "type is " + kindOf(typ) + ", want a string (skipped)"
	}
	switch kind {
	case "session_meta":
		return prefix("session_meta", p.sessionMeta(payload))
	case "turn_context":
		return prefix("turn_context", p.turnContext(payload))
	case "event_msg":
		return p.eventMsg(ts, payload)
	case "token_usage_record":
		return prefix("token_usage_record", p.usageRecord(ts, payload))
	}
	return ""
}

func prefix(what, w string) string {
	if w == "" {
		return ""
	}
	return what + ": " + w + " (skipped)"
}

func (p *Parser) sessionMeta(payload []byte) string {
	var id, cwd, forked, source []byte
	if jsonscan.EachMember(payload, func(k []byte, s, e int) {
		switch string(k) {
		case "id":
			id = payload[s:e]
		case "cwd":
			cwd = payload[s:e]
		case "forked_from_id":
			forked = payload[s:e]
		case "source":
			source = payload[s:e]
		}
	}) != nil {
		return notObject("payload", payload)
	}
	sid, ok := str(id)
	if !ok {
		return "id is " + kindOf(id) + ", want a string"
	}
	if !plainID(sid) {
		return "id missing or not a plain identifier"
	}
	dir, ok := str(cwd)
	if !ok {
		return "cwd is " + kindOf(cwd) + ", want a string"
	}
	parent, ok := str(forked)
	if !ok {
		return "forked_from_id is " + kindOf(forked) + ", want a string"
	}
	if parent == "" {
		parent = spawnParent(source)
	}
	if parent != "" && !plainID(parent) {
		return "fork parent is not a plain identifier"
	}
	switch {
	case p.st.Session == "":
		p.st.Session, p.st.Parent = sid, parent
		if dir != "" {
			p.st.Cwd = project(dir)
		}
	case sid == p.st.Session:
	case p.st.Root == "" && len(p.st.Copied) < maxCopied:
		// An ancestor's session_meta, copied with its history.
		for _, m := range p.st.Copied {
			if m.ID == sid {
				return ""
			}
		}
		p.st.Copied = append(p.st.Copied, meta{ID: sid, Parent: parent})
	}
	return ""
}

// project makes a working directory an event's Project: valid UTF-8 (so it
// survives the state's JSON unchanged) of at most maxCwd bytes.
func project(dir string) string {
	return jsonscan.Clip(strings.ToValidUTF8(dir, "\uFFFD"), maxCwd-len("…"))
}

// spawnParent returns source.subagent.thread_spawn.parent_thread_id, or "".
// source is a string ("cli", "exec") for sessions that are not sub-agents.
func spawnParent(source []byte) string {
	v := member(source, "subagent")
	v = member(v, "thread_spawn")
	s, _ := str(member(v, "parent_thread_id"))
	return s
}

// member returns the raw value of key in the JSON object obj, or nil.
func member(obj []byte, key string) []byte {
	var v []byte
	if len(obj) == 0 || obj[0] != '{' {
		return nil
	}
	if jsonscan.EachMember(obj, func(k []byte, s, e int) {
		if string(k) == key {
			v = obj[s:e]
		}
	}) != nil {
		return nil
	}
	return v
}

func (p *Parser) turnContext(payload []byte) string {
	var model, cwd []byte
	if jsonscan.EachMember(payload, func(k []byte, s, e int) {
		switch string(k) {
		case "model":
			model = payload[s:e]
		case "cwd":
			cwd = payload[s:e]
		}
	}) != nil {
		return notObject("payload", payload)
	}
	m, ok := str(model)
	if !ok {
		return "model is " + kindOf(model) + ", want a string"
	}
	if m != "" && !plainModel(m) {
		return "model is not a plausible model name"
	}
	dir, ok := str(cwd)
	if !ok {
		return "cwd is " + kindOf(cwd) + ", want a string"
	}
	if m != "" {
		p.st.Model = m
	}
	if dir != "" && p.st.Cwd == "" {
		p.st.Cwd = project(dir)
	}
	return ""
}

func (p *Parser) eventMsg(ts, payload []byte) string {
	var typ, info []byte
	if jsonscan.EachMember(payload, func(k []byte, s, e int) {
		switch string(k) {
		case "type":
			typ = payload[s:e]
		case "info":
			info = payload[s:e]
		}
	}) != nil {
		return prefix("event_msg", notObject("payload", payload))
	}
	if kind, ok := str(typ); !ok || kind != "token_count" {
		return "" // another event that mentions token_count
	}
	return prefix("token_count", p.tokenCount(ts, info))
}

func (p *Parser) tokenCount(ts, info []byte) string {
	if jsonscan.IsNull(info) {
		return "" // the session's first token_count: nothing used yet
	}
	var total, last []byte
	if jsonscan.EachMember(info, func(k []byte, s, e int) {
		switch string(k) {
		case "total_token_usage":
			total = info[s:e]
		case "last_token_usage":
			last = info[s:e]
		}
	}) != nil {
		return notObject("info", info)
	}
	if jsonscan.IsNull(total) {
		return "info without total_token_usage"
	}
	t, w := parseTotals("total_token_usage", total, MaxTotalTokens)
	if w != "" {
		return w
	}
	var l *totals
	if !jsonscan.IsNull(last) {
		v, w := parseTotals("last_token_usage", last, MaxTurnTokens)
		if w != "" {
			return w
		}
		l = &v
	}
	s, ok := str(ts)
	if !ok || s == "" {
		return "no timestamp"
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "timestamp is not RFC 3339"
	}
	return p.count(at.UTC(), t, l)
}

// count turns a running total into an event when it advanced.
func (p *Parser) count(at time.Time, t totals, last *totals) string {
	var (
		d     totals
		notes []string
	)
	switch prev := p.st.Totals; {
	case prev == nil:
		d = t
		if last != nil && *last != t && last.within(t) {
			d = *last
			notes = append(notes, ReasonNoBaseline)
		}
	case t == *prev:
		return "" // re-emitted
	case prev.within(t):
		d = t.minus(*prev)
	default:
		d = t
		notes = append(notes, ReasonReset)
	}
	if n := d.largest(); n > MaxTurnTokens {
		return fmt.Sprintf("one response of %d tokens is implausibly large", n)
	}
	p.fixRoot()
	p.st.Totals = &t
	if c := p.st.Covered; c != nil {
		// The file's own records since the last total were counted as they
		// came: only what they do not cover is left (records are exact, so
		// records that exceed the difference leave nothing).
		if c.within(d) {
			d = d.minus(*c)
		} else {
			d = totals{}
		}
		p.st.Covered = nil
	}
	p.st.Last = nil
	if d == (totals{}) {
		return ""
	}
	if p.emit(at, p.totalsKey(t), d, "", notes) {
		p.st.Last = &d
	}
	return ""
}

// totalsKey is the request key of the response after which the running
// total is t: "codex:" + the lineage root + ":" + input.cached.output.reasoning.
func (p *Parser) totalsKey(t totals) string {
	return "codex:" + p.st.Root + ":" + strconv.FormatInt(t.Input, 10) + "." + strconv.FormatInt(t.Cached, 10) + "." +
		strconv.FormatInt(t.Output, 10) + "." + strconv.FormatInt(t.Reasoning, 10)
}

// emit adds the event of one response with Codex's counts d under request
// key rk, and reports whether it did (counts that the caps reduce to
// nothing give none).
func (p *Parser) emit(at time.Time, rk string, d totals, responseID string, notes []string) bool {
	cached := min(d.Cached, d.Input)
	if cached < d.Cached {
		notes = append(notes, reasonCachedCapped)
	}
	written := min(d.Written, d.Input-cached)
	if written < d.Written {
		notes = append(notes, reasonWrittenCapped)
	}
	reasoning := min(d.Reasoning, d.Output)
	if reasoning < d.Reasoning {
		notes = append(notes, reasonReasonCapped)
	}
	usage := tokenmeter.Usage{
		InputTokens:        d.Input - cached - written,
		CacheReadTokens:    cached,
		CacheWrite5mTokens: written,
		OutputTokens:       d.Output,
		ReasoningTokens:    reasoning,
	}
	if usage.IsZero() {
		return false // only counts that the caps removed
	}
	model := p.st.Model
	if model == "" {
		model = FallbackModel
		notes = append(notes, ReasonFallbackModel)
	}
	session := p.st.Session
	if session == "" {
		session = p.file
	}
	p.events = append(p.events, tokenmeter.Event{
		Key: tokenmeter.EventKey(rk, tokenmeter.KindCompleted), RequestKey: rk, Kind: tokenmeter.KindCompleted,
		Time: at, Source: tokenmeter.SourceCodex, Provider: "openai", Model: model,
		Session: session, Project: p.st.Cwd, Outcome: tokenmeter.OutcomeOK, Reason: strings.Join(notes, "; "),
		Usage: usage, UsageKnown: true, ResponseID: responseID,
	})
	return true
}

// usageRecord reads a token_usage_record line: the usage of one response
// and its Responses API id (see the package documentation).
func (p *Parser) usageRecord(ts, payload []byte) string {
	var thread, response, usage []byte
	if jsonscan.EachMember(payload, func(k []byte, s, e int) {
		switch string(k) {
		case "thread_id":
			thread = payload[s:e]
		case "response_id":
			response = payload[s:e]
		case "usage":
			usage = payload[s:e]
		}
	}) != nil {
		return notObject("payload", payload)
	}
	tid, ok := str(thread)
	if !ok {
		return "thread_id is " + kindOf(thread) + ", want a string"
	}
	rid, ok := str(response)
	switch {
	case !ok:
		return "response_id is " + kindOf(response) + ", want a string"
	case rid == "":
		return "no response_id"
	case !plainID(rid):
		return "response_id is not a plain identifier"
	}
	if jsonscan.IsNull(usage) {
		return "no usage"
	}
	u, w := parseTotals("usage", usage, MaxTurnTokens)
	if w != "" {
		return w
	}
	s, ok := str(ts)
	if !ok || s == "" {
		return "no timestamp"
	}
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "timestamp is not RFC 3339"
	}
	at = at.UTC()
	own := p.st.Session
	if own == "" {
		own = p.file
	}
	p.fixRoot()
	switch {
	case tid != "" && tid != own:
		// Another thread's response, forwarded into this file (a one-shot
		// delegate): not in this file's totals; keyed by its id.
		p.emit(at, "codex:"+rid, u, rid, nil)
	case p.st.Last != nil && *p.st.Last == u:
		// Written after the total that already counted it: the same
		// response, under the same key.
		p.st.Last = nil
		p.emit(at, p.totalsKey(*p.st.Totals), u, rid, nil)
	default:
		p.st.Last = nil
		covered := u
		if p.st.Covered != nil {
			covered = p.st.Covered.plus(u)
		}
		p.st.Covered = &covered
		base := totals{}
		if p.st.Totals != nil {
			base = *p.st.Totals
		}
		// The key of the total that will follow: a fork's copy of that
		// total (copies carry totals, never records) gets the same key.
		p.emit(at, p.totalsKey(base.plus(covered)), u, rid, nil)
	}
	return ""
}

// fixRoot settles the lineage root before the file's first running total
// (see the package documentation).
func (p *Parser) fixRoot() {
	if p.st.Root != "" {
		return
	}
	own := p.st.Session
	if own == "" {
		own = p.file
	}
	chain := append([]meta{{ID: own, Parent: p.st.Parent}}, p.st.Copied...)
	p.st.Root, p.st.Copied = lineageRoot(chain), nil
}

// lineageRoot follows parents from chain[0]. A meta that names no parent
// takes the one after it in the file as its parent.
func lineageRoot(chain []meta) string {
	seen := make([]bool, len(chain))
	i := 0
	for {
		seen[i] = true
		parent := chain[i].Parent
		if parent == "" && i+1 < len(chain) {
			parent = chain[i+1].ID
		}
		if parent == "" {
			return chain[i].ID
		}
		j := -1
		for k, m := range chain {
			if m.ID == parent {
				j = k
				break
			}
		}
		switch {
		case j < 0:
			return parent
		case seen[j]:
			return chain[i].ID // a cycle: stop where it closes
		}
		i = j
	}
}

// parseTotals reads a TokenUsage object.
func parseTotals(field string, v []byte, limit int64) (totals, string) {
	var (
		t   totals
		bad string
	)
	count := func(name string, x []byte) int64 {
		if bad != "" {
			return 0
		}
		n, w := parseCount(field+"."+name, x, limit)
		bad = w
		return n
	}
	if jsonscan.EachMember(v, func(k []byte, s, e int) {
		x := v[s:e]
		switch string(k) {
		case "input_tokens":
			t.Input = count("input_tokens", x)
		case "cached_input_tokens":
			t.Cached = count("cached_input_tokens", x)
		case "output_tokens":
			t.Output = count("output_tokens", x)
		case "reasoning_output_tokens":
			t.Reasoning = count("reasoning_output_tokens", x)
		case "cache_write_input_tokens":
			t.Written = count("cache_write_input_tokens", x)
		}
	}) != nil {
		return t, notObject(field, v)
	}
	return t, bad
}

// parseCount reads a non-negative integer no larger than limit; null is 0.
func parseCount(field string, v []byte, limit int64) (int64, string) {
	if jsonscan.IsNull(v) {
		return 0, ""
	}
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return 0, field + " is " + kindOf(v) + ", want an integer"
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && v[0] == '-':
		return 0, field + " is negative"
	case errors.Is(err, strconv.ErrRange):
		return 0, field + " is implausibly large: " + jsonscan.Clip(string(v), 24)
	case err != nil:
		return 0, field + " is not an integer: " + jsonscan.Clip(string(v), 24)
	case n < 0:
		return 0, fmt.Sprintf("%s is negative (%d)", field, n)
	case n > limit:
		return 0, fmt.Sprintf("%s is implausibly large (%d)", field, n)
	}
	return n, ""
}

// str decodes a JSON string; null or absent is "". ok is false for any
// other value.
func str(v []byte) (s string, ok bool) {
	if jsonscan.IsNull(v) {
		return "", true
	}
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// notObject explains why v, the value of field, is not a JSON object.
func notObject(field string, v []byte) string {
	if k := kindOf(v); k != "an object" {
		return field + " is " + k + ", want an object"
	}
	return field + " is malformed JSON"
}

// kindOf names the kind of a raw JSON value, for warnings that must not
// echo it.
func kindOf(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "missing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a number"
	}
	return "not JSON"
}

// plainID reports whether s can be a session id in a key: 1 to maxID
// letters, digits, '.', '_' or '-'.
func plainID(s string) bool {
	if s == "" || len(s) > maxID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// plainModel reports whether s can be a model name: printable ASCII
// without spaces ("gpt-5-codex", "gpt-oss:20b").
func plainModel(s string) bool {
	if s == "" || len(s) > maxModel {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// idFromPath returns the session id in a rollout file's name
// (rollout-2025-10-06T09-14-02-<uuid>.jsonl), or the name itself made
// plain when it has none.
func idFromPath(path string) string {
	stem := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "rollout-"), ".jsonl")
	if len(stem) >= 36 && isUUID(stem[len(stem)-36:]) {
		return stem[len(stem)-36:]
	}
	b := []byte(stem)
	for i, c := range b {
		if !plainID(string(c)) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "unnamed"
	}
	return string(b[:min(len(b), maxID)])
}

func isUUID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return len(s) == 36
}

// End implements importer.Parser. Every line read is final, so nothing is
// held back.
func (p *Parser) End(next int64, settled bool) ([]tokenmeter.Event, int64, string) {
	events := p.events
	p.events = nil
	st, _ := json.Marshal(p.st)
	return events, next, string(st)
}
