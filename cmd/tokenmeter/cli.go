package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// One behaviour for every command's command line:
//
//   - flags are parsed by parseFlags, which allows flags after positional
//     arguments and never prints anything itself;
//   - a bad flag, a bad flag value or a wrong argument is one line on
//     stderr, "tokenmeter CMD: what is wrong", and exit status 2
//     (usageError); runtime failures are exit status 1;
//   - -h, --help and help print the command's usage on stdout and exit 0;
//   - the usage lines (tokenmeter -h, tokenmeter CMD -h) are generated from
//     the flag sets themselves (synopsis), so they cannot fall out of step
//     with the flags.

// cliKey is the context key of the cliEnv that Run sets.
type cliKey struct{}

// cliEnv is what flag parsing needs from Run: where help goes, and whether
// the run is a probe that only collects the command's flag set.
type cliEnv struct {
	stdout io.Writer
	// probe set: parseFlags records the flag set in probed and returns
	// errProbe instead of letting the command run.
	probe  bool
	probed *flag.FlagSet
}

// errProbe ends a probe run once the command's flags are parsed.
var errProbe = errors.New("flags parsed (probe run)")

func cliFrom(ctx context.Context) *cliEnv {
	env, _ := ctx.Value(cliKey{}).(*cliEnv)
	return env
}

