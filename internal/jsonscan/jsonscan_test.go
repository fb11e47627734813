package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

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
	if !jsonscan.KeyIs([]byte(`mod\u0065l`), "model") || jsonscan.KeyIs([]byte("Model"), "model") ||
		!jsonscan.KeyIs([]byte(`\/`), "/") || jsonscan.KeyIs([]byte("mode"), "model") || jsonscan.KeyIs([]byte(`mode\n`), "model") {
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

func TestStringLen(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{
		{`""`, 0, true},
		{`"Hi"`, 2, true},
		{`"a\nb"`, 3, true},
		{`"caf\u00e9"`, 4, true},
		{`"café"`, 4, true},
		{`"\ud83d\ude00!"`, 2, true},      // a surrogate pair is one character
		{`"😀"`, 1, true},                  // as is the same character unescaped
		{`"\ud83d x"`, 3, true},           // a lone surrogate is one (U+FFFD)
		{`"say \"hi\" \\"`, 10, true},     // escaped quotes and backslash
		{`"\\"`, 1, true},                 // a backslash before the closing quote
		{`"a\qb"`, 3, false},              // not a JSON escape
		{`"a\u12"`, 4, false},             // a short \u escape: a, the backslash-u, 1, 2
		{`"abc`, 3, false},                // no closing quote
		{`"ab"c`, 2, false},               // bytes after it
		{`abc`, 0, false},                 // not a string
		{`"` + "\xff\xfe" + `"`, 2, true}, // invalid UTF-8: a character per byte
	} {
		got, ok := jsonscan.StringLen([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("StringLen(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, tt := range []struct {
		in    string
		limit int
		want  string
		n     int
	}{
		{`"a\nb\u00e9\ud83d\ude00"`, 100, "a\nbé😀", 5},
		{`"a\nb\u00e9\ud83d\ude00"`, 4, "a\nb", 3}, // é (2 bytes) does not fit
		{`"\ud83d"`, 100, "\uFFFD", 1},
		{`"x\"y"`, 100, `x"y`, 3},
		{`"unterminated`, 100, "unterminated", 12},
		{`"ab"cd`, 100, "ab", 2},
		{`nope`, 100, "", 0},
	} {
		got, n := jsonscan.AppendString([]byte("<"), []byte(tt.in), tt.limit+1)
		if string(got) != "<"+tt.want || n != tt.n {
			t.Errorf("AppendString(%s, %d) = %q, %d; want %q, %d", tt.in, tt.limit, got[1:], n, tt.want, tt.n)
		}
	}
}

func TestEachElement(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{`[]`, ``, true},
		{` [ 1 , "a]" ,{"b":[2]} ] `, `1|"a]"|{"b":[2]}`, true},
		{`[1,]`, `1`, false},
		{`[1 2]`, `1`, false},
		{`[1] x`, `1`, false},
		{`{}`, ``, false},
	} {
		var got []string
		err := jsonscan.EachElement([]byte(tt.in), func(start, end int) { got = append(got, tt.in[start:end]) })
		if strings.Join(got, "|") != tt.want || (err == nil) != tt.ok {
			t.Errorf("EachElement(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzString checks StringLen and AppendString against encoding/json: for
// every string literal encoding/json accepts, StringLen is ok and counts
// the runes of the decoded value, and AppendString decodes the same value
// (whole, or cut at a character boundary by a limit); for anything else
// neither panics.
func FuzzString(f *testing.F) {
	for _, s := range []string{`""`, `"a\nb"`, `"caf\u00e9"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\udc00\ud800"`, `"\\\""`, `"a\qb"`, `"ab`, "\"\xff\"", `"\u12"`} {
		f.Add([]byte(s), 7)
	}
	f.Fuzz(func(t *testing.T, s []byte, limit int) {
		n, ok := jsonscan.StringLen(s)
		limit = max(0, limit%64)
		out, m := jsonscan.AppendString(nil, s, limit)
		if len(out) > limit || m > n+1 {
			t.Fatalf("AppendString(%q, %d) = %q, %d characters (StringLen %d)", s, limit, out, m, n)
		}
		var v string
		if json.Unmarshal(s, &v) != nil || s[0] != '"' || s[len(s)-1] != '"' {
			return // not a string literal alone (space around it is not part of it)
		}
		if !ok || n != utf8.RuneCountInString(v) {
			t.Fatalf("StringLen(%q) = %d, %v; encoding/json decodes %d runes", s, n, ok, utf8.RuneCountInString(v))
		}
		whole, m := jsonscan.AppendString(nil, s, len(v))
		if string(whole) != v || m != n {
			t.Fatalf("AppendString(%q) = %q, %d; encoding/json gives %q", s, whole, m, v)
		}
		if !strings.HasPrefix(v, string(out)) {
			t.Fatalf("AppendString(%q, %d) = %q, not a prefix of %q", s, limit, out, v)
		}
	})
}

func BenchmarkStringLen(b *testing.B) {
	s := []byte(`"The quick brown fox \"jumps\" over the lazy dog.\nCafé au lait, s'il vous plaît. \u00e9\u00e8"`)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if n, ok := jsonscan.StringLen(s); !ok || n != 80 {
			b.Fatal(n, ok)
		}
	}
}

func TestFind(t *testing.T) {
	for _, tt := range []struct {
		in, name, want string
	}{
		{`{"type":"x","delta":{"text":"hi"}}`, "delta", `{"text":"hi"}`},
		{`{"type":"text_delta","delta" : "a"}`, "delta", `"a"`},                              // "text_delta" is a value, not the key
		{`{"a":"say \"delta\": no","delta":1}`, "delta", `1`},                                // inside a string
		{`{"a\"delta":2,"delta":3}`, "delta", `3`},                                           // the tail of a key with an escaped quote
		{`{"a\\":"x","delta":4}`, "delta", `4`},                                              // an escaped backslash before a quote
		{`{"choices":[{"delta":{"content":"a"}},{"delta":{}}]}`, "delta", `{"content":"a"}`}, // the first
		{`{"deltas":1}`, "delta", ``},
		{`{"delta":}`, "delta", ``},
		{`{"delta"`, "delta", ``},
		{``, "delta", ``},
	} {
		got := ""
		if start := jsonscan.Find([]byte(tt.in), tt.name); start >= 0 {
			if end := jsonscan.SkipValue([]byte(tt.in), start); end >= 0 {
				got = tt.in[start:end]
			}
		}
		if got != tt.want {
			t.Errorf("Find(%s, %q) = %q, want %q", tt.in, tt.name, got, tt.want)
		}
	}
}

// FuzzFind checks Find against encoding/json on valid documents: a value it
// finds is the value of a member of that name somewhere in the document, and
// in a document without escapes a member of that name is always found.
func FuzzFind(f *testing.F) {
	for _, s := range []string{`{"delta":{"text":"a"}}`, `{"a":"\"delta\":1","delta":2}`, `[{"x":{"delta":[1]}}]`, `{"a\"delta":1}`, `"delta"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		start := jsonscan.Find(b, "delta")
		if start >= len(b) {
			t.Fatalf("Find(%q) = %d", b, start)
		}
		end := -1
		if start >= 0 {
			end = jsonscan.SkipValue(b, start)
		}
		var doc any
		if json.Unmarshal(b, &doc) != nil {
			return
		}
		var values []any
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, x := range v {
					if k == "delta" {
						values = append(values, x)
					}
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(doc)
		if end < 0 {
			if len(values) > 0 && !bytes.Contains(b, []byte(`\`)) {
				t.Fatalf("Find(%q) found nothing; the document has a member delta", b)
			}
			return
		}
		var got any
		if err := json.Unmarshal(b[start:end], &got); err != nil {
			t.Fatalf("Find(%q) = %q, not a JSON value: %v", b, b[start:end], err)
		}
		for _, v := range values {
			if reflect.DeepEqual(v, got) {
				return
			}
		}
		t.Fatalf("Find(%q) = %q, not the value of a member named delta (%v)", b, b[start:end], values)
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
