// Command tokenmeter keeps an independent, durable record of every LLM API
// call: a metering gateway in front of the Anthropic and OpenAI APIs, reports
// from its ledger, and a deterministic fake upstream to try it all without
// an API key. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/tokenmeter/tokenmeter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("TOKENMETER_CPUPROFILE"); path != "" {
		// For performance work: a CPU profile of the whole command.
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	pprof.StopCPUProfile()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(os.Stderr, "tokenmeter:", ex.msg)
		}
		os.Exit(ex.code)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokenmeter:", message(err))
		os.Exit(1)
	}
}

// exitError ends the program with a specific status.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func message(err error) string {
	var te *tokenmeter.Error
	if errors.As(err, &te) {
		return te.Message
	}
	return err.Error()
}

const usage = `tokenmeter: your own count of every LLM API call.

Usage:
  tokenmeter serve [--listen ADDR] [--data DIR] [--config FILE] [--upstream NAME=URL]... [--require-virtual-key]
        [--tls-cert FILE --tls-key FILE]   (dashboard at /, Prometheus metrics at /metrics)
  tokenmeter report <daily|weekly|monthly|session|blocks|models> [--since DATE] [--until DATE] [--by model|key|project] [--json|--csv] [--server URL]
  tokenmeter status [--json] [--data DIR] [--tz ZONE]
  tokenmeter statusline [--data DIR] [--tz ZONE]   (Claude Code's statusLine command)
  tokenmeter import <claude-code|codex> [--dir DIR]... [--watch] [--data DIR] [--json]
  tokenmeter verify [--data DIR]
  tokenmeter keys <create|list|revoke|rotate> [NAME] [--name NAME] [--project P] [--expires DATE] [--json] [--data DIR|--server URL]
  tokenmeter limits set NAME --scope S --metric M --max N --window W [--reset-at HH:MM] [--tz ZONE] [--mode soft|hard]
  tokenmeter limits <list|delete NAME> [--json] [--data DIR|--server URL]
  tokenmeter alerts <list [--all] [--json] | rules [set NAME --kind K ... | delete NAME] | test SINK> [--data DIR]
  tokenmeter anomalies [list] [--since DATE] [--json] [--data DIR|--server URL]
  tokenmeter anomalies show ID [--json] [--data DIR|--server URL]
  tokenmeter reconcile <anthropic|openai> --since DATE [--until DATE] [--bucket 1h|1d] [--by model|key]
        [--tolerance TOKENS|PCT] [--lag 10m] [--upstream NAME=URL] [--json|--csv|--html FILE] [--data DIR]
  tokenmeter reconcile history [--json] [--run ID] [--data DIR]
  tokenmeter fake-upstream [--listen ADDR]
  tokenmeter version

--server URL (or TOKENMETER_SERVER) runs keys, limits list, report and status against a
gateway's admin API, with the admin token from TOKENMETER_ADMIN_TOKEN.

Run "tokenmeter COMMAND -h" for a command's flags.
`

// Run runs the command line args.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "report":
		return runReport(ctx, rest, stdout, stderr)
	case "status":
		return runStatus(ctx, rest, stdout, stderr)
	case "statusline":
		return runStatusline(ctx, rest, stdin, stdout, stderr)
	case "verify":
		return runVerify(ctx, rest, stdout, stderr)
	case "import":
		return runImport(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, stdout, stderr)
	case "limits":
		return runLimits(ctx, rest, stdout, stderr)
	case "alerts":
		return runAlerts(ctx, rest, stdout, stderr)
	case "anomalies":
		return runAnomalies(ctx, rest, stdout, stderr)
	case "reconcile":
		return runReconcile(ctx, rest, stdout, stderr)
	case "fake-upstream":
		return runFakeUpstream(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "tokenmeter", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{code: 2, msg: fmt.Sprintf("unknown command %q", cmd)}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// newFlagSet returns a FlagSet that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tokenmeter "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("report daily --json"), and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{code: 2, msg: err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
