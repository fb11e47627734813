-- Alerts (see tokenmeter.AlertStore). Rules set from the CLI are kept as
-- their JSON; rules from the config file are not stored.
CREATE TABLE alert_rules (
	name TEXT PRIMARY KEY,
	rule TEXT NOT NULL
);

-- One row per alert, ever: key is its dedupe key (rule, subject, window),
-- so an alert fires once per window; at most one alert of a group (rule
-- and subject) is firing at a time, across replicas too.
CREATE TABLE alerts (
	id              INTEGER PRIMARY KEY,
	key             TEXT    NOT NULL UNIQUE,
	grp             TEXT    NOT NULL,
	rule            TEXT    NOT NULL,
	kind            TEXT    NOT NULL,
	severity        TEXT    NOT NULL,
	state           TEXT    NOT NULL,
	subject         TEXT    NOT NULL,
	summary         TEXT    NOT NULL,
	window_start_us INTEGER NOT NULL DEFAULT 0,
	window_end_us   INTEGER NOT NULL DEFAULT 0,
	fired_us        INTEGER NOT NULL,
	resolved_us     INTEGER NOT NULL DEFAULT 0,
	details         TEXT    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX alerts_firing_group ON alerts (grp) WHERE state = 'firing';
CREATE INDEX alerts_fired ON alerts (fired_us);

-- Every state change of an alert, in order.
CREATE TABLE alert_history (
	alert_id INTEGER NOT NULL REFERENCES alerts (id),
	time_us  INTEGER NOT NULL,
	state    TEXT    NOT NULL,
	summary  TEXT    NOT NULL
);
CREATE INDEX alert_history_alert ON alert_history (alert_id);

-- The outbox: one row per alert transition and sink, written in the
-- transaction that fires or resolves the alert, claimed by a sender until
-- claimed_until_us, and marked delivered; never deleted, so a delivery is
-- never lost and never enqueued twice.
CREATE TABLE alert_outbox (
	id               INTEGER PRIMARY KEY,
	alert_id         INTEGER NOT NULL REFERENCES alerts (id),
	transition       TEXT    NOT NULL,
	sink             TEXT    NOT NULL,
	payload          TEXT    NOT NULL,
	created_us       INTEGER NOT NULL,
	attempts         INTEGER NOT NULL DEFAULT 0,
	next_us          INTEGER NOT NULL,
	claimed_until_us INTEGER NOT NULL DEFAULT 0,
	delivered_us     INTEGER NOT NULL DEFAULT 0,
	last_error       TEXT    NOT NULL DEFAULT '',
	UNIQUE (alert_id, transition, sink)
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_us) WHERE delivered_us = 0;
