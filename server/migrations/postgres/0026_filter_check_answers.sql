-- Issue 17 (seed 004, the DfE filtering and monitoring standards: checks recorded and kept):
-- a built-in check's answers become part of the check's record. Each device's first
-- `filter_checked` answer to its `check_filter` command is kept beside the command (when it
-- came, the verdict per name as JSON `[{"name":…,"blocked_by":…}]`, or why the filter did not
-- answer), so it stays as long as the filter checks do rather than going with the device
-- events (90 days). Answers already in the events table are copied over.
ALTER TABLE filter_check_commands ADD COLUMN answered_at TEXT;
ALTER TABLE filter_check_commands ADD COLUMN results TEXT;
ALTER TABLE filter_check_commands ADD COLUMN error TEXT;

UPDATE filter_check_commands
SET answered_at = e.received_at,
    results     = (e.body::jsonb -> 'results')::text,
    error       = (e.body::jsonb ->> 'error')
FROM events e
WHERE e.id = (SELECT a.id FROM events a
              WHERE a.kind = 'filter_checked' AND a.device = filter_check_commands.device
              AND (a.body::jsonb ->> 'command')::bigint = filter_check_commands.command
              ORDER BY a.received_at, a.id LIMIT 1);
