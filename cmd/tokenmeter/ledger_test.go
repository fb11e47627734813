package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLedgerChoice is issue 19's "wrong ledger, silently": every command
// chooses its ledger the same way (--data, else --config's data:, else the
// environment), only serve and import create one, and the others refuse a
// missing one instead of starting an empty ledger or answering "none".
func TestLedgerChoice(t *testing.T) {
	t.Setenv("TOKENMETER_SERVER", "")
	t.Setenv("TOKENMETER_DATABASE", "")
	home := t.TempDir()
	t.Setenv("TOKENMETER_DATA", filepath.Join(home, "default"))
	served := newLedger(t)
	cfg := filepath.Join(t.TempDir(), "tm.yaml")
	if err := os.WriteFile(cfg, []byte("data: "+served+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(logs, "proj"), 0o700); err != nil {
		t.Fatal(err)
	}
	line := transcriptLine("msg_1", "req_1", time.Now().Add(-time.Hour), 10, 5)
	if err := os.WriteFile(filepath.Join(logs, "proj", "s1.jsonl"), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}

	// import --config writes into the config's ledger, and says so.
	out, stderr, err := run(t, "import", "claude-code", "--dir", logs, "--config", cfg)
	if err != nil || !strings.Contains(out, "1 new") || !strings.Contains(stderr, filepath.Join(served, LedgerFile)) {
		t.Fatalf("import --config: %v\nstdout %s\nstderr %s", err, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(home, "default", LedgerFile)); err == nil {
		t.Error("import --config created a ledger in the default data directory")
	}
	// Every reader given the same --config sees that call.
	for _, args := range [][]string{
		{"report", "daily", "--json"}, {"status", "--json"}, {"verify"}, {"keys", "list"}, {"limits", "list"},
		{"anomalies"}, {"alerts", "list"}, {"alerts", "rules"}, {"reconcile", "history"},
	} {
		out, stderr, err := run(t, append(args, "--config", cfg)...)
		if err != nil {
			t.Errorf("%s --config: %v %s", strings.Join(args, " "), err, stderr)
		}
		if args[0] == "report" && !strings.Contains(out, `"requests": 1`) {
			t.Errorf("report --config: %s; want the imported call", out)
		}
	}
	// A writer names its ledger.
	_, stderr, err = run(t, "limits", "set", "cap", "--scope", "global", "--metric", "requests", "--max", "9", "--window", "day", "--config", cfg)
	if err != nil || !strings.Contains(stderr, "ledger "+filepath.Join(served, LedgerFile)) {
		t.Errorf("limits set --config: %v; stderr %q; want the ledger named", err, stderr)
	}

	// A mistyped --data: nothing is created, every command says so and
	// exits non-zero.
	typo := filepath.Join(t.TempDir(), "tm-dmeo")
	for _, args := range [][]string{
		{"keys", "create", "--name", "ci"}, {"keys", "list"}, {"keys", "revoke", "ci"}, {"limits", "list"},
		{"limits", "set", "cap", "--scope", "global", "--metric", "requests", "--max", "9", "--window", "day"},
		{"limits", "delete", "cap"}, {"alerts", "rules", "set", "r", "--kind", "anomaly"}, {"alerts", "rules"},
		{"alerts", "list"}, {"anomalies"}, {"report", "daily"}, {"status"}, {"verify"}, {"reconcile", "history"},
	} {
		_, _, err := run(t, append(args, "--data", typo)...)
		code, msg := exitStatus(err)
		if code == 0 || !strings.Contains(msg, "no ledger at "+filepath.Join(typo, LedgerFile)) {
			t.Errorf("%s --data (missing): exit %d %q; want a non-zero exit and no ledger at ...", strings.Join(args, " "), code, msg)
		}
	}
	if _, err := os.Stat(typo); err == nil {
		t.Errorf("a command created the mistyped data directory %s", typo)
	}
	// import creates a ledger, and says so loudly.
	_, stderr, err = run(t, "import", "claude-code", "--dir", logs, "--data", typo)
	if err != nil || !strings.Contains(stderr, "created a new ledger at "+filepath.Join(typo, LedgerFile)) {
		t.Errorf("import into a new data directory: %v; stderr %q", err, stderr)
	}

	// Team mode's seam: a database URL from the flag, the config or the
	// environment is refused with one message, never echoed.
	dbcfg := filepath.Join(t.TempDir(), "db.yaml")
	if err := os.WriteFile(dbcfg, []byte("database: postgres://u:hunter2@db/tm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  string
	}{
		{[]string{"report", "daily", "--database", "postgres://u:hunter2@db/tm"}, ""},
		{[]string{"keys", "list", "--config", dbcfg}, ""},
		{[]string{"verify"}, "postgres://u:hunter2@db/tm"},
		{[]string{"serve", "--database", "postgres://u:hunter2@db/tm"}, ""},
	} {
		t.Setenv("TOKENMETER_DATABASE", tc.env)
		_, _, err := run(t, tc.args...)
		code, msg := exitStatus(err)
		if code != 2 || !strings.Contains(msg, "team mode: PostgreSQL support is not in this build yet") || strings.Contains(msg, "hunter2") {
			t.Errorf("%v (env %q): exit %d %q; want exit 2 and the team-mode message without the URL", tc.args, tc.env, code, msg)
		}
	}
	t.Setenv("TOKENMETER_DATABASE", "")
	if _, _, err := run(t, "report", "daily", "--database", "mysql://x"); err == nil || !strings.Contains(err.Error(), "want a PostgreSQL URL") {
		t.Errorf("--database mysql://: %v", err)
	}
	if _, _, err := run(t, "report", "daily", "--database", "postgres://x", "--data", served); err == nil || !strings.Contains(err.Error(), "choose one of --data and --database") {
		t.Errorf("--database with --data: %v", err)
	}
}
