package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/admin"
	"github.com/tokenmeter/tokenmeter/internal/sqlite"
	"github.com/tokenmeter/tokenmeter/internal/textsafe"
)

// runKeys manages virtual keys in the data directory's ledger.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	k := &keysCmd{stdout: stdout, stderr: stderr, now: time.Now}
	return dispatch(ctx, "keys", args, stdout, []subcommand{
		{"create", k.create}, {"list", k.list}, {"revoke", k.revoke}, {"rotate", k.rotate}})
}

type keysCmd struct {
	stdout, stderr io.Writer
	now            func() time.Time
}

// flags returns the flag set of "keys name" with the ledger and --server
// flags.
func (k *keysCmd) flags(name string) (*flag.FlagSet, *ledgerFlags) {
	fs := newFlagSet("keys " + name)
	lf := addLedgerFlags(fs)
	addServerFlag(fs)
	return fs, lf
}

// openLedger opens the chosen ledger for writing; it must exist.
func (k *keysCmd) openLedger(lf *ledgerFlags) (*sqlite.DB, error) {
	db, c, err := lf.open(false)
	if err == nil {
		wrote(k.stderr, c, false)
	}
	return db, err
}

// keyJSON is a key as keys list --json (and create, rotate) write it: the
// admin API's shape, so local and remote output agree.
type keyJSON = admin.Key

func toJSON(v tokenmeter.VirtualKey, now time.Time) keyJSON { return admin.ToKey(v, now) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (k *keysCmd) create(ctx context.Context, args []string) error {
	fs, lf := k.flags("create")
	name := fs.String("name", "", "the key's `NAME`, recorded as principal key:NAME (required)")
	project := fs.String("project", "", "the `PROJECT` recorded for every call made with the key")
	expires := fs.String("expires", "", "`DATE` the key stops working: YYYY-MM-DD (00:00 UTC) or an RFC 3339 time")
	asJSON := fs.Bool("json", false, "write JSON")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("keys create", "unexpected argument %q (the name goes in --name)", pos[0])
	}
	if *name == "" {
		return usageError("keys create", "--name is required")
	}
	if err := tokenmeter.ValidateKeyName(*name); err != nil {
		return usageError("keys create", "--name: %s", tokenmeter.ErrorMessage(err))
	}
	if err := tokenmeter.ValidateProject(*project); err != nil {
		return usageError("keys create", "--project: %s", tokenmeter.ErrorMessage(err))
	}
	now := k.now().UTC()
	var exp time.Time
	if *expires != "" {
		if exp, err = tokenmeter.ParseKeyExpiry(*expires); err != nil {
			return usageError("keys create", "--expires: %s", tokenmeter.ErrorMessage(err))
		}
		if !exp.After(now) {
			return usageError("keys create", "--expires %s is in the past", *expires)
		}
	}
	rem, err := remoteFor("keys create", fs)
	if err != nil {
		return err
	}
	if rem != nil {
		var j keyJSON
		req := map[string]string{"name": *name, "project": *project, "expires": *expires}
		if err := rem.call(ctx, "keys create", http.MethodPost, "/api/keys", nil, req, &j); err != nil {
			return err
		}
		v, err := fromKeyJSON(j)
		if err != nil {
			return fmt.Errorf("keys create: %w", err)
		}
		return k.show(v, j.Key, *asJSON, "Created")
	}
	db, err := k.openLedger(lf)
	if err != nil {
		return err
	}
	defer db.Close()
	secret := tokenmeter.NewKeySecret()
	v := tokenmeter.VirtualKey{Name: *name, Prefix: tokenmeter.KeyDisplayPrefix(secret), Hash: tokenmeter.HashKey(secret),
		Project: *project, Created: now, Expires: exp}
	if err := db.CreateKey(ctx, v); err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	return k.show(v, secret, *asJSON, "Created")
}

// show prints a new secret, the one time it is ever shown.
func (k *keysCmd) show(v tokenmeter.VirtualKey, secret string, asJSON bool, what string) error {
	if asJSON {
		j := toJSON(v, k.now())
		j.Key = secret
		return writeJSON(k.stdout, j)
	}
	w := k.stdout
	fmt.Fprintf(w, "%s virtual key %q", what, v.Name)
	if v.Project != "" {
		fmt.Fprintf(w, " (project %s)", v.Project)
	}
	if !v.Expires.IsZero() {
		fmt.Fprintf(w, ", expires %s", v.Expires.Format(time.RFC3339))
	}
	fmt.Fprintf(w, ". It is shown this once; tokenmeter keeps only its hash:\n\n  %s\n\n", secret)
	fmt.Fprintf(w, "Use it in place of the provider key, with the gateway as base URL, e.g.\n"+
		"  ANTHROPIC_BASE_URL=http://127.0.0.1:8787/anthropic ANTHROPIC_API_KEY=<the key>\n"+
		"  OPENAI_BASE_URL=http://127.0.0.1:8787/openai/v1 OPENAI_API_KEY=<the key>\n"+
		"The gateway sends the provider credential from its own environment (ANTHROPIC_API_KEY, OPENAI_API_KEY).\n")
	return nil
}

