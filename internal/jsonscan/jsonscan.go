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
	if bytes.IndexByte(key, '\\') < 0 {
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
	j := i + 1
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