// newFlagSet returns the flag set of the command path ("report", "keys
// create"). It prints nothing: parseFlags turns its errors into one line.
func newFlagSet(path string) *flag.FlagSet {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("report daily --json"), and returns the positional ones. A bad flag is a
// usageError naming the command; -h prints the command's usage to stdout
// and returns flag.ErrHelp (exit status 0).
func parseFlags(ctx context.Context, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			env := cliFrom(ctx)
			if env == nil || env.probe {
				return nil, err
			}
			printHelp(env.stdout, fs)
			return nil, err
		}
		if err != nil {
			return nil, usageError(fs.Name(), "%s", flagErrorHint(fs, err))
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if env := cliFrom(ctx); env != nil && env.probe {
		env.probed = fs
		return nil, errProbe
	}
	return pos, nil
}

// flagErrorHint is the flag package's error, with the closest flag name
// for an unknown one.
func flagErrorHint(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "flag provided but not defined: -")
	if !ok {
		return msg
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if s := closest(strings.TrimPrefix(name, "-"), names); s != "" {
		return fmt.Sprintf("unknown flag --%s (did you mean --%s?)", strings.TrimPrefix(name, "-"), s)
	}
	return fmt.Sprintf("unknown flag --%s (tokenmeter %s -h lists its flags)", strings.TrimPrefix(name, "-"), fs.Name())
}

// usageError is a wrong command line of the command path: one line on
// stderr and exit status 2.
func usageError(path, format string, args ...any) error {
	return &exitError{code: 2, msg: path + ": " + fmt.Sprintf(format, args...)}
}

// cmdSpec describes one command (or verb of a command) for its usage line.
type cmdSpec struct {
	path  string // "keys create"
	args  string // its positional arguments: "NAME", "<daily|weekly|...>"
	about string // what it does, one sentence
}

// commands lists every command and verb, in the order of tokenmeter -h.
// TestUsageCoversEveryCommand checks that each one parses as listed.
var commands = []cmdSpec{
	{"serve", "", "the metering gateway; dashboard at /, Prometheus metrics at /metrics"},
	{"report", "<daily|weekly|monthly|session|blocks|models>", "usage and cost from the ledger"},
	{"status", "", "the live view: the active 5-hour block, today, this week"},
	{"statusline", "", "one line for Claude Code's statusLine command (always exits 0)"},
	{"import", "<claude-code|codex>", "read Claude Code or Codex logs into the ledger"},
	{"verify", "", "walk the ledger's hash chain"},
	{"keys create", "", "create a virtual key (tm-...), shown once"},
	{"keys list", "", "list the virtual keys"},
	{"keys revoke", "NAME", "revoke a virtual key"},
	{"keys rotate", "NAME", "give a virtual key a new secret, shown once"},
	{"limits set", "NAME", "create or replace a limit"},
	{"limits list", "", "list the limits with their usage"},
	{"limits delete", "NAME", "delete a limit"},
	{"alerts list", "", "the alerts of the last 7 days"},
	{"alerts rules", "", "the alert rules in effect"},
	{"alerts rules set", "NAME", "create or replace an alert rule in the ledger"},
	{"alerts rules delete", "NAME", "delete an alert rule set with alerts rules set"},
	{"alerts test", "<SINK|URL>", "send a sample alert to a sink"},
	{"anomalies", "[list]", "what the provider-counter watch and reconciliation found"},
	{"anomalies show", "ID", "one anomaly with its evidence"},
	{"reconcile", "<anthropic|openai>", "compare the ledger with the provider's usage and cost reports"},
	{"reconcile history", "", "the stored reconciliation runs"},
	{"fake-upstream", "", "a deterministic stand-in for the Anthropic and OpenAI APIs"},
	{"version", "", "print the version"},
}

// specOf returns the spec of the command path, if listed.
func specOf(path string) (cmdSpec, bool) {
	for _, c := range commands {
		if c.path == path {
			return c, true
		}
	}
	return cmdSpec{}, false
}

// flagsOf returns the flag set of the command path, or nil for a command
// without flags: it runs the command as a probe, which stops once the
// flags are parsed.
func flagsOf(path string) *flag.FlagSet {
	env := &cliEnv{stdout: io.Discard, probe: true}
	ctx := context.WithValue(context.Background(), cliKey{}, env)
	Run(ctx, strings.Fields(path), strings.NewReader(""), io.Discard, io.Discard)
	return env.probed
}

// flagWords returns "[--name VALUE]" for each flag of fs: the required ones
// (whose usage says "(required)") first and without brackets, the ledger
// flags and --server last; brief folds the ledger flags into "[LEDGER]".
func flagWords(fs *flag.FlagSet, brief bool) []string {
	if fs == nil {
		return nil
	}
	var req, opt, last []string
	fs.VisitAll(func(f *flag.Flag) {
		name, _ := flag.UnquoteUsage(f)
		w := "--" + f.Name
		if name != "" {
			w += " " + placeholder(name)
		}
		switch {
		case strings.Contains(f.Usage, "(required)"):
			req = append(req, w)
		case slices.Contains(ledgerFlagNames, f.Name) || f.Name == "server":
		default:
			opt = append(opt, "["+w+"]")
		}
	})
	ledger := fs.Lookup("data") != nil && fs.Lookup("database") != nil
	if ledger && brief {
		last = append(last, "[LEDGER]")
	}
	for _, n := range append(slices.Clone(ledgerFlagNames), "server") {
		if f := fs.Lookup(n); f != nil && !(ledger && brief && n != "server") {
			name, _ := flag.UnquoteUsage(f)
			last = append(last, "[--"+n+" "+placeholder(name)+"]")
		}
	}
	sort.Strings(req)
	return append(append(req, opt...), last...)
}

// placeholder is the value name of a flag in usage lines: the word its
// usage quotes, or its type in capitals.
func placeholder(name string) string {
	switch name {
	case "string", "value":
		return "VALUE"
	case "int", "uint", "int64", "uint64", "float":
		return "N"
	case "duration":
		return "DURATION"
	}
	return name
}

// synopsis returns the usage line of spec, wrapped at width columns with
// continuation lines indented by indent spaces.
func synopsis(spec cmdSpec, fs *flag.FlagSet, brief bool, lead string, indent, width int) string {
	words := []string{"tokenmeter", spec.path}
	if spec.args != "" {
		words = append(words, spec.args)
	}
	words = append(words, flagWords(fs, brief)...)
	var b strings.Builder
	line := lead
	for i, w := range words {
		if i > 0 && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = strings.Repeat(" ", indent) + w
			continue
		}
		if i > 0 {
			line += " "
		}
		line += w
	}
	b.WriteString(line)
	return b.String()
}

