-- Issue 17: a pupil who left is marked, never deleted: off every device's sign-in screen and
-- the register's list from the next policy, while their reports, sessions and chronology stay
-- for the DSL until the retention period ends. NULL: on the roster.
ALTER TABLE pupils ADD COLUMN left_at TEXT;
