// Package sqlite is the embedded ledger: a tokenmeter.Store on SQLite in WAL
// mode, through the pure-Go modernc.org/sqlite driver (no cgo).
//
// One connection writes, inside BEGIN IMMEDIATE transactions that extend the
// hash chain; a pool of connections reads, so reports run while the gateway
// writes. When Append returns nil the batch is in the WAL: it survives a kill
// of the process, and with Sync set to SyncFull also a power loss.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenmeter/tokenmeter"
	"github.com/tokenmeter/tokenmeter/internal/ledgerrules"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Sync modes: how hard a commit pushes data to disk.
const (
	// SyncNormal writes each commit to the WAL file before Append returns,
	// which survives a crash of the process but not of the machine.
	SyncNormal = "normal"
	// SyncFull also fsyncs the WAL on every commit (group commit shares the
	// fsync between all calls in a batch); it survives a power loss.
	SyncFull = "full"
)

// DefaultCheckpointInterval is how often the background checkpointer copies
// the WAL into the database file, off the commit path.
const DefaultCheckpointInterval = 250 * time.Millisecond

// DefaultMaxWALPages is the WAL size (in pages) at which the writer's own
// commit finishes a checkpoint, so the WAL restarts from its beginning and
// never grows without bound. Because the background checkpointer has
// already copied nearly every frame by then, that commit only copies the
// last few pages and syncs: a short pause, not a long stall.
const DefaultMaxWALPages = 4096

// DefaultHeadInterval is how often, at most, a commit also records the
// chain head in the meta table. Recording it with every commit costs one
// more page per commit; verify detects events removed from the end of the
// chain up to the last recorded head.
const DefaultHeadInterval = 100 * time.Millisecond

// DefaultBusyTimeout is how long a connection waits for a lock held by
// another process (a report, an importer) before failing.
const DefaultBusyTimeout = 10 * time.Second

// DefaultCacheKiB is the writer's page cache (SQLite's default is 2 MiB):
// enough that the indexes a busy gateway updates stay in memory.
const DefaultCacheKiB = 64 << 10

// DB is a tokenmeter.Store on one SQLite database file.
type DB struct {
	// Path is the database file. Required.
	Path string
	// Sync is SyncNormal (default) or SyncFull.
	Sync string
	// MaxPageCount, when positive, caps the database size in pages; a write
	// past it fails as a full disk does. It exists so tests can exercise the
	// gateway's behaviour when the ledger cannot record.
	MaxPageCount int64
	// ReadOnly opens the database for reading only (reports, verify).
	ReadOnly bool
	// CacheKiB is the writer's page cache; zero means DefaultCacheKiB.
	CacheKiB int

	// ReserveRefresh is how often, at most, Reserve re-reads a limit's
	// window usage to see other processes' writes; zero means
	// DefaultReserveRefresh, negative re-reads it every time (see
	// reserve.go).
	ReserveRefresh time.Duration

	// HeadInterval is how often, at most, the chain head is recorded; zero
	// records it with every commit. Close always records the final head.
	HeadInterval time.Duration

	// CheckpointInterval is the background checkpointer's period;
	// MaxWALPages is the WAL size at which a commit completes a checkpoint.
	CheckpointInterval time.Duration
	MaxWALPages        int

	stop, stopped chan struct{} // the checkpointer's

	headMu      sync.Mutex // guards the fields below
	headWritten time.Time  // when the head was last recorded
	headSeq     int64      // the newest head, recorded or not
	headHash    string
	headDirty   bool // headSeq is newer than the recorded head

	w        *sql.DB // the one writer connection
	r        *sql.DB // readers
	insert   *sql.Stmt
	recorded *sql.Stmt
	// recordedResp finds a proxied call by response id.
	recordedResp *sql.Stmt
	// completedOf reads a call's completed event and whether it was
	// retracted.
	completedOf *sql.Stmt
	held        *sql.Stmt
	rollup      *sql.Stmt
	rollupDay   *sql.Stmt
	saveFile    *sql.Stmt
	rs          reserver // hard limits' reservations and window usage
	head        *sql.Stmt
	setHead     *sql.Stmt
}

var _ tokenmeter.Store = (*DB)(nil)

// NewDB returns a DB for the file at path; call Open before use.
func NewDB(path string) *DB {
	return &DB{Path: path, Sync: SyncNormal, HeadInterval: DefaultHeadInterval,
		CheckpointInterval: DefaultCheckpointInterval, MaxWALPages: DefaultMaxWALPages}
}

