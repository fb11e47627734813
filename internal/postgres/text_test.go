package postgres

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapeText(t *testing.T) {
	for _, c := range []struct{ in, stored string }{
		{"", ""},
		{"claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"héllo – 日本", "héllo – 日本"},
		{"a\x00b", "a\x7f00b"},
		{"del\x7f", "del\x7f7f"},
		{"cut\xe2\x82", "cut\x7fe2\x7f82"},
		{"\xff/completed", "\x7fff/completed"},
	} {
		got := escapeText(c.in)
		if got != c.stored {
			t.Errorf("escapeText(%q) = %q, want %q", c.in, got, c.stored)
		}
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Errorf("escapeText(%q) = %q: not storable as text", c.in, got)
		}
		if back := unescapeText(got); back != c.in {
			t.Errorf("unescapeText(%q) = %q, want %q", got, back, c.in)
		}
	}
	// Appending ASCII commutes with the escape (keys built from request keys).
	if escapeText("\xff")+"/completed" != escapeText("\xff/completed") {
		t.Error("escape of a key is not the escaped request key and its suffix")
	}
}

func FuzzEscapeText(f *testing.F) {
	for _, s := range []string{"", "abc", "a\x00b", "\x7f", "\x7f41", "\xe2\x82", "日本\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := escapeText(s)
		if !utf8.ValidString(e) || strings.IndexByte(e, 0) >= 0 {
			t.Fatalf("escapeText(%q) = %q: not storable as text", s, e)
		}
		if back := unescapeText(e); back != s {
			t.Fatalf("round trip of %q through %q gave %q", s, e, back)
		}
		if !needsEscape(s) && e != s {
			t.Fatalf("escapeText(%q) = %q changed a plain string", s, e)
		}
	})
}

// TestEscapedEverywhere: no code of the package but text.go calls pgx's
// Exec, Query, QueryRow or Queue, whose strings would pass unescaped (see
// text.go); the rest goes through exec, query, queryRow and queue.
func TestEscapedEverywhere(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil || len(names) == 0 {
		t.Fatalf("list the package's files: %v (%d)", err, len(names))
	}
	files := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") || name == "text.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
	}
	for _, pkg := range []struct{ Files map[string]*ast.File }{{files}} {
		for name, f := range pkg.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					switch sel.Sel.Name {
					case "Exec", "Query", "QueryRow", "Queue":
						t.Errorf("%s: %s calls pgx's %s directly: use exec, query, queryRow or queue (text.go)", name, fset.Position(call.Pos()), sel.Sel.Name)
					}
				}
				return true
			})
		}
	}
}
