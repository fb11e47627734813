package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestExitStatuses is the one rule of exit statuses over every command: a
// bad flag and a bad flag value are status 2 with one line naming the
// command, -h is status 0 with the usage on stdout, and a runtime failure
// (here: no ledger) is status 1.
func TestExitStatuses(t *testing.T) {
	t.Setenv("TOKENMETER_SERVER", "")
	t.Setenv("TOKENMETER_DATABASE", "")
	t.Setenv("TOKENMETER_DATA", t.TempDir()) // never the real one
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	nowhere := filepath.Join(t.TempDir(), "nowhere")
	// badValue is, per command, a command line whose flags parse but one
	// of whose values is wrong.
	badValue := map[string][]string{
		"serve":               {"--durability", "lax", "--data", nowhere},
		"report":              {"daily", "--since", "2026-13-01"},
		"status":              {"--tz", "Mars/Olympus"},
		"statusline":          {"--tz", "Mars/Olympus"},
		"import":              {"claude-code", "--dir", nowhere},
		"verify":              {"--config", missing},
		"keys create":         {"--name", "x", "--expires", "2026-13-01"},
		"keys list":           {"--server", "ftp://example.com"},
		"keys revoke":         {"x", "--server", "ftp://example.com"},
		"keys rotate":         {"x", "--server", "ftp://example.com"},
		"limits set":          {"x", "--scope", "team:x", "--metric", "tokens", "--max", "1", "--window", "day"},
		"limits list":         {"--server", "ftp://example.com"},
		"limits delete":       {"x", "--server", "ftp://example.com"},
		"alerts list":         {"--server", "ftp://example.com"},
		"alerts rules":        {"--config", missing},
		"alerts rules set":    {"x", "--kind", "nope"},
		"alerts rules delete": {"x", "--config", missing},
		"alerts test":         {"ops", "--config", missing},
		"anomalies":           {"--since", "yesterday"},
		"anomalies show":      {"7", "--server", "ftp://example.com"},
		"reconcile":           {"anthropic", "--since", "2026-11-01", "--bucket", "2h"},
		"reconcile history":   {"--limit", "0"},
		"fake-upstream":       {"--scenario", "nope"},
		"version":             {"extra"},
	}
	// runtime is, per command family, a command line that is right but
	// cannot be carried out: the ledger does not exist.
	runtime := [][]string{
		{"report", "daily", "--data", nowhere}, {"status", "--data", nowhere}, {"verify", "--data", nowhere},
		{"keys", "list", "--data", nowhere}, {"keys", "create", "--name", "x", "--data", nowhere},
		{"limits", "list", "--data", nowhere}, {"alerts", "list", "--data", nowhere},
		{"alerts", "rules", "--data", nowhere}, {"anomalies", "--data", nowhere},
		{"reconcile", "history", "--data", nowhere},
	}
	check := func(args []string, want int) (stdout string) {
		t.Helper()
		out, stderr, err := run(t, args...)
		code, msg := exitStatus(err)
		if code != want {
			t.Errorf("tokenmeter %s: exit status %d (%q, stderr %q); want %d", strings.Join(args, " "), code, msg, stderr, want)
		}
		oneLine := !strings.Contains(msg, "\n") || strings.Contains(msg, "invalid configuration")
		known := false
		if len(args) > 0 {
			_, known = specOf(args[0])
			known = known || slices.Contains([]string{"keys", "limits", "alerts"}, args[0])
		}
		if want == 2 && (!oneLine || (known && !strings.HasPrefix(msg, args[0]))) {
			t.Errorf("tokenmeter %s: message %q; want one line naming the command", strings.Join(args, " "), msg)
		}
		if want == 2 && strings.Contains(stderr, "flag provided") {
			t.Errorf("tokenmeter %s: the flag error is printed besides the message: %q", strings.Join(args, " "), stderr)
		}
		return out
	}
	for _, c := range commands {
		path := strings.Fields(c.path)
		t.Run(strings.Join(path, "_"), func(t *testing.T) {
			bad := 2
			if c.path == "statusline" {
				bad = 0 // a status line command always prints a line and exits 0
			}
			if out := check(append(slices.Clone(path), "-h"), 0); !strings.Contains(out, "Usage: tokenmeter "+c.path) ||
				strings.Contains(out, "bad statusline flags") {
				t.Errorf("tokenmeter %s -h: stdout %q; want the usage alone", c.path, out)
			}
			if out := check(append(slices.Clone(path), "--help"), 0); !strings.Contains(out, "Usage: tokenmeter "+c.path) {
				t.Errorf("tokenmeter %s --help: stdout %q; want the usage", c.path, out)
			}
			if out := check(append(slices.Clone(path), "--no-such-flag"), bad); bad == 0 && !strings.Contains(out, "bad statusline flags") {
				t.Errorf("statusline with a bad flag printed %q; want a line saying so", out)
			}
			v, ok := badValue[c.path]
			if !ok {
				t.Fatalf("no bad value for %s in the table", c.path)
			}
			check(append(slices.Clone(path), v...), bad)
		})
	}
	for _, args := range runtime {
		check(args, 1)
	}
	// Commands with verbs: the verb missing or unknown is status 2, help 0.
	for _, group := range []string{"keys", "limits", "alerts"} {
		check([]string{group}, 2)
		check([]string{group, "frobnicate"}, 2)
		if out := check([]string{group, "-h"}, 0); !strings.Contains(out, "tokenmeter "+group) {
			t.Errorf("tokenmeter %s -h: %q", group, out)
		}
	}
	check([]string{}, 2)
	check([]string{"frobnicate"}, 2)
	check([]string{"-h"}, 0)
	check([]string{"help"}, 0)
}