// Open opens (creating if needed) the database and applies migrations.
func (db *DB) Open() error {
	if db.Path == "" {
		return errors.New("sqlite: database path required")
	}
	sync := "NORMAL"
	switch db.Sync {
	case "", SyncNormal:
	case SyncFull:
		sync = "FULL"
	default:
		return fmt.Errorf("sqlite: unknown sync mode %q (want %s or %s)", db.Sync, SyncNormal, SyncFull)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", DefaultBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	if db.MaxPageCount > 0 {
		q.Add("_pragma", fmt.Sprintf("max_page_count(%d)", db.MaxPageCount))
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + filepath.ToSlash(db.Path) + "?" + q.Encode()

	var err error
	if db.r, err = sql.Open("sqlite", dsn); err != nil {
		return fmt.Errorf("open %s: %w", db.Path, err)
	}
	db.r.SetMaxOpenConns(4)
	db.r.SetConnMaxIdleTime(time.Minute)
	if db.ReadOnly {
		// A reader cannot migrate: a ledger written by an older tokenmeter
		// must be opened for writing once (serve or import do).
		names, _ := fs.Glob(migrations, "migrations/*.sql")
		var version int
		if err := db.r.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
			return FormatError(fmt.Errorf("open %s: %w", db.Path, err))
		}
		if version != len(names) {
			return tokenmeter.Errorf(tokenmeter.EINVALID, "%s has schema version %d and this tokenmeter reads version %d: "+
				"run `tokenmeter serve` or `tokenmeter import` once to upgrade it", db.Path, version, len(names))
		}
		return nil
	}
	// The writer checkpoints on commit only when the WAL reaches
	// MaxWALPages; checkpoint() does the bulk of the copying beforehand.
	if db.MaxWALPages <= 0 {
		db.MaxWALPages = DefaultMaxWALPages
	}
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", db.MaxWALPages))
	// The writer gets 64 MiB of page cache (SQLite's default is 2 MiB), so
	// the indexes it updates stay in memory as the ledger grows; readers
	// keep the default.
	cacheKiB := db.CacheKiB
	if cacheKiB <= 0 {
		cacheKiB = DefaultCacheKiB
	}
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheKiB))
	// Statement journals (an INSERT ... SELECT ... ON CONFLICT keeps one)
	// stay in memory instead of temporary files.
	q.Add("_pragma", "temp_store(MEMORY)")
	if db.w, err = sql.Open("sqlite", "file:"+filepath.ToSlash(db.Path)+"?"+q.Encode()); err != nil {
		return fmt.Errorf("open %s: %w", db.Path, err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	if err := db.migrate(context.Background()); err != nil {
		db.Close()
		return err
	}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&db.insert, insertSQL},
		{&db.recorded, recordedSQL},
		{&db.recordedResp, recordedResponseSQL},
		{&db.completedOf, `SELECT ` + columns + `, EXISTS (SELECT 1 FROM events r WHERE r.key = ?2) FROM events WHERE key = ?1`},
		{&db.held, heldSQL},
		{&db.rollup, rollupSQL},
		{&db.rollupDay, strings.Replace(rollupSQL, "INSERT INTO usage_rollup ", "INSERT INTO usage_rollup_day ", 1)},
		{&db.saveFile, `INSERT INTO import_files (source, path, identity, size, mod_us, offset, line, state) VALUES (?,?,?,?,?,?,?,?)
			ON CONFLICT (source, path) DO UPDATE SET identity = excluded.identity, size = excluded.size,
			mod_us = excluded.mod_us, offset = excluded.offset, line = excluded.line, state = excluded.state`},
	} {
		if *p.st, err = db.w.Prepare(p.sql); err != nil {
			db.Close()
			return fmt.Errorf("prepare %q: %w", p.sql[:30], err)
		}
	}
	if db.head, err = db.w.Prepare(`SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`); err != nil {
		db.Close()
		return fmt.Errorf("prepare head: %w", err)
	}
	if db.setHead, err = db.w.Prepare(`INSERT INTO meta (name, value) VALUES ('head', ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`); err != nil {
		db.Close()
		return fmt.Errorf("prepare head update: %w", err)
	}
	if db.CheckpointInterval <= 0 {
		db.CheckpointInterval = DefaultCheckpointInterval
	}
	db.stop, db.stopped = make(chan struct{}), make(chan struct{})
	go db.checkpoint()
	return nil
}

// PageCount returns the database's size in pages (see MaxPageCount).
func (db *DB) PageCount() (int64, error) {
	var n int64
	if err := db.r.QueryRow(`PRAGMA page_count`).Scan(&n); err != nil {
		return 0, FormatError(fmt.Errorf("read page count: %w", err))
	}
	return n, nil
}

