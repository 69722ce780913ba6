-- Issue 17: a new site block request alerts the DSL and IT. The alerts outbox gains a fourth
-- kind, 'block_request', naming the request in `block_request` (no incident and no device: IT
-- reads only the site and how many asked, from the request when the alert is sent). SQLite
-- cannot change a CHECK in place, so the table is rebuilt as 0017 left it, with the new kind.
CREATE TABLE new_alert_outbox (
    id              INTEGER PRIMARY KEY,
    incident        INTEGER,
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
    recorded_by     TEXT,
    kind            TEXT    NOT NULL DEFAULT 'report'
        CHECK (kind IN ('report', 'rule', 'escalation', 'block_request')),
    rule            TEXT,
    rule_count      INTEGER,
    rule_first_at   TEXT,
    block_request   INTEGER,
    CHECK ((kind = 'rule') = (rule IS NOT NULL)),
    CHECK ((kind = 'block_request') = (block_request IS NOT NULL)),
    CHECK (kind IN ('rule', 'block_request') OR incident IS NOT NULL)
) STRICT;
INSERT INTO new_alert_outbox (id, incident, device, pressed_at, from_block_page, also_to,
                              created_at, email_done, webhook_done, attempts, next_attempt_at,
                              last_error, recorded_by, kind, rule, rule_count, rule_first_at)
    SELECT id, incident, device, pressed_at, from_block_page, also_to, created_at, email_done,
           webhook_done, attempts, next_attempt_at, last_error, recorded_by, kind, rule,
           rule_count, rule_first_at
    FROM alert_outbox;
DROP TABLE alert_outbox;
ALTER TABLE new_alert_outbox RENAME TO alert_outbox;
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE email_done = 0 OR webhook_done = 0;
CREATE UNIQUE INDEX alert_outbox_one_per_incident ON alert_outbox (kind, incident)
    WHERE kind IN ('report', 'escalation');
CREATE UNIQUE INDEX alert_outbox_one_per_rule ON alert_outbox (rule, device, pressed_at)
    WHERE kind = 'rule';
CREATE UNIQUE INDEX alert_outbox_one_per_block_request ON alert_outbox (block_request)
    WHERE kind = 'block_request';
