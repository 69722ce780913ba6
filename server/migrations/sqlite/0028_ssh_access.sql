-- Timed root ssh on one device, opened by IT from the server: each `ssh_access` command's
-- OpenSSH public keys (JSON array of `type base64`; empty: close early) and when they stop
-- working. The keys are public; the row goes with its command under the retention schedule.
CREATE TABLE ssh_access_commands (
    command INTEGER NOT NULL PRIMARY KEY REFERENCES device_commands (id) ON DELETE CASCADE,
    device  INTEGER NOT NULL,
    keys    TEXT    NOT NULL,
    until   TEXT    NOT NULL
) STRICT;
CREATE INDEX ssh_access_commands_device ON ssh_access_commands (device, command);
