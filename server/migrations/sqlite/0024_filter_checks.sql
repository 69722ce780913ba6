-- Issue 17 (seed 004, the DfE filtering and monitoring standards): the DSL's termly filter
-- check. `filter_checks` is each check recorded on the page: when, who (the signed-in account),
-- what was checked, the outcome, notes, actions taken, when the next is due, and the built-in
-- check attached to it, if any (`run`).
CREATE TABLE filter_check_runs (
    id         INTEGER PRIMARY KEY,
    started_at TEXT    NOT NULL,
    started_by TEXT    NOT NULL,
    names      TEXT    NOT NULL
) STRICT;

CREATE TABLE filter_checks (
    id            INTEGER PRIMARY KEY,
    checked_on    TEXT    NOT NULL,
    checked_by    TEXT    NOT NULL,
    what_checked  TEXT    NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('passed', 'problems_found')),
    notes         TEXT    NOT NULL,
    actions_taken TEXT    NOT NULL,
    next_due      TEXT    NOT NULL,
    run           INTEGER REFERENCES filter_check_runs (id),
    recorded_at   TEXT    NOT NULL
) STRICT;

-- A built-in check started on the page: the names every chosen device resolves through its
-- own filter (JSON, `[{"name":…,"category":…}]`), and one `check_filter` command per device
-- (`filter_check_commands`); the answers are `filter_checked` events naming the command.
CREATE TABLE filter_check_commands (
    command INTEGER NOT NULL PRIMARY KEY,
    run     INTEGER NOT NULL REFERENCES filter_check_runs (id),
    device  INTEGER NOT NULL
) STRICT;
CREATE INDEX filter_check_commands_run ON filter_check_commands (run);
