-- The dashboard's Requests page and /api/requests list the latest calls,
-- newest first, with filters (RecentCalls). Without an index on time that
-- is a scan and a sort of the whole ledger (15 s at 1M events); with this
-- one a page reads its own rows backwards from the end. Only completed
-- events are in it, and their times grow as they are appended, so each
-- commit adds to the index's rightmost page: BenchmarkAppend showed no
-- difference beyond this loaded 2-core machine's noise (batches of 16 and
-- 256, with and without it, interleaved).
CREATE INDEX events_completed_time ON events (time_us) WHERE kind = 'completed';
