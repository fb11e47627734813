-- Reconciliation runs (see tokenmeter.ReconcileRun): one row per run, its
-- totals as a JSON object (tokenmeter.ReconcileSummary), and its
-- discrepancies, largest first (n orders them). Times are Unix
-- microseconds, durations nanoseconds, money micro-dollars.
CREATE TABLE reconcile_runs (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	provider   TEXT    NOT NULL,
	ran_us     INTEGER NOT NULL,
	since_us   INTEGER NOT NULL,
	until_us   INTEGER NOT NULL,
	bucket_ns  INTEGER NOT NULL,
	by_        TEXT    NOT NULL,
	tolerance  TEXT    NOT NULL,
	lag_ns     INTEGER NOT NULL,
	status     TEXT    NOT NULL,
	error      TEXT    NOT NULL,
	summary    TEXT    NOT NULL
);

CREATE INDEX reconcile_runs_provider ON reconcile_runs (provider, id);

CREATE TABLE reconcile_discrepancies (
	run_id     INTEGER NOT NULL REFERENCES reconcile_runs (id),
	n          INTEGER NOT NULL,
	start_us   INTEGER NOT NULL,
	end_us     INTEGER NOT NULL,
	model      TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	principals TEXT    NOT NULL,
	class      TEXT    NOT NULL,
	category   TEXT    NOT NULL,
	provider   INTEGER NOT NULL,
	ledger     INTEGER NOT NULL,
	final      INTEGER NOT NULL,
	beyond     INTEGER NOT NULL,
	PRIMARY KEY (run_id, n)
) WITHOUT ROWID;