// Close closes the database connections.
func (db *DB) Close() error {
	db.headMu.Lock()
	if db.headDirty && db.setHead != nil {
		db.setHead.Exec(strconv.FormatInt(db.headSeq, 10) + " " + db.headHash)
		db.headDirty = false
	}
	db.headMu.Unlock()
	if db.stop != nil {
		close(db.stop)
		<-db.stopped
		db.stop = nil
	}
	var errs []error
	for _, st := range []*sql.Stmt{db.insert, db.recorded, db.recordedResp, db.completedOf, db.held, db.rollup, db.rollupDay, db.saveFile, db.head, db.setHead} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, d := range []*sql.DB{db.w, db.r} {
		if d != nil {
			errs = append(errs, d.Close())
		}
	}
	return errors.Join(errs...)
}

// checkpoint copies the WAL into the database file every
// CheckpointInterval until Close, on a reader connection, without blocking
// the writer (PASSIVE). A final, truncating checkpoint runs at Close.
func (db *DB) checkpoint() {
	defer close(db.stopped)
	t := time.NewTicker(db.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			db.r.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
			return
		case <-t.C:
			// A failure is transient (a lock held elsewhere); the next tick
			// tries again, and the writer's own checkpoint bounds the WAL.
			db.r.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// migrate applies the embedded migrations that the database has not seen,
// in file-name order, recording each in PRAGMA user_version.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var version int
	if err := db.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version of %s: %w", db.Path, err)
	}
	if version > len(names) {
		return fmt.Errorf("%s has schema version %d, newer than this tokenmeter knows (%d): upgrade tokenmeter", db.Path, version, len(names))
	}
	for i := version; i < len(names); i++ {
		body, err := migrations.ReadFile(names[i])
		if err != nil {
			return err
		}
		tx, err := db.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, `PRAGMA user_version = `+strconv.Itoa(i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
	}
	return nil
}

const columns = `seq, key, request_key, kind, time_us, source, instance, provider, endpoint, model, stream,
	principal, project, tags, upstream_request_id, status, outcome, reason,
	input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read, reasoning_tokens, web_search, web_fetch,
	usage_known, raw_usage, latency_us, ttfb_us, cost_micros, cost_known, prev_hash, hash, session,
	response_id, estimate, hold_tokens, hold_input, hold_output, hold_cost, service_tier`

const nColumns = 42

var insertSQL = `INSERT INTO events (` + columns + `) VALUES (` +
	strings.TrimSuffix(strings.Repeat("?,", nColumns), ",") + `) ON CONFLICT (key) DO NOTHING`

// recordedSQL finds a call the gateway recorded under an upstream request
// id (through the partial index events_proxy_upstream).
const recordedSQL = `SELECT request_key FROM events WHERE upstream_request_id = ? AND upstream_request_id != '' AND source = 'proxy' LIMIT 1`

// recordedResponseSQL finds a call the gateway recorded under a response
// id (through the partial index events_proxy_response).
const recordedResponseSQL = `SELECT request_key FROM events WHERE response_id = ? AND response_id != '' AND source = 'proxy' LIMIT 1`

const rollupSQL = `INSERT INTO usage_rollup (bucket_us, source, provider, model, principal, project, outcome,
	requests, input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read, reasoning_tokens,
	web_search, web_fetch, cost_micros, usage_unknown, cost_unknown, first_us, last_us,
	usage_estimated, estimated_tokens, hold_tokens, hold_input, hold_output, hold_cost)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
	ON CONFLICT (bucket_us, source, provider, model, principal, project, outcome) DO UPDATE SET
	requests = requests + excluded.requests,
	input_tokens = input_tokens + excluded.input_tokens,
	output_tokens = output_tokens + excluded.output_tokens,
	cache_write_5m = cache_write_5m + excluded.cache_write_5m,
	cache_write_1h = cache_write_1h + excluded.cache_write_1h,
	cache_read = cache_read + excluded.cache_read,
	reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
	web_search = web_search + excluded.web_search,
	web_fetch = web_fetch + excluded.web_fetch,
	cost_micros = cost_micros + excluded.cost_micros,
	usage_unknown = usage_unknown + excluded.usage_unknown,
	cost_unknown = cost_unknown + excluded.cost_unknown,
	first_us = MIN(first_us, excluded.first_us),
	last_us = MAX(last_us, excluded.last_us),
	usage_estimated = usage_estimated + excluded.usage_estimated,
	estimated_tokens = estimated_tokens + excluded.estimated_tokens,
	hold_tokens = hold_tokens + excluded.hold_tokens,
	hold_input = hold_input + excluded.hold_input,
	hold_output = hold_output + excluded.hold_output,
	hold_cost = hold_cost + excluded.hold_cost`

func args(ev *tokenmeter.Event) []any {
	u := ev.Usage
	return []any{ev.Seq, ev.Key, ev.RequestKey, string(ev.Kind), ev.Time.UnixMicro(), string(ev.Source), ev.Instance,
		ev.Provider, ev.Endpoint, ev.Model, ev.Stream,
		ev.Principal, ev.Project, ev.Tags, ev.UpstreamRequestID, ev.Status, string(ev.Outcome), ev.Reason,
		u.InputTokens, u.OutputTokens, u.CacheWrite5mTokens, u.CacheWrite1hTokens, u.CacheReadTokens,
		u.ReasoningTokens, u.WebSearchRequests, u.WebFetchRequests,
		ev.UsageKnown, string(ev.RawUsage), ev.Latency.Microseconds(), ev.TTFB.Microseconds(),
		int64(ev.Cost), ev.CostKnown, ev.PrevHash, ev.Hash, ev.Session,
		ev.ResponseID, ev.Estimate, ev.Hold.Tokens, ev.Hold.InputTokens, ev.Hold.OutputTokens, int64(ev.Hold.Cost), ev.ServiceTier}
}

type scanner interface{ Scan(dest ...any) error }

func scanEvent(s scanner, ev *tokenmeter.Event) error {
	var (
		timeUS, latUS, ttfbUS, cost, holdCost int64
		kind, source, outcome, raw            string
		u                                     = &ev.Usage
	)
	err := s.Scan(&ev.Seq, &ev.Key, &ev.RequestKey, &kind, &timeUS, &source, &ev.Instance,
		&ev.Provider, &ev.Endpoint, &ev.Model, &ev.Stream,
		&ev.Principal, &ev.Project, &ev.Tags, &ev.UpstreamRequestID, &ev.Status, &outcome, &ev.Reason,
		&u.InputTokens, &u.OutputTokens, &u.CacheWrite5mTokens, &u.CacheWrite1hTokens, &u.CacheReadTokens,
		&u.ReasoningTokens, &u.WebSearchRequests, &u.WebFetchRequests,
		&ev.UsageKnown, &raw, &latUS, &ttfbUS, &cost, &ev.CostKnown, &ev.PrevHash, &ev.Hash, &ev.Session,
		&ev.ResponseID, &ev.Estimate, &ev.Hold.Tokens, &ev.Hold.InputTokens, &ev.Hold.OutputTokens, &holdCost, &ev.ServiceTier)
	if err != nil {
		return err
	}
	ev.Kind, ev.Source, ev.Outcome = tokenmeter.Kind(kind), tokenmeter.Source(source), tokenmeter.Outcome(outcome)
	ev.Time = time.UnixMicro(timeUS).UTC()
	ev.Latency, ev.TTFB = time.Duration(latUS)*time.Microsecond, time.Duration(ttfbUS)*time.Microsecond
	ev.Cost = tokenmeter.Micros(cost)
	ev.Hold.Cost = tokenmeter.Micros(holdCost)
	ev.RawUsage = nil
	if raw != "" {
		ev.RawUsage = []byte(raw)
	}
	return nil
}

// Append implements tokenmeter.Store. The events are sealed into the chain
// inside one immediate transaction; events whose key exists are skipped
// without consuming a sequence number.
func (db *DB) Append(ctx context.Context, events []tokenmeter.Event) (skipped int, err error) {
	res, err := db.write(ctx, events, nil, false)
	return res.Duplicates, err
}

// Import implements tokenmeter.Store.
func (db *DB) Import(ctx context.Context, events []tokenmeter.Event, files []tokenmeter.ImportFile) (tokenmeter.ImportResult, error) {
	return db.write(ctx, events, files, true)
}

// write appends events and saves files' import state in one transaction,
// updating the rollups and the chain head; what each event becomes is
// decided by ledgerrules.Write (imported selects Import's rules).
func (db *DB) write(ctx context.Context, events []tokenmeter.Event, files []tokenmeter.ImportFile, imported bool) (res tokenmeter.ImportResult, err error) {
	if db.w == nil {
		return res, errors.New("sqlite: database opened read-only")
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return res, FormatError(fmt.Errorf("begin: %w", err))
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			res = tokenmeter.ImportResult{}
		}
	}()
	b := &batch{db: db, tx: tx, prev: tokenmeter.GenesisHash}
	if len(events) > 0 {
		if err := tx.StmtContext(ctx, db.head).QueryRowContext(ctx).Scan(&b.seq, &b.prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return res, FormatError(fmt.Errorf("read chain head: %w", err))
		}
		b.ins = tx.StmtContext(ctx, db.insert)
	}
	out, err := ledgerrules.Write(ctx, b, events, imported)
	if err != nil {
		return res, err
	}
	res = out.ImportResult
	if len(out.Rollup) > 0 {
		// The 15-minute rows, then the same sums per UTC day.
		for _, t := range []struct {
			st   *sql.Stmt
			rows ledgerrules.Sums
		}{{db.rollup, out.Rollup}, {db.rollupDay, out.Rollup.Days()}} {
			up := tx.StmtContext(ctx, t.st)
			vals := make([]any, 7+len(ledgerrules.Columns))
			for k, r := range t.rows {
				vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6] = k.Bucket, k.Source, k.Provider, k.Model, k.Principal, k.Project, k.Outcome
				for i, v := range r.Values() {
					vals[7+i] = v
				}
				if _, err := up.ExecContext(ctx, vals...); err != nil {
					return res, FormatError(fmt.Errorf("update usage rollup: %w", err))
				}
			}
		}
	}
	if len(files) > 0 {
		st := tx.StmtContext(ctx, db.saveFile)
		for _, f := range files {
			if _, err := st.ExecContext(ctx, string(f.Source), f.Path, f.Identity, f.Size, f.ModTime.UnixMicro(), f.Offset, f.Line, f.State); err != nil {
				return res, FormatError(fmt.Errorf("save import state of %s: %w", f.Path, err))
			}
		}
	}
	db.headMu.Lock()
	defer db.headMu.Unlock()
	now := time.Now()
	recordHead := out.Stored && now.Sub(db.headWritten) >= db.HeadInterval
	if recordHead {
		if _, err := tx.StmtContext(ctx, db.setHead).ExecContext(ctx, strconv.FormatInt(b.seq, 10)+" "+b.prev); err != nil {
			return res, FormatError(fmt.Errorf("write chain head: %w", err))
		}
	}
	if err := tx.Commit(); err != nil {
		return res, FormatError(fmt.Errorf("commit: %w", err))
	}
	if len(out.Counted) > 0 || len(out.Released) > 0 {
		// The calls' actual usage replaces their reservations now that the
		// commit has returned (see reserve.go).
		db.rs.committed(rolled{lastSeq: b.seq, events: out.Counted, released: out.Released})
	}
	if out.Stored {
		db.headSeq, db.headHash, db.headDirty = b.seq, b.prev, !recordHead
		if recordHead {
			db.headWritten = now
		}
	}
	return res, nil
}

