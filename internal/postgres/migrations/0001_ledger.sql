-- The tokenmeter ledger on PostgreSQL: the same tables as the SQLite ledger
-- (internal/sqlite/migrations), in one step. Times are Unix microseconds,
-- money micro-dollars, durations of reconciliation runs nanoseconds. Text
-- that PostgreSQL cannot hold as it is (a NUL byte, bytes that are not
-- UTF-8) is escaped by the store (see text.go), never changed.

-- The append-only ledger. One row per event; rows are never updated or
-- deleted by tokenmeter; seq, prev_hash and hash chain them (see
-- tokenmeter.ChainHash), one chain for every replica.
CREATE TABLE events (
	seq                 bigint  PRIMARY KEY,
	key                 text    COLLATE "C" NOT NULL UNIQUE,
	request_key         text    COLLATE "C" NOT NULL,
	kind                text    NOT NULL,
	time_us             bigint  NOT NULL,
	source              text    NOT NULL,
	instance            text    NOT NULL DEFAULT '',
	provider            text    NOT NULL DEFAULT '',
	endpoint            text    NOT NULL DEFAULT '',
	model               text    NOT NULL DEFAULT '',
	stream              boolean NOT NULL DEFAULT false,
	principal           text    NOT NULL DEFAULT '',
	project             text    NOT NULL DEFAULT '',
	tags                text    NOT NULL DEFAULT '',
	upstream_request_id text    NOT NULL DEFAULT '',
	status              integer NOT NULL DEFAULT 0,
	outcome             text    NOT NULL DEFAULT '',
	reason              text    NOT NULL DEFAULT '',
	input_tokens        bigint  NOT NULL DEFAULT 0,
	output_tokens       bigint  NOT NULL DEFAULT 0,
	cache_write_5m      bigint  NOT NULL DEFAULT 0,
	cache_write_1h      bigint  NOT NULL DEFAULT 0,
	cache_read          bigint  NOT NULL DEFAULT 0,
	reasoning_tokens    bigint  NOT NULL DEFAULT 0,
	web_search          bigint  NOT NULL DEFAULT 0,
	web_fetch           bigint  NOT NULL DEFAULT 0,
	usage_known         boolean NOT NULL DEFAULT false,
	raw_usage           text    NOT NULL DEFAULT '',
	latency_us          bigint  NOT NULL DEFAULT 0,
	ttfb_us             bigint  NOT NULL DEFAULT 0,
	cost_micros         bigint  NOT NULL DEFAULT 0,
	cost_known          boolean NOT NULL DEFAULT false,
	prev_hash           text    NOT NULL,
	hash                text    NOT NULL,
	session             text    NOT NULL DEFAULT '',
	response_id         text    NOT NULL DEFAULT '',
	estimate            text    NOT NULL DEFAULT '',
	hold_tokens         bigint  NOT NULL DEFAULT 0,
	hold_input          bigint  NOT NULL DEFAULT 0,
	hold_output         bigint  NOT NULL DEFAULT 0,
	hold_cost           bigint  NOT NULL DEFAULT 0
);

-- Every index is written with every commit, so there are few, as on
-- SQLite: open calls (recovery), the gateway's calls by upstream request id
-- and response id (importers), completed calls by time (recent calls),
-- and the rare revisions and retractions by time (usage off the grid) and
-- by call (what the ledger holds for a call).
CREATE INDEX events_open ON events (request_key) WHERE kind IN ('started', 'progress');
CREATE INDEX events_proxy_upstream ON events (upstream_request_id) WHERE upstream_request_id <> '' AND source = 'proxy';
CREATE INDEX events_proxy_response ON events (response_id) WHERE response_id <> '' AND source = 'proxy';
CREATE INDEX events_completed_time ON events (time_us, seq) WHERE kind = 'completed';
CREATE INDEX events_revised_time ON events (time_us) WHERE kind = 'revised';
CREATE INDEX events_retracted_time ON events (time_us) WHERE kind = 'retracted';
CREATE INDEX events_corrections ON events (request_key) WHERE kind IN ('revised', 'retracted');

