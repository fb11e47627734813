package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tokenmeter/tokenmeter"
)

const keyColumns = `name, prefix, hash, project, created_us, expires_us, revoked_us, rotated_us`

func scanKey(row pgx.Row) (tokenmeter.VirtualKey, error) {
	var k tokenmeter.VirtualKey
	var created, expires, revoked, rotated int64
	if err := row.Scan(&k.Name, &k.Prefix, &k.Hash, &k.Project, &created, &expires, &revoked, &rotated); err != nil {
		return k, err
	}
	k.Created, k.Expires, k.Revoked, k.Rotated = fromMicros(created), fromMicros(expires), fromMicros(revoked), fromMicros(rotated)
	return k, nil
}

// inTx runs fn in a transaction (committed with synchronous_commit on).
func (db *DB) inTx(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	if db.ReadOnly {
		return errors.New("postgres: database opened read-only")
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return FormatError(fmt.Errorf("%s: begin: %w", what, err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.Background())
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return FormatError(fmt.Errorf("%s: commit: %w", what, err))
	}
	return nil
}

// uniqueViolation returns the constraint a unique violation broke, or "".
func uniqueViolation(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName
	}
	return ""
}

// CreateKey implements tokenmeter.KeyStore.
func (db *DB) CreateKey(ctx context.Context, k tokenmeter.VirtualKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	if db.ReadOnly {
		return errors.New("postgres: database opened read-only")
	}
	_, err := exec(ctx, db.pool, `INSERT INTO virtual_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.Name, k.Prefix, k.Hash, k.Project, micros(k.Created), micros(k.Expires), micros(k.Revoked), micros(k.Rotated))
	switch uniqueViolation(err) {
	case "":
	case "virtual_keys_pkey":
		return tokenmeter.Errorf(tokenmeter.ECONFLICT, "a key named %q exists already (names of revoked keys are not reused)", k.Name)
	default:
		return tokenmeter.Errorf(tokenmeter.ECONFLICT, "another key has the same secret")
	}
	if err != nil {
		return FormatError(fmt.Errorf("create key %s: %w", k.Name, err))
	}
	return nil
}

// Keys implements tokenmeter.KeyStore.
func (db *DB) Keys(ctx context.Context) ([]tokenmeter.VirtualKey, error) {
	rows, err := query(ctx, db.pool, `SELECT `+keyColumns+` FROM virtual_keys ORDER BY name`)
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
	return out, FormatError(rows.Err())
}

// KeyByHash implements tokenmeter.KeyStore. The hash is not put in errors.
func (db *DB) KeyByHash(ctx context.Context, hash string) (tokenmeter.VirtualKey, error) {
	k, err := scanKey(queryRow(ctx, db.pool, `SELECT `+keyColumns+` FROM virtual_keys WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return tokenmeter.VirtualKey{}, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no such virtual key")
	} else if err != nil {
		return tokenmeter.VirtualKey{}, FormatError(fmt.Errorf("look up virtual key: %w", err))
	}
	return k, nil
}

// keyForUpdate reads and locks the key named name inside tx.
func keyForUpdate(ctx context.Context, tx pgx.Tx, name string) (tokenmeter.VirtualKey, error) {
	k, err := scanKey(queryRow(ctx, tx, `SELECT `+keyColumns+` FROM virtual_keys WHERE name = $1 FOR UPDATE`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, tokenmeter.Errorf(tokenmeter.ENOTFOUND, "no key named %q", name)
	} else if err != nil {
		return k, FormatError(fmt.Errorf("read key %s: %w", name, err))
	}
	return k, nil
}

// RevokeKey implements tokenmeter.KeyStore.
func (db *DB) RevokeKey(ctx context.Context, name string, at time.Time) error {
	return db.inTx(ctx, "revoke key", func(tx pgx.Tx) error {
		k, err := keyForUpdate(ctx, tx, name)
		if err != nil {
			return err
		}
		if !k.Revoked.IsZero() {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "key %q was revoked already, at %s", name, k.Revoked.Format(time.RFC3339))
		}
		if _, err := exec(ctx, tx, `UPDATE virtual_keys SET revoked_us = $1 WHERE name = $2`, micros(at), name); err != nil {
			return FormatError(fmt.Errorf("revoke key %s: %w", name, err))
		}
		return nil
	})
}

// RotateKey implements tokenmeter.KeyStore.
func (db *DB) RotateKey(ctx context.Context, name, newHash, newPrefix string, at time.Time) error {
	return db.inTx(ctx, "rotate key", func(tx pgx.Tx) error {
		k, err := keyForUpdate(ctx, tx, name)
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
		_, err = exec(ctx, tx, `UPDATE virtual_keys SET hash = $1, prefix = $2, rotated_us = $3 WHERE name = $4`,
			newHash, newPrefix, micros(at), name)
		if uniqueViolation(err) != "" {
			return tokenmeter.Errorf(tokenmeter.ECONFLICT, "another key has the same secret")
		} else if err != nil {
			return FormatError(fmt.Errorf("rotate key %s: %w", name, err))
		}
		return nil
	})
}
