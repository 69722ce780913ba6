
-- The boot it happened in, milliseconds since that boot (CLOCK_BOOTTIME), and whether the
-- clock was synchronised (0: `at` may be wrong).
ALTER TABLE events ADD COLUMN boot_id TEXT;
ALTER TABLE events ADD COLUMN boottime_ms BIGINT;
ALTER TABLE events ADD COLUMN clock_synced BIGINT CHECK (clock_synced IN (0, 1));
-- A press time from a clock that was not synchronised may be wrong: the pages say so.
ALTER TABLE reports ADD COLUMN clock_synced BIGINT CHECK (clock_synced IN (0, 1));
-- The boot the device is in, the device's time of the last thing heard from it (where a
-- session it left open ends), and whether its clock was synchronised then.
ALTER TABLE devices ADD COLUMN boot_id TEXT;
ALTER TABLE devices ADD COLUMN last_event_at TEXT;
ALTER TABLE devices ADD COLUMN clock_synced BIGINT CHECK (clock_synced IN (0, 1));
-- The boot a session ran in; 1 when the server ended it (the device restarted or went
-- silent) rather than the device recording its end.
ALTER TABLE sessions ADD COLUMN boot_id TEXT;
ALTER TABLE sessions ADD COLUMN end_inferred BIGINT NOT NULL DEFAULT 0 CHECK (end_inferred IN (0, 1));
-- The silence check and a restart look for open sessions only.
CREATE INDEX sessions_open ON sessions (device) WHERE ended_at IS NULL;
