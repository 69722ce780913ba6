
-- Staff accounts. Passwords only as argon2 PHC strings; the TOTP secret is needed to check
-- codes, so it is kept (base32), readable only by the server's user like the whole file.
CREATE TABLE staff (
    id                   INTEGER PRIMARY KEY,
    username             TEXT    NOT NULL UNIQUE,
    role                 TEXT    NOT NULL CHECK (role IN ('dsl', 'deputy_dsl', 'teacher', 'it_admin')),
    password_phc         TEXT    NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 1,
    totp_secret          TEXT,
    -- The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step       INTEGER,
    created_at           TEXT    NOT NULL,
    disabled_at          TEXT
) STRICT;

-- Signed-in browsers. Only the SHA-256 of the cookie's session id is kept.
CREATE TABLE staff_sessions (
    id_sha256    BLOB    PRIMARY KEY,
    staff_id     INTEGER NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    csrf_token   TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    last_seen_at TEXT    NOT NULL
) STRICT;

-- Who saw which pupil data and who did what, when. Append only.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     TEXT    NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    record TEXT,
    detail TEXT
) STRICT;
CREATE INDEX audit_log_by_time ON audit_log (at);

-- One incident per report (seed 002 appendices I to K): the workflow's state and the form's
-- fields. Staff add what the device cannot know.
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY,
    report_id   TEXT    NOT NULL UNIQUE REFERENCES reports (event_id),
    status      TEXT    NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'acknowledged', 'actioned')),
    action      TEXT,
    category    TEXT,
    location    TEXT,
    description TEXT,
    involved    TEXT,
    reported_to TEXT,
    outcome     TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
) STRICT;
INSERT INTO incidents (report_id, created_at, updated_at)
    SELECT event_id, received_at, received_at FROM reports ORDER BY pressed_at, event_id;

-- The incident's history: acknowledgements, actions, notes, edits; who and when.
CREATE TABLE incident_entries (
    id       INTEGER PRIMARY KEY,
    incident INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at       TEXT    NOT NULL,
    staff    TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    action   TEXT,
    note     TEXT
) STRICT;
CREATE INDEX incident_entries_by_incident ON incident_entries (incident, at);

-- Numbered devices that cannot run Slate (iPads): a teacher records who had which, per lesson.
CREATE TABLE device_register (
    id          INTEGER PRIMARY KEY,
    device      INTEGER NOT NULL CHECK (device BETWEEN 1 AND 9999),
    pupil       TEXT    NOT NULL,
    from_at     TEXT    NOT NULL,
    to_at       TEXT    NOT NULL CHECK (to_at > from_at),
    recorded_by TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL
) STRICT;
CREATE INDEX device_register_by_device ON device_register (device, from_at);
