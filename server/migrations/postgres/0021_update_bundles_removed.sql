-- IT removes a bundle it no longer needs (`slate-server update remove`): its file goes (hundreds
-- of megabytes each) and its row stays, marked, for the rollouts that name it. Uploading the same
-- file again brings it back.
ALTER TABLE update_bundles ADD COLUMN removed_at TEXT;
ALTER TABLE update_bundles ADD COLUMN removed_by TEXT;