// TestFlagErrorOneLine shows issue 13's complaint gone: a bad flag is
// named once, on one line, the same way by every command family.
func TestFlagErrorOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"report", "daily", "--bogus"}, {"keys", "list", "--bogus"}, {"limits", "list", "--bogus"},
		{"alerts", "rules", "--bogus"}, {"anomalies", "--bogus"}, {"reconcile", "anthropic", "--bogus"},
		{"fake-upstream", "--bogus"}, {"serve", "--bogus"}, {"import", "codex", "--bogus"}, {"verify", "--bogus"},
	} {
		_, stderr, err := run(t, args...)
		code, msg := exitStatus(err)
		cmd := strings.Join(args[:len(args)-1], " ")
		if args[0] == "report" || args[0] == "reconcile" || args[0] == "import" {
			cmd = args[0]
		}
		want := cmd + ": unknown flag --bogus"
		if code != 2 || !strings.HasPrefix(msg, want) || stderr != "" || strings.Count(msg+stderr, "bogus") != 1 {
			t.Errorf("tokenmeter %s: exit %d, message %q, stderr %q; want exit 2 and one line starting %q",
				strings.Join(args, " "), code, msg, stderr, want)
		}
	}
	_, _, err := run(t, "reconcile", "anthropic", "--sinse", "2026-11-01")
	if _, msg := exitStatus(err); !strings.Contains(msg, "did you mean --since?") {
		t.Errorf("a misspelt flag: %q; want a suggestion", msg)
	}
}

// TestUsageCoversEveryCommand checks the usage texts against the flag
// sets: every listed command parses as a probe (so its flags are known),
// every flag of every command appears in tokenmeter -h (the ledger flags
// as [LEDGER]) and in the command's own -h, and every command the program
// dispatches is listed.
func TestUsageCoversEveryCommand(t *testing.T) {
	top, _, err := run(t, "-h")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		fs := flagsOf(c.path)
		if fs == nil {
			if c.path != "version" {
				t.Errorf("%s: the probe found no flag set", c.path)
			}
			continue
		}
		if fs.Name() != c.path {
			t.Errorf("%s: the probe found the flags of %q", c.path, fs.Name())
		}
		help, _, _ := run(t, append(strings.Fields(c.path), "-h")...)
		line := synopsis(c, fs, true, "  ", 8, 100)
		if !strings.Contains(top, line) {
			t.Errorf("tokenmeter -h lacks the line of %s:\n%s", c.path, line)
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(help, "--"+f.Name) {
				t.Errorf("tokenmeter %s -h does not mention --%s", c.path, f.Name)
			}
			if name, _ := flag.UnquoteUsage(f); name != "" && name == strings.ToLower(name) && !strings.ContainsAny(name, "|:") {
				t.Errorf("%s --%s: value placeholder %q; want one in capitals (quote it in the usage: `NAME`)", c.path, f.Name, name)
			}
		})
	}
	for _, cmd := range []string{"serve", "report", "status", "statusline", "verify", "import", "keys", "limits", "alerts",
		"anomalies", "reconcile", "fake-upstream", "version"} {
		if !strings.Contains(top, "tokenmeter "+cmd+" ") && !strings.Contains(top, "tokenmeter "+cmd+"\n") {
			t.Errorf("tokenmeter -h does not list %s", cmd)
		}
	}
}

// TestDocsCommandLines parses every command line of README.md and
// docs/*.md that starts with tokenmeter (in code blocks and in inline
// code) against the real flag sets: a flag a command does not have, or a
// command that does not exist, fails. Lines without placeholders
// ([--x], <a|b>, NAME) are parsed in full, as the command would be.
func TestDocsCommandLines(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	var n int
	for _, file := range files {
		for _, c := range docCommands(t, file) {
			n++
			checkDocCommand(t, c)
		}
	}
	t.Logf("%d command lines checked", n)
	if n < 40 {
		t.Errorf("found %d command lines in the docs; the extraction is broken", n)
	}
}

// docCommand is a command line found in a document.
type docCommand struct {
	where string // file:line
	line  string // from "tokenmeter" on
}

