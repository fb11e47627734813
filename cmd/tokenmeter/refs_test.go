package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenmeter/tokenmeter"
)

// TestReferenceWarnings: a limit naming a missing key, a rule naming a
// missing limit or sink, are accepted with a warning (they may be created
// later), by the command that makes them and by serve at start; built-in
// and config rules say why they cannot be deleted.
func TestReferenceWarnings(t *testing.T) {
	data := newLedger(t)
	cfg := filepath.Join(t.TempDir(), "tm.yaml")
	if err := os.WriteFile(cfg, []byte("data: "+data+"\nalerts:\n  sinks:\n    - {name: ops, type: command, command: 'true'}\n"+
		"  rules:\n    - {name: from-config, kind: anomaly}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	warned := func(args []string, want string) {
		t.Helper()
		_, stderr, err := run(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if want == "" && strings.Contains(stderr, "warning") {
			t.Errorf("%v: unexpected warning %q", args, stderr)
		}
		if want != "" && !strings.Contains(stderr, "tokenmeter: warning: "+want) {
			t.Errorf("%v: stderr %q; want a warning %q", args, stderr, want)
		}
	}
	limit := []string{"limits", "set", "cap", "--scope", "key:alice", "--metric", "requests", "--max", "9", "--window", "day", "--data", data}
	warned(limit, "limit cap counts virtual key alice, which does not exist in this ledger")
	createKey(t, data, "--name", "alice")
	warned(limit, "")
	warned([]string{"limits", "set", "ghost", "--scope", "key:bob", "--metric", "requests", "--max", "9", "--window", "day", "--data", data},
		"limit ghost counts virtual key bob")
	warned([]string{"alerts", "rules", "set", "budget", "--kind", "threshold", "--limit", "team-month", "--data", data},
		"alert rule budget watches limit team-month, which does not exist")
	warned([]string{"alerts", "rules", "set", "pager", "--kind", "anomaly", "--sinks", "chat", "--config", cfg},
		"alert rule pager sends to sink chat, which the configuration does not define (sinks: log, ops)")
	warned([]string{"alerts", "rules", "set", "ok", "--kind", "threshold", "--limit", "cap", "--sinks", "ops", "--config", cfg}, "")

	for _, tc := range []struct{ args, want string }{
		{"alerts rules delete limits --data " + data, "limits is a built-in rule and cannot be deleted: replace it with a rule of the same name"},
		{"alerts rules delete from-config --config " + cfg, "from-config comes from the config file " + cfg + ": remove it there"},
		{"alerts rules delete nothing --data " + data, `no alert rule named "nothing"`},
	} {
		_, _, err := run(t, strings.Fields(tc.args)...)
		if _, msg := exitStatus(err); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q; want %q", tc.args, msg, tc.want)
		}
	}

	// serve says so at start, for the ledger's rules and limits and the
	// config's.
	up, _ := newUpstream(t)
	gw := startGateway(t, up.URL, func(s *Serve) {
		// (A config rule naming a missing sink is a config error.)
		s.Config.Alerts.Rules = []tokenmeter.AlertRule{{Name: "cfg-budget", Kind: tokenmeter.AlertThreshold, Limit: "gone"}}
		db := s.Config.Data
		// the ledger of the commands above, copied
		b, err := os.ReadFile(filepath.Join(data, LedgerFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(db, LedgerFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	logs := gw.logs.String()
	for _, want := range []string{
		"alert rule budget watches limit team-month, which does not exist",
		"alert rule cfg-budget watches limit gone, which does not exist",
		"alert rule pager sends to sink chat",
		"limit ghost counts virtual key bob",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve's log lacks %q:\n%s", want, logs)
		}
	}
}
