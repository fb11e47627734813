package bigframe

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// MaxDepth is the deepest nesting the lexer accepts, as encoding/json does.
const MaxDepth = 10000

// maxPath is the depth to which the lexer tracks the key of each level,
// enough for the deepest output path (a chat tool call's arguments).
const maxPath = 8

// Bounds on what a Scanner keeps of the members it captures.
const (
	maxCapture = 64 << 10 // bytes of all captured members together
	maxString  = 1 << 10  // bytes of one captured string (longer ones are cut)
)

// Key ids: the member names the lexer tells apart. kArr marks an array
// level in the path.
const (
	kOther uint8 = iota
	kArr
	kType
	kID
	kModel
	kUsage
	kError
	kCode
	kMessage
	kStatus
	kChoices
	kResponse
	kDelta
	kContentBlock
	kText
	kThinking
	kPartialJSON
	kContent
	kRefusal
	kReasoningContent
	kReasoning
	kToolCalls
	kFunction
	kArguments
	kFunctionCall
)

var keyIDs = map[string]uint8{
	"type": kType, "id": kID, "model": kModel, "usage": kUsage, "error": kError,
	"code": kCode, "message": kMessage, "status": kStatus, "choices": kChoices,
	"response": kResponse, "delta": kDelta, "content_block": kContentBlock,
	"text": kText, "thinking": kThinking, "partial_json": kPartialJSON,
	"content": kContent, "refusal": kRefusal, "reasoning_content": kReasoningContent,
	"reasoning": kReasoning, "tool_calls": kToolCalls, "function": kFunction,
	"arguments": kArguments, "function_call": kFunctionCall,
}

// The members captured at the top level and inside a wrapper ("response"
// in Responses events, "message" in Anthropic's message_start), in the
// order a synthetic object lists them.
var (
	topKeys     = []uint8{kType, kID, kModel, kUsage, kError, kCode, kMessage}
	wrapperKeys = []uint8{kType, kID, kModel, kStatus, kUsage, kError}
)

// lexer states.
const (
	sValue    uint8 = iota // a value must start
	sArrFirst              // after '[': a value or ']'
	sObjFirst              // after '{': a key or '}'
	sObjKey                // after ',' in an object: a key
	sColon                 // after a key
	sAfter                 // after a value in a container: ',' or its close
	sString                // in a string (key or value)
	sNumber                // in a number
	sLiteral               // in true, false or null
	sEnd                   // after the top-level value: space only
	sError
)

// Errors name a position, never the bytes found there: the JSON may hold a
// prompt.
var (
	errTooDeep   = errors.New("nested deeper than 10000 levels")
	errTruncated = errors.New("truncated")
)

// member is one captured member.
type member struct {
	key      []byte // its key as written, for the synthetic text
	seen     bool
	raw      []byte
	over     bool // larger than the capture allows
	isString bool
	isError  bool // the error member, which stands as an error if too large
	safe     int  // for strings: length of raw at the last character boundary
}

// lexer reads a JSON text a piece at a time, checks its syntax as
// encoding/json does (UTF-8 is not checked, as encoding/json does not),
// captures the members the meters read, and counts the characters of the
// strings that carry relayed output. Its memory is a bit per level of
// nesting plus what it captures.
type lexer struct {
	state  uint8
	depth  int
	arrays []uint64 // bit d-1 set: the container at depth d is an array
	path   [maxPath + 1]uint8
	base   int64 // bytes read before the current write
	cur    int64 // offset of the byte the current step starts at
	idx    int   // index, from cur, of the byte being read in a string
	err    error
	top    byte // the first byte of the top-level value

	// The string being read.
	key       [24]byte // a key's bytes, as written
	keyLen    int
	isKey     bool
	esc       uint8 // 0; 1 after a backslash; 2-5 reading \u hex digits
	hex       rune
	prevHigh  bool // the last character was a high-surrogate escape
	countStr  bool // this string is relayed output
	outChars  int64
	numState  uint8
	lit       string
	litPos    int
	capturing *member
	capDepth  int // depth at which the captured value started
	capBytes  int // bytes captured in all

	topM       [kFunctionCall + 1]member // top-level members by key id
	wrapM      [kFunctionCall + 1]member // members of the wrapper
	wrapper    uint8                     // kResponse or kMessage once one is an object
	wrapperKey []byte                    // its key as written
	choices    bool                      // a top-level "choices" array was seen
	nonEmpty   bool                      // and it had an element
}