var (
	inlineCode = regexp.MustCompile("`([^`]+)`")
	flagName   = regexp.MustCompile(`(?:^|[\s\[|(/=])--([a-z][a-z0-9-]*)`)
	envAssign  = regexp.MustCompile(`^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+`)
)

// docCommands returns the tokenmeter command lines of file.
func docCommands(t *testing.T, file string) []docCommand {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []docCommand
	add := func(where, s string) {
		s = strings.TrimSpace(s)
		s = strings.TrimPrefix(s, "$ ")
		s = envAssign.ReplaceAllString(s, "")
		s = strings.TrimPrefix(s, "./")
		if rest, ok := strings.CutPrefix(s, "go run ./cmd/tokenmeter "); ok {
			s = "tokenmeter " + rest
		}
		if !strings.HasPrefix(s, "tokenmeter ") {
			return
		}
		if i := strings.Index(s, " #"); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "&"))
		out = append(out, docCommand{where, s})
	}
	sc := bufio.NewScanner(f)
	inBlock, ln, cont := false, 0, ""
	for sc.Scan() {
		ln++
		line := sc.Text()
		where := file + ":" + strconv.Itoa(ln)
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			if cont != "" {
				line = cont + " " + strings.TrimSpace(line)
			}
			if strings.HasSuffix(line, "\\") {
				cont = strings.TrimSuffix(line, "\\")
				continue
			}
			cont = ""
			add(where, line)
			continue
		}
		for _, m := range inlineCode.FindAllStringSubmatch(strings.ReplaceAll(line, `\|`, "|"), -1) {
			add(where, m[1])
		}
	}
	return out
}

// checkDocCommand checks one documented command line.
func checkDocCommand(t *testing.T, c docCommand) {
	t.Helper()
	words := shellWords(c.line)[1:]
	if len(words) == 0 || isHelp(words[0]) || hasPlaceholder(words[:1]) {
		return // tokenmeter -h; tokenmeter COMMAND -h
	}
	// The command: the longest listed path the words start with, or the
	// listed paths under a group whose verb the line leaves open
	// (tokenmeter keys <create|list>).
	var paths []string
	for k := min(3, len(words)); k >= 1 && paths == nil; k-- {
		p := strings.Join(words[:k], " ")
		if _, ok := specOf(p); ok {
			paths = []string{p}
		}
	}
	if paths == nil && len(words) > 0 {
		for _, s := range commands {
			if strings.HasPrefix(s.path, words[0]+" ") {
				paths = append(paths, s.path)
			}
		}
	}
	if len(paths) == 0 {
		t.Errorf("%s: %q: no such command", c.where, c.line)
		return
	}
	for _, m := range flagName.FindAllStringSubmatch(c.line, -1) {
		found := false
		for _, p := range paths {
			if fs := flagsOf(p); fs != nil && fs.Lookup(m[1]) != nil {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %q: tokenmeter %s has no flag --%s", c.where, c.line, strings.Join(paths, "|"), m[1])
		}
	}
	if strings.ContainsAny(c.line, "[]<>|…") || strings.Contains(c.line, "...") || hasPlaceholder(words) || len(paths) != 1 {
		return
	}
	// A concrete command line: parse it as the command would.
	env := &cliEnv{stdout: io.Discard, probe: true}
	ctx := context.WithValue(context.Background(), cliKey{}, env)
	err := Run(ctx, words, strings.NewReader(""), io.Discard, io.Discard)
	if !errors.Is(err, errProbe) && !errors.Is(err, flag.ErrHelp) {
		t.Errorf("%s: %q does not parse: %v", c.where, c.line, err)
	}
}

// shellWords splits a command line as a shell would, for the quoting
// the docs use ('...' and "...").
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// hasPlaceholder reports whether a word is a placeholder in capitals
// (NAME, DIR, DATE) rather than a value.
func hasPlaceholder(words []string) bool {
	for _, w := range words {
		if len(w) >= 2 && w == strings.ToUpper(w) && strings.Trim(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == "" {
			return true
		}
	}
	return false
}

// TestDocsLinks checks the relative links of README.md and docs/*.md: the
// file exists and, for a link with #anchor, one of its headings has that
// anchor (GitHub's: lower case, punctuation dropped, spaces as hyphens).
func TestDocsLinks(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	anchors := map[string]map[string]bool{}
	anchorsOf := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		a := map[string]bool{}
		b, err := os.ReadFile(file)
		if err == nil {
			inBlock := false
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "```") {
					inBlock = !inBlock
				}
				if h, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && !inBlock && strings.HasPrefix(line, "#") {
					a[slug(h)] = true
				}
			}
		}
		anchors[file] = a
		return a
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %s: no such file", file, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(dest, ".md") && !anchorsOf(dest)[anchor] {
				t.Errorf("%s: link %s: %s has no heading with that anchor", file, target, dest)
			}
		}
	}
}

// slug is GitHub's anchor of a heading.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}
