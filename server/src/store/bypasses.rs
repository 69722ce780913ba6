//! Filter bypasses: a teacher's request, a DSL's decision (never on their own request).
//! Approved bypasses go into what devices are told until they end.

use super::policy_records::policy_changed;
use super::sql::{params, OptionalExtension};
use super::{db_time, parse_db_time, Store, StoreError};
use chrono::{DateTime, Utc};

/// What became of a decision on a bypass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BypassDecision {
    Decided,
    /// Decided already, or no such request.
    NotPending,
    /// The decider asked for it: someone else must decide.
    OwnRequest,
}

/// A bypass request and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BypassRecord {
    pub id: i64,
    pub profile: String,
    pub domain: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub status: String,
    pub decided_by: Option<String>,
}

impl Store {
    /// A teacher's bypass request, pending until a DSL decides; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn request_bypass(
        &self,
        profile: &str,
        domain: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.lock().query_row(
            "INSERT INTO bypasses (profile, domain, from_at, until_at, reason, requested_by,
                                   requested_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            params![profile, domain, db_time(from), db_time(until), reason, by, db_time(now)],
            |r| r.get(0),
        )
    }

    /// Approves or refuses a pending request. `Ok(false)` when there is no pending request with
    /// this id (unknown, or decided already).
    pub fn decide_bypass(
        &self,
        id: i64,
        approve: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<BypassDecision, StoreError> {
        self.immediate(|tx| {
            let requester: Option<String> = tx
                .query_row(
                    "SELECT requested_by FROM bypasses WHERE id = $1 AND status = 'pending'",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(requester) = requester else { return Ok(BypassDecision::NotPending) };
            if !crate::access::may_decide_bypass(&requester, by) {
                return Ok(BypassDecision::OwnRequest);
            }
            let status = if approve { "approved" } else { "refused" };
            tx.execute(
                "UPDATE bypasses SET status = $2, decided_by = $3, decided_at = $4
                 WHERE id = $1 AND status = 'pending'",
                (id, status, by, db_time(now)),
            )?;
            if approve {
                policy_changed(tx, now)?;
            }
            Ok(BypassDecision::Decided)
        })
    }

    /// Requests, newest first.
    pub fn bypasses(&self, limit: u32) -> Result<Vec<BypassRecord>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, profile, domain, from_at, until_at, reason, requested_by, requested_at,
                    status, decided_by
             FROM bypasses ORDER BY id DESC LIMIT $1",
        )?;
        let rows = statement.query_map([limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })?;
        rows.map(|row| {
            let (id, profile, domain, from, until, reason, by, at, status, decided_by) = row?;
            Ok(BypassRecord {
                id,
                profile,
                domain,
                from: parse_db_time(&from)?,
                until: parse_db_time(&until)?,
                reason,
                requested_by: by,
                requested_at: parse_db_time(&at)?,
                status,
                decided_by,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use chrono::Duration;
    use slate_protocol::device::CommandAction;

    #[test]
    fn policy_changes_queue_a_refresh_and_bypasses_need_a_decision() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-11-23T10:00:00Z");
        let id = store
            .request_bypass("oak", "example.org", now, now + Duration::hours(1), "why", "t", now)
            .unwrap();
        assert!(store.policy_records().unwrap().bypasses.is_empty(), "pending is not in force");
        assert!(store
            .commands_for(device(1), 0, now, crate::store::Understands::ALL)
            .unwrap()
            .0
            .is_empty());
        assert_eq!(store.decide_bypass(id, true, "t", now).unwrap(), BypassDecision::OwnRequest);
        assert!(store.policy_records().unwrap().bypasses.is_empty(), "not by its requester");
        assert_eq!(store.decide_bypass(id, true, "dsl", now).unwrap(), BypassDecision::Decided);
        let again = store.decide_bypass(id, false, "dsl", now).unwrap();
        assert_eq!(again, BypassDecision::NotPending, "decided once");
        let records = store.policy_records().unwrap();
        assert_eq!(records.bypasses[0].approved_by, "dsl");
        let (commands, _) =
            store.commands_for(device(1), 0, now, crate::store::Understands::ALL).unwrap();
        assert_eq!(commands[0].action, CommandAction::RefreshPolicy);
    }
}
