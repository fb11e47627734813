package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokenmeter/tokenmeter"
)

const keyColumns = `name, prefix, hash, project, created_us, expires_us, revoked_us, rotated_us`

// micros returns t in Unix microseconds, 0 for the zero time ("never").
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func scanKey(s scanner) (tokenmeter.VirtualKey, error) {
	var k tokenmeter.VirtualKey
	var created, expires, revoked, rotated int64
	if err := s.Scan(&k.Name, &k.Prefix, &k.Hash, &k.Project, &created, &expires, &revoked, &rotated); err != nil {
		return k, err
	}
	k.Created, k.Expires, k.Revoked, k.Rotated = fromMicros(created), fromMicros(expires), fromMicros(revoked), fromMicros(rotated)
	return k, nil
}

// keyTx runs fn in a write transaction.
func (db *DB) keyTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	if db.w == nil {
		return errors.New("sqlite: database opened read-only")
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return FormatError(fmt.Errorf("%s: begin: %w", what, err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return FormatError(fmt.Errorf("%s: commit: %w", what, err))
	}
	return nil
}

// exists reports whether query (one placeholder) finds a row in tx.
func exists(ctx context.Context, tx *sql.Tx, query string, arg any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, query, arg).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// CreateKey implements tokenmeter.KeyStore.
func (db *DB) CreateKey(ctx context.Context, k tokenmeter.VirtualKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	return db.keyTx(ctx, "create key", func(tx *sql.Tx) error {
		if ok, err := exists(ctx, tx, `SELECT 1 FROM virtual_keys WHERE name = ?`, k.Name); err != nil {
			return FormatError(fmt.Errorf("create key: %w", err))
		} else if ok {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "a key named %q exists already (names of revoked keys are not reused)", k.Name)
		}
		if ok, err := exists(ctx, tx, `SELECT 1 FROM virtual_keys WHERE hash = ?`, k.Hash); err != nil {
			return FormatError(fmt.Errorf("create key: %w", err))
		} else if ok {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "another key has the same secret")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO virtual_keys (`+keyColumns+`) VALUES (?,?,?,?,?,?,?,?)`,
			k.Name, k.Prefix, k.Hash, k.Project, micros(k.Created), micros(k.Expires), micros(k.Revoked), micros(k.Rotated))
		if err != nil {
			return FormatError(fmt.Errorf("create key %s: %w", k.Name, err))
		}
		return nil
	})
}

// Keys implements tokenmeter.KeyStore.
func (db *DB) Keys(ctx context.Context) ([]tokenmeter.VirtualKey, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+keyColumns+` FROM virtual_keys ORDER BY name`)
	if err != nil {
		return nil, FormatError(fmt.Errorf("query keys: %w", err))
	}
	defer rows.Close()
	var out []tokenmeter.VirtualKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("scan key: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// KeyByHash implements tokenmeter.KeyStore. The hash is not put in errors.
func (db *DB) KeyByHash(ctx context.Context, hash string) (tokenmeter.VirtualKey, error) {
	k, err := scanKey(db.r.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM virtual_keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return tokenmeter.VirtualKey{}, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no such virtual key")
	} else if err != nil {
		return tokenmeter.VirtualKey{}, FormatError(fmt.Errorf("look up virtual key: %w", err))
	}
	return k, nil
}

// keyByName reads the key named name inside tx.
func keyByName(ctx context.Context, tx *sql.Tx, name string) (tokenmeter.VirtualKey, error) {
	k, err := scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM virtual_keys WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return k, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no key named %q", name)
	} else if err != nil {
		return k, FormatError(fmt.Errorf("read key %s: %w", name, err))
	}
	return k, nil
}

// RevokeKey implements tokenmeter.KeyStore.
func (db *DB) RevokeKey(ctx context.Context, name string, at time.Time) error {
	return db.keyTx(ctx, "revoke key", func(tx *sql.Tx) error {
		k, err := keyByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if !k.Revoked.IsZero() {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "key %q was revoked already, at %s", name, k.Revoked.Format(time.RFC3339))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE virtual_keys SET revoked_us = ? WHERE name = ?`, micros(at), name); err != nil {
			return FormatError(fmt.Errorf("revoke key %s: %w", name, err))
		}
		return nil
	})
}

// RotateKey implements tokenmeter.KeyStore.
func (db *DB) RotateKey(ctx context.Context, name, newHash, newPrefix string, at time.Time) error {
	return db.keyTx(ctx, "rotate key", func(tx *sql.Tx) error {
		k, err := keyByName(ctx, tx, name)
		if err != nil {
			return err
		}
		switch k.Status(at) {
		case tokenmeter.KeyRevoked:
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "key %q is revoked and cannot be rotated", name)
		case tokenmeter.KeyExpired:
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "key %q expired at %s and cannot be rotated", name, k.Expires.Format(time.RFC3339))
		}
		k.Hash, k.Prefix, k.Rotated = newHash, newPrefix, at
		if err := k.Validate(); err != nil {
			return err
		}
		if ok, err := exists(ctx, tx, `SELECT 1 FROM virtual_keys WHERE hash = ?`, newHash); err != nil {
			return FormatError(fmt.Errorf("rotate key: %w", err))
		} else if ok {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "another key has the same secret")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE virtual_keys SET hash = ?, prefix = ?, rotated_us = ? WHERE name = ?`,
			newHash, newPrefix, micros(at), name); err != nil {
			return FormatError(fmt.Errorf("rotate key %s: %w", name, err))
		}
		return nil
	})
}
