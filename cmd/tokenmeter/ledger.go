package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/tokenmeter/tokenmeter/internal/sqlite"
)

// EnvDatabase names the environment variable that chooses a database
// ledger (team mode) for every command, like --database.
const EnvDatabase = "TOKENMETER_DATABASE"

// errTeamMode refuses a database URL until team mode is in the build.
const errTeamMode = "team mode: PostgreSQL support is not in this build yet (use a data directory: --data DIR)"

// ledgerFlags are the flags by which every command that opens a ledger
// chooses it, the same way for all: --data DIR, else the data: (or
// database:) of --config FILE, else $TOKENMETER_DATABASE, else the default
// data directory ($TOKENMETER_DATA, $XDG_DATA_HOME/tokenmeter,
// ~/.local/share/tokenmeter). --database URL chooses a PostgreSQL ledger.
//
// Only serve and import create a ledger; every other command refuses one
// that does not exist (open), so a mistyped --data never starts an empty
// ledger beside the real one.
type ledgerFlags struct {
	cmd                    string // the command path, for messages
	data, config, database string
	getenv                 func(string) string

	cfg    *Config // the loaded config file, once loaded
	cfgSet bool    // the config file set data:
}

// addLedgerFlags registers --data, --config and --database on fs.
func addLedgerFlags(fs *flag.FlagSet) *ledgerFlags {
	l := &ledgerFlags{cmd: fs.Name(), getenv: os.Getenv}
	fs.StringVar(&l.data, "data", "", "the ledger's data directory `DIR` (default: the config's data:, else $TOKENMETER_DATA, else the XDG data directory)")
	fs.StringVar(&l.config, "config", "", "YAML config `FILE`; its data: (or database:) chooses the ledger, as for serve")
	fs.StringVar(&l.database, "database", "", "PostgreSQL ledger `URL` for team mode (default $"+EnvDatabase+"; not in this build yet)")
	return l
}

// ledgerFlagNames are the flags that choose a local ledger (and so rule
// out $TOKENMETER_SERVER).
var ledgerFlagNames = []string{"data", "config", "database"}

// ledgerChoice is the ledger a command chose and why.
type ledgerChoice struct {
	// Dir is the data directory holding the SQLite ledger.
	Dir string
	// From says what chose it, for messages: "--data", "data: in tm.yaml",
	// "$TOKENMETER_DATA", "the default data directory".
	From string
}

// Path is the ledger file.
func (c ledgerChoice) Path() string { return filepath.Join(c.Dir, LedgerFile) }

// loadConfig returns the config file of --config (the defaults when none
// is given), loaded once. A config that cannot be read or has unknown keys
// is a usage error (exit status 2).
func (l *ledgerFlags) loadConfig() (*Config, error) {
	if l.cfg != nil {
		return l.cfg, nil
	}
	cfg := DefaultConfig()
	if l.config != "" {
		def := cfg.Data
		cfg.Data = ""
		if err := cfg.LoadFile(l.config); err != nil {
			return nil, usageError(l.cmd, "%s", message(err))
		}
		if l.cfgSet = cfg.Data != ""; !l.cfgSet {
			cfg.Data = def
		}
	}
	l.cfg = &cfg
	return l.cfg, nil
}

// choose returns the ledger the flags, the config file and the
// environment choose. A database URL is refused until team mode is in the
// build; its value is never echoed (it may carry a password).
func (l *ledgerFlags) choose() (ledgerChoice, error) {
	if l.database != "" && l.data != "" {
		return ledgerChoice{}, usageError(l.cmd, "choose one of --data and --database")
	}
	if l.database != "" {
		return ledgerChoice{}, l.databaseError("--database", l.database)
	}
	if l.data != "" {
		return ledgerChoice{Dir: l.data, From: "--data"}, nil
	}
	cfg, err := l.loadConfig()
	if err != nil {
		return ledgerChoice{}, err
	}
	if cfg.Database != "" {
		return ledgerChoice{}, l.databaseError("database: in "+l.config, cfg.Database)
	}
	if l.cfgSet {
		return ledgerChoice{Dir: cfg.Data, From: "data: in " + l.config}, nil
	}
	if v := l.getenv(EnvDatabase); v != "" {
		return ledgerChoice{}, l.databaseError("$"+EnvDatabase, v)
	}
	from := "the default data directory"
	if l.getenv("TOKENMETER_DATA") != "" {
		from = "$TOKENMETER_DATA"
	}
	return ledgerChoice{Dir: defaultDataDir(), From: from}, nil
}

// databaseError refuses the database URL u given by from.
func (l *ledgerFlags) databaseError(from, u string) error {
	if err := checkDatabaseURL(u); err != nil {
		return usageError(l.cmd, "%s: %v", from, err)
	}
	return usageError(l.cmd, "%s: %s", from, errTeamMode)
}

// checkDatabaseURL checks that u is a PostgreSQL URL, without echoing it.
func checkDatabaseURL(u string) error {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "postgres" && pu.Scheme != "postgresql") {
		return errors.New("want a PostgreSQL URL, postgres://USER@HOST/DB")
	}
	return nil
}

// noLedger is the error of a command given a ledger that does not exist.
func noLedger(c ledgerChoice) error {
	return fmt.Errorf("no ledger at %s (chosen by %s; tokenmeter serve or tokenmeter import creates one; "+
		"choose another with --data DIR or --config FILE)", c.Path(), c.From)
}

// open opens the chosen ledger, which must exist: read-only (no
// migrations, no writes) when readOnly, else for writing, migrating it if
// need be.
func (l *ledgerFlags) open(readOnly bool) (*sqlite.DB, ledgerChoice, error) {
	c, err := l.choose()
	if err != nil {
		return nil, c, err
	}
	if _, err := os.Stat(c.Path()); err != nil {
		return nil, c, noLedger(c)
	}
	db := sqlite.NewDB(c.Path())
	db.ReadOnly = readOnly
	if err := db.Open(); err != nil {
		return nil, c, fmt.Errorf("open the ledger at %s: %w", c.Path(), err)
	}
	return db, c, nil
}

// exists reports whether the chosen ledger exists (the choice failing is
// an error).
func (l *ledgerFlags) exists() (ledgerChoice, bool, error) {
	c, err := l.choose()
	if err != nil {
		return c, false, err
	}
	_, err = os.Stat(c.Path())
	return c, err == nil, nil
}

// wrote tells the user which ledger a command that writes has used.
func wrote(w io.Writer, c ledgerChoice, created bool) {
	if created {
		fmt.Fprintf(w, "tokenmeter: created a new ledger at %s (chosen by %s)\n", c.Path(), c.From)
		return
	}
	fmt.Fprintf(w, "tokenmeter: ledger %s\n", c.Path())
}

// localLedgerChosen reports whether fs's flags name a local ledger
// explicitly (which rules out $TOKENMETER_SERVER).
func localLedgerChosen(set map[string]bool) string {
	for _, n := range ledgerFlagNames {
		if set[n] {
			return "--" + n
		}
	}
	return ""
}
