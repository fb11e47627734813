// Package postgres is the team ledger: a tokenmeter.Store on PostgreSQL
// (through pgx), shared by several gateway replicas, that keeps every
// guarantee of the embedded SQLite ledger (internal/sqlite) and passes the
// same conformance suite (internal/storetest).
//
// One chain: every append locks the chain head row, seals its events
// after the head it read, and updates it in the same transaction, so all
// replicas' events form one total order under one hash chain. Hard limits
// hold across replicas: Reserve checks a limit's window usage and every
// replica's open reservations, and records its own, in one transaction
// serialised per limit by an advisory lock; completing a call deletes its
// reservation in the transaction that appends the completion. Rollups,
// revisions, settlements and limit scopes follow the rules in the root
// package and internal/ledgerrules, as SQLite's do.
//
// When Append (or Reserve) returns nil, what it wrote is committed with
// synchronous_commit on: in the server's WAL on its disk (and on any
// synchronous standby), surviving a crash of the gateway, of the database
// server, and of its machine.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tokenmeter/tokenmeter"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Sync modes, as SQLite's (see internal/sqlite): both commit with
// synchronous_commit on, which on PostgreSQL already survives what
// SyncFull guards against on SQLite (see docs/design.md).
const (
	SyncNormal = "normal"
	SyncFull   = "full"
)

// DefaultMaxConns is the connection pool's size when DB.MaxConns is zero.
const DefaultMaxConns = 16

// DB is a tokenmeter.Store on a PostgreSQL database.
type DB struct {
	// URL is the connection string (postgres://user@host:port/db?...,
	// or key=value pairs), as libpq and pgx read it; a search_path
	// parameter selects the schema. Required. It may hold a password:
	// it is never put in an error.
	URL string
	// Sync is SyncNormal (default) or SyncFull.
	Sync string
	// ReadOnly opens the database for reading only (reports, verify): no
	// migrations, and every transaction read-only.
	ReadOnly bool
	// MaxConns caps the connection pool; zero means DefaultMaxConns.
	MaxConns int32

	pool *pgxpool.Pool
	// roundTrips, when set (tests), counts the client's turns to wait for
	// the server on every connection.
	roundTrips *atomic.Int64

	headMu   sync.Mutex
	head     chainHead // the head this process last saw; see append.go
	fastMiss int       // consecutive appends whose guess of the head was wrong
	fastSkip int       // appends left to take the slow path before guessing again

	fastAppends, slowAppends atomic.Int64 // appends committed by each path
}

var _ tokenmeter.Store = (*DB)(nil)

// NewDB returns a DB for the database at url; call Open before use.
func NewDB(url string) *DB { return &DB{URL: url, Sync: SyncNormal} }

// Open connects, and unless ReadOnly applies the schema migrations the
// database has not seen, under an advisory lock, so that replicas starting
// together migrate once. A database that cannot be reached is a clear
// error naming the server, never the password.
func (db *DB) Open() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch db.Sync {
	case "", SyncNormal, SyncFull:
	default:
		return fmt.Errorf("postgres: unknown sync mode %q (want %s or %s)", db.Sync, SyncNormal, SyncFull)
	}
	if db.URL == "" {
		return errors.New("postgres: database URL required")
	}
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		// pgx's parse errors quote nothing of the URL's password.
		return tokenmeter.Errorf(tokenmeter.EINVALID, "the PostgreSQL URL is malformed: %s", redact(err.Error(), db.URL))
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["synchronous_commit"] = "on"
	if rp["application_name"] == "" {
		rp["application_name"] = "tokenmeter"
	}
	if db.ReadOnly {
		rp["default_transaction_read_only"] = "on"
	}
	cfg.MaxConns = db.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if db.roundTrips != nil {
		dial := cfg.ConnConfig.DialFunc
		n := db.roundTrips
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, n: n}, nil
		}
	}
	where := fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return FormatError(fmt.Errorf("connect to PostgreSQL %s: %s", where, redact(err.Error(), db.URL)))
	}
	if err := db.pool.Ping(ctx); err != nil {
		db.pool.Close()
		return &unavailable{err: fmt.Errorf("connect to PostgreSQL %s: %s", where, redact(err.Error(), db.URL))}
	}
	if err := db.migrate(ctx); err != nil {
		db.pool.Close()
		return err
	}
	return nil
}

// redact removes the URL's password from msg, should a driver ever quote
// it.
func redact(msg, url string) string {
	if cfg, err := pgconn.ParseConfig(url); err == nil && cfg.Password != "" {
		msg = strings.ReplaceAll(msg, cfg.Password, "REDACTED")
	}
	return msg
}

// Close closes the pool's connections.
func (db *DB) Close() error {
	if db.pool != nil {
		db.pool.Close()
	}
	return nil
}

// migrationLock is the advisory lock taken while migrating, per schema.
const migrationLock = `hashtextextended('tokenmeter migrate ' || current_schema(), 0)`

