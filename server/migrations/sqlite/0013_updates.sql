-- Updates (issue 16): the signed RAUC bundles IT uploaded (the file is the data directory's
-- `updates/<sha256>.raucb`; `rauc info` checked its signature against IT's update CA before the
-- row was written), the rollouts (a few named devices first, then everyone; the newest one not
-- stopped is in force), and what each device last said of its update.
CREATE TABLE update_bundles (
    sha256      TEXT    PRIMARY KEY CHECK (length(sha256) = 64),
    version     TEXT    NOT NULL UNIQUE,
    compatible  TEXT    NOT NULL,
    bytes       INTEGER NOT NULL CHECK (bytes > 0),
    uploaded_at TEXT    NOT NULL,
    uploaded_by TEXT    NOT NULL
) STRICT;

-- `everyone` 0: only the devices in update_rollout_devices. `reboot_at`: IT's time of day
-- (`16:30`, UK time) before which devices do not restart into the new slot; NULL: when idle.
CREATE TABLE update_rollouts (
    id         INTEGER PRIMARY KEY,
    bundle     TEXT    NOT NULL REFERENCES update_bundles (sha256),
    everyone   INTEGER NOT NULL CHECK (everyone IN (0, 1)),
    reboot_at  TEXT,
    started_at TEXT    NOT NULL,
    started_by TEXT    NOT NULL,
    stopped_at TEXT,
    stopped_by TEXT
) STRICT;

CREATE TABLE update_rollout_devices (
    rollout INTEGER NOT NULL REFERENCES update_rollouts (id),
    device  INTEGER NOT NULL CHECK (device BETWEEN 1 AND 9999),
    PRIMARY KEY (rollout, device)
) STRICT;

-- Each device's last update check: the image version it runs and how its update is going.
CREATE TABLE device_updates (
    device      INTEGER NOT NULL PRIMARY KEY CHECK (device BETWEEN 1 AND 9999),
    running     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    target      TEXT,
    downloaded  INTEGER,
    error       TEXT,
    reported_at TEXT    NOT NULL
) STRICT;

-- Versions a device reported as failed (a slot that rolled back, say): never offered to it
-- again, even after it reports its old version as current.
CREATE TABLE device_update_failures (
    device      INTEGER NOT NULL CHECK (device BETWEEN 1 AND 9999),
    version     TEXT    NOT NULL,
    error       TEXT,
    reported_at TEXT    NOT NULL,
    PRIMARY KEY (device, version)
) STRICT;