func (k *keysCmd) list(ctx context.Context, args []string) error {
	fs, lf := k.flags("list")
	asJSON := fs.Bool("json", false, "write JSON")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("keys list", "unexpected argument %q", pos[0])
	}
	rem, err := remoteFor("keys list", fs)
	if err != nil {
		return err
	}
	var keys []tokenmeter.VirtualKey
	if rem != nil {
		var out struct {
			Keys []keyJSON `json:"keys"`
		}
		if err := rem.call(ctx, "keys list", http.MethodGet, "/api/keys", nil, nil, &out); err != nil {
			return err
		}
		for _, j := range out.Keys {
			v, err := fromKeyJSON(j)
			if err != nil {
				return fmt.Errorf("keys list: %w", err)
			}
			keys = append(keys, v)
		}
	} else {
		db, _, err := lf.open(true)
		if err != nil {
			return err
		}
		defer db.Close()
		if keys, err = db.Keys(ctx); err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
	}
	now := k.now()
	if *asJSON {
		out := struct {
			Keys []keyJSON `json:"keys"`
		}{Keys: []keyJSON{}}
		for _, v := range keys {
			out.Keys = append(out.Keys, toJSON(v, now))
		}
		return writeJSON(k.stdout, out)
	}
	if len(keys) == 0 {
		fmt.Fprintln(k.stdout, "no virtual keys (create one with: tokenmeter keys create --name NAME)")
		return nil
	}
	tw := tabwriter.NewWriter(k.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPREFIX\tPROJECT\tCREATED\tEXPIRES\tSTATUS")
	for _, v := range keys {
		j := toJSON(v, now)
		exp := j.Expires
		if exp == "" {
			exp = "never"
		}
		proj := v.Project
		if proj == "" {
			proj = "-"
		}
		fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\n", v.Name, v.Prefix, textsafe.Terminal(proj), j.Created, exp, j.Status)
	}
	return tw.Flush()
}

// nameArg returns the one positional argument naming a key.
func nameArg(cmd string, pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return "", usageError("keys "+cmd, "name the key (see tokenmeter keys list)")
	case len(pos) > 1:
		return "", usageError("keys "+cmd, "unexpected argument %q (one key at a time)", pos[1])
	}
	if err := tokenmeter.ValidateKeyName(pos[0]); err != nil {
		return "", usageError("keys "+cmd, "%s", tokenmeter.ErrorMessage(err))
	}
	return pos[0], nil
}

func (k *keysCmd) revoke(ctx context.Context, args []string) error {
	fs, lf := k.flags("revoke")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	name, err := nameArg("revoke", pos)
	if err != nil {
		return err
	}
	rem, err := remoteFor("keys revoke", fs)
	if err != nil {
		return err
	}
	if rem != nil {
		var j keyJSON
		if err := rem.call(ctx, "keys revoke", http.MethodPost, "/api/keys/"+url.PathEscape(name)+"/revoke", nil, nil, &j); err != nil {
			return err
		}
		fmt.Fprintf(k.stdout, "Revoked virtual key %q; running gateways refuse it within a second.\n", name)
		return nil
	}
	db, err := k.openLedger(lf)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.RevokeKey(ctx, name, k.now().UTC()); err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	fmt.Fprintf(k.stdout, "Revoked virtual key %q; running gateways refuse it within a second.\n", name)
	return nil
}

func (k *keysCmd) rotate(ctx context.Context, args []string) error {
	fs, lf := k.flags("rotate")
	asJSON := fs.Bool("json", false, "write JSON")
	pos, err := parseFlags(ctx, fs, args)
	if err != nil {
		return err
	}
	name, err := nameArg("rotate", pos)
	if err != nil {
		return err
	}
	rem, err := remoteFor("keys rotate", fs)
	if err != nil {
		return err
	}
	if rem != nil {
		var j keyJSON
		if err := rem.call(ctx, "keys rotate", http.MethodPost, "/api/keys/"+url.PathEscape(name)+"/rotate", nil, nil, &j); err != nil {
			return err
		}
		v, err := fromKeyJSON(j)
		if err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		if !*asJSON {
			fmt.Fprintf(k.stdout, "The old key of %q stops working within a second.\n", name)
		}
		return k.show(v, j.Key, *asJSON, "Rotated")
	}
	db, err := k.openLedger(lf)
	if err != nil {
		return err
	}
	defer db.Close()
	secret := tokenmeter.NewKeySecret()
	now := k.now().UTC()
	if err := db.RotateKey(ctx, name, tokenmeter.HashKey(secret), tokenmeter.KeyDisplayPrefix(secret), now); err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	v, err := db.KeyByHash(ctx, tokenmeter.HashKey(secret))
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	if !*asJSON {
		fmt.Fprintf(k.stdout, "The old key of %q stops working within a second.\n", name)
	}
	return k.show(v, secret, *asJSON, "Rotated")
}