// usageOf returns the usage lines of the commands whose path starts with
// prefix ("" for all, with the ledger flags folded into [LEDGER]), each
// with its one-line description.
func usageOf(prefix string) string {
	var b strings.Builder
	for _, c := range commands {
		if prefix != "" && c.path != prefix && !strings.HasPrefix(c.path, prefix+" ") {
			continue
		}
		b.WriteString(synopsis(c, flagsOf(c.path), prefix == "", "  ", 8, 100) + "\n")
		b.WriteString("      " + c.about + "\n")
	}
	return b.String()
}

// topUsage is tokenmeter -h.
func topUsage() string {
	return "tokenmeter: your own count of every LLM API call.\n\nUsage:\n" + usageOf("") + `
LEDGER is where a command reads and writes, the same for every command: --data DIR, else the
data: of --config FILE, else $TOKENMETER_DATA, else ~/.local/share/tokenmeter (or
$XDG_DATA_HOME/tokenmeter); --database URL (or $TOKENMETER_DATABASE) is team mode's PostgreSQL
ledger, not in this build yet. Only serve and import create a ledger.

--server URL (or $TOKENMETER_SERVER) runs report, status, keys, limits, alerts list and anomalies
against a gateway's admin API, with the admin token from $TOKENMETER_ADMIN_TOKEN.

Exit status: 0 on success and for -h; 1 when the command failed at run time; 2 when the command
line or the config file is wrong; 3 when verify or reconcile found a difference; 4 when import
skipped lines it could not read (the rest was imported).

Run "tokenmeter COMMAND -h" for a command's flags.
`
}

// printHelp writes the usage of fs's command to w: its synopsis, what it
// does, the text of its group (keys, limits, alerts) and its flags.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	spec, ok := specOf(fs.Name())
	if !ok {
		spec = cmdSpec{path: fs.Name()}
	}
	fmt.Fprintln(w, synopsis(spec, fs, false, "Usage: ", 8, 100))
	if spec.about != "" {
		fmt.Fprintf(w, "\n%s.\n", upperFirst(spec.about))
	}
	if group := groupAbout[strings.Fields(spec.path)[0]]; group != "" {
		fmt.Fprintf(w, "\n%s", group)
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if name != "" {
			head += " " + placeholder(name)
		}
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && def != "[]" {
			usage += fmt.Sprintf(" (default %q)", def)
		}
		fmt.Fprintf(w, "%s\n        %s\n", head, usage)
	})
}

// groupHelp is the usage of a command with verbs (tokenmeter keys -h).
func groupHelp(group string) string {
	return "Usage:\n" + usageOf(group) + "\n" + groupAbout[group]
}

// groupAbout is the text shown with the usage of a command with verbs.
var groupAbout = map[string]string{
	"keys": `A virtual key (tm-...) is shown once, when created or rotated; the ledger keeps
only its SHA-256. See docs/keys.md. With --server (or $TOKENMETER_SERVER) the
command runs against a gateway's admin API, with the admin token from
$TOKENMETER_ADMIN_TOKEN (docs/admin-api.md).
`,
	"limits": `tokens counts input + output + cache write + cache read; --max of cost_usd is
in dollars (e.g. 25 or 0.50). Hard limits refuse requests with 429 before they
can cross the limit; soft limits never refuse. See docs/limits.md.
`,
	"reconcile": `The admin key comes from $ANTHROPIC_ADMIN_KEY or $OPENAI_ADMIN_KEY (or the variable the
config's admin_keys: names), never from a flag. Exit status: 0 when every final bucket is within
tolerance, 3 when one is not, 1 when a report could not be read, 2 for a wrong command line.
See docs/reconcile.md.
`,
	"alerts": `list shows the alerts fired in the last 7 days (--all: every alert) with their
history; rules shows the rules in effect (the config file's, those set here, and
the defaults). KIND is threshold, burn_rate, anomaly, error_rate or rate_limited.
test sends a sample alert to a sink named in the config file (or log), or to a
URL (a webhook; --slack for a Slack-compatible one). See docs/alerts.md.
`,
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// closest returns the candidate nearest to s, if it is near enough to be
// what was meant (a typo: at most 2 edits, fewer for short words).
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	if len(s) <= 4 {
		bestD = 2
	}
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, counting an
// adjacent transposition as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
