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

// dispatch runs the verb args[0] of cmd among subs: help prints the
// group's usage to stdout; no verb or an unknown one fails with status 2
// and a one-line message listing the verbs.
func dispatch(ctx context.Context, cmd string, args []string, stdout io.Writer, subs []subcommand) error {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	if len(args) == 0 {
		return usageError(cmd, "name one of %s (tokenmeter %s -h shows them)", want, cmd)
	}
	sub, rest := args[0], args[1:]
	for _, s := range subs {
		if s.name == sub {
			return s.run(ctx, rest)
		}
	}
	if isHelp(sub) {
		fmt.Fprint(stdout, groupHelp(cmd))
		return nil
	}
	hint := ""
	if s := closest(sub, names); s != "" {
		hint = "; did you mean " + s + "?"
	}
	return usageError(cmd, "unknown command %q (want %s%s)", sub, want, hint)
}
