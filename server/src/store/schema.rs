//! The database schema as an ordered list of migrations. Append new migrations; never edit one
//! that has shipped, since databases in schools already ran it.

use rusqlite_migration::{Migrations, M};

/// Every migration, in order; SQLite runs them as written, PostgreSQL as [`to_postgres`] turns
/// them.
const MIGRATIONS: &[&str] = &[
    MIGRATION_1,
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5,
    MIGRATION_6,
    MIGRATION_7,
    MIGRATION_8,
    MIGRATION_9,
];

/// Devices, their enrollment tokens, the roster, and what devices send.
const MIGRATION_1: &str = r#"
-- One row per enrolled device. Only the hash of its credential is kept.
CREATE TABLE devices (
    number            INTEGER PRIMARY KEY CHECK (number BETWEEN 1 AND 9999),
    credential_sha256 BLOB    NOT NULL UNIQUE,
    enrolled_at       TEXT    NOT NULL,
    software_version  TEXT    NOT NULL,
    last_seen_at      TEXT
) STRICT;

-- One-time tokens IT hands to a device for its first contact. Only hashes are kept.
CREATE TABLE enrollment_tokens (
    token_sha256 BLOB    PRIMARY KEY,
    device       INTEGER NOT NULL CHECK (device BETWEEN 1 AND 9999),
    created_at   TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    used_at      TEXT
) STRICT;

-- The roster: what staff see beside a pseudonymous id.
CREATE TABLE pupils (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    class_name   TEXT NOT NULL
) STRICT;

-- Every event exactly as it arrived: the record of truth that the tables below derive from.
CREATE TABLE events (
    id          TEXT    PRIMARY KEY,
    device      INTEGER NOT NULL REFERENCES devices (number),
    kind        TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    received_at TEXT    NOT NULL,
    body        TEXT    NOT NULL
) STRICT;
CREATE INDEX events_by_device_time ON events (device, at);

-- Who had which device when, from session_started and session_ended events.
CREATE TABLE sessions (
    session_id TEXT    PRIMARY KEY,
    device     INTEGER NOT NULL REFERENCES devices (number),
    pupil      TEXT    NOT NULL,
    started_at TEXT    NOT NULL,
    ended_at   TEXT,
    end_reason TEXT
) STRICT;
-- "Who had device 12 at 10:14 on Tuesday?"
CREATE INDEX sessions_by_device_start ON sessions (device, started_at);

-- Report button presses, from report_filed events.
CREATE TABLE reports (
    event_id         TEXT    PRIMARY KEY REFERENCES events (id),
    device           INTEGER NOT NULL REFERENCES devices (number),
    pupil            TEXT,
    session          TEXT,
    pressed_at       TEXT    NOT NULL,
    received_at      TEXT    NOT NULL,
    app              TEXT,
    url              TEXT,
    page_title       TEXT,
    blank_latency_us INTEGER
) STRICT;
CREATE INDEX reports_newest_first ON reports (pressed_at, event_id);
CREATE INDEX reports_by_device ON reports (device, pressed_at);
"#;

/// Staff accounts, sessions, the audit log, incidents and the manual device register.
const MIGRATION_2: &str = r#"
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
"#;

/// What devices are told: classes, tile details of pupils, apps, settings, filter lists and
/// profiles, bypasses; teacher commands; which teachers have which classes.
const MIGRATION_3: &str = r#"
CREATE TABLE classes (
    id        INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL UNIQUE,
    key_stage TEXT    NOT NULL CHECK (key_stage IN ('ks1', 'ks2')),
    symbol    TEXT    NOT NULL,
    colour    INTEGER NOT NULL CHECK (colour BETWEEN 0 AND 255),
    profile   TEXT    NOT NULL
) STRICT;

-- What a device shows on a pupil's tile: first name and family initial only. Pupils added
-- before this (by `pupil add`) have none, and stay off devices until IT imports them.
ALTER TABLE pupils ADD COLUMN first_name TEXT;
ALTER TABLE pupils ADD COLUMN initial TEXT;
ALTER TABLE pupils ADD COLUMN symbol TEXT;
ALTER TABLE pupils ADD COLUMN colour INTEGER;

-- The app catalogue; `kind` is the protocol's AppKind as JSON (web or native).
CREATE TABLE apps (
    id     TEXT    PRIMARY KEY,
    title  TEXT    NOT NULL,
    symbol TEXT    NOT NULL,
    colour INTEGER NOT NULL CHECK (colour BETWEEN 0 AND 255),
    kind   TEXT    NOT NULL
) STRICT;

