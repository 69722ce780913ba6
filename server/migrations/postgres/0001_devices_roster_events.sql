
-- One row per enrolled device. Only the hash of its credential is kept.
CREATE TABLE devices (
    number            BIGINT PRIMARY KEY CHECK (number BETWEEN 1 AND 9999),
    credential_sha256 BYTEA    NOT NULL UNIQUE,
    enrolled_at       TEXT    NOT NULL,
    software_version  TEXT    NOT NULL,
    last_seen_at      TEXT
);

-- One-time tokens IT hands to a device for its first contact. Only hashes are kept.
CREATE TABLE enrollment_tokens (
    token_sha256 BYTEA    PRIMARY KEY,
    device       BIGINT NOT NULL CHECK (device BETWEEN 1 AND 9999),
    created_at   TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    used_at      TEXT
);

-- The roster: what staff see beside a pseudonymous id.
CREATE TABLE pupils (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    class_name   TEXT NOT NULL
);

-- Every event exactly as it arrived: the record of truth that the tables below derive from.
CREATE TABLE events (
    id          TEXT    PRIMARY KEY,
    device      BIGINT NOT NULL REFERENCES devices (number),
    kind        TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    received_at TEXT    NOT NULL,
    body        TEXT    NOT NULL
);
CREATE INDEX events_by_device_time ON events (device, at);

-- Who had which device when, from session_started and session_ended events.
CREATE TABLE sessions (
    session_id TEXT    PRIMARY KEY,
    device     BIGINT NOT NULL REFERENCES devices (number),
    pupil      TEXT    NOT NULL,
    started_at TEXT    NOT NULL,
    ended_at   TEXT,
    end_reason TEXT
);
-- "Who had device 12 at 10:14 on Tuesday?"
CREATE INDEX sessions_by_device_start ON sessions (device, started_at);

-- Report button presses, from report_filed events.
CREATE TABLE reports (
    event_id         TEXT    PRIMARY KEY REFERENCES events (id),
    device           BIGINT NOT NULL REFERENCES devices (number),
    pupil            TEXT,
    session          TEXT,
    pressed_at       TEXT    NOT NULL,
    received_at      TEXT    NOT NULL,
    app              TEXT,
    url              TEXT,
    page_title       TEXT,
    blank_latency_us BIGINT
);
CREATE INDEX reports_newest_first ON reports (pressed_at, event_id);
CREATE INDEX reports_by_device ON reports (device, pressed_at);