// isArray reports whether the container at depth d is an array.
func (l *lexer) isArray(d int) bool {
	return l.arrays[(d-1)/64]&(1<<((d-1)%64)) != 0
}

func (l *lexer) push(array bool) bool {
	if l.depth >= MaxDepth {
		l.fail(errTooDeep)
		return false
	}
	l.depth++
	w := (l.depth - 1) / 64
	for len(l.arrays) <= w {
		l.arrays = append(l.arrays, 0)
	}
	bit := uint64(1) << ((l.depth - 1) % 64)
	if array {
		l.arrays[w] |= bit
	} else {
		l.arrays[w] &^= bit
	}
	if l.depth <= maxPath {
		l.path[l.depth] = kOther
		if array {
			l.path[l.depth] = kArr
		}
	}
	return true
}

func (l *lexer) fail(err error) {
	if l.err == nil {
		l.err = err
		l.state = sError
		l.capturing = nil
	}
}

func (l *lexer) syntax(what string) {
	l.fail(fmt.Errorf("invalid JSON at byte %d: %s", l.cur+int64(l.idx), what))
}

// write reads the next bytes of the text.
func (l *lexer) write(p []byte) {
	for i := 0; i < len(p) && l.state != sError; {
		l.cur, l.idx = l.base+int64(i), 0
		i += l.step(p[i:])
	}
	l.base += int64(len(p))
}

// step reads at least one byte of p and returns how many it read.
func (l *lexer) step(p []byte) int {
	c := p[0]
	switch l.state {
	case sString:
		return l.stringBytes(p)
	case sNumber:
		if l.number(c) {
			l.take(p[:1])
			return 1
		}
		if !l.numberComplete() {
			l.syntax("number cut short")
			return 1
		}
		l.valueDone()
		return 0 // c is read again in the next state
	case sLiteral:
		if c != l.lit[l.litPos] {
			l.syntax("invalid literal")
			return 1
		}
		l.take(p[:1])
		if l.litPos++; l.litPos == len(l.lit) {
			l.valueDone()
		}
		return 1
	}
	if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
		if l.capturing != nil && l.depth > l.capDepth {
			l.take(p[:1])
		}
		return 1
	}
	switch l.state {
	case sValue, sArrFirst:
		if l.state == sArrFirst && c == ']' {
			l.close(c)
			return 1
		}
		l.startValue(c, p[:1])
	case sObjFirst, sObjKey:
		switch {
		case c == '"':
			l.take(p[:1])
			l.state, l.isKey, l.keyLen, l.esc, l.countStr = sString, true, 0, 0, false
		case c == '}' && l.state == sObjFirst:
			l.close(c)
		default:
			l.syntax("object key expected")
		}
	case sColon:
		if c != ':' {
			l.syntax("colon expected")
			return 1
		}
		l.take(p[:1])
		l.state = sValue
	case sAfter:
		switch {
		case c == ',':
			l.take(p[:1])
			if l.isArray(l.depth) {
				l.state = sValue
			} else {
				l.state = sObjKey
			}
		case c == ']' || c == '}':
			l.close(c)
		default:
			l.syntax("comma or close expected")
		}
	case sEnd:
		l.syntax("data after the value")
	}
	return 1
}