// batch is the SQLite side of ledgerrules.Write: the statements of one
// write transaction, which holds the database's write lock, so nothing
// else extends the chain meanwhile.
type batch struct {
	db        *DB
	tx        *sql.Tx
	seq       int64  // the chain head: the last event's seq
	prev      string // and hash
	ins       *sql.Stmt
	byID      *sql.Stmt // the gateway's calls by upstream request id
	byResp    *sql.Stmt // and by response id
	proxied   int       // whether the ledger holds proxied calls: 0 not known yet, 1 no, 2 yes
	completed *sql.Stmt
	sums      *sql.Stmt
}

// Insert implements ledgerrules.Batch.
func (b *batch) Insert(ctx context.Context, ev *tokenmeter.Event) (bool, error) {
	tokenmeter.Seal(ev, b.seq+1, b.prev)
	r, err := b.ins.ExecContext(ctx, args(ev)...)
	if err != nil {
		return false, FormatError(fmt.Errorf("insert event %s: %w", ev.Key, err))
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return false, nil
	}
	b.seq, b.prev = ev.Seq, ev.Hash
	if ev.Source == tokenmeter.SourceProxy && (ev.UpstreamRequestID != "" || ev.ResponseID != "") {
		b.proxied = 2
	}
	return true, nil
}

