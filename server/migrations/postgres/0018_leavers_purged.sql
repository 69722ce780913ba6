-- Issue 17: the retention schedule purges a leaver's records once the leaver period has passed
-- since they left, all but their safeguarding incidents, whose roster row stays while one of
-- them does. 1: that purge has finished for this leaving, so the daily job need not look
-- through the raw events for them again (only whether their row can go). Set back to 0 each
-- time a pupil is marked as left.
ALTER TABLE pupils ADD COLUMN leaver_purged BIGINT NOT NULL DEFAULT 0 CHECK (leaver_purged IN (0, 1));