// startValue begins the value whose first byte is c (b is that byte).
func (l *lexer) startValue(c byte, b []byte) {
	if l.depth == 0 && l.top == 0 {
		l.top = c
	}
	l.beginCapture(c)
	if l.depth == 2 && l.path[1] == kChoices && l.isArray(2) {
		l.nonEmpty = true
	}
	switch {
	case c == '{' || c == '[':
		if l.depth == 1 && !l.isArray(1) && l.top == '{' {
			switch {
			case l.path[1] == kChoices && c == '[':
				l.choices, l.nonEmpty = true, false
			case (l.path[1] == kResponse || l.path[1] == kMessage) && c == '{':
				l.wrapper = l.path[1]
				l.wrapperKey = append(l.wrapperKey[:0], l.key[:min(l.keyLen, len(l.key))]...)
				l.wrapM = [len(l.wrapM)]member{}
				l.capBytes = l.used()
			}
		}
		l.take(b)
		if !l.push(c == '[') {
			return
		}
		if c == '[' {
			l.state = sArrFirst
		} else {
			l.state = sObjFirst
		}
	case c == '"':
		l.take(b)
		if m := l.capturing; m != nil && m.isString {
			m.safe = len(m.raw)
		}
		l.state, l.isKey, l.esc, l.prevHigh = sString, false, 0, false
		l.countStr = l.isOutput()
	case c == '-' || c >= '0' && c <= '9':
		l.take(b)
		l.state, l.numState = sNumber, numStart
		l.number(c)
	case c == 't':
		l.take(b)
		l.state, l.lit, l.litPos = sLiteral, "true", 1
	case c == 'f':
		l.take(b)
		l.state, l.lit, l.litPos = sLiteral, "false", 1
	case c == 'n':
		l.take(b)
		l.state, l.lit, l.litPos = sLiteral, "null", 1
	default:
		l.syntax("value expected")
	}
}

// close ends the container at the current depth with c.
func (l *lexer) close(c byte) {
	if (c == ']') != l.isArray(l.depth) {
		l.syntax("mismatched close")
		return
	}
	l.take([]byte{c})
	l.depth--
	l.valueDone()
}

// valueDone is called when a value ends.
func (l *lexer) valueDone() {
	if l.capturing != nil && l.depth == l.capDepth {
		l.capturing = nil
	}
	if l.depth == 0 {
		l.state = sEnd
	} else {
		l.state = sAfter
	}
}

// isOutput reports whether the string value about to start carries relayed
// output, by its path: a Responses event's "delta"; text, thinking or
// partial_json in an Anthropic delta; text or thinking in a content block;
// content, refusal or reasoning in a chat choice's delta; the arguments of
// a chat tool or function call.
func (l *lexer) isOutput() bool {
	p := &l.path
	switch l.depth {
	case 1:
		return p[1] == kDelta && l.top == '{'
	case 2:
		k := p[2]
		return p[1] == kDelta && (k == kText || k == kThinking || k == kPartialJSON) ||
			p[1] == kContentBlock && (k == kText || k == kThinking)
	case 4:
		k := p[4]
		return p[1] == kChoices && p[2] == kArr && p[3] == kDelta &&
			(k == kContent || k == kRefusal || k == kReasoningContent || k == kReasoning)
	case 5:
		return p[1] == kChoices && p[2] == kArr && p[3] == kDelta && p[4] == kFunctionCall && p[5] == kArguments
	case 7:
		return p[1] == kChoices && p[2] == kArr && p[3] == kDelta && p[4] == kToolCalls &&
			p[5] == kArr && p[6] == kFunction && p[7] == kArguments
	}
	return false
}

