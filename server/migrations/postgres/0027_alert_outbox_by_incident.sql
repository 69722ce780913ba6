-- The outbox's rows of one incident, found by index (issue 17, the dsl-pages stalls). The
-- unique index on (kind, incident) is partial, `WHERE kind IN ('report', 'escalation')`, and
-- SQLite uses a partial index only when the query repeats its condition, which `kind =
-- 'escalation'` does not: each minute's escalation check scanned the whole outbox once per open
-- incident (2,863 open of 100,000 incidents: about a minute, holding the writing connection,
-- so staff pages waited as long). `incident = ?` implies `incident IS NOT NULL`, which SQLite
-- does see. PostgreSQL proves the implication itself; the index is kept the same on both.
CREATE INDEX alert_outbox_by_incident ON alert_outbox (incident, kind) WHERE incident IS NOT NULL;
