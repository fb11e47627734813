-- Virtual keys: what the gateway needs to authenticate a tm- key, never the
-- key itself. hash is the hex SHA-256 of the whole secret; prefix is what
-- lists show. Times are Unix microseconds, 0 for "never". Rows are kept after
-- revocation, so a name is never reused for another key.
CREATE TABLE virtual_keys (
	name       TEXT    PRIMARY KEY,
	prefix     TEXT    NOT NULL,
	hash       TEXT    NOT NULL UNIQUE,
	project    TEXT    NOT NULL DEFAULT '',
	created_us INTEGER NOT NULL,
	expires_us INTEGER NOT NULL DEFAULT 0,
	revoked_us INTEGER NOT NULL DEFAULT 0,
	rotated_us INTEGER NOT NULL DEFAULT 0
);
