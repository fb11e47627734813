package jsonscan

// Package jsonscan reads the few fields the gateway needs from JSON without
// decoding whole documents: it walks the members of an object and skips
// values at the speed of bytes.IndexByte. It never panics on any input and
// reports malformed input instead of guessing. Keys match exactly, as the
// providers' APIs do (encoding/json would match {"Model": ...} to "model").

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxCount bounds every token or request count the meter accepts. No single
// call comes near it (context windows are a few million tokens), so a larger
// value is garbage, and keeping every field below it keeps sums far from
// overflow.
const MaxCount = 1_000_000_000

// ErrNotObject is returned by EachMember for input that is not a
// well-formed JSON object at its top level.
var ErrNotObject = errors.New("not a JSON object")

// EachMember calls fn for each member of the JSON object obj, in order, with
// the member's key exactly as written (without quotes, escapes not decoded)
// and the bounds [start, end) of its value in obj. It checks the object's
// own syntax (keys, colons, commas, nothing after the closing brace) and
// returns ErrNotObject when that is broken or obj is another kind of value;
// nested values are skipped, not validated. Unlike encoding/json's struct
// decoding, callers match keys exactly, as the providers do: {"Model": ...}
// is not "model".
func EachMember(obj []byte, fn func(key []byte, start, end int)) error {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return ErrNotObject
	}
	i = SkipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return end(obj, i)
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return ErrNotObject // a key must follow '{' or ','
		}
		kend := SkipString(obj, i)
		if kend < 0 {
			return ErrNotObject
		}
		key := obj[i+1 : kend-1]
		i = SkipSpace(obj, kend)
		if i >= len(obj) || obj[i] != ':' {
			return ErrNotObject
		}
		start := SkipSpace(obj, i+1)
		stop := SkipValue(obj, start)
		if stop < 0 {
			return ErrNotObject
		}
		fn(key, start, stop)
		i = SkipSpace(obj, stop)
		if i >= len(obj) {
			return ErrNotObject
		}
		switch obj[i] {
		case '}':
			return end(obj, i)
		case ',':
			i = SkipSpace(obj, i+1)
		default:
			return ErrNotObject
		}
	}
}

// end checks that nothing but space follows the object's closing brace at i.
func end(obj []byte, i int) error {
	if SkipSpace(obj, i+1) != len(obj) {
		return ErrNotObject
	}
	return nil
}

// KeyIs reports whether the raw key (as passed by EachMember) names want,
// decoding escapes such as "mod\u0065l" the way a JSON parser would.
func KeyIs(key []byte, want string) bool {
	// An escape makes a key longer than what it decodes to, so a key no
	// longer than want matches only as written.
	if len(key) <= len(want) || bytes.IndexByte(key, '\\') < 0 {
		return string(key) == want
	}
	var s string
	q := make([]byte, 0, len(key)+2)
	q = append(append(append(q, '"'), key...), '"')
	return json.Unmarshal(q, &s) == nil && s == want
}

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// SkipString returns the index just after the string starting at b[i] (a
// quote), or -1.
func SkipString(b []byte, i int) int {
	// Keys and short values are scanned byte by byte, which costs less
	// than a call to IndexByte; a backslash skips the byte it escapes.
	j := i + 1
	for end := min(len(b), j+32); j < end; j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	for j < len(b) {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return -1
		}
		j += q
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for k := j - 1; k > i && b[k] == '\\'; k-- {
			n++
		}
		j++
		if n%2 == 0 {
			return j
		}
	}
	return -1
}

// SkipValue returns the index just after the JSON value starting at b[i], or
// -1.
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = SkipString(b, j)
				if j < 0 {
					return -1
				}
				j-- // the loop's j++ steps past the closing quote
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			if j == i {
				return -1 // a missing value, as in {"model":}
			}
			return j
		}
		j++
	}
	return j
}

// IsNull reports whether the raw JSON value v is absent or null.
func IsNull(v []byte) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

