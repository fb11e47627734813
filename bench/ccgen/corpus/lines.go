package corpus

// This file holds the records of one transcript line each and their JSON
// form, with fields in the order Claude Code writes them.

// env is the envelope every user, assistant, system and progress line
// carries.
type env struct {
	parent    string // parentUuid; "" is written as null
	sidechain bool
	cwd       string
	session   string
	version   string
	branch    string
	agent     string // agentId; "" is left out
	uuid      string
	ts        int64 // Unix milliseconds
}

func (e *enc) envelope(v *env) {
	e.kstrOrNull("parentUuid", v.parent)
	e.kbool("isSidechain", v.sidechain)
	e.kstr("userType", "external")
	e.kstr("cwd", v.cwd)
	e.kstr("sessionId", v.session)
	e.kstr("version", v.version)
	e.kstr("gitBranch", v.branch)
	if v.agent != "" {
		e.kstr("agentId", v.agent)
	}
}

// Content block kinds.
const (
	blkThinking = iota
	blkText
	blkTool
)

// block is one content block: an assistant line holds exactly one.
type block struct {
	kind   uint8
	text   []byte // thinking or text; for a tool, its main string argument
	extra  []byte // thinking signature; a tool's second string argument
	tool   string // tool name
	toolID string
	path   string // a tool's file path argument
}

// usage is a message.usage object. Counts fit in int32 comfortably (the
// largest prompt generated is under 1M tokens), which keeps the truth map
// small.
type usage struct {
	in, out, cw5, cw1, cr, ws, wf int32
}

// total is input + output + cache writes + cache reads: the figure that
// picks which line of a response is kept.
func (u usage) total() int64 {
	return int64(u.in) + int64(u.out) + int64(u.cw5) + int64(u.cw1) + int64(u.cr)
}

func (u usage) prompt() int64 { return int64(u.in) + int64(u.cw5) + int64(u.cw1) + int64(u.cr) }

// asst is an assistant line.
type asst struct {
	env
	model   string
	msgID   string
	key     [2]uint64 // the 128-bit number msgID spells; zero for API errors
	reqID   string    // "" leaves requestId out
	blk     block
	stop    string // stop_reason; "" is written as null
	u       usage
	noSplit bool   // no cache_creation object, as in Claude Code 1.0.x
	apiErr  string // text of an API error line (model <synthetic>); "" otherwise
}

func (e *enc) assistant(a *asst) {
	e.obj()
	e.envelope(&a.env)
	if a.apiErr != "" {
		e.kstr("type", "assistant")
		e.kstr("uuid", a.uuid)
		e.key("timestamp")
		e.ts(a.ts)
		e.key("message")
		e.obj()
		e.kstr("id", a.msgID)
		e.knull("container")
		e.kstr("model", "<synthetic>")
		e.kstr("role", "assistant")
		e.kstr("stop_reason", "stop_sequence")
		e.kstr("stop_sequence", "")
		e.kstr("type", "message")
		e.key("usage")
		e.obj()
		e.kint("input_tokens", 0)
		e.kint("output_tokens", 0)
		e.kint("cache_creation_input_tokens", 0)
		e.kint("cache_read_input_tokens", 0)
		e.key("server_tool_use")
		e.obj()
		e.kint("web_search_requests", 0)
		e.kint("web_fetch_requests", 0)
		e.end()
		e.knull("service_tier")
		e.key("cache_creation")
		e.obj()
		e.kint("ephemeral_1h_input_tokens", 0)
		e.kint("ephemeral_5m_input_tokens", 0)
		e.end()
		e.end()
		e.key("content")
		e.arr()
		e.elem()
		e.obj()
		e.kstr("type", "text")
		e.kstr("text", a.apiErr)
		e.end()
		e.aend()
		e.end()
		e.kbool("isApiErrorMessage", true)
		e.end()
		return
	}
	e.key("message")
	e.obj()
	e.kstr("model", a.model)
	e.kstr("id", a.msgID)
	e.kstr("type", "message")
	e.kstr("role", "assistant")
	e.key("content")
	e.arr()
	e.elem()
	e.contentBlock(&a.blk)
	e.aend()
	e.kstrOrNull("stop_reason", a.stop)
	e.knull("stop_sequence")
	e.key("usage")
	e.obj()
	e.kint("input_tokens", int64(a.u.in))
	e.kint("cache_creation_input_tokens", int64(a.u.cw5)+int64(a.u.cw1))
	e.kint("cache_read_input_tokens", int64(a.u.cr))
	if !a.noSplit {
		e.key("cache_creation")
		e.obj()
		e.kint("ephemeral_5m_input_tokens", int64(a.u.cw5))
		e.kint("ephemeral_1h_input_tokens", int64(a.u.cw1))
		e.end()
	}
	e.kint("output_tokens", int64(a.u.out))
	e.key("server_tool_use")
	e.obj()
	e.kint("web_search_requests", int64(a.u.ws))
	e.kint("web_fetch_requests", int64(a.u.wf))
	e.end()
	e.kstr("service_tier", "standard")
	e.end()
	e.end()
	if a.reqID != "" {
		e.kstr("requestId", a.reqID)
	}
	e.kstr("type", "assistant")
	e.kstr("uuid", a.uuid)
	e.key("timestamp")
	e.ts(a.ts)
	e.end()
}

