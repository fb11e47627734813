package openai

// Small JSON helpers shared by the request peek, InjectIncludeUsage and the
// meter. The anthropic package has its own copy: each provider package imports
// only tokenmeter and sse.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxCount bounds every token or request count the meter accepts. No single
// call comes near it (context windows are a few million tokens), so a larger
// value is garbage, and keeping every field below it keeps sums far from
// overflow.
const maxCount = 1_000_000_000

// maxReason bounds the length of error and malformed reasons, which may quote
// provider messages.
const maxReason = 300

// maxName bounds model names and message ids taken from responses.
const maxName = 256

var errNotObject = errors.New("not a JSON object")

// eachMember calls fn for each member of the JSON object obj, in order, with
// the member's key exactly as written (without quotes, escapes not decoded)
// and the bounds [start, end) of its value in obj. obj must already be known
// to be valid JSON (json.Valid); eachMember returns errNotObject if it is
// another kind of value. Unlike encoding/json's struct decoding, callers match
// keys exactly, as the providers do: {"Model": ...} is not "model".
func eachMember(obj []byte, fn func(key []byte, start, end int)) error {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return errNotObject
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return end(obj, i)
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return errNotObject // a key must follow '{' or ','
		}
		kend := skipString(obj, i)
		if kend < 0 {
			return errNotObject
		}
		key := obj[i+1 : kend-1]
		i = skipSpace(obj, kend)
		if i >= len(obj) || obj[i] != ':' {
			return errNotObject
		}
		start := skipSpace(obj, i+1)
		stop := skipValue(obj, start)
		if stop < 0 {
			return errNotObject
		}
		fn(key, start, stop)
		i = skipSpace(obj, stop)
		if i >= len(obj) {
			return errNotObject
		}
		switch obj[i] {
		case '}':
			return end(obj, i)
		case ',':
			i = skipSpace(obj, i+1)
		default:
			return errNotObject
		}
	}
}

// end checks that nothing but space follows the object's closing brace at i.
func end(obj []byte, i int) error {
	if skipSpace(obj, i+1) != len(obj) {
		return errNotObject
	}
	return nil
}

// keyIs reports whether the raw key (as passed by eachMember) names want,
// decoding escapes such as "mod\u0065l" the way a JSON parser would.
func keyIs(key []byte, want string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key) == want
	}
	var s string
	q := make([]byte, 0, len(key)+2)
	q = append(append(append(q, '"'), key...), '"')
	return json.Unmarshal(q, &s) == nil && s == want
}

func skipSpace(b []byte, i int) int {
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

// skipString returns the index just after the string starting at b[i] (a
// quote), or -1.
func skipString(b []byte, i int) int {
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

// skipValue returns the index just after the JSON value starting at b[i], or
// -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j)
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

// isNull reports whether the raw JSON value v is absent or null.
func isNull(v []byte) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

// parseCount decodes a token or request count: a non-negative JSON integer
// no larger than maxCount. null counts as zero.
func parseCount(field string, v []byte) (int64, error) {
	if isNull(v) {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, fmt.Errorf("%s is not an integer: %s", field, clip(string(v), 24))
	}
	if n < 0 {
		return 0, fmt.Errorf("%s is negative (%d)", field, n)
	}
	if n > maxCount {
		return 0, fmt.Errorf("%s is implausibly large (%d)", field, n)
	}
	return n, nil
}

// describeJSONError explains why b is not valid JSON without echoing more than
// a short excerpt of it.
func describeJSONError(b []byte, err error) string {
	var se *json.SyntaxError
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return "empty"
	case !errors.As(err, &se):
		return "invalid JSON"
	case se.Error() == "unexpected end of JSON input":
		return fmt.Sprintf("truncated after %d bytes", len(b))
	}
	return fmt.Sprintf("invalid JSON at byte %d near %s", se.Offset, excerpt(b, int(se.Offset)))
}

// excerpt returns a short quoted piece of b around offset off (at most 32
// bytes), marking with "…" where it was cut.
func excerpt(b []byte, off int) string {
	const n = 16
	off = max(0, min(off, len(b)))
	start, end := max(0, off-n), min(len(b), off+n)
	s := b[start:end]
	for len(s) > 0 && !utf8.RuneStart(s[0]) { // drop a rune cut at the start
		s = s[1:]
	}
	q := string(s)
	if start > 0 {
		q = "…" + q
	}
	if end < len(b) {
		q += "…"
	}
	return fmt.Sprintf("%q", q)
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
