package jsonscan_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter/internal/jsonscan"
)

func members(obj string) (string, error) {
	var out []string
	err := jsonscan.EachMember([]byte(obj), func(key []byte, start, end int) {
		out = append(out, fmt.Sprintf("%s=%s", key, obj[start:end]))
	})
	return strings.Join(out, " "), err
}

func TestEachMember(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`{}`, ``, true},
		{` { "a" : 1 , "b":"x\"}" ,"c":{"d":[1,{"e":"]"}]}} `, `a=1 b="x\"}" c={"d":[1,{"e":"]"}]}`, true},
		{`{"a":null,"a":true}`, `a=null a=true`, true},
		{`{"model":}`, ``, false},
		{`{"model":"a",}`, `model="a"`, false},
		{`{"model":"a"} x`, `model="a"`, false},
		{`{"a" 1}`, ``, false},
		{`{,"a":1}`, ``, false},
		{`[]`, ``, false},
		{`{"a":"unterminated}`, ``, false},
		{``, ``, false},
	}
	for _, tt := range tests {
		got, err := members(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("EachMember(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseCount(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"12", 12, true}, {"null", 0, true}, {"", 0, true}, {"-1", 0, false}, {"1.5", 0, false},
		{`"3"`, 0, false}, {"1000000001", 0, false}, {"1000000000", 1_000_000_000, true},
	} {
		got, err := jsonscan.ParseCount("n", []byte(tt.in))
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseCount(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestKeyIs(t *testing.T) {
	if !jsonscan.KeyIs([]byte(`mod\u0065l`), "model") || jsonscan.KeyIs([]byte("Model"), "model") {
		t.Error("KeyIs must decode escapes and match case exactly")
	}
}

// FuzzEachMember checks EachMember against encoding/json: whatever it
// accepts as an object whose members are valid JSON, encoding/json accepts
// too, with the same keys; and it never panics.
func FuzzEachMember(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[{"c":"\""}]}`, `{"a":}`, `{"a":1,}`, `{"a":"\\"}`, `{"a":1} `, "{\"a\":\"\u2028\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var keys []string
		valid := true
		err := jsonscan.EachMember(b, func(key []byte, start, end int) {
			if start < 0 || end > len(b) || start > end {
				t.Fatalf("EachMember(%q) gave bounds [%d,%d)", b, start, end)
			}
			if !json.Valid(b[start:end]) {
				valid = false
			}
			var k string
			if json.Unmarshal([]byte(`"`+string(key)+`"`), &k) != nil {
				valid = false
			}
			keys = append(keys, k)
		})
		if err != nil || !valid {
			return
		}
		var m map[string]json.RawMessage
		if jerr := json.Unmarshal(b, &m); jerr != nil {
			t.Fatalf("EachMember(%q) accepted an object with valid members that encoding/json rejects: %v", b, jerr)
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Fatalf("EachMember(%q) saw key %q that encoding/json does not", b, k)
			}
		}
	})
}

// TestDescribeErrorShowsNoInput: the description of a body that is not
// JSON names the position and the problem, never a byte of the body (a
// prompt), whatever the offending character.
func TestDescribeErrorShowsNoInput(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"messages":[{"content":"my secret plan"},]}`, "invalid JSON at byte 43 (unexpected character looking for beginning of value)"},
		{`{"model":"m" "secret"}`, "invalid JSON at byte 14 (unexpected character after object key:value pair)"},
		{`{"a":'secret'}`, "invalid JSON at byte 6 (unexpected character looking for beginning of value)"},
		{"{\"a\":\"sec\x01ret\"}", "invalid JSON at byte 10 (unexpected character in string literal)"},
		{`secret prompt`, "invalid JSON at byte 1 (unexpected character looking for beginning of value)"},
		{`{"a":tru}`, "invalid JSON at byte 9 (syntax error)"},
		{`{"a":"secret`, "truncated after 12 bytes"},
		{"  ", "empty"},
	} {
		var v any
		err := json.Unmarshal([]byte(c.body), &v)
		got := jsonscan.DescribeError([]byte(c.body), err)
		if got != c.want {
			t.Errorf("DescribeError(%q) = %q, want %q", c.body, got, c.want)
		}
		if strings.Contains(got, "sec") || strings.Contains(got, "\x01") || strings.Contains(got, "\\x01") {
			t.Errorf("DescribeError(%q) = %q shows the input", c.body, got)
		}
	}
}
