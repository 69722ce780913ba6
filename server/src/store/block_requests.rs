//! Site block requests (issue 17): each unlock that chose "block the site" (recorded as the
//! device's events are stored, in the same transaction), one pending entry per site, and the
//! DSL's or IT's decision: accepted into a school block list (the list's new file put in force
//! in the decision's own transaction) or declined with a reason. The rules are
//! `crate::block_requests`'s.

use super::lists::put_list;
use super::sql::{OptionalExtension, Transaction};
use super::{db_time, parse_db_time, Store, StoreError};
use chrono::{DateTime, Utc};
use slate_protocol::device::ListFile;
use slate_protocol::DeviceNumber;

/// One unlock that asked for a site to be blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockAsk {
    /// The incident the held report opened (it may since have been purged).
    pub incident: Option<i64>,
    pub device: i64,
    /// Whose PIN the device says was typed (its word, not a sign-in).
    pub unlocked_by: Option<String>,
    pub at: DateTime<Utc>,
}

/// A site asked to be blocked: pending, or what was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRequestRecord {
    pub id: i64,
    pub site: String,
    /// `pending`, `accepted` or `declined`.
    pub status: String,
    /// The unlocks that asked, oldest first.
    pub asks: Vec<BlockAsk>,
    /// The list it was accepted into.
    pub list: Option<String>,
    /// Why it was declined.
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// What became of a decision on a block request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockDecision {
    Decided,
    /// Decided already, or no such request.
    NotPending,
}

/// An unlock's ask, as ingest records it.
pub(super) struct NewAsk<'a> {
    pub site: &'a str,
    pub event_id: &'a str,
    pub incident: i64,
    pub device: DeviceNumber,
    pub unlocked_by: Option<&'a str>,
    pub at: DateTime<Utc>,
    /// When the server stored it: a new request's alert is due from then.
    pub received_at: &'a str,
}

