package reqbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tokenmeter/tokenmeter"
)

// MaxModelBytes bounds the model name a request may carry. Real names are
// well under 100 bytes; a longer one is refused (400) rather than stored in
// the ledger and used as a metrics label.
const MaxModelBytes = 256

// ErrModelTooLong is the error the request parsers return, as it is, for a
// model name longer than MaxModelBytes (decoded). Its code is EINVALID; the
// gateway answers it with 400. Test for it with errors.Is.
var ErrModelTooLong = tokenmeter.Errorf(tokenmeter.EINVALID, "request body: model is longer than %d bytes", MaxModelBytes)

// ModelName decodes the raw JSON value v of a request's "model" member
// (null: ""). A value too long to be a name is refused before it is
// decoded, so a huge one costs nothing: a string of n decoded bytes is
// written in at most 6n+2 bytes of JSON (\u00XX for each byte).
func ModelName(v []byte) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	if v[0] != '"' {
		return "", fmt.Errorf("model is not a string (%s)", Kind(v))
	}
	if len(v) > 6*MaxModelBytes+2 {
		return "", ErrModelTooLong
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", errors.New("model is not a valid string")
	}
	if len(s) > MaxModelBytes {
		return "", ErrModelTooLong
	}
	return s, nil
}

// Kind names the kind of the raw JSON value v ("a string", "a number", "an
// object", ...) by its first byte, so an error can say what a field held
// without quoting it. Only "a number" is checked further: v holds nothing
// but the characters of a JSON number, so it may be quoted.
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

// DescribeJSONError explains why b is not a valid JSON value (err is what
// encoding/json said of it) by position only: "empty", "truncated after N
// bytes" or "invalid JSON at byte N". Unlike jsonscan.DescribeError it
// quotes nothing, so the reason a body was unreadable, which the ledger
// keeps, holds no prompt text.
func DescribeJSONError(b []byte, err error) string {
	var se *json.SyntaxError
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return "empty"
	case !errors.As(err, &se):
		return "invalid JSON"
	case se.Error() == "unexpected end of JSON input":
		return fmt.Sprintf("truncated after %d bytes", len(b))
	}
	return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
}
