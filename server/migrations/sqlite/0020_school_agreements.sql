-- Issue 17: a school's own acceptable use agreements (KS1 and KS2), edited by the DSL. Each save
-- is a new row, never changed or deleted, so an acceptance (`text_version`, and the school's
-- number in `school_version`) can always be shown with the words the pupil accepted. The newest
-- row of a key stage is in force. `version` counts up per key stage from 1. A row with
-- builtin = 1 is "go back to the built-in text": no words, and devices get none for that key
-- stage. `promises` is a JSON array of strings; `text_version` is `ks1-` or `ks2-` and the
-- start of the sha256 of the title and promises, one a line (`slate_protocol::agreement`).
CREATE TABLE aup_texts (
    id           INTEGER PRIMARY KEY,
    key_stage    TEXT    NOT NULL CHECK (key_stage IN ('ks1', 'ks2')),
    version      INTEGER NOT NULL CHECK (version >= 1),
    builtin      INTEGER NOT NULL CHECK (builtin IN (0, 1)),
    title        TEXT,
    promises     TEXT,
    text_version TEXT,
    saved_at     TEXT    NOT NULL,
    saved_by     TEXT    NOT NULL,
    UNIQUE (key_stage, version),
    CHECK ((builtin = 1) = (title IS NULL)),
    CHECK ((title IS NULL) = (promises IS NULL) AND (title IS NULL) = (text_version IS NULL))
) STRICT;
-- A pupil's chronology shows the agreements they accepted (which text, which version): read by
-- pupil without a scan of every event. The same expression the query uses, so SQLite matches
-- it to this index.
CREATE INDEX events_aup_by_pupil ON events (json_extract(body, '$.pupil'), at)
    WHERE kind = 'aup_accepted';
