//! The school-wide filtering log (the DfE filtering and monitoring standards: a log the DSL
//! reviews): every attempt a device's filter refused, newest first, narrowed by time, device,
//! class, list and pupil. Read from the events table, where every event is kept as it arrived.

use super::sql::{Conditions, ToSql, Value};
use super::{db_time, parse_db_time, PageCursor, Store, StoreError};
use chrono::{DateTime, Utc};
use slate_protocol::EventBody;

/// What the log is narrowed to; `None` leaves a field open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockFilter {
    pub from: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
    pub device: Option<u16>,
    /// A roster class: the pupil signed in was in it.
    pub class: Option<String>,
    /// The list (category) the rule came from, e.g. `adult` or `iwf`.
    pub list: Option<String>,
    pub pupil: Option<String>,
}

/// One refused attempt, with the roster's name for its pupil when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedBlock {
    pub at: DateTime<Utc>,
    pub device: u16,
    pub pupil: Option<String>,
    pub pupil_name: Option<String>,
    /// `dns` or `url`.
    pub layer: String,
    pub target: String,
    pub rule: String,
    pub list: String,
}

impl Store {
    /// One page of the log: `limit` attempts after skipping `offset`, newest first.
    pub fn filtering_log(
        &self,
        filter: &BlockFilter,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<LoggedBlock>, StoreError> {
        let found = self.filtering_log_rows(filter, limit, offset, None)?;
        Ok(found.into_iter().map(|(_, block)| block).collect())
    }

    /// One page of an export of the log: the `limit` attempts that come after `after` (the
    /// cursor of the last one already read; `None`: from the newest), newest first, each with
    /// its cursor. Rows stored meanwhile never shift a page, as an offset would.
    pub fn filtering_log_after(
        &self,
        filter: &BlockFilter,
        after: Option<PageCursor>,
        limit: u32,
    ) -> Result<Vec<(PageCursor, LoggedBlock)>, StoreError> {
        self.filtering_log_rows(filter, limit, 0, after)
    }

    fn filtering_log_rows(
        &self,
        filter: &BlockFilter,
        limit: u32,
        offset: u32,
        after: Option<PageCursor>,
    ) -> Result<Vec<(PageCursor, LoggedBlock)>, StoreError> {
        let connection = self.read();
        let backend = connection.backend();
        let pupil = backend.json_text("e.body", "pupil");
        let list = backend.json_text("e.body", "list");
        let mut c = Conditions::numbered_from(3);
        if let Some(from) = filter.from {
            c.bind("e.at >= ?", Value::Text(db_time(from)));
        }
        if let Some(before) = filter.before {
            c.bind("e.at < ?", Value::Text(db_time(before)));
        }
        if let Some(device) = filter.device {
            c.bind("e.device = ?", Value::Integer(device.into()));
        }
        if let Some(class) = &filter.class {
            c.bind(
                &format!("{pupil} IN (SELECT id FROM pupils WHERE class_name = ?)"),
                Value::Text(class.clone()),
            );
        }
        if let Some(name) = &filter.list {
            c.bind(&format!("{list} = ?"), Value::Text(name.clone()));
        }
        if let Some(id) = &filter.pupil {
            c.bind(&format!("{pupil} = ?"), Value::Text(id.clone()));
        }
        if let Some(PageCursor { at, id }) = after {
            c.bind_each(
                "(e.at < ? OR (e.at = ? AND e.id < ?))",
                vec![Value::Text(at.clone()), Value::Text(at), Value::Text(id)],
            );
        }
        let (condition, values) = c.finish();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT e.at, e.device, p.display_name, e.body, e.id FROM events e
             LEFT JOIN pupils p ON p.id = {pupil}
             WHERE e.kind = 'filter_blocked' AND {condition}
             ORDER BY e.at DESC, e.id DESC LIMIT $1 OFFSET $2"
        ))?;
        let mut params: Vec<&dyn ToSql> = vec![&limit, &offset];
        params.extend(values.iter().map(|v| v as &dyn ToSql));
        let rows = statement.query_map(params.as_slice(), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u16>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (at, device, pupil_name, body, id) = row?;
            let EventBody::FilterBlocked { pupil, layer, target, rule, list, .. } =
                serde_json::from_str(&body)?
            else {
                return Err(StoreError::Corrupt(format!(
                    "filter_blocked event body on device {device}"
                )));
            };
            let block = LoggedBlock {
                at: parse_db_time(&at)?,
                device,
                pupil: pupil.map(|p| p.as_str().to_owned()),
                pupil_name,
                layer: layer.as_str().to_owned(),
                target,
                rule,
                list,
            };
            Ok((PageCursor { at, id }, block))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::roster::PupilEntry;
    use slate_protocol::{Event, FilterLayer, PupilId, SessionId};

    #[test]
    fn the_log_is_narrowed_by_each_field_and_paged() {
        let (_dir, store) = store_with_device(12);
        store.save_pupil(&PupilEntry::new("p-a", "Amira K.", "Oak").unwrap()).unwrap();
        store.save_pupil(&PupilEntry::new("p-b", "Ben T.", "Ash").unwrap()).unwrap();
        let blocked = |when: &str, pupil: Option<&str>, list: &str| {
            Event::new(
                device(12),
                at(when),
                EventBody::FilterBlocked {
                    session: Some(SessionId::new()),
                    pupil: pupil.map(|p| PupilId::new(p).unwrap()),
                    layer: FilterLayer::Dns,
                    target: format!("{list}.example"),
                    rule: format!("exact:{list}.example"),
                    list: list.into(),
                },
            )
        };
        let events = [
            blocked("2026-11-16T09:00:00Z", Some("p-a"), "adult"),
            blocked("2026-11-17T09:00:00Z", Some("p-b"), "games"),
            blocked("2026-11-17T10:00:00Z", None, "iwf"),
            blocked("2026-11-18T09:00:00Z", Some("p-a"), "games"),
        ];
        store.ingest(device(12), &events, at("2026-11-18T10:00:00Z")).unwrap();
        let targets = |filter: BlockFilter, limit: u32, offset: u32| -> Vec<String> {
            let found = store.filtering_log(&filter, limit, offset).unwrap();
            found.into_iter().map(|b| b.target).collect()
        };
        let all = BlockFilter::default();
        assert_eq!(
            targets(all.clone(), 10, 0),
            ["games.example", "iwf.example", "games.example", "adult.example"]
        );
        assert_eq!(targets(all.clone(), 2, 2), ["games.example", "adult.example"]);
        let oak = BlockFilter { class: Some("Oak".into()), ..all.clone() };
        assert_eq!(targets(oak, 10, 0), ["games.example", "adult.example"]);
        let games = BlockFilter { list: Some("games".into()), ..all.clone() };
        assert_eq!(targets(games, 10, 0).len(), 2);
        let day = BlockFilter {
            from: Some(at("2026-11-17T00:00:00Z")),
            before: Some(at("2026-11-18T00:00:00Z")),
            ..all.clone()
        };
        assert_eq!(targets(day, 10, 0), ["iwf.example", "games.example"]);
        let ben = BlockFilter { pupil: Some("p-b".into()), ..all.clone() };
        let found = store.filtering_log(&ben, 10, 0).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pupil_name.as_deref(), Some("Ben T."));
        assert_eq!((found[0].layer.as_str(), found[0].list.as_str()), ("dns", "games"));
        let elsewhere = BlockFilter { device: Some(13), ..all };
        assert!(targets(elsewhere, 10, 0).is_empty());
    }
}
