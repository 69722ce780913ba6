-- Issue 17, monitoring the filter: the alerts outbox carries three kinds of alert, all sent the
-- same way with the same retries. 'report': a device's report or an incident recorded by hand
-- (one per incident, as before); 'rule': an alert rule fired on a device (`alert_rules`: its
-- name in `rule`, the events counted in `rule_count` from `rule_first_at` to `pressed_at`, no
-- incident; one per rule, device and time); 'escalation': an incident nobody acknowledged in
-- time, sent on to the deputy DSLs and the addresses the DSL gave (one per incident). SQLite
-- cannot drop NOT NULL or UNIQUE in place, so the table is rebuilt.
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
        CHECK (kind IN ('report', 'rule', 'escalation')),
    rule            TEXT,
    rule_count      INTEGER,
    rule_first_at   TEXT,
    CHECK ((kind = 'rule') = (rule IS NOT NULL)),
    CHECK (kind = 'rule' OR incident IS NOT NULL)
) STRICT;
INSERT INTO new_alert_outbox (id, incident, device, pressed_at, from_block_page, also_to,
                              created_at, email_done, webhook_done, attempts, next_attempt_at,
                              last_error, recorded_by)
    SELECT id, incident, device, pressed_at, from_block_page, also_to, created_at, email_done,
           webhook_done, attempts, next_attempt_at, last_error, recorded_by
    FROM alert_outbox;
DROP TABLE alert_outbox;
ALTER TABLE new_alert_outbox RENAME TO alert_outbox;
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE email_done = 0 OR webhook_done = 0;
CREATE UNIQUE INDEX alert_outbox_one_per_incident ON alert_outbox (kind, incident)
    WHERE kind IN ('report', 'escalation');
CREATE UNIQUE INDEX alert_outbox_one_per_rule ON alert_outbox (rule, device, pressed_at)
    WHERE kind = 'rule';
