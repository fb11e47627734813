// Package claudecode reads Claude Code's transcripts (the JSONL files under
// ~/.claude/projects) into usage events, one per API response.
//
// Claude Code writes one line per content block of a response (thinking,
// text, tool use), each with the response's usage, and in some versions
// only the last line has the final output count. It also copies responses:
// into resumed sessions, into sub-agent progress lines, into /btw side
// questions. So responses are keyed by their message id (the id Anthropic
// gave the response; the request id when a line has none) and, among a
// file's lines of one response, the one with the largest token total is
// kept. Copies in other files carry the same key and are skipped by the
// ledger as duplicates; the response's requestId is the upstream request id
// the gateway records, so a call both proxied and logged counts once.
//
// Lines without usage, API-error lines (isApiErrorMessage, model
// "<synthetic>") and lines whose usage is all zero are not responses.
// Sidechain (sub-agent) responses are. A file's last response is held back
// while the file is still being written and its last line is not final
// (stop_reason null), so it is never imported with a partial count.
package claudecode

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/importer"
	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

// DefaultDirs returns the transcript directories Claude Code uses: each
// entry of $CLAUDE_CONFIG_DIR (a comma-separated list of config roots or
// their projects/ directories) when it is set, else
// ${XDG_CONFIG_HOME:-~/.config}/claude/projects and ~/.claude/projects.
func DefaultDirs(getenv func(string) string, home string) []string {
	if v := getenv("CLAUDE_CONFIG_DIR"); strings.TrimSpace(v) != "" {
		var dirs []string
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			if d == "" {
				continue
			}
			if filepath.Base(d) != "projects" {
				if st, err := os.Stat(filepath.Join(d, "projects")); err == nil && st.IsDir() {
					d = filepath.Join(d, "projects")
				}
			}
			dirs = append(dirs, d)
		}
		if len(dirs) > 0 {
			return dirs
		}
	}
	var dirs []string
	xdg := getenv("XDG_CONFIG_HOME")
	if xdg == "" && home != "" {
		xdg = filepath.Join(home, ".config")
	}
	if xdg != "" {
		dirs = append(dirs, filepath.Join(xdg, "claude", "projects"))
	}
	if home != "" {
		dirs = append(dirs, filepath.Join(home, ".claude", "projects"))
	}
	return dirs
}

// Format is the Claude Code transcript format.
type Format struct{}

var _ importer.Format = Format{}

func (Format) Source() tokenmeter.Source { return tokenmeter.SourceClaudeCode }

func (Format) Match(path string) bool { return strings.HasSuffix(path, ".jsonl") }

func (Format) Open(path, state string) importer.Parser {
	p := &Parser{index: make(map[string]int)}
	if state != "" {
		var s fileState
		if json.Unmarshal([]byte(state), &s) == nil {
			p.project = s.Project
		}
	}
	p.session = sessionFromPath(path)
	p.dirProject = projectFromPath(path)
	return p
}

// projectFromPath is the encoded project directory (the working directory
// with every non-alphanumeric byte replaced by '-'), used when no line
// names the real one.
func projectFromPath(path string) string {
	parts := strings.Split(filepath.ToSlash(path), "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i] == "projects" && i+1 < len(parts)-1 {
			return parts[i+1]
		}
	}
	return filepath.Base(filepath.Dir(path))
}

// fileState is what a resumed read needs: the project seen earlier in the
// file.
type fileState struct {
	Project string `json:"project,omitempty"`
}

// sessionFromPath is the session a file belongs to when its lines do not
// say: the file name for a session file, the parent session directory for
// a sub-agent file (<session>/subagents/agent-x.jsonl).
func sessionFromPath(path string) string {
	dir, base := filepath.Split(path)
	if filepath.Base(filepath.Clean(dir)) == "subagents" {
		return filepath.Base(filepath.Dir(filepath.Clean(dir)))
	}
	return strings.TrimSuffix(base, ".jsonl")
}

// Parser reads one transcript.
type Parser struct {
	session, project string
	dirProject       string
	events           []tokenmeter.Event
	resp             []response        // parallel to events
	index            map[string]int    // response key → index in events
	last             int               // index of the response of the last usage line, -1 if none
	lastFinal        bool              // that line had a stop_reason
	scratch          line              // reused per line
	names            map[string]string // interned models and sessions
	keyBuf           []byte
}

type response struct {
	total     int64
	sidechain bool
	first     int64 // offset of its first line in this read
}