// Recorded implements ledgerrules.Batch. Looking an imported call up among
// the gateway's is needed only if the gateway has recorded any (the
// transaction holds the write lock, so none can appear but its own).
func (b *batch) Recorded(ctx context.Context, ev *tokenmeter.Event) (string, error) {
	if b.proxied == 0 {
		var any bool
		if err := b.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE upstream_request_id != '' AND source = 'proxy')
			OR EXISTS (SELECT 1 FROM events WHERE response_id != '' AND source = 'proxy')`).Scan(&any); err != nil {
			return "", FormatError(fmt.Errorf("look for proxied calls: %w", err))
		}
		b.proxied = 1
		if any {
			b.proxied = 2
		}
	}
	if b.proxied == 1 {
		return "", nil
	}
	if b.byID == nil {
		b.byID, b.byResp = b.tx.StmtContext(ctx, b.db.recorded), b.tx.StmtContext(ctx, b.db.recordedResp)
	}
	for _, q := range []struct {
		st  *sql.Stmt
		id  string
		why string
	}{{b.byID, ev.UpstreamRequestID, "upstream request"}, {b.byResp, ev.ResponseID, "response"}} {
		if q.id == "" {
			continue
		}
		var key string
		err := q.st.QueryRowContext(ctx, q.id).Scan(&key)
		if err == nil {
			return key, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return "", FormatError(fmt.Errorf("look up %s %s: %w", q.why, q.id, err))
		}
	}
	return "", nil
}

// Completed implements ledgerrules.Batch.
func (b *batch) Completed(ctx context.Context, requestKey string) (tokenmeter.Event, bool, bool, error) {
	if b.completed == nil {
		b.completed = b.tx.StmtContext(ctx, b.db.completedOf)
	}
	var orig tokenmeter.Event
	var retracted bool
	row := b.completed.QueryRowContext(ctx,
		tokenmeter.EventKey(requestKey, tokenmeter.KindCompleted), tokenmeter.EventKey(requestKey, tokenmeter.KindRetracted))
	if err := scanEvent(extraScanner{row, &retracted}, &orig); errors.Is(err, sql.ErrNoRows) {
		return orig, false, false, nil
	} else if err != nil {
		return orig, false, false, FormatError(fmt.Errorf("read call %s: %w", requestKey, err))
	}
	return orig, retracted, true, nil
}

// Sums implements ledgerrules.Batch.
func (b *batch) Sums(ctx context.Context, requestKey string) (tokenmeter.CallSums, error) {
	if b.sums == nil {
		b.sums = b.tx.StmtContext(ctx, b.db.held)
	}
	var (
		s               tokenmeter.CallSums
		cost, timeUS    int64
		source, outcome string
		u               = &s.Usage
	)
	err := b.sums.QueryRowContext(ctx, requestKey+"/", requestKey+"0").Scan(&s.Events,
		&u.InputTokens, &u.OutputTokens, &u.CacheWrite5mTokens, &u.CacheWrite1hTokens, &u.CacheReadTokens,
		&u.ReasoningTokens, &u.WebSearchRequests, &u.WebFetchRequests, &cost, &timeUS,
		&source, &s.Provider, &s.Model, &s.Principal, &s.Project, &s.Session, &outcome)
	if err != nil {
		return s, FormatError(fmt.Errorf("read usage of %s: %w", requestKey, err))
	}
	s.Cost, s.Time = tokenmeter.Micros(cost), time.UnixMicro(timeUS).UTC()
	s.Source, s.Outcome = tokenmeter.Source(source), tokenmeter.Outcome(outcome)
	return s, nil
}

// extraScanner scans a row whose columns are an event's and then one more.
type extraScanner struct {
	s     scanner
	extra any
}

func (e extraScanner) Scan(dest ...any) error { return e.s.Scan(append(dest, e.extra)...) }

// heldSQL sums what the ledger holds for one call: its completed event and
// revisions, found through the key index ([call/, call0) are the keys of
// the call's events).
const heldSQL = `SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
	COALESCE(SUM(cache_write_5m), 0), COALESCE(SUM(cache_write_1h), 0), COALESCE(SUM(cache_read), 0),
	COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(web_search), 0), COALESCE(SUM(web_fetch), 0),
	COALESCE(SUM(cost_micros), 0), COALESCE(MIN(time_us), 0),
	COALESCE(MAX(CASE WHEN kind = 'completed' THEN source END), ''),
	COALESCE(MAX(CASE WHEN kind = 'completed' THEN provider END), ''),
	COALESCE(MAX(CASE WHEN kind = 'completed' THEN model END), ''),
	COALESCE(MAX(CASE WHEN kind = 'completed' THEN principal END), ''),
	COALESCE(MAX(CASE WHEN kind = 'completed' THEN project END), ''),
	COALESCE(MAX(CASE WHEN kind = 'completed' THEN session END), ''),
	COALESCE(MAX(CASE WHEN kind = 'completed' THEN outcome END), '')
	FROM events WHERE key >= ? AND key < ? AND kind IN ('completed', 'revised', 'retracted')`

// ImportFiles implements tokenmeter.Store.
func (db *DB) ImportFiles(ctx context.Context, source tokenmeter.Source) ([]tokenmeter.ImportFile, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT path, identity, size, mod_us, offset, line, state FROM import_files WHERE source = ? ORDER BY path`, string(source))
	if err != nil {
		return nil, fmt.Errorf("query import state: %w", err)
	}
	defer rows.Close()
	var out []tokenmeter.ImportFile
	for rows.Next() {
		f := tokenmeter.ImportFile{Source: source}
		var mod int64
		if err := rows.Scan(&f.Path, &f.Identity, &f.Size, &mod, &f.Offset, &f.Line, &f.State); err != nil {
			return nil, fmt.Errorf("scan import state: %w", err)
		}
		f.ModTime = time.UnixMicro(mod).UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}

