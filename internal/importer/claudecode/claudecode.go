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
		return dirs
	}
	xdg := getenv("XDG_CONFIG_HOME")
	if xdg == "" {
		xdg = filepath.Join(home, ".config")
	}
	return []string{filepath.Join(xdg, "claude", "projects"), filepath.Join(home, ".claude", "projects")}
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
	resp             []response     // parallel to events
	index            map[string]int // response key → index in events
	last             int            // index of the response of the last usage line, -1 if none
	lastFinal        bool           // that line had a stop_reason
	scratch          line           // reused per line
}

type response struct {
	total     int64
	sidechain bool
	first     int64 // offset of its first line in this read
}

// line is what one transcript line says about usage.
type line struct {
	typ, session, cwd, requestID, uuid, timestamp string
	sidechain, apiError, final                    bool
	msgID, model                                  string
	usage                                         tokenmeter.Usage
	hasUsage                                      bool
}

var usageKey = []byte(`"usage"`)

// Line implements importer.Parser.
func (p *Parser) Line(b []byte, n, off int64) string {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return ""
	}
	if t[0] != '{' || t[len(t)-1] != '}' {
		return "not a JSON object (skipped): " + jsonscan.Excerpt(t, 0)
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
	if !l.hasUsage || l.apiError || l.model == "<synthetic>" {
		return ""
	}
	if l.usage.TotalTokens() == 0 && l.usage.WebSearchRequests == 0 && l.usage.WebFetchRequests == 0 {
		return ""
	}
	at, err := time.Parse(time.RFC3339Nano, l.timestamp)
	if err != nil {
		return "usage line without a valid timestamp (skipped)"
	}
	key := l.msgID
	switch {
	case key != "":
	case l.requestID != "":
		key = "req:" + l.requestID
	case l.uuid != "":
		key = "line:" + l.uuid
	default:
		return "usage line without message id, request id or uuid (skipped)"
	}
	if l.cwd != "" && p.project == "" {
		p.project = l.cwd
	}
	session := l.session
	if session == "" {
		session = p.session
	}
	total := l.usage.TotalTokens()
	if i, ok := p.index[key]; ok {
		r := &p.resp[i]
		// Keep the line with the largest total; on a tie prefer the
		// parent's line to a sidechain replay of it.
		if total > r.total || (total == r.total && r.sidechain && !l.sidechain) {
			ev := &p.events[i]
			ev.Usage, ev.Time, ev.Model, ev.UpstreamRequestID, ev.Session = l.usage, at, l.model, l.requestID, session
			r.total, r.sidechain = total, l.sidechain
		}
		p.last, p.lastFinal = i, l.final
		return ""
	}
	rk := "claude-code:" + key
	p.events = append(p.events, tokenmeter.Event{
		Key: tokenmeter.EventKey(rk, tokenmeter.KindCompleted), RequestKey: rk, Kind: tokenmeter.KindCompleted,
		Time: at, Source: tokenmeter.SourceClaudeCode, Provider: "anthropic", Endpoint: "/v1/messages",
		Model: l.model, Session: session, UpstreamRequestID: l.requestID,
		Outcome: tokenmeter.OutcomeOK, Usage: l.usage, UsageKnown: true,
	})
	p.resp = append(p.resp, response{total: total, sidechain: l.sidechain, first: off})
	p.index[key] = len(p.events) - 1
	p.last, p.lastFinal = len(p.events)-1, l.final
	return ""
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
			l.typ = str(v)
		case "sessionId":
			l.session = str(v)
		case "cwd":
			l.cwd = str(v)
		case "requestId":
			l.requestID = str(v)
		case "uuid":
			l.uuid = str(v)
		case "timestamp":
			l.timestamp = str(v)
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
	case l.typ == "assistant" && msg != nil:
		return parseMessage(msg, l)
	case l.typ == "progress" && data != nil:
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
	if sub.session == "" {
		sub.session = l.session
	}
	if sub.cwd == "" {
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
			l.msgID = str(v)
		case "model":
			l.model = str(v)
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