// migrate applies the embedded migrations that the database has not seen,
// in file-name order, each in its own transaction, recording the version
// in tokenmeter_schema; all under a session advisory lock. A ReadOnly DB
// only checks the version.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return FormatError(fmt.Errorf("migrate: %w", err))
	}
	defer conn.Release()
	var schema *string
	if err := queryRow(ctx, conn, `SELECT current_schema()`).Scan(&schema); err != nil {
		return FormatError(fmt.Errorf("migrate: %w", err))
	}
	if schema == nil {
		return tokenmeter.Errorf(tokenmeter.EINVALID, "PostgreSQL: no schema of the search_path exists (create it, or set search_path in the URL)")
	}
	version := func() (int, error) {
		var v int
		err := queryRow(ctx, conn, `SELECT COALESCE((SELECT version FROM tokenmeter_schema), 0)`).Scan(&v)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: a new database
			return 0, nil
		}
		return v, err
	}
	if db.ReadOnly {
		v, err := version()
		if err != nil {
			return FormatError(fmt.Errorf("read schema version: %w", err))
		}
		if v != len(names) {
			return tokenmeter.Errorf(tokenmeter.EINVALID, "the PostgreSQL ledger in schema %s has schema version %d and this tokenmeter reads version %d: "+
				"run `tokenmeter serve` or `tokenmeter import` once to upgrade it", *schema, v, len(names))
		}
		return nil
	}
	if _, err := exec(ctx, conn, `SELECT pg_advisory_lock(`+migrationLock+`)`); err != nil {
		return FormatError(fmt.Errorf("migrate: take the migration lock: %w", err))
	}
	defer exec(context.Background(), conn, `SELECT pg_advisory_unlock(`+migrationLock+`)`)
	if _, err := exec(ctx, conn, `CREATE TABLE IF NOT EXISTS tokenmeter_schema (version integer NOT NULL)`); err != nil {
		return FormatError(fmt.Errorf("migrate: %w", err))
	}
	v, err := version()
	if err != nil {
		return FormatError(fmt.Errorf("read schema version: %w", err))
	}
	if v > len(names) {
		return fmt.Errorf("the PostgreSQL ledger in schema %s has schema version %d, newer than this tokenmeter knows (%d): upgrade tokenmeter", *schema, v, len(names))
	}
	for i := v; i < len(names); i++ {
		body, err := migrations.ReadFile(names[i])
		if err != nil {
			return err
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return FormatError(fmt.Errorf("migrate %s: %w", names[i], err))
		}
		// The simple protocol runs the file's statements as one script.
		if _, err := exec(ctx, tx, string(body), pgx.QueryExecModeSimpleProtocol); err != nil {
			tx.Rollback(ctx)
			return FormatError(fmt.Errorf("migrate %s: %w", names[i], err))
		}
		if _, err := exec(ctx, tx, `DELETE FROM tokenmeter_schema; INSERT INTO tokenmeter_schema VALUES (`+strconv.Itoa(i+1)+`)`,
			pgx.QueryExecModeSimpleProtocol); err != nil {
			tx.Rollback(ctx)
			return FormatError(fmt.Errorf("migrate %s: %w", names[i], err))
		}
		if err := tx.Commit(ctx); err != nil {
			return FormatError(fmt.Errorf("migrate %s: %w", names[i], err))
		}
	}
	return nil
}

// lockKey returns the advisory lock key of name (a limit's): the first 8
// bytes of its FNV-1a hash. Two names that collide only share a lock.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("tokenmeter limit " + name))
	return int64(h.Sum64())
}

// FormatError turns errors that mean "the ledger cannot record right now"
// (the server cannot be reached or is shutting down, a full disk, too many
// connections, a lock or serialization timeout) into tokenmeter
// EUNAVAILABLE errors that keep the original in their chain.
func FormatError(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources: disk full, out of memory, too many connections
			strings.HasPrefix(pe.Code, "57"),       // operator intervention: shutdown, query canceled
			strings.HasPrefix(pe.Code, "58"),       // system error: I/O
			pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock
			pe.Code == "55P03", // lock not available
			pe.Code == "25006": // read-only transaction (a standby)
			return &unavailable{err: err}
		}
		return err
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	if errors.As(err, &ne) || errors.As(err, &ce) || pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) {
		return &unavailable{err: err}
	}
	return err
}

type unavailable struct{ err error }

func (e *unavailable) Error() string { return "ledger unavailable: " + e.err.Error() }
func (e *unavailable) Unwrap() []error {
	return []error{e.err, tokenmeter.Errorf(tokenmeter.EUNAVAILABLE, "the usage ledger cannot record right now")}
}

// countingConn counts round trips: every write that follows a read (or
// opens the connection) is the client's next turn.
type countingConn struct {
	net.Conn
	n    *atomic.Int64
	read atomic.Bool // a read happened since the last counted write
	used atomic.Bool
}

func (c *countingConn) Write(b []byte) (int, error) {
	if c.read.Swap(false) || !c.used.Swap(true) {
		c.n.Add(1)
	}
	return c.Conn.Write(b)
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.read.Store(true)
	}
	return n, err
}

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
