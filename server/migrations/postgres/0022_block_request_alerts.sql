-- Issue 17: a new site block request alerts the DSL and IT. The alerts outbox gains a fourth
-- kind, 'block_request', naming the request in `block_request` (no incident and no device: IT
-- reads only the site and how many asked, from the request when the alert is sent). The checks
-- 0017 added without names are found by what they read and replaced by named ones.
DO $$
DECLARE
    name TEXT;
BEGIN
    FOR name IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'alert_outbox'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%kind%'
    LOOP
        EXECUTE format('ALTER TABLE alert_outbox DROP CONSTRAINT %I', name);
    END LOOP;
END
$$;
ALTER TABLE alert_outbox ADD COLUMN block_request BIGINT;
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_kinds
    CHECK (kind IN ('report', 'rule', 'escalation', 'block_request'));
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_rule_named CHECK ((kind = 'rule') = (rule IS NOT NULL));
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_block_request_named
    CHECK ((kind = 'block_request') = (block_request IS NOT NULL));
ALTER TABLE alert_outbox ADD CONSTRAINT alert_outbox_incident_named
    CHECK (kind IN ('rule', 'block_request') OR incident IS NOT NULL);
CREATE UNIQUE INDEX alert_outbox_one_per_block_request ON alert_outbox (block_request)
    WHERE kind = 'block_request';