CREATE TABLE class_apps (
    class_id INTEGER NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    app_id   TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (class_id, app_id)
) STRICT;

-- Single values: the staff PIN hash, session rules, the URL salt, when the policy changed.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- List files IT uploaded; the bytes live in the data directory's lists/.
CREATE TABLE filter_lists (
    name        TEXT    PRIMARY KEY,
    sha256      TEXT    NOT NULL,
    bytes       INTEGER NOT NULL,
    uploaded_at TEXT    NOT NULL,
    uploaded_by TEXT    NOT NULL
) STRICT;

-- allow_only and block_lists as JSON arrays of list names.
CREATE TABLE filter_profiles (
    name        TEXT PRIMARY KEY,
    block_lists TEXT NOT NULL,
    allow_only  TEXT,
    safe_search TEXT NOT NULL CHECK (safe_search IN ('strict', 'moderate'))
) STRICT;

CREATE TABLE bypasses (
    id           INTEGER PRIMARY KEY,
    profile      TEXT    NOT NULL,
    domain       TEXT    NOT NULL,
    from_at      TEXT    NOT NULL,
    until_at     TEXT    NOT NULL CHECK (until_at > from_at),
    reason       TEXT    NOT NULL,
    requested_by TEXT    NOT NULL,
    requested_at TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused')),
    decided_by   TEXT,
    decided_at   TEXT
) STRICT;

-- Teacher commands; a NULL device means every device. The id is each device's cursor, so it
-- never goes back (AUTOINCREMENT: ids of deleted rows are not reused).
CREATE TABLE device_commands (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    device     INTEGER CHECK (device BETWEEN 1 AND 9999),
    action     TEXT    NOT NULL,
    issued_at  TEXT    NOT NULL,
    expires_at TEXT    NOT NULL,
    issued_by  TEXT    NOT NULL
) STRICT;

-- "Tell my teacher" on a blocked page files a report too, at low priority.
ALTER TABLE reports ADD COLUMN origin TEXT NOT NULL DEFAULT 'button'
    CHECK (origin IN ('button', 'block_page'));

-- Where a teacher's alerts go (their class's pupils' reports).
ALTER TABLE staff ADD COLUMN email TEXT;

CREATE TABLE staff_classes (
    staff_id INTEGER NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    class_id INTEGER NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    PRIMARY KEY (staff_id, class_id)
) STRICT;
"#;

/// Picture PINs for older pupils: the pictures (symbol names) to tap in order, as a JSON array;
/// NULL when the pupil has none. Not a secret from staff (it keeps classmates apart).
const MIGRATION_4: &str = r#"
ALTER TABLE pupils ADD COLUMN picture_pin TEXT;
"#;

/// The domain names a device looked up just before a press (a JSON array, newest first): what
/// the pupil's browser reached, without any page content.
const MIGRATION_5: &str = r#"
ALTER TABLE reports ADD COLUMN recent_names TEXT NOT NULL DEFAULT '[]';
"#;

/// Each member of staff's own unlock PIN (argon2id; devices get it with `unlock_id`, a random
/// pseudonymous id made when the first PIN is set and kept after, never the name). The one
/// school-wide staff PIN goes: an unlock with it could not say who it was.
const MIGRATION_6: &str = r#"
ALTER TABLE staff ADD COLUMN unlock_id TEXT;
ALTER TABLE staff ADD COLUMN unlock_pin_phc TEXT;
ALTER TABLE staff ADD COLUMN unlock_pin_set_at TEXT;
CREATE UNIQUE INDEX staff_by_unlock_id ON staff (unlock_id);
DELETE FROM settings WHERE key = 'staff_pin_hash';
"#;

/// What each event said of the device's clock (NULL: the device did not say; older software),
/// and sessions the server ended itself (issues 12 and 13).
const MIGRATION_7: &str = r#"
-- The boot it happened in, milliseconds since that boot (CLOCK_BOOTTIME), and whether the
-- clock was synchronised (0: `at` may be wrong).
ALTER TABLE events ADD COLUMN boot_id TEXT;
ALTER TABLE events ADD COLUMN boottime_ms INTEGER;
ALTER TABLE events ADD COLUMN clock_synced INTEGER CHECK (clock_synced IN (0, 1));
-- A press time from a clock that was not synchronised may be wrong: the pages say so.
ALTER TABLE reports ADD COLUMN clock_synced INTEGER CHECK (clock_synced IN (0, 1));
-- The boot the device is in, the device's time of the last thing heard from it (where a
-- session it left open ends), and whether its clock was synchronised then.
ALTER TABLE devices ADD COLUMN boot_id TEXT;
ALTER TABLE devices ADD COLUMN last_event_at TEXT;
ALTER TABLE devices ADD COLUMN clock_synced INTEGER CHECK (clock_synced IN (0, 1));
-- The boot a session ran in; 1 when the server ended it (the device restarted or went
-- silent) rather than the device recording its end.
ALTER TABLE sessions ADD COLUMN boot_id TEXT;
ALTER TABLE sessions ADD COLUMN end_inferred INTEGER NOT NULL DEFAULT 0 CHECK (end_inferred IN (0, 1));
-- The silence check and a restart look for open sessions only.
CREATE INDEX sessions_open ON sessions (device) WHERE ended_at IS NULL;
"#;

