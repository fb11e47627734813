-- usage_rollup_day is usage_rollup summed per UTC day, kept in the same
-- transaction: a query over weeks or months reads a row per day and group
-- instead of 96 (see DB.Usage). verify checks it against usage_rollup.
CREATE TABLE usage_rollup_day (
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
INSERT INTO usage_rollup_day
SELECT (bucket_us / 86400000000) * 86400000000, source, provider, model, principal, project, outcome,
	SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_write_5m), SUM(cache_write_1h), SUM(cache_read),
	SUM(reasoning_tokens), SUM(web_search), SUM(web_fetch), SUM(cost_micros),
	SUM(usage_unknown), SUM(cost_unknown), MIN(first_us), MAX(last_us)
FROM usage_rollup
GROUP BY 1, source, provider, model, principal, project, outcome;
