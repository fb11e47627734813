package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrTooLong is returned by BoundedString for a string longer than its
// bound.
var ErrTooLong = errors.New("string too long")

// BoundedString decodes the raw JSON value v, a string of at most max bytes
// once decoded, or null (""). A value too long to fit is refused with
// ErrTooLong before it is decoded, so a huge one costs nothing: n decoded
// bytes take at most 6n+2 bytes of JSON (\u00XX for each). Other errors
// name the value's Kind and never quote it.
func BoundedString(v []byte, max int) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	if v[0] != '"' {
		return "", fmt.Errorf("not a string (%s)", Kind(v))
	}
	if len(v) > 6*max+2 {
		return "", ErrTooLong
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", errors.New("not a valid string")
	}
	if len(s) > max {
		return "", ErrTooLong
	}
	return s, nil
}

// Kind names the kind of the raw JSON value v ("a string", "a number", "an
// object", "an array", "a boolean", "null"), so an error can say what a
// field held without quoting it, which could be prompt text. Only numbers
// are checked beyond their first byte: "a number" is v made of nothing but
// the characters of JSON numbers, so quoting it reveals no text.
func Kind(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch c := v[0]; {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		for _, c := range v {
			if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
				return "not JSON"
			}
		}
		return "a number"
	}
	return "not JSON"
}
