-- Issue 17: "block the site" chosen on unlocking a held device asks for the reported site to be
-- blocked. One entry per site while it waits (later asks for the same site join it: the
-- partial unique index), for the DSL or IT to accept into a school block list (`list`) or
-- decline with a reason.
CREATE TABLE block_requests (
    id         INTEGER PRIMARY KEY,
    site       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    status     TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined')),
    list       TEXT,
    reason     TEXT,
    decided_by TEXT,
    decided_at TEXT
) STRICT;
CREATE UNIQUE INDEX block_requests_pending_site ON block_requests (site) WHERE status = 'pending';

-- Each unlock that asked: its `report_resolved` event, the incident it came from (no foreign
-- key: retention purges incidents on their own schedule), the device, and whose PIN the device
-- says was typed (the device's word, not a sign-in; NULL when it did not say).
CREATE TABLE block_request_asks (
    id          INTEGER PRIMARY KEY,
    request     INTEGER NOT NULL REFERENCES block_requests (id),
    event_id    TEXT    NOT NULL UNIQUE,
    incident    INTEGER,
    device      INTEGER NOT NULL,
    unlocked_by TEXT,
    asked_at    TEXT    NOT NULL
) STRICT;
CREATE INDEX block_request_asks_request ON block_request_asks (request);
