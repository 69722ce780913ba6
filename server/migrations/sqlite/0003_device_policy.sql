
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
