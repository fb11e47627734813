package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tokenmeter/tokenmeter"
)

// References between things the ledger and the config name: a rule's
// limit and sinks, a limit's key. A reference to something that does not
// exist is allowed (it may be created later, or come from another
// gateway's config), but never silent: the commands that make one, and
// serve at start, warn.

// refStore is what the reference checks read.
type refStore interface {
	Limits(ctx context.Context) ([]tokenmeter.Limit, error)
	Keys(ctx context.Context) ([]tokenmeter.VirtualKey, error)
}

// ruleWarnings returns what rules name that does not exist: a limit not in
// store, a sink not in sinks (nil: the sinks are not known, not checked).
func ruleWarnings(ctx context.Context, store refStore, rules []tokenmeter.AlertRule, sinks []string) ([]string, error) {
	lims, err := store.Limits(ctx)
	if err != nil {
		return nil, fmt.Errorf("read limits: %w", err)
	}
	var out []string
	for _, r := range rules {
		if r.Limit != "" && !slices.ContainsFunc(lims, func(l tokenmeter.Limit) bool { return l.Name == r.Limit }) {
			out = append(out, fmt.Sprintf("alert rule %s watches limit %s, which does not exist: it fires for nothing until one is set (tokenmeter limits set %s ...)",
				r.Name, r.Limit, r.Limit))
		}
		if sinks == nil {
			continue
		}
		for _, s := range r.Sinks {
			if !slices.Contains(sinks, s) {
				out = append(out, fmt.Sprintf("alert rule %s sends to sink %s, which the configuration does not define (sinks: %s): its alerts wait in the outbox until it does",
					r.Name, s, strings.Join(sinks, ", ")))
			}
		}
	}
	return out, nil
}

// limitWarnings returns what limits name that does not exist: a key: scope
// whose virtual key is not in store.
func limitWarnings(ctx context.Context, store refStore, lims []tokenmeter.Limit) ([]string, error) {
	keys, err := store.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	var out []string
	for _, l := range lims {
		name, ok := strings.CutPrefix(l.Scope, "key:")
		if ok && !slices.ContainsFunc(keys, func(k tokenmeter.VirtualKey) bool { return k.Name == name }) {
			out = append(out, fmt.Sprintf("limit %s counts virtual key %s, which does not exist in this ledger: it counts nothing until one is created (tokenmeter keys create --name %s)",
				l.Name, name, name))
		}
	}
	return out, nil
}

// printWarnings prints ws, one line each, or that they could not be
// checked.
func printWarnings(w io.Writer, ws []string, err error) {
	if err != nil {
		fmt.Fprintln(w, "tokenmeter: warning: references not checked:", err)
	}
	for _, s := range ws {
		fmt.Fprintln(w, "tokenmeter: warning:", s)
	}
}

// remoteKeys is a gateway's key list as a refStore for limitWarnings.
type remoteKeys []keyJSON

func (r remoteKeys) Keys(context.Context) ([]tokenmeter.VirtualKey, error) {
	out := make([]tokenmeter.VirtualKey, len(r))
	for i, k := range r {
		out[i] = tokenmeter.VirtualKey{Name: k.Name}
	}
	return out, nil
}

func (remoteKeys) Limits(context.Context) ([]tokenmeter.Limit, error) { return nil, nil }
