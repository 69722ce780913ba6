-- One enrollment token for a class set (issue 15): IT makes it for "up to 30 devices, valid until
-- Friday" and puts the same slate.toml on every card, changing only the device number. Each use
-- enrolls one device number that is not enrolled yet (never replacing a device's credential),
-- and is remembered, so a device whose reply was lost enrolls again with it while unheard.
CREATE TABLE class_set_tokens (
    token_sha256 BLOB    PRIMARY KEY,
    created_at   TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    devices_max  INTEGER NOT NULL CHECK (devices_max BETWEEN 1 AND 9999)
) STRICT;

CREATE TABLE class_set_token_uses (
    token_sha256 BLOB    NOT NULL REFERENCES class_set_tokens (token_sha256) ON DELETE CASCADE,
    device       INTEGER NOT NULL CHECK (device BETWEEN 1 AND 9999),
    used_at      TEXT    NOT NULL,
    PRIMARY KEY (token_sha256, device)
) STRICT;
