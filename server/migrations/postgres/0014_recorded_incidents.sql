-- Incidents a teacher or the DSL records by hand (issue 17; seed 002: inadvertent access on any
-- school equipment is an incident with a report completed). Such an incident has a `reports`
-- row of origin 'recorded' like a device's press, so the workflow, list, searches, chronology,
-- exports and governors' counts read it as they read any other: `pressed_at` is when it
-- happened, `recorded_by` the account that recorded it, `device` the device it names, if any
-- (an iPad from the register counts: no enrolled device needed), `event_id` a fresh id (no
-- device sent an event). The alerts outbox's device may now be none.
ALTER TABLE reports DROP CONSTRAINT reports_event_id_fkey;
ALTER TABLE reports DROP CONSTRAINT reports_device_fkey;
ALTER TABLE reports ALTER COLUMN device DROP NOT NULL;
ALTER TABLE reports ADD CHECK (device BETWEEN 1 AND 9999);
ALTER TABLE reports DROP CONSTRAINT reports_origin_check;
ALTER TABLE reports ADD CHECK (origin IN ('button', 'block_page', 'recorded'));
ALTER TABLE reports ADD COLUMN recorded_by TEXT;
-- A device's report names its device and no account; a recorded one names its account.
ALTER TABLE reports ADD CHECK ((origin = 'recorded') = (recorded_by IS NOT NULL));
ALTER TABLE reports ADD CHECK (origin = 'recorded' OR device IS NOT NULL);

ALTER TABLE alert_outbox ALTER COLUMN device DROP NOT NULL;
-- The account that recorded the incident by hand; NULL for a device's report.
ALTER TABLE alert_outbox ADD COLUMN recorded_by TEXT;
