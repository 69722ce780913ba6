-- Incidents a teacher or the DSL records by hand (issue 17; seed 002: inadvertent access on any
-- school equipment is an incident with a report completed). Such an incident has a `reports`
-- row of origin 'recorded' like a device's press, so the workflow, list, searches, chronology,
-- exports and governors' counts read it as they read any other: `pressed_at` is when it
-- happened, `recorded_by` the account that recorded it, `device` the device it names, if any
-- (an iPad from the register counts: no enrolled device needed), `event_id` a fresh id (no
-- device sent an event). SQLite cannot drop NOT NULL or a foreign key in place, so the table is
-- rebuilt (foreign keys are off while migrations run and checked after); the alerts outbox too,
-- whose device may now be none.
CREATE TABLE new_reports (
    event_id         TEXT    PRIMARY KEY,
    device           INTEGER CHECK (device BETWEEN 1 AND 9999),
    pupil            TEXT,
    session          TEXT,
    pressed_at       TEXT    NOT NULL,
    received_at      TEXT    NOT NULL,
    app              TEXT,
    url              TEXT,
    page_title       TEXT,
    blank_latency_us INTEGER,
    origin           TEXT    NOT NULL DEFAULT 'button'
        CHECK (origin IN ('button', 'block_page', 'recorded')),
    recent_names     TEXT    NOT NULL DEFAULT '[]',
    clock_synced     INTEGER CHECK (clock_synced IN (0, 1)),
    recorded_by      TEXT,
    -- A device's report names its device and no account; a recorded one names its account.
    CHECK ((origin = 'recorded') = (recorded_by IS NOT NULL)),
    CHECK (origin = 'recorded' OR device IS NOT NULL)
) STRICT;
INSERT INTO new_reports (event_id, device, pupil, session, pressed_at, received_at, app, url,
                         page_title, blank_latency_us, origin, recent_names, clock_synced)
    SELECT event_id, device, pupil, session, pressed_at, received_at, app, url, page_title,
           blank_latency_us, origin, recent_names, clock_synced
    FROM reports;
DROP TABLE reports;
ALTER TABLE new_reports RENAME TO reports;
CREATE INDEX reports_newest_first ON reports (pressed_at, event_id);
CREATE INDEX reports_by_device ON reports (device, pressed_at);
CREATE INDEX reports_by_pupil ON reports (pupil, pressed_at);

CREATE TABLE new_alert_outbox (
    id              INTEGER PRIMARY KEY,
    incident        INTEGER NOT NULL UNIQUE,
    device          INTEGER,
    pressed_at      TEXT    NOT NULL,
    from_block_page INTEGER NOT NULL CHECK (from_block_page IN (0, 1)),
    also_to         TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    email_done      INTEGER NOT NULL DEFAULT 0 CHECK (email_done IN (0, 1)),
    webhook_done    INTEGER NOT NULL DEFAULT 0 CHECK (webhook_done IN (0, 1)),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT,
    -- The account that recorded the incident by hand; NULL for a device's report.
    recorded_by     TEXT
) STRICT;
INSERT INTO new_alert_outbox (id, incident, device, pressed_at, from_block_page, also_to,
                              created_at, email_done, webhook_done, attempts, next_attempt_at,
                              last_error)
    SELECT id, incident, device, pressed_at, from_block_page, also_to, created_at, email_done,
           webhook_done, attempts, next_attempt_at, last_error
    FROM alert_outbox;
DROP TABLE alert_outbox;
ALTER TABLE new_alert_outbox RENAME TO alert_outbox;
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE email_done = 0 OR webhook_done = 0;
