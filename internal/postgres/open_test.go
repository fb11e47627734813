package postgres

import (
	"context"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledger"
	"github.com/tokenmeter/tokenmeter/internal/storetest"
)

// TestMigrateTogether: replicas starting together on an empty schema
// migrate it once (the advisory lock), and all of them work.
func TestMigrateTogether(t *testing.T) {
	url := freshSchema(t)
	ro := NewDB(url)
	ro.ReadOnly = true
	if err := ro.Open(); err == nil || !strings.Contains(err.Error(), "schema version 0") {
		t.Errorf("read-only open of an empty schema: %v; want a request to upgrade", err)
		ro.Close()
	}
	var wg sync.WaitGroup
	dbs := make([]*DB, 4)
	errs := make([]error, len(dbs))
	for i := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i] = NewDB(url)
			dbs[i].MaxConns = 2
			errs[i] = dbs[i].Open()
		}()
	}
	wg.Wait()
	ctx := context.Background()
	for i, db := range dbs {
		if errs[i] != nil {
			t.Fatalf("replica %d: Open: %v", i, errs[i])
		}
		defer db.Close()
		if _, err := db.Append(ctx, []tokenmeter.Event{storetest.Event("r"+string(rune('a'+i)), time.Now(), tokenmeter.Usage{})}); err != nil {
			t.Errorf("replica %d: Append: %v", i, err)
		}
	}
	var v int
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	if err := dbs[0].pool.QueryRow(ctx, `SELECT version FROM tokenmeter_schema`).Scan(&v); err != nil || v != len(names) {
		t.Errorf("schema version %d, %v; want %d (every migration once)", v, err, len(names))
	}
	ro = NewDB(url)
	ro.ReadOnly = true
	if err := ro.Open(); err != nil {
		t.Fatalf("read-only open: %v", err)
	}
	defer ro.Close()
	if res, err := ledger.Verify(ctx, ro); err != nil || res.Events != 4 {
		t.Errorf("Verify (read-only) = %+v, %v; want 4 events", res, err)
	}
	if _, err := ro.Append(ctx, []tokenmeter.Event{storetest.Event("x", time.Now(), tokenmeter.Usage{})}); err == nil {
		t.Error("a read-only store appended")
	}
}

