-- Issue 17, monitoring the filter: the alerts outbox carries three kinds of alert, all sent the
-- same way with the same retries. 'report': a device's report or an incident recorded by hand
-- (one per incident, as before); 'rule': an alert rule fired on a device (`alert_rules`: its
-- name in `rule`, the events counted in `rule_count` from `rule_first_at` to `pressed_at`, no
-- incident; one per rule, device and time); 'escalation': an incident nobody acknowledged in
-- time, sent on to the deputy DSLs and the addresses the DSL gave (one per incident).
ALTER TABLE alert_outbox ALTER COLUMN incident DROP NOT NULL;
ALTER TABLE alert_outbox DROP CONSTRAINT alert_outbox_incident_key;
ALTER TABLE alert_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'report'
    CHECK (kind IN ('report', 'rule', 'escalation'));
ALTER TABLE alert_outbox ADD COLUMN rule TEXT;
ALTER TABLE alert_outbox ADD COLUMN rule_count BIGINT;
ALTER TABLE alert_outbox ADD COLUMN rule_first_at TEXT;
ALTER TABLE alert_outbox ADD CHECK ((kind = 'rule') = (rule IS NOT NULL));
ALTER TABLE alert_outbox ADD CHECK (kind = 'rule' OR incident IS NOT NULL);
CREATE UNIQUE INDEX alert_outbox_one_per_incident ON alert_outbox (kind, incident)
    WHERE kind IN ('report', 'escalation');
CREATE UNIQUE INDEX alert_outbox_one_per_rule ON alert_outbox (rule, device, pressed_at)
    WHERE kind = 'rule';
