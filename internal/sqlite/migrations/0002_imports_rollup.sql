-- Importers: the session a call belongs to, and each log file's progress.
ALTER TABLE events ADD COLUMN session TEXT NOT NULL DEFAULT '';

-- Importers look up the gateway's calls by upstream request id; imported
-- events need not be in that index, which saves a write per imported call.
DROP INDEX events_upstream_request;

-- Reports read completed events from usage_rollup now; only the open calls
-- that recovery looks for need an index by kind. Completed events (every
-- imported one among them) skip it.
DROP INDEX events_kind_time;
CREATE INDEX events_open ON events (request_key) WHERE kind IN ('started', 'progress');
CREATE INDEX events_proxy_upstream ON events (upstream_request_id) WHERE upstream_request_id != '' AND source = 'proxy';

CREATE TABLE import_files (
	source   TEXT    NOT NULL,
	path     TEXT    NOT NULL,
	identity TEXT    NOT NULL,
	size     INTEGER NOT NULL,
	mod_us   INTEGER NOT NULL,
	offset   INTEGER NOT NULL,
	line     INTEGER NOT NULL,
	state    TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (source, path)
) WITHOUT ROWID;

-- usage_rollup is derived data: the completed (and revised) events summed per 15-minute
-- bucket and group, updated in the transaction that appends them, so that
-- reports, status and the status line do not scan every event. verify
-- checks it against the events.
CREATE TABLE usage_rollup (
	bucket_us        INTEGER NOT NULL,
	source           TEXT    NOT NULL,
	provider         TEXT    NOT NULL,
	model            TEXT    NOT NULL,
	principal        TEXT    NOT NULL,
	project          TEXT    NOT NULL,
	outcome          TEXT    NOT NULL,
	requests         INTEGER NOT NULL,
	input_tokens     INTEGER NOT NULL,
	output_tokens    INTEGER NOT NULL,
	cache_write_5m   INTEGER NOT NULL,
	cache_write_1h   INTEGER NOT NULL,
	cache_read       INTEGER NOT NULL,
	reasoning_tokens INTEGER NOT NULL,
	web_search       INTEGER NOT NULL,
	web_fetch        INTEGER NOT NULL,
	cost_micros      INTEGER NOT NULL,
	usage_unknown    INTEGER NOT NULL,
	cost_unknown     INTEGER NOT NULL,
	first_us         INTEGER NOT NULL,
	last_us          INTEGER NOT NULL,
	PRIMARY KEY (bucket_us, source, provider, model, principal, project, outcome)
) WITHOUT ROWID;

INSERT INTO usage_rollup
SELECT (time_us / 900000000) * 900000000, source, provider, model, principal, project, outcome,
	SUM(kind = 'completed'), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m), SUM(cache_write_1h), SUM(cache_read),
	SUM(reasoning_tokens), SUM(web_search), SUM(web_fetch), SUM(cost_micros),
	SUM(usage_known = 0), SUM(usage_known = 1 AND cost_known = 0), MIN(time_us), MAX(time_us)
FROM events WHERE kind = 'completed'
GROUP BY 1, source, provider, model, principal, project, outcome;
