// Package textsafe makes strings that clients, providers or log files
// chose (model names, projects, session ids, counter names) safe to show
// where they would otherwise act: in a terminal and in a spreadsheet.
//
// What it guarantees:
//
//   - Terminal returns a string with no control characters (C0, DEL, C1),
//     no Unicode bidirectional overrides or isolates, and valid UTF-8: an
//     escape sequence from a model name cannot move the cursor, recolour
//     or retitle the terminal of someone reading a table, and right-to-left
//     overrides cannot make one name read as another. Each character
//     removed is shown as U+FFFD, so tampering stays visible and column
//     widths stay predictable.
//   - CSVCell returns a cell that a spreadsheet does not evaluate: a text
//     cell beginning with '=', '+', '-', '@', a tab or a carriage return
//     gets a leading single quote, as OWASP's CSV injection guidance
//     recommends. It is for text cells only: numbers (a negative
//     difference) are written as they are.
package textsafe

import (
	"strings"
	"unicode/utf8"
)

// Replacement is what Terminal shows in place of a character it removes.
const Replacement = '\uFFFD'

// Terminal returns s fit for one cell of terminal output (see the package
// comment). Strings that need nothing are returned as they are, without
// allocating.
func Terminal(s string) string {
	clean := true
	for _, r := range s {
		if unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unsafeRune(r) {
			r = Replacement
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unsafeRune reports whether r must not reach a terminal: control
// characters, bidirectional formatting characters, and utf8.RuneError
// (which ranging over a string yields for an invalid byte; a literal
// U+FFFD is shown as itself anyway).
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1 (CSI is U+009B)
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // embeddings, overrides, isolates, directional marks
	case r == utf8.RuneError:
		return true
	}
	return false
}

// CSVCell returns the text cell s made inert for spreadsheets (see the
// package comment).
func CSVCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