// line is what one transcript line says about usage. The string members
// are raw JSON values (quotes included), decoded only when an event needs
// them: most lines of a transcript repeat a response already seen.
type line struct {
	typ, session, cwd, requestID, uuid, timestamp []byte
	sidechain, apiError, final                    bool
	msgID, model                                  []byte
	usage                                         tokenmeter.Usage
	hasUsage                                      bool
}

// is reports whether the raw JSON string v is want.
func is(v []byte, want string) bool {
	if len(v) == len(want)+2 && v[0] == '"' && string(v[1:len(v)-1]) == want {
		return true
	}
	return bytes.IndexByte(v, '\\') >= 0 && str(v) == want
}

// nonEmpty reports whether v is a JSON string with something in it.
func nonEmpty(v []byte) bool { return len(v) > 2 && v[0] == '"' && v[len(v)-1] == '"' }

// intern returns the decoded raw JSON string v, sharing one copy between
// the many events that name the same model or session.
func (p *Parser) intern(v []byte) string {
	if s, ok := p.names[string(v)]; ok {
		return s
	}
	s := str(v)
	if p.names == nil {
		p.names = make(map[string]string)
	}
	p.names[string(v)] = s
	return s
}

var usageKey = []byte(`"usage"`)

// Line implements importer.Parser.
func (p *Parser) Line(b []byte, n, off int64) string {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return ""
	}
	if t[0] != '{' || t[len(t)-1] != '}' {
		// Its position and size, never its bytes: the line may be anything.
		return "not a JSON object (skipped; " + strconv.Itoa(len(t)) + " bytes)"
	}
	if p.project == "" {
		// The session's working directory names its project; it is among
		// the first members of every envelope.
		if i := bytes.Index(t[:min(len(t), 1024)], []byte(`"cwd"`)); i >= 0 {
			if v := stringAfterColon(t, i+5); v != "" {
				p.project = v
			}
		}
	}
	if !bytes.Contains(t, usageKey) {
		return ""
	}
	l := &p.scratch
	*l = line{}
	if err := parseLine(t, l); err != "" {
		return err
	}
	if !l.hasUsage || l.apiError || is(l.model, "<synthetic>") {
		return ""
	}
	if l.usage.TotalTokens() == 0 && l.usage.WebSearchRequests == 0 && l.usage.WebFetchRequests == 0 {
		return ""
	}
	// The response's key: its message id, else its request id, else the
	// line's uuid. The lookup does not allocate; only a new key is kept.
	kb := p.keyBuf[:0]
	switch {
	case nonEmpty(l.msgID):
		kb = append(kb, l.msgID...)
	case nonEmpty(l.requestID):
		kb = append(append(kb, "req:"...), l.requestID...)
	case nonEmpty(l.uuid):
		kb = append(append(kb, "line:"...), l.uuid...)
	default:
		return "usage line without message id, request id or uuid (skipped)"
	}
	p.keyBuf = kb
	total := l.usage.TotalTokens()
	i, seen := p.index[string(kb)]
	if seen {
		r := &p.resp[i]
		p.last, p.lastFinal = i, l.final
		// Keep the line with the largest total; on a tie prefer the
		// parent's line to a sidechain replay of it.
		if !(total > r.total || (total == r.total && r.sidechain && !l.sidechain)) {
			return ""
		}
	}
	at, ok := parseTime(l.timestamp)
	if !ok {
		if seen {
			return ""
		}
		return "usage line without a valid timestamp (skipped)"
	}
	if nonEmpty(l.cwd) && p.project == "" {
		p.project = str(l.cwd)
	}
	session := p.session
	if nonEmpty(l.session) {
		session = p.intern(l.session)
	}
	model := p.intern(l.model)
	if seen {
		ev, r := &p.events[i], &p.resp[i]
		ev.Usage, ev.Time, ev.Model, ev.UpstreamRequestID, ev.Session = l.usage, at, model, str(l.requestID), session
		r.total, r.sidechain = total, l.sidechain
		return ""
	}
	var key string
	switch {
	case kb[0] == '"':
		key = str(kb)
	case kb[0] == 'r':
		key = "req:" + str(kb[4:])
	default:
		key = "line:" + str(kb[5:])
	}
	rk := "claude-code:" + key
	p.events = append(p.events, tokenmeter.Event{
		Key: tokenmeter.EventKey(rk, tokenmeter.KindCompleted), RequestKey: rk, Kind: tokenmeter.KindCompleted,
		Time: at, Source: tokenmeter.SourceClaudeCode, Provider: "anthropic", Endpoint: "/v1/messages",
		Model: model, Session: session, UpstreamRequestID: str(l.requestID),
		Outcome: tokenmeter.OutcomeOK, Usage: l.usage, UsageKnown: true,
	})
	p.resp = append(p.resp, response{total: total, sidechain: l.sidechain, first: off})
	p.index[string(kb)] = len(p.events) - 1
	p.last, p.lastFinal = len(p.events)-1, l.final
	return ""
}