// TestOpenUnreachable: a server that is not there is a clear error, coded
// unavailable, that names the server and not the password.
func TestOpenUnreachable(t *testing.T) {
	db := NewDB("postgres://tm:s3cret-pw@127.0.0.1:1/ledger?connect_timeout=2")
	err := db.Open()
	if err == nil {
		db.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if tokenmeter.ErrorCode(err) != tokenmeter.EUNAVAILABLE || !strings.Contains(err.Error(), "127.0.0.1:1/ledger") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open error %q (code %s): want unavailable, naming 127.0.0.1:1/ledger, without the password", err, tokenmeter.ErrorCode(err))
	}
	for _, bad := range []string{"", "postgres://[::1", "sync"} {
		db := NewDB(bad)
		if bad == "sync" {
			db = NewDB("postgres://x@127.0.0.1:1/y")
			db.Sync = "sometimes"
		}
		if err := db.Open(); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

// TestHostileText: strings PostgreSQL's text cannot hold (a NUL byte,
// bytes that are not UTF-8, the escape byte itself) go in and come back
// byte for byte: the chain verifies, and filters and groups on them match.
func TestHostileText(t *testing.T) {
	db := mustOpen(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	req := "tmr_\xff\x00"
	started := tokenmeter.Event{Key: tokenmeter.EventKey(req, tokenmeter.KindStarted), RequestKey: req, Kind: tokenmeter.KindStarted,
		Time: at, Source: tokenmeter.SourceProxy, Provider: "anthropic", Instance: "i\x7f1"}
	done := storetest.Event(req, at, tokenmeter.Usage{InputTokens: 3})
	done.Model, done.Project, done.Reason = "claude-\xe2\x82", "p\x00q", "upstream said \x00\xc3\x28 and \x7f"
	done.RawUsage = []byte("{\"x\":\"\xff\"}")
	if _, err := db.Append(ctx, []tokenmeter.Event{started}); err != nil {
		t.Fatal(err)
	}
	if open, err := db.OpenCalls(ctx, []string{"i\x7f1"}); err != nil || len(open) != 1 || open[0].RequestKey != req {
		t.Errorf("OpenCalls = %+v, %v; want the started call", open, err)
	}
	if _, err := db.Append(ctx, []tokenmeter.Event{done}); err != nil {
		t.Fatal(err)
	}
	if open, err := db.OpenCalls(ctx, nil); err != nil || len(open) != 0 {
		t.Errorf("OpenCalls after completion = %+v, %v; want none", open, err)
	}
	var got []tokenmeter.Event
	if err := db.Scan(ctx, 0, func(ev *tokenmeter.Event) error { got = append(got, *ev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Model != done.Model || got[1].Project != done.Project || got[1].Reason != done.Reason ||
		string(got[1].RawUsage) != string(done.RawUsage) || got[0].Instance != started.Instance || got[1].RequestKey != req {
		t.Errorf("events read back %+v", got)
	}
	if _, err := ledger.Verify(ctx, db); err != nil {
		t.Errorf("Verify: %v", err)
	}
	calls, err := db.RecentCalls(ctx, tokenmeter.CallQuery{Model: done.Model, Project: done.Project})
	if err != nil || len(calls) != 1 || calls[0].RequestKey != req {
		t.Errorf("RecentCalls by the model and project = %+v, %v", calls, err)
	}
	for _, fromEvents := range []bool{false, true} {
		us, err := db.Usage(ctx, tokenmeter.UsageQuery{FromEvents: fromEvents})
		if err != nil || len(us) != 1 || us[0].Model != done.Model || us[0].Project != done.Project {
			t.Errorf("Usage (from events %v) = %+v, %v", fromEvents, us, err)
		}
	}
	// A reservation with such labels: a global limit counts it.
	l := tokenmeter.Limit{Name: "g", Scope: "global", Metric: tokenmeter.MetricInputTokens, Max: 100, Window: "day", Mode: tokenmeter.LimitHard, Created: at}
	checks := []tokenmeter.LimitCheck{{Limit: l, Since: at.Add(-time.Hour)}}
	r := tokenmeter.Reservation{RequestKey: "x\xff", Instance: "i\x00", Time: at, Principal: "key:\xfe", Project: done.Project, Model: done.Model,
		Usage: tokenmeter.Usage{InputTokens: 10}}
	if st, ok, err := db.Reserve(ctx, r, checks); err != nil || !ok || st[0].Used != 3 {
		t.Errorf("Reserve = %+v, %v, %v; want 3 used", st, ok, err)
	}
	if st, _, err := db.Reserve(ctx, tokenmeter.Reservation{RequestKey: "y", Time: at}, checks); err != nil || st[0].Reserved != 10 {
		t.Errorf("Reserve after = %+v, %v; want 10 reserved", st, err)
	}
	if n, err := db.ReleaseReservations(ctx, []string{"i\x00"}); err != nil || n != 1 {
		t.Errorf("ReleaseReservations = %d, %v; want 1", n, err)
	}
	f := tokenmeter.ImportFile{Source: tokenmeter.SourceClaudeCode, Path: "/home/\xfe/a.jsonl", Identity: "1", ModTime: at, State: "\x00"}
	if _, err := db.Import(ctx, nil, []tokenmeter.ImportFile{f}); err != nil {
		t.Fatal(err)
	}
	if files, err := db.ImportFiles(ctx, tokenmeter.SourceClaudeCode); err != nil || !cmp.Equal(files, []tokenmeter.ImportFile{f}) {
		t.Errorf("ImportFiles = %+v, %v", files, err)
	}
}
