package tokenmeter_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayout keeps the package layering true: the root imports only the
// standard library, wire packages import only the root, sse, jsonscan and
// estimate (which adds only a tokenizer), the ledger's shared rules only the
// root, storage backends are wired only by cmd, and no production package
// imports testing helpers or the fake upstream.
func TestLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	const mod = "github.com/tokenmeter/tokenmeter"
	rules := []struct {
		pkg    string // package the rule applies to ("*" = every production package)
		forbid func(imp string) bool
		why    string
	}{
		{mod, func(i string) bool { return strings.Contains(i, ".") }, "the root package is vocabulary: standard library only"},
		{mod + "/internal/anthropic", notIn(mod, mod+"/internal/sse", mod+"/internal/jsonscan", mod+"/internal/estimate"), "wire packages import only the root, sse, jsonscan and estimate"},
		{mod + "/internal/openai", notIn(mod, mod+"/internal/sse", mod+"/internal/jsonscan", mod+"/internal/estimate"), "wire packages import only the root, sse, jsonscan and estimate"},
		{mod + "/internal/estimate", notIn(mod+"/internal/jsonscan", "github.com/tiktoken-go/tokenizer/codec"), "estimate imports only jsonscan and the tokenizer's vocabularies"},
		{mod + "/internal/jsonscan", func(i string) bool { return strings.Contains(i, ".") }, "jsonscan is a leaf: standard library only"},
		{mod + "/internal/ledgerrules", notIn(mod), "the ledger's rules import only the root"},
		{"*", func(i string) bool { return i == mod+"/internal/sqlite" || i == mod+"/internal/postgres" }, "only cmd/tokenmeter wires a storage backend"},
		{"*", func(i string) bool { return i == "testing" || i == mod+"/internal/storetest" }, "no test helpers in production code"},
		{"*", func(i string) bool { return i == mod+"/internal/fakeupstream" }, "only cmd/tokenmeter serves the fake upstream"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, r := range rules {
			if r.pkg == "*" && (strings.HasPrefix(pkg, mod+"/cmd/") || pkg == mod+"/internal/storetest" || pkg == mod+"/internal/tools") {
				continue
			}
			if r.pkg != "*" && r.pkg != pkg {
				continue
			}
			for _, imp := range imports {
				if r.forbid(imp) {
					t.Errorf("%s imports %s: %s", pkg, imp, r.why)
				}
			}
		}
	}
}

// notIn returns a filter that forbids module-internal and third-party
// imports other than allowed.
func notIn(allowed ...string) func(string) bool {
	return func(imp string) bool {
		if !strings.Contains(imp, ".") {
			return false // standard library
		}
		for _, a := range allowed {
			if imp == a {
				return false
			}
		}
		return true
	}
}
