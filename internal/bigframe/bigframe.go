// Package bigframe meters what is too large to hold: an SSE frame larger
// than the gateway buffers (a Responses response.completed that echoes a
// long "instructions") or a JSON response body larger than it copies. A
// Scanner reads such a frame or body a piece at a time, as the pieces are
// relayed, and keeps only the members the meters read (type, id, model,
// usage, error, and the same inside "response" and "message"), from which it
// builds a small frame or body that the meter reads as it would the
// original. It also counts the characters of the output text the frame
// carries.
//
// It guarantees bounded memory whatever it is fed: one bit per level of
// JSON nesting (at most MaxDepth levels), the first 64 KiB of an SSE
// frame's data, and at most 64 KiB of captured members. It checks the JSON's
// syntax as encoding/json does, so a frame the meter would find invalid
// becomes a small frame that is invalid too, and its error messages give
// positions, never the bytes found there. It never panics.
package bigframe

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/tokenmeter/tokenmeter/internal/sse"
)

// dataKeep is how much of a frame's data a Scanner keeps verbatim: data no
// longer than this (a frame made large by comments or other fields) reaches
// the meter whole. A variable for tests.
var dataKeep = 64 << 10

// Scanner reads one oversized SSE frame (NewFrame) or JSON body (NewBody).
// It is not safe for concurrent use.
type Scanner struct {
	sse  bool
	done bool
	lex  lexer

	// SSE framing.
	lineStart bool    // at the start of a line
	crPending bool    // the last byte was a '\r' ending a line
	emptyCR   bool    // and that line was empty: the frame ends with it
	inName    bool    // reading a field name
	fieldBuf  [8]byte // the field name's first bytes
	fieldLen  int
	field     uint8 // fieldData, fieldEvent or fieldOther
	skipSpace bool  // a space starting the value is dropped
	dataLines int
	name      []byte // the event name, at most 64 bytes
	dataLen   int64
	raw       []byte // the data's first dataKeep bytes
	size      int64  // bytes of the frame read
	usage     usageWatch
}

const (
	fieldOther uint8 = iota
	fieldData
	fieldEvent
)

// NewFrame returns a Scanner for an SSE frame, to be fed from its first
// byte.
func NewFrame() *Scanner { return &Scanner{sse: true, lineStart: true} }

// NewBody returns a Scanner for a JSON body, to be fed from its first byte.
func NewBody() *Scanner { return &Scanner{} }

// Write reads the next bytes. For a frame it returns how many bytes of p
// belong to the frame and whether the frame ended with them (at its empty
// line, as sse.FrameEnd finds it); the bytes after n belong to the frames
// that follow. A frame whose empty line ends in "\r" at the end of p is
// complete only when the next byte is known: the next Write reports it (n
// is then 0 or 1). For a body it reads all of p. Write after the frame
// ended reads nothing.
func (s *Scanner) Write(p []byte) (n int, done bool) {
	if s.done {
		return 0, true
	}
	if !s.sse {
		s.lex.write(p)
		return len(p), false
	}
	n, s.done = s.frame(p)
	s.size += int64(n)
	return n, s.done
}

// frame reads SSE lines from p.
func (s *Scanner) frame(p []byte) (int, bool) {
	i := 0
	for i < len(p) {
		if s.crPending {
			s.crPending = false
			if p[i] == '\n' {
				i++
				if s.emptyCR {
					return i, true
				}
				continue
			}
			if s.emptyCR {
				return i, true
			}
		}
		if s.lineStart {
			switch p[i] {
			case '\n':
				return i + 1, true
			case '\r':
				s.crPending, s.emptyCR = true, true
				i++
				continue
			}
			s.lineStart, s.inName, s.fieldLen = false, true, 0
		}
		if s.inName {
			c := p[i]
			switch c {
			case ':', '\n', '\r':
				s.inName = false
				s.startField()
				if c == ':' {
					s.skipSpace = true
					i++
				}
				continue // a line ending is read below
			}
			if s.fieldLen < len(s.fieldBuf) {
				s.fieldBuf[s.fieldLen] = c
			}
			s.fieldLen++
			i++
			continue
		}
		// The value, up to the line's end.
		seg := p[i:]
		eol := indexEOL(seg)
		if eol >= 0 {
			seg = seg[:eol]
		}
		if s.skipSpace && len(seg) > 0 {
			s.skipSpace = false
			if seg[0] == ' ' {
				seg = seg[1:]
			}
		}
		s.value(seg)
		if eol < 0 {
			return len(p), false
		}
		i += eol
		s.crPending, s.emptyCR = p[i] == '\r', false
		s.lineStart, s.skipSpace = true, false
		i++
	}
	return i, false
}