func (e *enc) contentBlock(b *block) {
	e.obj()
	switch b.kind {
	case blkThinking:
		e.kstr("type", "thinking")
		e.key("thinking")
		e.strb(b.text)
		e.key("signature")
		e.strb(b.extra)
	case blkText:
		e.kstr("type", "text")
		e.key("text")
		e.strb(b.text)
	default:
		e.kstr("type", "tool_use")
		e.kstr("id", b.toolID)
		e.kstr("name", b.tool)
		e.key("input")
		e.obj()
		switch b.tool {
		case "Read":
			e.kstr("file_path", b.path)
		case "Edit":
			e.kstr("file_path", b.path)
			e.key("old_string")
			e.strb(b.text)
			e.key("new_string")
			e.strb(b.extra)
		case "Write":
			e.kstr("file_path", b.path)
			e.key("content")
			e.strb(b.text)
		case "Grep":
			e.key("pattern")
			e.strb(b.text)
			e.kstr("path", b.path)
			e.kstr("output_mode", "content")
		case "Glob":
			e.kstr("pattern", "**/*.go")
			e.kstr("path", b.path)
		case "TodoWrite":
			e.key("todos")
			e.arr()
			e.elem()
			e.obj()
			e.key("content")
			e.strb(b.text)
			e.kstr("status", "in_progress")
			e.key("activeForm")
			e.strb(b.extra)
			e.end()
			e.aend()
		case "WebSearch":
			e.key("query")
			e.strb(b.text)
		case "Task":
			e.key("description")
			e.strb(b.extra)
			e.key("prompt")
			e.strb(b.text)
			e.kstr("subagent_type", "general-purpose")
		default: // Bash
			e.key("command")
			e.strb(b.text)
			e.key("description")
			e.strb(b.extra)
		}
		e.end()
	}
	e.end()
}

// user is a user line: a prompt, or the result of one tool call.
type user struct {
	env
	prompt  []byte // the prompt; nil for a tool result
	toolID  string
	result  []byte
	path    string // for a Read result: the file read
	isErr   bool
	compact bool // the summary written after a compaction
}

func (e *enc) userLine(u *user) {
	e.obj()
	e.envelope(&u.env)
	e.kstr("type", "user")
	e.key("message")
	e.obj()
	e.kstr("role", "user")
	e.key("content")
	if u.prompt != nil {
		e.strb(u.prompt)
	} else {
		e.arr()
		e.elem()
		e.obj()
		e.kstr("tool_use_id", u.toolID)
		e.kstr("type", "tool_result")
		e.key("content")
		e.strb(u.result)
		if u.isErr {
			e.kbool("is_error", true)
		}
		e.end()
		e.aend()
	}
	e.end()
	if u.compact {
		e.kbool("isCompactSummary", true)
		e.kbool("isVisibleInTranscriptOnly", true)
	}
	e.kstr("uuid", u.uuid)
	e.key("timestamp")
	e.ts(u.ts)
	if u.prompt == nil {
		e.key("toolUseResult")
		e.obj()
		if u.path != "" {
			e.kstr("type", "text")
			e.key("file")
			e.obj()
			e.kstr("filePath", u.path)
			e.key("content")
			e.strb(u.result)
			n := int64(1)
			for _, c := range u.result {
				if c == '\n' {
					n++
				}
			}
			e.kint("numLines", n)
			e.kint("startLine", 1)
			e.kint("totalLines", n)
			e.end()
		} else {
			e.key("stdout")
			e.strb(u.result)
			e.kstr("stderr", "")
			e.kbool("interrupted", false)
			e.kbool("isImage", false)
		}
		e.end()
	}
	e.end()
}

// item is one line of a response group kept for resume copies.
type item struct {
	isAsst bool
	a      asst
	u      user
}
