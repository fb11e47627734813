-- Issue 12: usage that is estimated, the hold a call keeps on hard limits
-- while its usage is not known, the provider's response id, and the
-- retractions that settle an estimate with the provider's figure.
ALTER TABLE events ADD COLUMN response_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN estimate TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN hold_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN hold_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN hold_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN hold_cost INTEGER NOT NULL DEFAULT 0;

-- Importers and the gateway look up the gateway's calls by response id
-- (Codex's token_usage_record, a background response polled later).
CREATE INDEX events_proxy_response ON events (response_id) WHERE response_id != '' AND source = 'proxy';
-- Usage off the grid sums retractions too (rare, like revisions).
CREATE INDEX events_retracted_time ON events (time_us) WHERE kind = 'retracted';

ALTER TABLE usage_rollup ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup ADD COLUMN estimated_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup ADD COLUMN hold_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup ADD COLUMN hold_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup ADD COLUMN hold_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup ADD COLUMN hold_cost INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup_day ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup_day ADD COLUMN estimated_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup_day ADD COLUMN hold_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup_day ADD COLUMN hold_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup_day ADD COLUMN hold_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_rollup_day ADD COLUMN hold_cost INTEGER NOT NULL DEFAULT 0;