// Head returns the chain head last recorded (see HeadInterval): its
// sequence number and hash, or 0 and GenesisHash for an empty ledger.
func (db *DB) Head(ctx context.Context) (seq int64, hash string, err error) {
	var v string
	err = db.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'head'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, tokenmeter.GenesisHash, nil
	} else if err != nil {
		return 0, "", fmt.Errorf("read chain head: %w", err)
	}
	s, h, ok := strings.Cut(v, " ")
	if seq, err = strconv.ParseInt(s, 10, 64); !ok || err != nil {
		return 0, "", fmt.Errorf("chain head record %q is malformed", v)
	}
	return seq, h, nil
}

// OpenCalls implements tokenmeter.Store.
func (db *DB) OpenCalls(ctx context.Context, instances []string) ([]tokenmeter.Event, error) {
	query := `SELECT ` + columns + ` FROM events WHERE seq IN (
		SELECT MAX(s.seq) FROM events s
		WHERE s.kind IN ('started', 'progress')
		AND NOT EXISTS (SELECT 1 FROM events c WHERE c.key = s.request_key || '/completed')
		GROUP BY s.request_key) ORDER BY seq`
	rows, err := db.r.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("query open calls: %w", err)
	}
	defer rows.Close()
	var out []tokenmeter.Event
	for rows.Next() {
		var ev tokenmeter.Event
		if err := scanEvent(rows, &ev); err != nil {
			return nil, fmt.Errorf("scan open call: %w", err)
		}
		if instances == nil || contains(instances, ev.Instance) {
			out = append(out, ev)
		}
	}
	return out, rows.Err()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Scan implements tokenmeter.Store.
