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
	"strings"
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
	code, msg := exitStatus(err)
	if msg != "" {
		fmt.Fprintln(os.Stderr, "tokenmeter:", msg)
	}
	os.Exit(code)
}

// exitStatus returns the exit status of Run's error and the message to
// print for it, if any: 0 for success and for help asked for, the
// exitError's own status (2 for a wrong command line or config), 1 for
// any other error (a runtime failure).
func exitStatus(err error) (int, string) {
	var ex *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0, ""
	case errors.As(err, &ex):
		return ex.code, ex.msg
	}
	return 1, message(err)
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

// Run runs the command line args.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if cliFrom(ctx) == nil {
		ctx = context.WithValue(ctx, cliKey{}, &cliEnv{stdout: stdout})
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage())
		return &exitError{code: 2, msg: "name a command"}
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
		if len(rest) > 0 && isHelp(rest[0]) {
			fmt.Fprintln(stdout, "Usage: tokenmeter version")
			return nil
		}
		if len(rest) > 0 {
			return usageError("version", "takes no arguments (got %q)", rest[0])
		}
		fmt.Fprintln(stdout, "tokenmeter", version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage())
		return nil
	}
	names := []string{"help"}
	for _, c := range commands {
		names = append(names, strings.Fields(c.path)[0])
	}
	hint := "tokenmeter -h lists the commands"
	if s := closest(cmd, names); s != "" {
		hint = "did you mean " + s + "?"
	}
	return &exitError{code: 2, msg: fmt.Sprintf("unknown command %q (%s)", cmd, hint)}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "-help" || arg == "--help"
}
