-- Usage queries off the 15-minute grid (an anomaly's evidence spans exact
-- times) sum the events themselves: completed ones through
-- events_completed_time, revised ones through this index. Revisions are
-- rare (an imported reading fuller than the one recorded), so it is small
-- and costs appends nothing measurable.
CREATE INDEX events_revised_time ON events (time_us) WHERE kind = 'revised';