// indexEOL returns the index of the first "\r" or "\n" in b, or -1.
func indexEOL(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	if n < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if r := bytes.IndexByte(b[:n], '\r'); r >= 0 {
		return r
	}
	return n
}

// startField begins the value of the field whose name was just read.
func (s *Scanner) startField() {
	s.field = fieldOther
	if s.fieldLen <= len(s.fieldBuf) {
		switch string(s.fieldBuf[:s.fieldLen]) {
		case "data":
			s.field = fieldData
			if s.dataLines > 0 {
				s.data([]byte{'\n'}) // data lines are joined by "\n"
			}
			s.dataLines++
		case "event":
			s.field, s.name = fieldEvent, s.name[:0]
		}
	}
}

// value reads bytes of the current field's value.
func (s *Scanner) value(b []byte) {
	switch s.field {
	case fieldData:
		s.data(b)
	case fieldEvent:
		if room := 64 - len(s.name); room > 0 {
			s.name = append(s.name, b[:min(room, len(b))]...)
		}
	}
}

func (s *Scanner) data(b []byte) {
	s.usage.write(b)
	s.dataLen += int64(len(b))
	if room := dataKeep - len(s.raw); room > 0 {
		s.raw = append(s.raw, b[:min(room, len(b))]...)
	}
	s.lex.write(b)
}

// Event returns the frame for the meter: the event name and, as data, the
// data itself if it was no longer than 64 KiB, or else a small JSON text
// with the members captured (invalid, like the original, if the original
// was). Call it once the frame has ended, or at the end of the stream for
// a frame cut short (which is then read as if it had ended).
func (s *Scanner) Event() sse.Event {
	ev := sse.Event{Name: string(s.name)}
	if s.dataLines == 0 {
		return ev
	}
	if s.dataLen <= int64(len(s.raw)) {
		if s.raw == nil {
			s.raw = []byte{} // a data line without a value: empty, not absent
		}
		ev.Data = s.raw
		return ev
	}
	ev.Data = s.synthetic()
	switch found := s.usage.found(); {
	case found && !mayHaveUsage(ev.Data):
		ev.Data = withUsageBytes(ev.Data, s.lex.top, s.lex.err != nil)
	case !found && mayHaveUsage(ev.Data):
		ev.Data = withoutUsageBytes(ev.Data)
	}
	return ev
}

// withoutUsageBytes rewrites, in synthetic data, each string "usage" not
// followed by :null (a captured value, since the original had no usage
// member) with an escape that decodes to the same string.
func withoutUsageBytes(data []byte) []byte {
	var out []byte
	for i := 0; ; {
		j := bytes.Index(data[i:], usageKey)
		if j < 0 {
			return append(out, data[i:]...)
		}
		end := i + j + len(usageKey)
		out = append(out, data[i:i+j]...)
		if bytes.HasPrefix(data[end:], nullVal) {
			out = append(out, usageKey...)
		} else {
			out = append(out, `"us\u0061ge"`...)
		}
		i = end
	}
}

// mayHaveUsage is openai's test of whether a chat chunk may carry usage:
// the bytes "usage" not followed by :null. The chat meter decodes (and may
// find malformed) only chunks for which it holds, so the synthetic data
// holds it when the original did.
func mayHaveUsage(data []byte) bool {
	for i := 0; ; {
		j := bytes.Index(data[i:], usageKey)
		if j < 0 {
			return false
		}
		i += j + len(usageKey)
		if !bytes.HasPrefix(data[i:], nullVal) {
			return true
		}
	}
}

var (
	usageKey = []byte(`"usage"`)
	nullVal  = []byte(`:null`)
)

// withUsageBytes adds the bytes "usage" to synthetic data of the given
// kind without changing what the meters read from it: in a string or an
// array, which are not chunks anyway, and after the end of a text that is
// broken anyway (a truncated one stays truncated).
func withUsageBytes(data []byte, top byte, broken bool) []byte {
	switch {
	case broken && len(data) > 0 && data[len(data)-1] == '#':
		return append(append(data[:len(data)-1:len(data)-1], `"usage"`...), '#')
	case broken && top == '{':
		return append(comma(data[:len(data):len(data)]), `"usage"`...)
	case broken:
		return append(data[:len(data):len(data)], ` "usage"`...)
	case top == '"':
		return []byte(`""usage"`)
	case top == '[':
		return []byte(`["usage"]`)
	}
	return data
}