-- The chain head: the last event's seq and hash, updated in every
-- transaction that appends. Appending locks this row first (FOR UPDATE),
-- which is what gives every replica's events one total order; verify
-- compares it with the last event, so events removed from the end show.
CREATE TABLE chain_head (
	id   integer PRIMARY KEY CHECK (id = 1),
	seq  bigint  NOT NULL,
	hash text    NOT NULL
);
INSERT INTO chain_head VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- claim_head locks the chain head and reports whether it is the one the
-- caller sealed its events after: an append that guessed the head right
-- commits in one round trip; the statements that follow it in that round
-- trip write only while the head is still the guessed one (which, with the
-- row locked, only the append itself can change), so a wrong guess writes
-- nothing and the append starts again from the head it reads.
CREATE FUNCTION claim_head(want_seq bigint, want_hash text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	s bigint;
	h text;
BEGIN
	SELECT seq, hash INTO s, h FROM chain_head WHERE id = 1 FOR UPDATE;
	RETURN s = want_seq AND h = want_hash;
END $$;

CREATE TABLE import_files (
	source   text   NOT NULL,
	path     text   NOT NULL,
	identity text   NOT NULL,
	size     bigint NOT NULL,
	mod_us   bigint NOT NULL,
	"offset" bigint NOT NULL,
	line     bigint NOT NULL,
	state    text   NOT NULL DEFAULT '',
	PRIMARY KEY (source, path)
);

-- usage_rollup and usage_rollup_day are derived data: the completed,
-- revised and retracted events summed per 15-minute bucket (per UTC day)
-- and group, by internal/ledgerrules, in the transaction that appends
-- them. model_base is tokenmeter.ModelBase(model), computed by the store,
-- so a model: limit selects its rows as tokenmeter.LimitScope does.
CREATE TABLE usage_rollup (
	bucket_us        bigint NOT NULL,
	source           text   NOT NULL,
	provider         text   NOT NULL,
	model            text   NOT NULL,
	principal        text   NOT NULL,
	project          text   NOT NULL,
	outcome          text   NOT NULL,
	model_base       text   NOT NULL,
	requests         bigint NOT NULL,
	input_tokens     bigint NOT NULL,
	output_tokens    bigint NOT NULL,
	cache_write_5m   bigint NOT NULL,
	cache_write_1h   bigint NOT NULL,
	cache_read       bigint NOT NULL,
	reasoning_tokens bigint NOT NULL,
	web_search       bigint NOT NULL,
	web_fetch        bigint NOT NULL,
	cost_micros      bigint NOT NULL,
	usage_unknown    bigint NOT NULL,
	cost_unknown     bigint NOT NULL,
	first_us         bigint NOT NULL,
	last_us          bigint NOT NULL,
	usage_estimated  bigint NOT NULL,
	estimated_tokens bigint NOT NULL,
	hold_tokens      bigint NOT NULL,
	hold_input       bigint NOT NULL,
	hold_output      bigint NOT NULL,
	hold_cost        bigint NOT NULL,
	PRIMARY KEY (bucket_us, source, provider, model, principal, project, outcome)
);
CREATE TABLE usage_rollup_day (LIKE usage_rollup INCLUDING ALL);
-- A key: limit reads its key's rows through these.
CREATE INDEX usage_rollup_principal ON usage_rollup (principal, bucket_us);
CREATE INDEX usage_rollup_day_principal ON usage_rollup_day (principal, bucket_us);

-- usage_total and usage_total_day are the same sums over every group, so
-- that a global limit, which every reservation checks under its lock,
-- reads a row per quarter hour and per day rather than one per group.
CREATE TABLE usage_total (
	bucket_us        bigint PRIMARY KEY,
	requests         bigint NOT NULL,
	input_tokens     bigint NOT NULL,
	output_tokens    bigint NOT NULL,
	cache_write_5m   bigint NOT NULL,
	cache_write_1h   bigint NOT NULL,
	cache_read       bigint NOT NULL,
	reasoning_tokens bigint NOT NULL,
	web_search       bigint NOT NULL,
	web_fetch        bigint NOT NULL,
	cost_micros      bigint NOT NULL,
	usage_unknown    bigint NOT NULL,
	cost_unknown     bigint NOT NULL,
	first_us         bigint NOT NULL,
	last_us          bigint NOT NULL,
	usage_estimated  bigint NOT NULL,
	estimated_tokens bigint NOT NULL,
	hold_tokens      bigint NOT NULL,
	hold_input       bigint NOT NULL,
	hold_output      bigint NOT NULL,
	hold_cost        bigint NOT NULL
);
CREATE TABLE usage_total_day (LIKE usage_total INCLUDING ALL);

-- Virtual keys: hashes, never secrets (see tokenmeter.VirtualKey).
CREATE TABLE virtual_keys (
	name       text   PRIMARY KEY,
	prefix     text   NOT NULL,
	hash       text   NOT NULL UNIQUE,
	project    text   NOT NULL DEFAULT '',
	created_us bigint NOT NULL,
	expires_us bigint NOT NULL DEFAULT 0,
	revoked_us bigint NOT NULL DEFAULT 0,
	rotated_us bigint NOT NULL DEFAULT 0
);

CREATE TABLE limits (
	name       text   PRIMARY KEY,
	scope      text   NOT NULL,
	metric     text   NOT NULL,
	max        bigint NOT NULL,
	win        text   NOT NULL,
	mode       text   NOT NULL,
	created_us bigint NOT NULL
);

-- Open reservations of hard limits, every replica's: the worst case of
-- each admitted call, from Reserve until the transaction that appends its
-- completed event deletes the row (or a release does).
CREATE TABLE reservations (
	request_key      text   COLLATE "C" PRIMARY KEY,
	instance         text   NOT NULL,
	time_us          bigint NOT NULL,
	principal        text   NOT NULL,
	project          text   NOT NULL,
	model            text   NOT NULL,
	model_base       text   NOT NULL,
	input_tokens     bigint NOT NULL,
	output_tokens    bigint NOT NULL,
	cache_write_5m   bigint NOT NULL,
	cache_write_1h   bigint NOT NULL,
	cache_read       bigint NOT NULL,
	reasoning_tokens bigint NOT NULL,
	web_search       bigint NOT NULL,
	web_fetch        bigint NOT NULL,
	cost_micros      bigint NOT NULL
);
CREATE INDEX reservations_instance ON reservations (instance);

-- Provider-counter watch (see tokenmeter.CounterStore).
CREATE TABLE credentials (
	id            text   PRIMARY KEY,
	provider      text   NOT NULL,
	hint          text   NOT NULL,
	first_seen_us bigint NOT NULL,
	last_seen_us  bigint NOT NULL
);

CREATE TABLE counter_samples (
	provider    text   NOT NULL,
	credential  text   NOT NULL,
	counter     text   NOT NULL,
	time_us     bigint NOT NULL,
	limit_value bigint NOT NULL,
	remaining   bigint NOT NULL,
	utilization bigint NOT NULL,
	reset_us    bigint NOT NULL,
	status      text   NOT NULL,
	raw         text   NOT NULL,
	source      text   NOT NULL,
	PRIMARY KEY (provider, credential, counter, time_us)
);

CREATE TABLE anomalies (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind        text   NOT NULL,
	provider    text   NOT NULL,
	credential  text   NOT NULL,
	counter     text   NOT NULL,
	detected_us bigint NOT NULL,
	start_us    bigint NOT NULL,
	end_us      bigint NOT NULL,
	summary     text   NOT NULL,
	evidence    text   NOT NULL,
	UNIQUE (kind, provider, credential, counter, start_us)
);
CREATE INDEX anomalies_detected ON anomalies (detected_us);

-- Alerts (see tokenmeter.AlertStore).
CREATE TABLE alert_rules (
	name text PRIMARY KEY,
	rule text NOT NULL
);

CREATE TABLE alerts (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	key             text   NOT NULL UNIQUE,
	grp             text   NOT NULL,
	rule            text   NOT NULL,
	kind            text   NOT NULL,
	severity        text   NOT NULL,
	state           text   NOT NULL,
	subject         text   NOT NULL,
	summary         text   NOT NULL,
	window_start_us bigint NOT NULL DEFAULT 0,
	window_end_us   bigint NOT NULL DEFAULT 0,
	fired_us        bigint NOT NULL,
	resolved_us     bigint NOT NULL DEFAULT 0,
	details         text   NOT NULL DEFAULT ''
);
-- At most one alert of a group is firing, across replicas too.
CREATE UNIQUE INDEX alerts_firing_group ON alerts (grp) WHERE state = 'firing';
CREATE INDEX alerts_fired ON alerts (fired_us);

CREATE TABLE alert_history (
	id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	alert_id bigint NOT NULL REFERENCES alerts (id),
	time_us  bigint NOT NULL,
	state    text   NOT NULL,
	summary  text   NOT NULL
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, id);

CREATE TABLE alert_outbox (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	alert_id         bigint NOT NULL REFERENCES alerts (id),
	transition       text   NOT NULL,
	sink             text   NOT NULL,
	payload          text   NOT NULL,
	created_us       bigint NOT NULL,
	attempts         bigint NOT NULL DEFAULT 0,
	next_us          bigint NOT NULL,
	claimed_until_us bigint NOT NULL DEFAULT 0,
	delivered_us     bigint NOT NULL DEFAULT 0,
	last_error       text   NOT NULL DEFAULT '',
	UNIQUE (alert_id, transition, sink)
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_us) WHERE delivered_us = 0;

-- Reconciliation runs (see tokenmeter.ReconcileStore).
CREATE TABLE reconcile_runs (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	provider  text   NOT NULL,
	ran_us    bigint NOT NULL,
	since_us  bigint NOT NULL,
	until_us  bigint NOT NULL,
	bucket_ns bigint NOT NULL,
	by_       text   NOT NULL,
	tolerance text   NOT NULL,
	lag_ns    bigint NOT NULL,
	status    text   NOT NULL,
	error     text   NOT NULL,
	summary   text   NOT NULL
);
CREATE INDEX reconcile_runs_provider ON reconcile_runs (provider, id);

CREATE TABLE reconcile_discrepancies (
	run_id     bigint  NOT NULL REFERENCES reconcile_runs (id),
	n          integer NOT NULL,
	start_us   bigint  NOT NULL,
	end_us     bigint  NOT NULL,
	model      text    NOT NULL,
	key        text    NOT NULL,
	principals text    NOT NULL,
	class      text    NOT NULL,
	category   text    NOT NULL,
	provider   bigint  NOT NULL,
	ledger     bigint  NOT NULL,
	final      boolean NOT NULL,
	beyond     boolean NOT NULL,
	PRIMARY KEY (run_id, n)
);
