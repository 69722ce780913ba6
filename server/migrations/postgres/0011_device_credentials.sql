-- A device credential's lifecycle (issue 14): a replacement the device has been given but not
-- yet used (the old one keeps working until it is, so a lost reply loses nothing), IT's request
-- that the device replace its credential, and a revocation (lost or stolen: nothing the device
-- holds is accepted until it enrolls again with a new token). Hashes only, as before.
ALTER TABLE devices ADD COLUMN pending_credential_sha256 BYTEA;
ALTER TABLE devices ADD COLUMN rotation_requested_at TEXT;
ALTER TABLE devices ADD COLUMN revoked_at TEXT;
ALTER TABLE devices ADD COLUMN revoked_by TEXT;