// parseTime reads an ISO-8601 timestamp. Claude Code writes UTC with
// milliseconds ("2026-11-20T10:00:01.500Z"), which is read without
// allocating; anything else goes through time.Parse.
func parseTime(v []byte) (time.Time, bool) {
	if len(v) == 26 && v[0] == '"' && v[25] == '"' && v[11] == 'T' && v[20] == '.' && v[24] == 'Z' &&
		v[5] == '-' && v[8] == '-' && v[14] == ':' && v[17] == ':' {
		num := func(b []byte) (int, bool) {
			n := 0
			for _, c := range b {
				if c < '0' || c > '9' {
					return 0, false
				}
				n = n*10 + int(c-'0')
			}
			return n, true
		}
		y, ok1 := num(v[1:5])
		mo, ok2 := num(v[6:8])
		d, ok3 := num(v[9:11])
		h, ok4 := num(v[12:14])
		mi, ok5 := num(v[15:17])
		sec, ok6 := num(v[18:20])
		ms, ok7 := num(v[21:24])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && sec < 60 {
			t := time.Date(y, time.Month(mo), d, h, mi, sec, ms*int(time.Millisecond), time.UTC)
			if t.Day() == d { // not 31 February
				return t, true
			}
		}
	}
	t, err := time.Parse(time.RFC3339Nano, str(v))
	return t, err == nil
}

// End implements importer.Parser.
func (p *Parser) End(next int64, settled bool) ([]tokenmeter.Event, int64, string) {
	events, resume := p.events, next
	if !settled && len(p.events) > 0 && !p.lastFinal && p.last == len(p.events)-1 {
		// The last response may still be streaming its lines: leave it,
		// and everything after its first line, for the next run.
		resume = p.resp[p.last].first
		events = events[:p.last]
	}
	project := p.project
	if project == "" {
		project = p.dirProject
	}
	for i := range events {
		events[i].Project = project
	}
	st, _ := json.Marshal(fileState{Project: p.project})
	return events, resume, string(st)
}

// parseLine reads the members of a transcript line that matter for usage.
// Assistant lines carry the response in "message"; sub-agent progress lines
// wrap a whole assistant line in data.message.
func parseLine(b []byte, l *line) string {
	var msg, data []byte
	err := jsonscan.EachMember(b, func(k []byte, s, e int) {
		v := b[s:e]
		switch string(k) {
		case "type":
			l.typ = v
		case "sessionId":
			l.session = v
		case "cwd":
			l.cwd = v
		case "requestId":
			l.requestID = v
		case "uuid":
			l.uuid = v
		case "timestamp":
			l.timestamp = v
		case "isSidechain":
			l.sidechain = string(v) == "true"
		case "isApiErrorMessage":
			l.apiError = string(v) == "true"
		case "message":
			msg = v
		case "data":
			data = v
		}
	})
	if err != nil {
		return "not a JSON object (skipped)"
	}
	switch {
	case is(l.typ, "assistant") && msg != nil:
		return parseMessage(msg, l)
	case is(l.typ, "progress") && data != nil:
		return parseProgress(data, l)
	}
	return ""
}

// parseProgress reads an agent_progress line: data.message is the
// sub-agent's assistant line.
func parseProgress(data []byte, l *line) string {
	var inner []byte
	isAgent := false
	if jsonscan.EachMember(data, func(k []byte, s, e int) {
		switch string(k) {
		case "type":
			isAgent = str(data[s:e]) == "agent_progress"
		case "message":
			inner = data[s:e]
		}
	}) != nil || !isAgent || inner == nil || inner[0] != '{' {
		return ""
	}
	sub := line{}
	if w := parseLine(inner, &sub); w != "" {
		return "agent progress: " + w
	}
	if !sub.hasUsage {
		return ""
	}
	if sub.session == nil {
		sub.session = l.session
	}
	if sub.cwd == nil {
		sub.cwd = l.cwd
	}
	sub.sidechain = true
	*l = sub
	return ""
}