func (db *DB) Scan(ctx context.Context, afterSeq int64, fn func(*tokenmeter.Event) error) error {
	rows, err := db.r.QueryContext(ctx, `SELECT `+columns+` FROM events WHERE seq > ? ORDER BY seq`, afterSeq)
	if err != nil {
		return fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var ev tokenmeter.Event
	for rows.Next() {
		ev = tokenmeter.Event{}
		if err := scanEvent(rows, &ev); err != nil {
			return fmt.Errorf("scan event after seq %d: %w", ev.Seq, err)
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Usage implements tokenmeter.Store. Queries on the 15-minute grid are
// answered from usage_rollup; the rest (and FromEvents, BySession) sum the
// events.
func (db *DB) Usage(ctx context.Context, q tokenmeter.UsageQuery) ([]tokenmeter.UsageBucket, error) {
	p, err := ledgerrules.PlanUsage(q)
	if err != nil {
		return nil, err
	}
	bucket, since, until := p.Bucket, p.Since, p.Until
	var query string
	var args []any
	if p.From == ledgerrules.FromRollup {
		// The rollup's own grid: its rows are the answer, in key order.
		query = `SELECT bucket_us, source, provider, model, principal, project, outcome, '',
		requests, input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read,
		reasoning_tokens, web_search, web_fetch, cost_micros, usage_unknown, cost_unknown, first_us, last_us,
		usage_estimated, estimated_tokens, hold_tokens, hold_input, hold_output, hold_cost
		FROM usage_rollup WHERE bucket_us >= ?2 AND bucket_us < ?3 AND ?1 > 0 ORDER BY bucket_us`
	} else if p.From == ledgerrules.FromRollups {
		// Whole UTC days inside [since, until) come from the daily rows
		// when every day falls in one result bucket (buckets of whole days,
		// or one bucket); the partial days at the edges, and everything for
		// narrower buckets, from the 15-minute rows.
		cols := `source, provider, model, principal, project, outcome,
		requests, input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read,
		reasoning_tokens, web_search, web_fetch, cost_micros, usage_unknown, cost_unknown, first_us, last_us,
		usage_estimated, estimated_tokens, hold_tokens, hold_input, hold_output, hold_cost`
		query = `SELECT (bucket_us / ?1) * ?1 AS b, source, provider, model, principal, project, outcome, '',
		SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m), SUM(cache_write_1h), SUM(cache_read),
		SUM(reasoning_tokens), SUM(web_search), SUM(web_fetch), SUM(cost_micros),
		SUM(usage_unknown), SUM(cost_unknown), MIN(first_us), MAX(last_us),
		SUM(usage_estimated), SUM(estimated_tokens), SUM(hold_tokens), SUM(hold_input), SUM(hold_output), SUM(hold_cost)
		FROM (SELECT bucket_us, ` + cols + ` FROM usage_rollup WHERE bucket_us >= ?2 AND bucket_us < min(?3, ?4)
		UNION ALL SELECT bucket_us, ` + cols + ` FROM usage_rollup WHERE bucket_us >= max(?2, ?5) AND bucket_us < ?3
		UNION ALL SELECT bucket_us, ` + cols + ` FROM usage_rollup_day WHERE bucket_us >= ?4 AND bucket_us < ?5)
		GROUP BY b, source, provider, model, principal, project, outcome ORDER BY b`
		args = append(args, p.DayFrom, p.DayTo)
	} else {
		session := "''" // the extra group: session or tags
		if q.BySession {
			session = "session"
		} else if q.ByTags {
			session = "tags"
		}
		// Completed, revised and retracted events through their partial
		// time indexes (kind IN (...) would scan the table), summed by the
		// rules of tokenmeter.Event.Contribution: sign is +1 for a
		// completed event, -1 for a retraction, 0 for a revision.
		cols := `time_us, kind, source, provider, model, principal, project, outcome, session, tags, input_tokens, output_tokens,
			cache_write_5m, cache_write_1h, cache_read, reasoning_tokens, web_search, web_fetch, cost_micros, usage_known, cost_known,
			estimate, hold_tokens, hold_input, hold_output, hold_cost, (kind = 'completed') - (kind = 'retracted') AS sign`
		query = `SELECT (time_us / ?1) * ?1 AS b, source, provider, model, principal, project, outcome, ` + session + `,
		SUM(kind = 'completed'), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m), SUM(cache_write_1h), SUM(cache_read),
		SUM(reasoning_tokens), SUM(web_search), SUM(web_fetch), SUM(cost_micros),
		SUM(sign * (usage_known = 0 AND estimate = '')), SUM(sign * ((usage_known = 1 OR estimate != '') AND cost_known = 0)), MIN(time_us), MAX(time_us),
		SUM(sign * (estimate != '')), SUM(CASE WHEN estimate != '' AND sign != 0 THEN input_tokens + output_tokens + cache_write_5m + cache_write_1h + cache_read ELSE 0 END),
		SUM(hold_tokens), SUM(hold_input), SUM(hold_output), SUM(hold_cost)
		FROM (SELECT ` + cols + ` FROM events WHERE kind = 'completed' AND time_us >= ?2 AND time_us < ?3
			UNION ALL SELECT ` + cols + ` FROM events WHERE kind = 'revised' AND time_us >= ?2 AND time_us < ?3
			UNION ALL SELECT ` + cols + ` FROM events WHERE kind = 'retracted' AND time_us >= ?2 AND time_us < ?3)
		GROUP BY b, source, provider, model, principal, project, outcome, 8 ORDER BY b`
	}
	rows, err := db.r.QueryContext(ctx, query, append([]any{bucket, since, until}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("query usage: %w", err)
	}
	defer rows.Close()
	var out []tokenmeter.UsageBucket
	for rows.Next() {
		var b tokenmeter.UsageBucket
		var start, cost, first, last, holdCost int64
		var source, outcome string
		u, h := &b.Usage, &b.Hold
		if err := rows.Scan(&start, &source, &b.Provider, &b.Model, &b.Principal, &b.Project, &outcome, &b.Session, &b.Requests,
			&u.InputTokens, &u.OutputTokens, &u.CacheWrite5mTokens, &u.CacheWrite1hTokens, &u.CacheReadTokens,
			&u.ReasoningTokens, &u.WebSearchRequests, &u.WebFetchRequests, &cost, &b.UsageUnknown, &b.CostUnknown,
			&first, &last, &b.UsageEstimated, &b.EstimatedTokens, &h.Tokens, &h.InputTokens, &h.OutputTokens, &holdCost); err != nil {
			return nil, fmt.Errorf("scan usage: %w", err)
		}
		h.Cost = tokenmeter.Micros(holdCost)
		if q.Bucket > 0 {
			b.Start = time.UnixMicro(start).UTC()
		}
		if q.ByTags {
			b.Tags, b.Session = b.Session, "" // the extra group's column
		}
		b.Source, b.Outcome, b.Cost = tokenmeter.Source(source), tokenmeter.Outcome(outcome), tokenmeter.Micros(cost)
		b.First, b.Last = time.UnixMicro(first).UTC(), time.UnixMicro(last).UTC()
		out = append(out, b)
	}
	return out, rows.Err()
}

// FormatError turns SQLite errors that mean "the ledger cannot record" (a
// full disk, a read-only file, an I/O error) into tokenmeter EUNAVAILABLE
// errors that keep the original in their chain.
func FormatError(err error) error {
	var se *sqlitedrv.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY:
		return &unavailable{err: err}
	}
	return err
}

type unavailable struct{ err error }

func (e *unavailable) Error() string { return "ledger unavailable: " + e.err.Error() }
func (e *unavailable) Unwrap() []error {
	return []error{e.err, tokenmeter.Errorf(tokenmeter.EUNAVAILABLE, "the usage ledger cannot record right now")}
}
