package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// EnvURL names the environment variable that points the tests at a
// PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test. Each
// store gets a schema of its own, dropped at the end.
const EnvURL = "TOKENMETER_TEST_POSTGRES"

// serverURL returns the test server's URL, or skips tb.
func serverURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		tb.Skipf("%s is not set: no PostgreSQL server to test against", EnvURL)
	}
	return u
}

// freshSchema creates an empty schema for one test, dropped at cleanup,
// and returns the server URL with search_path set to it.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	base := serverURL(tb)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "tm_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withParam(tb, base, "search_path", schema)
}

// withParam adds a connection parameter to a URL (or key=value string).
func withParam(tb testing.TB, base, name, value string) string {
	tb.Helper()
	if !strings.Contains(base, "://") {
		return base + " " + name + "=" + value
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("%s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// openDB opens a store on url.
func openDB(tb testing.TB, url string) *DB {
	tb.Helper()
	db := NewDB(url)
	db.MaxConns = 8
	if err := db.Open(); err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// mustOpen opens a store on a fresh schema.
func mustOpen(tb testing.TB) *DB { return openDB(tb, freshSchema(tb)) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokenmeter.Store { return mustOpen(t) })
}