// usageWatch finds, in data written a piece at a time, what mayHaveUsage
// finds in all of it: it matches "usage" byte by byte, then its follower.
type usageWatch struct {
	m   int // bytes of "usage" matched, then 7 + bytes of :null matched
	hit bool
}

func (w *usageWatch) write(b []byte) {
	for i := 0; i < len(b); i++ {
		if w.hit {
			return
		}
		if w.m == 0 {
			// Nothing matched yet: skip to the next quote.
			j := bytes.IndexByte(b[i:], '"')
			if j < 0 {
				return
			}
			i += j
		}
		c := b[i]
		switch {
		case w.m < len(usageKey):
			switch {
			case c == usageKey[w.m]:
				w.m++
			case c == '"':
				w.m = 1
			default:
				w.m = 0
			}
		case c != nullVal[w.m-len(usageKey)]:
			w.hit = true
		default:
			if w.m++; w.m == len(usageKey)+len(nullVal) {
				w.m = 0 // "usage":null
			}
		}
	}
}

// found reports whether the data had "usage" not followed by :null (a
// follower cut short by the end counts).
func (w *usageWatch) found() bool { return w.hit || w.m >= len(usageKey) }

// Body returns the body for the meter: a small JSON text with the members
// captured. Call it at the end of the body. Err says whether the body was
// valid JSON.
func (s *Scanner) Body() []byte { return s.synthetic() }

// Err returns why the frame's data or the body is not one valid JSON value,
// or nil. Call it after Event or Body.
func (s *Scanner) Err() error { return s.lex.finish() }

// OutputChars returns the characters of relayed output the frame carried:
// in a Responses delta event's "delta", an Anthropic delta's text, thinking
// or partial_json, a content block's text or thinking, and a chat choice's
// delta content, refusal, reasoning and tool-call arguments.
func (s *Scanner) OutputChars() int64 { return s.lex.outChars }

// Size returns the number of bytes of the frame read so far.
func (s *Scanner) Size() int64 { return s.size }

// synthetic builds the small JSON text standing for the one read.
func (s *Scanner) synthetic() []byte {
	l := &s.lex
	err := l.finish()
	var b []byte
	switch l.top {
	case 0:
		return nil // nothing but space: as empty as the original
	case '{':
		b = append(b, '{')
		for _, k := range topKeys {
			b = appendMember(b, &l.topM[k])
		}
		if m := &l.topM[kResponse]; m.seen && l.wrapper != kResponse {
			b = appendMember(b, m)
		}
		if l.choices {
			b = comma(b)
			if l.nonEmpty {
				b = append(b, `"choices":[{}]`...)
			} else {
				b = append(b, `"choices":[]`...)
			}
		}
		if l.wrapper != 0 {
			b = comma(b)
			b = append(b, '"')
			b = append(b, l.wrapperKey...)
			b = append(b, `":{`...)
			for _, k := range wrapperKeys {
				b = appendMember(b, &l.wrapM[k])
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	case '[':
		b = append(b, "[]"...)
	case '"':
		b = append(b, `""`...)
	case 't':
		b = append(b, "true"...)
	case 'f':
		b = append(b, "false"...)
	case 'n':
		b = append(b, "null"...)
	default:
		b = append(b, '0')
	}
	if err != nil {
		// As broken as the original: a truncated text stays truncated,
		// anything else gets a stray byte.
		if errors.Is(err, errTruncated) {
			b = b[:len(b)-1]
		} else {
			b = append(b, '#')
		}
	}
	return b
}

func comma(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		return append(b, ',')
	}
	return b
}

// appendMember appends a captured member. One too large to capture stands
// as a string that says so (the meter cannot read it as usage), a string cut
// to its first characters, or an error object with that message.
func appendMember(b []byte, m *member) []byte {
	if !m.seen {
		return b
	}
	raw := m.raw
	switch {
	case m.over && m.isString:
		// raw was cut and closed at a character boundary.
	case m.over && m.isError:
		raw = []byte(`{"message":"error member too large to read"}`)
	case m.over:
		raw = []byte(`"member too large to read"`)
	case !json.Valid(raw):
		return b // cut short by the end of the text, which is invalid anyway
	}
	b = comma(b)
	b = append(b, '"')
	b = append(b, m.key...)
	b = append(b, `":`...)
	return append(b, raw...)
}

// decodeKey decodes a key written with escapes.
func decodeKey(k []byte) (string, bool) {
	var s string
	q := make([]byte, 0, len(k)+2)
	q = append(append(append(q, '"'), k...), '"')
	return s, json.Unmarshal(q, &s) == nil
}