// beginCapture starts capturing the value that begins with c if it is a
// member the meters read.
func (l *lexer) beginCapture(c byte) {
	if l.top != '{' || l.depth == 0 || l.isArray(l.depth) {
		return
	}
	var m *member
	switch {
	case l.depth == 1:
		k := l.path[1]
		if (k == kResponse || k == kMessage) && c == '{' {
			return // a wrapper: its members are captured instead
		}
		if k == kResponse {
			m = &l.topM[kResponse] // not an object: kept for the meter to refuse
		} else if isIn(k, topKeys) {
			m = &l.topM[k]
		}
	case l.depth == 2 && l.wrapper != 0 && l.path[1] == l.wrapper && isIn(l.path[2], wrapperKeys):
		m = &l.wrapM[l.path[2]]
	}
	if m == nil {
		return
	}
	l.capBytes -= len(m.raw)
	*m = member{
		key:  append(m.key[:0], l.key[:min(l.keyLen, len(l.key))]...),
		seen: true, raw: m.raw[:0], isString: c == '"', isError: m == &l.topM[kError] || m == &l.wrapM[kError],
	}
	l.capturing, l.capDepth = m, l.depth
}

// take appends b to the member being captured, if any.
func (l *lexer) take(b []byte) {
	m := l.capturing
	if m == nil || m.over {
		return
	}
	limit := maxCapture
	if m.isString {
		limit = maxString
	}
	if len(m.raw)+len(b) > limit || l.capBytes+len(b) > maxCapture {
		if m.isString {
			// Cut at a character and close it; "" if nothing fits.
			if cut := min(m.safe, len(m.raw)); cut > 0 {
				m.raw = m.raw[:cut]
			} else {
				m.raw = append(m.raw[:0], '"')
			}
			m.raw = append(m.raw, '"')
		} else {
			m.raw = m.raw[:0]
		}
		m.over = true
		return
	}
	m.raw = append(m.raw, b...)
	l.capBytes += len(b)
}

func (l *lexer) used() int {
	n := 0
	for i := range l.topM {
		n += len(l.topM[i].raw)
	}
	return n
}

// stringBytes reads the bytes of a string from p[0] on, which is inside it.
func (l *lexer) stringBytes(p []byte) int {
	i := 0
	for i < len(p) {
		l.idx = i
		if l.esc != 0 {
			if !l.escape(p[i]) {
				return i + 1
			}
			l.take(p[i : i+1])
			i++
			continue
		}
		// A run of plain bytes.
		j := i
		for j < len(p) && !special[p[j]] {
			j++
		}
		if l.countStr {
			// A character starts at each byte that does not continue a
			// UTF-8 sequence, which holds when a piece ends inside one.
			for _, c := range p[i:j] {
				if c&0xC0 != 0x80 {
					l.outChars++
				}
			}
		}
		if j > i {
			l.prevHigh = false
			l.keyBytes(p[i:j])
			l.take(p[i:j])
			if m := l.capturing; m != nil && !m.over {
				m.safe = len(m.raw)
			}
			i = j
			continue
		}
		c := p[i]
		switch {
		case c == '"':
			l.take(p[i : i+1])
			if l.isKey {
				l.keyDone()
				l.state = sColon
			} else {
				l.valueDone()
			}
			return i + 1
		case c == '\\':
			l.keyBytes(p[i : i+1])
			l.take(p[i : i+1])
			l.esc = 1
		default:
			l.syntax("control character in string")
			return i + 1
		}
		i++
	}
	return i
}

// special marks the bytes that end a run of plain string bytes: the quote,
// the backslash and the control characters JSON forbids in strings.
var special = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// escape reads byte c of an escape; it reports false on a syntax error.
func (l *lexer) escape(c byte) bool {
	l.keyBytes([]byte{c})
	if l.esc == 1 {
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			l.esc = 0
			l.char()
		case 'u':
			l.esc, l.hex = 2, 0
		default:
			l.syntax("invalid escape")
			return false
		}
		return true
	}
	var v byte
	switch {
	case c >= '0' && c <= '9':
		v = c - '0'
	case c >= 'a' && c <= 'f':
		v = c - 'a' + 10
	case c >= 'A' && c <= 'F':
		v = c - 'A' + 10
	default:
		l.syntax("invalid \\u escape")
		return false
	}
	l.hex = l.hex<<4 | rune(v)
	if l.esc++; l.esc == 6 {
		l.esc = 0
		low := l.hex >= 0xDC00 && l.hex < 0xE000
		if !(low && l.prevHigh) { // a surrogate pair is one character
			l.char()
		}
		l.prevHigh = l.hex >= 0xD800 && l.hex < 0xDC00
		if low {
			l.prevHigh = false
		}
	}
	return true
}