// ParseCount decodes a token or request count: a non-negative JSON integer
// no larger than MaxCount. null counts as zero.
func ParseCount(field string, v []byte) (int64, error) {
	if IsNull(v) {
		return 0, nil
	}
	// Fast path: a plain run of at most 10 digits, as providers send.
	if len(v) > 0 && len(v) <= 10 && (v[0] != '0' || len(v) == 1) {
		var n int64
		digits := true
		for _, c := range v {
			if c < '0' || c > '9' {
				digits = false
				break
			}
			n = n*10 + int64(c-'0')
		}
		if digits {
			if n > MaxCount {
				return 0, fmt.Errorf("%s is implausibly large (%d)", field, n)
			}
			return n, nil
		}
	}
	var n int64
	if err := json.Unmarshal(v, &n); err != nil {
		if k := Kind(v); k != "a number" {
			return 0, fmt.Errorf("%s is not an integer (%s)", field, k) // a string could be prompt text
		}
		return 0, fmt.Errorf("%s is not an integer: %s", field, Clip(string(v), 24))
	}
	if n < 0 {
		return 0, fmt.Errorf("%s is negative (%d)", field, n)
	}
	if n > MaxCount {
		return 0, fmt.Errorf("%s is implausibly large (%d)", field, n)
	}
	return n, nil
}

// DescribeError explains why b is not valid JSON by the position and the
// kind of the problem only: never a byte of b, which may be a prompt (the
// message ends up in the ledger's reason and in logs).
func DescribeError(b []byte, err error) string {
	var se *json.SyntaxError
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return "empty"
	case !errors.As(err, &se):
		return "invalid JSON"
	case se.Error() == "unexpected end of JSON input":
		return fmt.Sprintf("truncated after %d bytes", len(b))
	}
	return fmt.Sprintf("invalid JSON at byte %d (%s)", se.Offset, syntaxProblem(se.Error()))
}

// syntaxProblem returns encoding/json's syntax error message without the
// character it quotes from the input: "invalid character 'x' after object
// key" becomes "unexpected character after object key". A message of
// another form that quotes anything becomes "syntax error".
func syntaxProblem(msg string) string {
	if rest, ok := strings.CutPrefix(msg, "invalid character '"); ok {
		// The quoted character is one input byte, maybe escaped ('\'',
		// '\x01', ' '): its closing quote is the first "' " after the
		// character's first byte.
		msg = "unexpected character"
		if len(rest) > 1 {
			if i := strings.Index(rest[1:], "' "); i >= 0 {
				msg += " " + rest[1+i+2:]
			}
		}
	}
	if strings.ContainsAny(msg, "'\"`") {
		return "syntax error"
	}
	return msg
}

// Clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// EachElement calls fn for each element of the JSON array arr, in order,
// with the bounds [start, end) of the element in arr. Like EachMember it
// checks the array's own syntax and returns ErrNotArray when that is broken
// or arr is another kind of value; elements are skipped, not validated.
func EachElement(arr []byte, fn func(start, end int)) error {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return ErrNotArray
	}
	i = SkipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		if SkipSpace(arr, i+1) != len(arr) {
			return ErrNotArray
		}
		return nil
	}
	for {
		stop := SkipValue(arr, i)
		if stop < 0 {
			return ErrNotArray
		}
		fn(i, stop)
		i = SkipSpace(arr, stop)
		if i >= len(arr) {
			return ErrNotArray
		}
		switch arr[i] {
		case ']':
			if SkipSpace(arr, i+1) != len(arr) {
				return ErrNotArray
			}
			return nil
		case ',':
			i = SkipSpace(arr, i+1)
		default:
			return ErrNotArray
		}
	}
}

// Find returns the index in the JSON text b of the value of the first
// member named name (written without escapes), at any depth, or -1. It
// finds the key by its bytes (the name in quotes, then a colon) and checks
// that its opening quote is not escaped, which in valid JSON makes it a key;
// it does not check which object the key belongs to, so callers use it where
// the name occurs once in a document's shape (the "delta" of a stream
// event). The value is neither validated nor skipped: SkipValue finds its
// end.
func Find(b []byte, name string) int {
	if name == "" {
		return -1
	}
	for i := 0; i < len(b); {
		// Look for the name's first byte: cheaper than bytes.Index where
		// quotes are frequent, as they are in JSON.
		j := bytes.IndexByte(b[i:], name[0])
		if j < 0 {
			return -1
		}
		k := i + j // the name's first byte
		i = k + 1
		end := k + len(name)
		if k == 0 || b[k-1] != '"' || end >= len(b) || b[end] != '"' || string(b[k:end]) != name {
			continue
		}
		n := 0 // backslashes before the opening quote
		for p := k - 2; p >= 0 && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 1 {
			continue
		}
		c := SkipSpace(b, end+1)
		if c >= len(b) || b[c] != ':' {
			continue
		}
		if v := SkipSpace(b, c+1); v < len(b) {
			return v
		}
		return -1
	}
	return -1
}

