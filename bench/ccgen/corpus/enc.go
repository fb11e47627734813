package corpus

import (
	"math/bits"
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// enc appends one JSON value to b, field by field, in the order the caller
// writes them (the order Claude Code uses). With spaced set it writes ": "
// and ", " the way a pretty-ish serializer would; otherwise it is as compact
// as Go's encoding/json.
type enc struct {
	b      []byte
	spaced bool
	first  []bool // per open object or array: nothing written in it yet
}

func (e *enc) reset(b []byte, spaced bool) {
	e.b, e.spaced, e.first = b[:0], spaced, e.first[:0]
}

func (e *enc) sep() {
	n := len(e.first) - 1
	if n < 0 {
		return
	}
	if e.first[n] {
		e.first[n] = false
		return
	}
	e.b = append(e.b, ',')
	if e.spaced {
		e.b = append(e.b, ' ')
	}
}

func (e *enc) obj()  { e.b = append(e.b, '{'); e.first = append(e.first, true) }
func (e *enc) arr()  { e.b = append(e.b, '['); e.first = append(e.first, true) }
func (e *enc) end()  { e.b = append(e.b, '}'); e.first = e.first[:len(e.first)-1] }
func (e *enc) aend() { e.b = append(e.b, ']'); e.first = e.first[:len(e.first)-1] }

// elem starts an array element.
func (e *enc) elem() { e.sep() }

// key starts a member; the caller then writes its value.
func (e *enc) key(k string) {
	e.sep()
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
	if e.spaced {
		e.b = append(e.b, ' ')
	}
}

func (e *enc) str(s string) { e.b = appendQuoted(e.b, s) }
func (e *enc) strb(s []byte) {
	e.b = appendQuoted(e.b, unsafeString(s))
}
func (e *enc) raw(b []byte) { e.b = append(e.b, b...) }
func (e *enc) int(n int64)  { e.b = strconv.AppendInt(e.b, n, 10) }
func (e *enc) null()        { e.b = append(e.b, "null"...) }
func (e *enc) bool(v bool)  { e.b = strconv.AppendBool(e.b, v) }
func (e *enc) ts(ms int64) {
	e.b = append(e.b, '"')
	e.b = appendTS(e.b, ms)
	e.b = append(e.b, '"')
}

func (e *enc) kstr(k, v string) { e.key(k); e.str(v) }
func (e *enc) kint(k string, v int64) {
	e.key(k)
	e.int(v)
}
func (e *enc) kbool(k string, v bool) { e.key(k); e.bool(v) }
func (e *enc) knull(k string)         { e.key(k); e.null() }

// kstrOrNull writes v, or null when v is empty.
func (e *enc) kstrOrNull(k, v string) {
	e.key(k)
	if v == "" {
		e.null()
		return
	}
	e.str(v)
}

// unsafeString views b as a string without copying; b (a slice of the
// pool, which is never written after it is built) must not change.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// appendQuoted appends s as a JSON string. s is valid UTF-8.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

const tsLayout = "2006-01-02T15:04:05.000Z"

// appendTS appends the UTC time ms (Unix milliseconds) the way Claude Code
// writes timestamps: 2026-11-20T09:15:02.123Z.
func appendTS(b []byte, ms int64) []byte {
	return time.UnixMilli(ms).UTC().AppendFormat(b, tsLayout)
}

const dayMillis = 24 * 60 * 60 * 1000

// day returns the UTC day number (days since 1970-01-01) of ms.
func day(ms int64) int64 {
	if ms < 0 {
		return (ms - dayMillis + 1) / dayMillis
	}
	return ms / dayMillis
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// appendBase62 appends the 128-bit number hi:lo as n base-62 digits, most
// significant first (22 digits hold every 128-bit number).
func appendBase62(b []byte, hi, lo uint64, n int) []byte {
	start := len(b)
	for range n {
		b = append(b, 0)
	}
	for i := len(b) - 1; i >= start; i-- {
		qh, r := hi/62, hi%62
		ql, rem := bits.Div64(r, lo, 62)
		hi, lo = qh, ql
		b[i] = base62[rem]
	}
	return b
}

// ids makes the identifiers of a transcript from the generator's random
// source, so they are as reproducible as the rest.
type ids struct {
	r   *rand.Rand
	buf []byte
}

// uuid returns a random (version 4) UUID.
func (d *ids) uuid() string {
	hi, lo := d.r.Uint64(), d.r.Uint64()
	hi = hi&^(0xf<<12) | 4<<12
	lo = lo&^(0xc<<60) | 0x8<<60
	var raw [16]byte
	for i := range 8 {
		raw[i] = byte(hi >> (56 - 8*i))
		raw[8+i] = byte(lo >> (56 - 8*i))
	}
	b := d.buf[:0]
	for i, c := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	d.buf = b
	return string(b)
}

// msgID returns a message id "msg_01" + 22 base-62 digits and the 128-bit
// number it spells, which the truth accumulator uses as the key.
func (d *ids) msgID() (string, [2]uint64) {
	hi, lo := d.r.Uint64(), d.r.Uint64()
	d.buf = appendBase62(append(d.buf[:0], "msg_01"...), hi, lo, 22)
	return string(d.buf), [2]uint64{hi, lo}
}

// requestID returns "req_011C" + 20 base-62 digits.
func (d *ids) requestID() string {
	d.buf = appendBase62(append(d.buf[:0], "req_011C"...), d.r.Uint64(), d.r.Uint64(), 20)
	return string(d.buf)
}

// toolID returns a tool_use id "toolu_01" + 22 base-62 digits.
func (d *ids) toolID() string {
	d.buf = appendBase62(append(d.buf[:0], "toolu_01"...), d.r.Uint64(), d.r.Uint64(), 22)
	return string(d.buf)
}

// hex returns n random lowercase hex digits.
func (d *ids) hex(n int) string {
	b := d.buf[:0]
	for range n {
		b = append(b, hexDigits[d.r.IntN(16)])
	}
	d.buf = b
	return string(b)
}

// pool is a block of text that slices are cut from, so that 1 GB of
// transcript costs little more than copying. It holds valid UTF-8 with some
// newlines, tabs, quotes and backslashes for the escaper to handle.
type pool struct {
	text []byte
	b64  []byte
}

var words = []string{
	"the", "a", "to", "of", "and", "in", "is", "it", "that", "for", "this", "we", "file", "function",
	"test", "error", "return", "value", "config", "handler", "request", "response", "should", "now",
	"let", "me", "check", "update", "fix", "the", "build", "import", "package", "struct", "type",
	"func", "err", "nil", "if", "else", "for", "range", "go", "run", "make", "main", "string", "int",
	"context", "server", "client", "token", "usage", "cache", "model", "read", "write", "line",
	"json", "parse", "field", "data", "path", "directory", "README.md", "main.go", "src/app.ts",
	"const", "var", "async", "await", "export", "default", "useState", "props", "div", "className",
	"SELECT", "FROM", "WHERE", "migration", "schema", "index", "query", "deploy", "docker",
	"I'll", "Now", "Let's", "Looking", "at", "the", "code,", "I", "see", "that", "issue", "is",
	"because", "we", "need", "to", "handle", "case", "where", "input", "empty.", "Done.", "tests",
	"pass:", "ok", "FAIL", "PASS", "--", "=>", "->", "==", "!=", "&&", "||", "{", "}", "(", ")",
	"[", "]", "<", ">", "#", "//", "/*", "*/", "=", ":=", "+=", "0", "1", "42", "200", "404", "1024",
	"naïve", "café", "résumé", "→", "✓", "✗", "—", "…", "日本語", "テスト", "Grüße", "emoji 🚀",
}

func newPool(r *rand.Rand, textSize, b64Size int) *pool {
	p := &pool{text: make([]byte, 0, textSize+64), b64: make([]byte, 0, b64Size)}
	col, indent := 0, 0
	for len(p.text) < textSize {
		switch x := r.IntN(100); {
		case x < 6:
			p.text = append(p.text, '\n')
			if r.IntN(3) == 0 {
				indent = r.IntN(4)
			}
			for range indent {
				p.text = append(p.text, '\t')
			}
			col = 0
		case x == 6:
			p.text = append(p.text, `"quoted"`...)
		case x == 7 && r.IntN(4) == 0:
			p.text = append(p.text, `C:\path\to`...)
		default:
			if col > 0 {
				p.text = append(p.text, ' ')
			}
			w := words[r.IntN(len(words))]
			p.text = append(p.text, w...)
			col += len(w) + 1
		}
	}
	const b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for len(p.b64) < b64Size {
		p.b64 = append(p.b64, b64chars[r.IntN(64)])
	}
	return p
}

// slice returns about n bytes of text starting at a random rune boundary.
func (p *pool) slice(r *rand.Rand, n int) []byte {
	if n < 1 {
		n = 1
	}
	if n > len(p.text)-8 {
		n = len(p.text) - 8
	}
	i := r.IntN(len(p.text) - n)
	for i > 0 && !utf8.RuneStart(p.text[i]) {
		i--
	}
	j := i + n
	for j < len(p.text) && !utf8.RuneStart(p.text[j]) {
		j++
	}
	return p.text[i:j]
}

// sig returns a base64-looking thinking signature of about n characters.
func (p *pool) sig(r *rand.Rand, n int) []byte {
	n = min(max(n, 4), len(p.b64)-1) &^ 3
	i := r.IntN(len(p.b64) - n)
	return p.b64[i : i+n]
}