// char counts one escaped character of the string.
func (l *lexer) char() {
	if m := l.capturing; m != nil && !m.over {
		m.safe = len(m.raw) + 1 // after this escape's last byte, taken next
	}
	if l.countStr {
		l.outChars++
	}
	l.prevHigh = false
}

// keyBytes records bytes of a key being read.
func (l *lexer) keyBytes(b []byte) {
	if !l.isKey {
		return
	}
	if l.keyLen+len(b) <= len(l.key) {
		copy(l.key[l.keyLen:], b)
	}
	l.keyLen += len(b)
}

// keyDone records the key just read in the path. Keys match as
// encoding/json matches struct fields: escapes decoded, case folded.
func (l *lexer) keyDone() {
	if l.depth > maxPath {
		return
	}
	l.path[l.depth] = kOther
	if l.keyLen > len(l.key) {
		return
	}
	k := l.key[:l.keyLen]
	if id, ok := keyIDs[string(k)]; ok {
		l.path[l.depth] = id
		return
	}
	name := string(k)
	if bytes.IndexByte(k, '\\') >= 0 {
		var ok bool
		if name, ok = decodeKey(k); !ok {
			return
		}
	}
	for n, id := range keyIDs {
		if strings.EqualFold(n, name) {
			l.path[l.depth] = id
			return
		}
	}
}

// Number states, following the JSON grammar.
const (
	numStart uint8 = iota // nothing yet
	numMinus              // "-"
	numZero               // "0" or "-0"
	numInt                // digits of the integer part
	numDot                // "."
	numFrac               // digits of the fraction
	numE                  // "e" or "E"
	numESign              // exponent sign
	numExp                // digits of the exponent
)

// number reads byte c of a number and reports whether it belongs to it.
func (l *lexer) number(c byte) bool {
	digit := c >= '0' && c <= '9'
	s := &l.numState
	switch *s {
	case numStart:
		switch {
		case c == '-':
			*s = numMinus
		case c == '0':
			*s = numZero
		default:
			*s = numInt
		}
		return true
	case numMinus:
		switch {
		case c == '0':
			*s = numZero
		case digit:
			*s = numInt
		default:
			return false
		}
	case numZero, numInt:
		switch {
		case digit && *s == numInt:
		case c == '.':
			*s = numDot
		case c == 'e' || c == 'E':
			*s = numE
		default:
			return false
		}
	case numDot:
		if !digit {
			return false
		}
		*s = numFrac
	case numFrac:
		switch {
		case digit:
		case c == 'e' || c == 'E':
			*s = numE
		default:
			return false
		}
	case numE:
		switch {
		case c == '+' || c == '-':
			*s = numESign
		case digit:
			*s = numExp
		default:
			return false
		}
	case numESign:
		if !digit {
			return false
		}
		*s = numExp
	case numExp:
		if !digit {
			return false
		}
	}
	return true
}

func (l *lexer) numberComplete() bool {
	switch l.numState {
	case numZero, numInt, numFrac, numExp:
		return true
	}
	return false
}

// finish ends the text: it reports whether it was one complete JSON value.
func (l *lexer) finish() error {
	if l.state == sNumber && l.numberComplete() {
		l.valueDone()
	}
	switch {
	case l.err != nil:
		return l.err
	case l.state == sEnd:
		return nil
	case l.top == 0:
		l.fail(errors.New("empty"))
	default:
		l.fail(fmt.Errorf("%w after %d bytes", errTruncated, l.base))
	}
	return l.err
}

func isIn(k uint8, set []uint8) bool {
	for _, s := range set {
		if s == k {
			return true
		}
	}
	return false
}
