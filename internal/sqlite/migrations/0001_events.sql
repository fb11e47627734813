-- The append-only ledger. One row per event; a call is the events that share
-- request_key. Rows are never updated or deleted by tokenmeter; seq, prev_hash
-- and hash chain them so that `tokenmeter verify` detects later tampering.
CREATE TABLE events (
	seq                 INTEGER PRIMARY KEY,
	key                 TEXT    NOT NULL UNIQUE,
	request_key         TEXT    NOT NULL,
	kind                TEXT    NOT NULL,
	time_us             INTEGER NOT NULL,
	source              TEXT    NOT NULL,
	instance            TEXT    NOT NULL DEFAULT '',
	provider            TEXT    NOT NULL DEFAULT '',
	endpoint            TEXT    NOT NULL DEFAULT '',
	model               TEXT    NOT NULL DEFAULT '',
	stream              INTEGER NOT NULL DEFAULT 0,
	principal           TEXT    NOT NULL DEFAULT '',
	project             TEXT    NOT NULL DEFAULT '',
	tags                TEXT    NOT NULL DEFAULT '',
	upstream_request_id TEXT    NOT NULL DEFAULT '',
	status              INTEGER NOT NULL DEFAULT 0,
	outcome             TEXT    NOT NULL DEFAULT '',
	reason              TEXT    NOT NULL DEFAULT '',
	input_tokens        INTEGER NOT NULL DEFAULT 0,
	output_tokens       INTEGER NOT NULL DEFAULT 0,
	cache_write_5m      INTEGER NOT NULL DEFAULT 0,
	cache_write_1h      INTEGER NOT NULL DEFAULT 0,
	cache_read          INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens    INTEGER NOT NULL DEFAULT 0,
	web_search          INTEGER NOT NULL DEFAULT 0,
	web_fetch           INTEGER NOT NULL DEFAULT 0,
	usage_known         INTEGER NOT NULL DEFAULT 0,
	raw_usage           TEXT    NOT NULL DEFAULT '',
	latency_us          INTEGER NOT NULL DEFAULT 0,
	ttfb_us             INTEGER NOT NULL DEFAULT 0,
	cost_micros         INTEGER NOT NULL DEFAULT 0,
	cost_known          INTEGER NOT NULL DEFAULT 0,
	prev_hash           TEXT    NOT NULL,
	hash                TEXT    NOT NULL
);

-- Every index is one more page written per commit, so there are few:
-- reports scan completed events by time; importers match upstream request
-- ids; open calls are found through the unique key of their completion
-- (request_key || '/completed').
CREATE INDEX events_kind_time ON events (kind, time_us);
CREATE INDEX events_upstream_request ON events (upstream_request_id) WHERE upstream_request_id != '';

-- meta holds the chain head written with every append, so that verify also
-- notices events removed from the end of the chain.
CREATE TABLE meta (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
