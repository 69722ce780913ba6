
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
