-- Limits: budgets and rate limits (see tokenmeter.Limit). max is tokens,
-- requests or micro-dollars by metric; win is the window spec as
-- window.Spec.String writes it.
CREATE TABLE limits (
	name       TEXT    PRIMARY KEY,
	scope      TEXT    NOT NULL,
	metric     TEXT    NOT NULL,
	max        INTEGER NOT NULL,
	win        TEXT    NOT NULL,
	mode       TEXT    NOT NULL,
	created_us INTEGER NOT NULL
);

-- Open reservations of hard enforcement: the worst case of each admitted
-- call, from before it is forwarded until the transaction that appends its
-- completed event deletes the row. Rows left by a crashed gateway are
-- deleted at its next start.
CREATE TABLE limit_reservations (
	request_key   TEXT    PRIMARY KEY,
	instance      TEXT    NOT NULL,
	time_us       INTEGER NOT NULL,
	principal     TEXT    NOT NULL,
	project       TEXT    NOT NULL,
	model         TEXT    NOT NULL,
	input_tokens  INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	total_tokens  INTEGER NOT NULL,
	cost_micros   INTEGER NOT NULL
) WITHOUT ROWID;
