package tokenmeter_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestLayout keeps the package layering true: the root imports only the
// standard library, wire packages import only the root, sse, jsonscan and
// estimate (which adds only a tokenizer and its regexp engine), the ledger's
// shared rules only the root, storage backends are wired only by cmd, and
// no production package imports testing helpers or the fake upstream.
// Every rule holds for a package's transitive imports, not only its own
// import lines: a helper package in between does not hide a forbidden
// dependency. The test fails, never skips, when it cannot list the
// packages.
func TestLayout(t *testing.T) {
	goList := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"list"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	// Standard-library packages, vendored ones (vendor/golang.org/x/...)
	// included, by import path.
	std := map[string]bool{}
	for _, p := range strings.Fields(goList("-deps", "-f", `{{if .Standard}}{{.ImportPath}}{{end}}`, "./...")) {
		std[p] = true
	}
	if !std["fmt"] || !std["net/http"] {
		t.Fatalf("go list found no standard library packages (%d)", len(std))
	}
	const mod = "github.com/tokenmeter/tokenmeter"
	notStd := func(i string) bool { return !std[i] }
	// The tokenizer estimate uses, with the regexp engine it needs.
	tokenizer := []string{mod + "/internal/jsonscan", "github.com/tiktoken-go/tokenizer/codec",
		"github.com/dlclark/regexp2/v2", "github.com/dlclark/regexp2/v2/syntax", "github.com/dlclark/regexp2/v2/helpers"}
	wire := append([]string{mod, mod + "/internal/sse", mod + "/internal/estimate"}, tokenizer...)
	rules := []struct {
		pkg    string // package the rule applies to ("*" = every production package)
		forbid func(imp string) bool
		why    string
	}{
		{mod, notStd, "the root package is vocabulary: standard library only"},
		{mod + "/internal/anthropic", notIn(std, wire...), "wire packages import only the root, sse, jsonscan and estimate"},
		{mod + "/internal/openai", notIn(std, wire...), "wire packages import only the root, sse, jsonscan and estimate"},
		{mod + "/internal/estimate", notIn(std, tokenizer...), "estimate imports only jsonscan and the tokenizer"},
		{mod + "/internal/jsonscan", notStd, "jsonscan is a leaf: standard library only"},
		{mod + "/internal/textsafe", notStd, "textsafe is a leaf: standard library only"},
		{mod + "/internal/ledgerrules", notIn(std, mod), "the ledger's rules import only the root"},
		{"*", func(i string) bool { return i == mod+"/internal/sqlite" || i == mod+"/internal/postgres" }, "only cmd/tokenmeter wires a storage backend"},
		{"*", func(i string) bool { return i == "testing" || i == mod+"/internal/storetest" }, "no test helpers in production code"},
		{"*", func(i string) bool { return i == mod+"/internal/fakeupstream" }, "only cmd/tokenmeter serves the fake upstream"},
	}
	lines := strings.Split(strings.TrimSpace(goList("-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...")), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list listed %d packages", len(lines))
	}
	seen := map[string]bool{}
	for _, line := range lines {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		seen[pkg] = true
		for _, r := range rules {
			if r.pkg == "*" && (strings.HasPrefix(pkg, mod+"/cmd/") ||
				pkg == mod+"/internal/storetest" || pkg == mod+"/internal/tools") {
				continue
			}
			if r.pkg != "*" && r.pkg != pkg {
				continue
			}
			for _, dep := range deps {
				if r.forbid(dep) {
					t.Errorf("%s depends on %s: %s", pkg, dep, r.why)
				}
			}
		}
	}
	for _, r := range rules {
		if r.pkg != "*" && !seen[r.pkg] {
			t.Errorf("rule for %s: no such package (renamed? update the rule)", r.pkg)
		}
	}
}

// notIn returns a filter that forbids every dependency outside the
// standard library other than allowed.
func notIn(std map[string]bool, allowed ...string) func(string) bool {
	return func(imp string) bool {
		if std[imp] {
			return false
		}
		for _, a := range allowed {
			if imp == a {
				return false
			}
		}
		return true
	}
}
