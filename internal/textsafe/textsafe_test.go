package textsafe_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tokenmeter/tokenmeter/internal/textsafe"
)

func TestTerminal(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"claude-sonnet-5-5", "claude-sonnet-5-5"},
		{"", ""},
		{"über-modell 日本", "über-modell 日本"},
		{"\x1b[31mred\x1b[0m", "\uFFFD[31mred\uFFFD[0m"},
		{"title\x1b]0;pwned\x07", "title\uFFFD]0;pwned\uFFFD"},
		{"a\rb\nc\td", "a\uFFFDb\uFFFDc\uFFFDd"},
		{"csi\u009b2J", "csi\uFFFD2J"},
		{"del\x7f", "del\uFFFD"},
		{"abc\u202egpj.exe", "abc\uFFFDgpj.exe"},
		{"iso\u2066late\u2069", "iso\uFFFDlate\uFFFD"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
	} {
		if got := textsafe.Terminal(tt.in); got != tt.want {
			t.Errorf("Terminal(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCSVCell(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"claude-sonnet-5-5", "claude-sonnet-5-5"},
		{"", ""},
		{"=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"},
		{"+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"a=1", "a=1"},
		{" =1", " =1"},
	} {
		if got := textsafe.CSVCell(tt.in); got != tt.want {
			t.Errorf("CSVCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzTerminal: the result is valid UTF-8 without a control or bidi
// character, and strings that need nothing are unchanged.
func FuzzTerminal(f *testing.F) {
	for _, s := range []string{"claude", "\x1b[2J", "\u202e", "\xff\xfe", "a\u009bb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := textsafe.Terminal(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Terminal(%q) = %q: invalid UTF-8", s, got)
		}
		for _, r := range got {
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("Terminal(%q) = %q keeps %U", s, got, r)
			}
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r == utf8.RuneError }) && got != s &&
			utf8.RuneCountInString(got) != utf8.RuneCountInString(s) {
			t.Fatalf("Terminal(%q) = %q changed the length of a valid string", s, got)
		}
	})
}
