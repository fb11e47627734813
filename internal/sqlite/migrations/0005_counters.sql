-- Provider-counter watch (see tokenmeter.CounterStore, docs/counters.md).

-- Provider credentials the gateway forwarded: their hash and display hint,
-- never the secret.
CREATE TABLE credentials (
	id            TEXT    PRIMARY KEY,
	provider      TEXT    NOT NULL,
	hint          TEXT    NOT NULL,
	first_seen_us INTEGER NOT NULL,
	last_seen_us  INTEGER NOT NULL
) WITHOUT ROWID;

-- Rate-limit counter samples, compacted by the capture (see
-- docs/counters.md): one row per series and microsecond, kept in the
-- series' order with no other index, so 30 days of a busy gateway stay
-- small. limit_value, remaining and utilization (basis points) are -1 when
-- not reported; reset_us is 0.
CREATE TABLE counter_samples (
	provider    TEXT    NOT NULL,
	credential  TEXT    NOT NULL,
	counter     TEXT    NOT NULL,
	time_us     INTEGER NOT NULL,
	limit_value INTEGER NOT NULL,
	remaining   INTEGER NOT NULL,
	utilization INTEGER NOT NULL,
	reset_us    INTEGER NOT NULL,
	status      TEXT    NOT NULL,
	raw         TEXT    NOT NULL,
	source      TEXT    NOT NULL,
	PRIMARY KEY (provider, credential, counter, time_us)
) WITHOUT ROWID;

-- Anomalies, each stored once per kind, series and start.
CREATE TABLE anomalies (
	id          INTEGER PRIMARY KEY,
	kind        TEXT    NOT NULL,
	provider    TEXT    NOT NULL,
	credential  TEXT    NOT NULL,
	counter     TEXT    NOT NULL,
	detected_us INTEGER NOT NULL,
	start_us    INTEGER NOT NULL,
	end_us      INTEGER NOT NULL,
	summary     TEXT    NOT NULL,
	evidence    TEXT    NOT NULL,
	UNIQUE (kind, provider, credential, counter, start_us)
);
CREATE INDEX anomalies_detected ON anomalies (detected_us);