// ErrNotArray is returned by EachElement for input that is not a
// well-formed JSON array at its top level.
var ErrNotArray = errors.New("not a JSON array")

// StringLen returns the length in characters (Unicode code points) of the
// value of the JSON string literal s, quotes included, as a decoder would
// produce it: an escape such as \n or \u00e9 is one character, a surrogate
// pair written as two \u escapes is one, and each byte of invalid UTF-8 is
// one. It allocates nothing and reads s once. ok is false when s is not a
// complete string literal (no opening or closing quote, a broken escape, or
// bytes after the closing quote); n then counts what could be read.
func StringLen(s []byte) (n int, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return 0, false
	}
	if last := len(s) - 1; s[last] == '"' && bytes.IndexByte(s[1:last], '"') < 0 && bytes.IndexByte(s[1:last], '\\') < 0 {
		return utf8.RuneCount(s[1:last]), true // no escapes: the common case
	}
	ok = true
	i := 1
	q := -1 // index of the next unescaped-looking quote at or after i
	for {
		if q < i {
			q = bytes.IndexByte(s[i:], '"')
			if q < 0 {
				return n + utf8.RuneCount(s[i:]), false
			}
			q += i
		}
		k := bytes.IndexByte(s[i:q], '\\')
		if k < 0 {
			n += utf8.RuneCount(s[i:q])
			return n, ok && q == len(s)-1
		}
		k += i
		n += utf8.RuneCount(s[i:k])
		adv, good := escapeLen(s, k)
		ok = ok && good
		n++
		i = k + adv
		if i > len(s) {
			return n, false
		}
	}
}

// escapeLen returns the length in bytes of the escape at s[k] (a
// backslash): 2 for \n and the like, 6 for \uXXXX and 12 for a surrogate
// pair. good is false for an escape JSON does not allow.
func escapeLen(s []byte, k int) (adv int, good bool) {
	if k+1 >= len(s) {
		return 1, false
	}
	switch s[k+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, true
	case 'u':
		r, ok := hex4(s, k+2)
		if !ok {
			return 2, false
		}
		if r >= 0xD800 && r < 0xDC00 && k+7 < len(s) && s[k+6] == '\\' && s[k+7] == 'u' {
			if r2, ok := hex4(s, k+8); ok && r2 >= 0xDC00 && r2 < 0xE000 {
				return 12, true
			}
		}
		return 6, true
	}
	return 2, false
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// AppendString appends the decoded value of the JSON string literal s
// (quotes included) to dst, stopping before the first character that would
// take dst past limit bytes, and returns the extended slice and the number
// of characters appended. Escapes are decoded as encoding/json does (a lone
// surrogate, and each byte of invalid UTF-8, becomes U+FFFD); a broken
// escape is skipped. It never panics.
func AppendString(dst, s []byte, limit int) ([]byte, int) {
	if len(s) < 2 || s[0] != '"' {
		return dst, 0
	}
	body := s[1:]
	n := 0
	for i := 0; i < len(body); {
		// Copy a run of plain ASCII at once.
		j := i
		for j < len(body) && body[j] >= 0x20 && body[j] < utf8.RuneSelf && body[j] != '"' && body[j] != '\\' {
			j++
		}
		if j > i {
			room := limit - len(dst)
			if j-i > room {
				return append(dst, body[i:i+max(room, 0)]...), n + max(room, 0)
			}
			dst = append(dst, body[i:j]...)
			n += j - i
			i = j
			continue
		}
		c := body[i]
		if c == '"' {
			break // the closing quote
		}
		if c != '\\' {
			r, size := rune(c), 1
			if c >= utf8.RuneSelf {
				r, size = utf8.DecodeRune(body[i:])
			}
			if len(dst)+utf8.RuneLen(r) > limit {
				return dst, n
			}
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, r)
			} else {
				dst = append(dst, body[i:i+size]...)
			}
			i += size
			n++
			continue
		}
		adv, good := escapeLen(body, i)
		if !good {
			i += adv
			continue
		}
		var r rune
		switch body[i+1] {
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			r, _ = hex4(body, i+2)
			if adv == 12 {
				lo, _ := hex4(body, i+8)
				r = utf16.DecodeRune(r, lo)
			} else if utf16.IsSurrogate(r) {
				r = utf8.RuneError
			}
		default:
			r = rune(body[i+1])
		}
		if len(dst)+utf8.RuneLen(r) > limit {
			return dst, n
		}
		dst = utf8.AppendRune(dst, r)
		i += adv
		n++
	}
	return dst, n
}