/// Records an unlock's ask in the device's batch transaction: it joins the site's pending
/// entry, or opens one and queues its alert (to the configured addresses, the DSL's, and to the
/// enabled IT accounts with an address: both may decide it). Returns the entry's id.
pub(super) fn record_ask(tx: &Transaction<'_>, ask: &NewAsk<'_>) -> Result<i64, StoreError> {
    let pending: Vec<(i64, String)> = {
        let mut statement =
            tx.prepare_cached("SELECT id, site FROM block_requests WHERE status = 'pending'")?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let at = db_time(ask.at);
    let request = match crate::block_requests::merge_into(&pending, ask.site) {
        Some(id) => id,
        None => {
            let id: i64 = tx.query_row(
                "INSERT INTO block_requests (site, created_at) VALUES ($1, $2) RETURNING id",
                (ask.site, &at),
                |r| r.get(0),
            )?;
            let it_staff: Vec<String> = {
                let mut statement = tx.prepare_cached(
                    "SELECT DISTINCT email FROM staff
                     WHERE role = 'it_admin' AND email IS NOT NULL AND disabled_at IS NULL
                     ORDER BY email",
                )?;
                let rows = statement.query_map([], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            // No incident and no device on the alert: IT reads the site and the count only.
            tx.execute(
                "INSERT INTO alert_outbox (kind, block_request, pressed_at, from_block_page,
                                           also_to, created_at, next_attempt_at)
                 VALUES ('block_request', $1, $2, 0, $3, $4, $4)",
                (id, &at, serde_json::to_string(&it_staff)?, ask.received_at),
            )?;
            id
        }
    };
    tx.execute(
        "INSERT INTO block_request_asks (request, event_id, incident, device, unlocked_by, asked_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (event_id) DO NOTHING",
        (request, ask.event_id, ask.incident, ask.device.get(), ask.unlocked_by, &at),
    )?;
    Ok(request)
}

/// Which requests to read.
enum Which {
    Pending,
    /// The latest this many decided.
    Decided(u32),
    One(i64),
}

/// `block_requests` columns: id, site, status, list, reason, decided_by, decided_at.
type RequestRow =
    (i64, String, String, Option<String>, Option<String>, Option<String>, Option<String>);

impl Store {
    /// How many requests wait for a decision (the navigation's count).
    pub fn pending_block_request_count(&self) -> Result<u32, StoreError> {
        let n: i64 = self.read().query_row(
            "SELECT count(*) FROM block_requests WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Pending requests, the most asked first (then the longest waiting), each with its asks.
    pub fn pending_block_requests(&self) -> Result<Vec<BlockRequestRecord>, StoreError> {
        let mut requests = self.block_requests_of(Which::Pending)?;
        requests.sort_by(|a, b| {
            let first = |r: &BlockRequestRecord| r.asks.first().map(|x| x.at);
            b.asks.len().cmp(&a.asks.len()).then_with(|| first(a).cmp(&first(b)))
        });
        Ok(requests)
    }

    /// The latest decisions, newest first.
    pub fn decided_block_requests(
        &self,
        limit: u32,
    ) -> Result<Vec<BlockRequestRecord>, StoreError> {
        self.block_requests_of(Which::Decided(limit))
    }

    /// One request, pending or decided.
    pub fn block_request(&self, id: i64) -> Result<Option<BlockRequestRecord>, StoreError> {
        Ok(self.block_requests_of(Which::One(id))?.pop())
    }

    fn block_requests_of(&self, which: Which) -> Result<Vec<BlockRequestRecord>, StoreError> {
        let connection = self.lock();
        let rows: Vec<RequestRow> = {
            let columns = "SELECT id, site, status, list, reason, decided_by, decided_at
                           FROM block_requests";
            let read = |r: &super::sql::Row| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            };
            let rows = match which {
                Which::Pending => connection
                    .prepare(&format!("{columns} WHERE status = 'pending' ORDER BY id"))?
                    .query_map([], read)?,
                Which::Decided(limit) => connection
                    .prepare(&format!(
                        "{columns} WHERE status <> 'pending' ORDER BY decided_at DESC, id DESC
                         LIMIT $1"
                    ))?
                    .query_map([limit], read)?,
                Which::One(id) => connection
                    .prepare(&format!("{columns} WHERE id = $1"))?
                    .query_map([id], read)?,
            };
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, site, status, list, reason, decided_by, decided_at) in rows {
            let mut statement = connection.prepare_cached(
                "SELECT incident, device, unlocked_by, asked_at FROM block_request_asks
                 WHERE request = $1 ORDER BY asked_at, id",
            )?;
            let asks = statement
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)))?
                .map(|row| {
                    let (incident, device, unlocked_by, at) = row?;
                    Ok(BlockAsk { incident, device, unlocked_by, at: parse_db_time(&at)? })
                })
                .collect::<Result<_, StoreError>>()?;
            out.push(BlockRequestRecord {
                id,
                site,
                status,
                asks,
                list,
                reason,
                decided_by,
                decided_at: decided_at.as_deref().map(parse_db_time).transpose()?,
            });
        }
        Ok(out)
    }

    /// Accepts a pending request into `list`: with `file`, the list's new file (already written
    /// beside the old one) goes in force in the same transaction and devices are told to fetch;
    /// without, the list already blocked the site and nothing else changes.
    pub fn accept_block_request(
        &self,
        id: i64,
        list: &str,
        file: Option<&ListFile>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<BlockDecision, StoreError> {
        self.immediate(|tx| {
            if !decide(tx, id, "accepted", Some(list), None, by, now)? {
                return Ok(BlockDecision::NotPending);
            }
            if let Some(file) = file {
                put_list(tx, list, file, by, now)?;
            }
            Ok(BlockDecision::Decided)
        })
    }

    /// Declines a pending request, with the reason.
    pub fn decline_block_request(
        &self,
        id: i64,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<BlockDecision, StoreError> {
        self.immediate(|tx| {
            Ok(if decide(tx, id, "declined", None, Some(reason), by, now)? {
                BlockDecision::Decided
            } else {
                BlockDecision::NotPending
            })
        })
    }
}

/// Marks a pending request decided; `false` when it was not pending.
fn decide(
    tx: &Transaction<'_>,
    id: i64,
    status: &str,
    list: Option<&str>,
    reason: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let pending = tx
        .query_row(
            "SELECT id FROM block_requests WHERE id = $1 AND status = 'pending'",
            [id],
            |r| r.get::<_, i64>(0),
        )
        .optional()?;
    if pending.is_none() {
        return Ok(false);
    }
    tx.execute(
        "UPDATE block_requests SET status = $2, list = $3, reason = $4, decided_by = $5,
                                   decided_at = $6
         WHERE id = $1 AND status = 'pending'",
        (id, status, list, reason, by, db_time(now)),
    )?;
    Ok(true)
}
