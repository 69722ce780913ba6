//! The app catalogue.

use super::policy_records::policy_changed;
use super::{Store, StoreError};
use chrono::{DateTime, Utc};
use slate_protocol::kiosk::{App, AppKind};

impl Store {
    /// Adds an app to the catalogue, or changes the one with this id.
    pub fn save_app(&self, app: &App, now: DateTime<Utc>) -> Result<(), StoreError> {
        let kind = serde_json::to_string(&app.kind)?;
        self.immediate(|tx| {
            tx.execute(
                "INSERT INTO apps (id, title, symbol, colour, kind) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, symbol = excluded.symbol,
                     colour = excluded.colour, kind = excluded.kind",
                (&app.id, &app.title, &app.symbol, app.colour, &kind),
            )?;
            policy_changed(tx, now)
        })
    }

    pub fn apps(&self) -> Result<Vec<App>, StoreError> {
        let connection = self.lock();
        let mut statement =
            connection.prepare("SELECT id, title, symbol, colour, kind FROM apps ORDER BY id")?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, title, symbol, colour, kind) = row?;
            Ok(App {
                id,
                title,
                symbol,
                colour: u8::try_from(colour)
                    .map_err(|_| StoreError::Corrupt(format!("colour {colour}")))?,
                kind: serde_json::from_str::<AppKind>(&kind)?,
            })
        })
        .collect()
    }
}
