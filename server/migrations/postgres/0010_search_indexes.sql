-- The DSL's searches: a pupil's chronology (their reports, sessions and blocked
-- attempts, each newest first, read by pupil without a scan of every row) and the filtering log.
CREATE INDEX reports_by_pupil ON reports (pupil, pressed_at);
CREATE INDEX sessions_by_pupil ON sessions (pupil, started_at);
-- The same expression the chronology's query uses, so the planner matches it to this index.
CREATE INDEX events_blocked_by_pupil ON events (((body::jsonb ->> 'pupil')), at)
    WHERE kind = 'filter_blocked';
-- The school-wide filtering log, newest first.
CREATE INDEX events_blocked_by_time ON events (at) WHERE kind = 'filter_blocked';