func parseMessage(msg []byte, l *line) string {
	if msg[0] != '{' {
		return ""
	}
	var usage []byte
	if jsonscan.EachMember(msg, func(k []byte, s, e int) {
		v := msg[s:e]
		switch string(k) {
		case "id":
			l.msgID = v
		case "model":
			l.model = v
		case "usage":
			usage = v
		case "stop_reason":
			l.final = !jsonscan.IsNull(v)
		}
	}) != nil {
		return "message is not a JSON object (skipped)"
	}
	if usage == nil || jsonscan.IsNull(usage) {
		return ""
	}
	u, err := parseUsage(usage)
	if err != "" {
		return err
	}
	l.usage, l.hasUsage = u, true
	return ""
}

// parseUsage reads an Anthropic usage object. The cache-write total is
// trusted; its 1-hour part comes from cache_creation (capped at the total)
// and the rest is 5-minute, as the gateway's meter does.
func parseUsage(v []byte) (tokenmeter.Usage, string) {
	var (
		u                    tokenmeter.Usage
		write, w5, w1, think int64
		hasWrite, hasSplit   bool
		bad                  string
	)
	count := func(field string, v []byte) int64 {
		if jsonscan.IsNull(v) || bad != "" {
			return 0
		}
		n, err := jsonscan.ParseCount(field, v)
		if err != nil {
			bad = "usage: " + err.Error()
		}
		return n
	}
	nested := func(field string, v []byte, fn func(k []byte, v []byte)) {
		if jsonscan.IsNull(v) || bad != "" {
			return
		}
		if jsonscan.EachMember(v, func(k []byte, s, e int) { fn(k, v[s:e]) }) != nil {
			bad = "usage: " + field + " is not an object"
		}
	}
	if jsonscan.EachMember(v, func(k []byte, s, e int) {
		x := v[s:e]
		switch string(k) {
		case "input_tokens":
			u.InputTokens = count("input_tokens", x)
		case "output_tokens":
			u.OutputTokens = count("output_tokens", x)
		case "cache_read_input_tokens":
			u.CacheReadTokens = count("cache_read_input_tokens", x)
		case "cache_creation_input_tokens":
			write, hasWrite = count("cache_creation_input_tokens", x), !jsonscan.IsNull(x)
		case "cache_creation":
			nested("cache_creation", x, func(k, y []byte) {
				switch string(k) {
				case "ephemeral_5m_input_tokens":
					w5, hasSplit = count("cache_creation.ephemeral_5m_input_tokens", y), true
				case "ephemeral_1h_input_tokens":
					w1, hasSplit = count("cache_creation.ephemeral_1h_input_tokens", y), true
				}
			})
		case "server_tool_use":
			nested("server_tool_use", x, func(k, y []byte) {
				switch string(k) {
				case "web_search_requests":
					u.WebSearchRequests = count("server_tool_use.web_search_requests", y)
				case "web_fetch_requests":
					u.WebFetchRequests = count("server_tool_use.web_fetch_requests", y)
				}
			})
		case "output_tokens_details":
			nested("output_tokens_details", x, func(k, y []byte) {
				if string(k) == "thinking_tokens" {
					think = count("output_tokens_details.thinking_tokens", y)
				}
			})
		}
	}) != nil {
		return u, "usage is not a JSON object (skipped)"
	}
	if bad != "" {
		return u, bad + " (skipped)"
	}
	if !hasWrite {
		write = w5 + w1
	}
	if hasSplit {
		u.CacheWrite1hTokens = min(w1, write)
	}
	u.CacheWrite5mTokens = write - u.CacheWrite1hTokens
	u.ReasoningTokens = min(think, u.OutputTokens)
	return u, ""
}

// str decodes a JSON string value; anything else is "".
func str(v []byte) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return ""
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1])
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// stringAfterColon returns the JSON string value that follows b[i:] (after
// optional space and a colon), or "".
func stringAfterColon(b []byte, i int) string {
	i = jsonscan.SkipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return ""
	}
	i = jsonscan.SkipSpace(b, i+1)
	if i >= len(b) || b[i] != '"' {
		return ""
	}
	e := jsonscan.SkipString(b, i)
	if e < 0 {
		return ""
	}
	return str(b[i:e])
}