/// One-time links that recover a staff account, made by `slate-server staff recover` on the
/// server's own console (issue 14: no back door). Only the link's hash is kept.
const MIGRATION_8: &str = r#"
CREATE TABLE recovery_links (
    token_sha256 BLOB    PRIMARY KEY,
    staff_id     INTEGER NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at   TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    used_at      TEXT
) STRICT;
"#;

/// The alerts outbox.
const MIGRATION_9: &str = r#"
-- Alerts waiting to go out, written in the same transaction as their report: a restart or a
-- mail server that is down delays an alert, never loses it. One row per report; each channel
-- (email, webhook) is marked done on its own, so a retry sends only what has not gone.
CREATE TABLE alert_outbox (
    id              INTEGER PRIMARY KEY,
    incident        INTEGER NOT NULL UNIQUE,
    device          INTEGER NOT NULL,
    pressed_at      TEXT    NOT NULL,
    from_block_page INTEGER NOT NULL CHECK (from_block_page IN (0, 1)),
    -- The class teachers' addresses, as a JSON array, found when the report was stored.
    also_to         TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    email_done      INTEGER NOT NULL DEFAULT 0 CHECK (email_done IN (0, 1)),
    webhook_done    INTEGER NOT NULL DEFAULT 0 CHECK (webhook_done IN (0, 1)),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT
) STRICT;
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE email_done = 0 OR webhook_done = 0;
"#;

pub fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// The migrations in PostgreSQL's dialect.
pub fn postgres_migrations() -> Vec<String> {
    MIGRATIONS.iter().map(|sql| to_postgres(sql)).collect()
}

/// SQLite's DDL as PostgreSQL's: 64-bit integers (SQLite's INTEGER is 64-bit), BYTEA for BLOB,
/// identity columns for the `id INTEGER PRIMARY KEY` row ids (a sequence never reuses a value,
/// like AUTOINCREMENT), and no STRICT (PostgreSQL's columns always are). The rest of the
/// schema's SQL is already in the dialect both share; `tests/it/store_story.rs` checks the two
/// schemas come out equal.
fn to_postgres(sql: &str) -> String {
    static RULES: std::sync::LazyLock<[(regex::Regex, &str); 4]> = std::sync::LazyLock::new(|| {
        let rule = |pattern: &str, to| (regex::Regex::new(pattern).unwrap(), to);
        [
            rule(
                r"\bid(\s+)INTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?",
                "id${1}BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            ),
            rule(r"\bINTEGER\b", "BIGINT"),
            rule(r"\bBLOB\b", "BYTEA"),
            rule(r"\)\s*STRICT\s*;", ");"),
        ]
    });
    RULES
        .iter()
        .fold(sql.to_owned(), |sql, (pattern, to)| pattern.replace_all(&sql, *to).into_owned())
}

#[cfg(test)]
pub fn migrations_count() -> i64 {
    MIGRATIONS.len() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_gets_bigints_bytea_identities_and_no_strict() {
        let sqlite = "CREATE TABLE t (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    n       INTEGER NOT NULL CHECK (n BETWEEN 1 AND 9999),
    key     BLOB    NOT NULL,
    paid    INTEGER
) STRICT;
CREATE TABLE u (id INTEGER PRIMARY KEY, number INTEGER PRIMARY KEY) STRICT;";
        assert_eq!(
            to_postgres(sqlite),
            "CREATE TABLE t (
    id      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    n       BIGINT NOT NULL CHECK (n BETWEEN 1 AND 9999),
    key     BYTEA    NOT NULL,
    paid    BIGINT
);
CREATE TABLE u (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, number BIGINT PRIMARY KEY);"
        );
    }

    #[test]
    fn both_dialects_have_every_migration() {
        assert_eq!(postgres_migrations().len(), MIGRATIONS.len());
    }
}
