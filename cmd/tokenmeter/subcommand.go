package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// subcommand is one verb of a command with verbs (keys create, limits
// set, alerts list).
type subcommand struct {
	name string
	run  func(ctx context.Context, args []string) error
}

// dispatch runs the verb args[0] of cmd among subs: help prints usage to
// stdout; no verb or an unknown one prints it to stderr and fails with
// status 2 and a one-line message listing the verbs.
func dispatch(ctx context.Context, cmd, usage string, args []string, stdout, stderr io.Writer, subs []subcommand) error {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, msg: cmd + " needs one of " + strings.Join(names, ", ")}
	}
	sub, rest := args[0], args[1:]
	for _, s := range subs {
		if s.name == sub {
			return s.run(ctx, rest)
		}
	}
	if sub == "help" || sub == "-h" || sub == "--help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	return &exitError{code: 2, msg: fmt.Sprintf("unknown %s command %q (want %s)", cmd, sub, want)}
}
