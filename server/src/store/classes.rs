//! Classes: their tiles, filter profile and approved apps, and the teachers linked to each.

use super::policy_records::policy_changed;
use super::sql::{Database, OptionalExtension};
use super::{Store, StoreError};
use crate::device_policy::ClassRecord;
use chrono::{DateTime, Utc};
use slate_protocol::kiosk::KeyStage;
use slate_protocol::PupilId;

/// A class as IT enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassInput {
    pub name: String,
    pub key_stage: KeyStage,
    pub symbol: String,
    pub colour: u8,
    pub profile: String,
}

pub(super) fn key_stage_name(ks: KeyStage) -> &'static str {
    match ks {
        KeyStage::Ks1 => "ks1",
        KeyStage::Ks2 => "ks2",
    }
}

fn parse_key_stage(text: &str) -> Result<KeyStage, StoreError> {
    match text {
        "ks1" => Ok(KeyStage::Ks1),
        "ks2" => Ok(KeyStage::Ks2),
        other => Err(StoreError::Corrupt(format!("key stage {other:?}"))),
    }
}

impl Store {
    /// Adds a class, or changes the one with this name; returns its id.
    pub fn save_class(&self, class: &ClassInput, now: DateTime<Utc>) -> Result<i64, StoreError> {
        self.immediate(|tx| {
            let id = tx.query_row(
                "INSERT INTO classes (name, key_stage, symbol, colour, profile)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET key_stage = excluded.key_stage,
                     symbol = excluded.symbol, colour = excluded.colour, profile = excluded.profile
                 RETURNING id",
                (
                    &class.name,
                    key_stage_name(class.key_stage),
                    &class.symbol,
                    class.colour,
                    &class.profile,
                ),
                |r| r.get(0),
            )?;
            policy_changed(tx, now)?;
            Ok(id)
        })
    }

    /// Sets a class's approved apps, in tile order. `Ok(false)` when the class is unknown.
    pub fn set_class_apps(
        &self,
        class: &str,
        apps: &[String],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.immediate(|tx| {
            let id: Option<i64> = tx
                .query_row("SELECT id FROM classes WHERE name = $1", [class], |r| r.get(0))
                .optional()?;
            let Some(id) = id else { return Ok(false) };
            tx.execute("DELETE FROM class_apps WHERE class_id = $1", [id])?;
            for (position, app) in apps.iter().enumerate() {
                tx.execute(
                    "INSERT INTO class_apps (class_id, app_id, position) VALUES ($1, $2, $3)",
                    (id, app, position as i64),
                )?;
            }
            policy_changed(tx, now)?;
            Ok(true)
        })
    }

    pub fn classes(&self) -> Result<Vec<ClassRecord>, StoreError> {
        let connection = self.lock();
        let apps = connection.backend().json_array_agg(
            "app_id",
            "class_apps WHERE class_id = c.id",
            "position",
        );
        let mut statement = connection.prepare(&format!(
            "SELECT c.id, c.name, c.key_stage, c.symbol, c.colour, c.profile, {apps}
             FROM classes c ORDER BY c.name"
        ))?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (id, name, key_stage, symbol, colour, profile, apps) = row?;
            Ok(ClassRecord {
                id,
                name,
                key_stage: parse_key_stage(&key_stage)?,
                symbol,
                colour: u8::try_from(colour)
                    .map_err(|_| StoreError::Corrupt(format!("colour {colour}")))?,
                profile,
                apps: serde_json::from_str(&apps)?,
            })
        })
        .collect()
    }

    /// Links a teacher's account to a class (they get its pupils' alerts, at `email` when
    /// given). `Ok(false)` when the account or class is unknown.
    pub fn link_teacher(
        &self,
        username: &str,
        class: &str,
        email: Option<&str>,
    ) -> Result<bool, StoreError> {
        if let Some(email) = email {
            self.lock()
                .execute("UPDATE staff SET email = $2 WHERE username = $1", (username, email))?;
        }
        let changed = self.lock().execute(
            "INSERT INTO staff_classes (staff_id, class_id)
             SELECT s.id, c.id FROM staff s, classes c WHERE s.username = $1 AND c.name = $2
             ON CONFLICT DO NOTHING",
            (username, class),
        )?;
        let linked: bool = self.lock().query_row(
            "SELECT EXISTS (SELECT 1 FROM staff_classes sc JOIN staff s ON s.id = sc.staff_id
                            JOIN classes c ON c.id = sc.class_id
                            WHERE s.username = $1 AND c.name = $2)",
            (username, class),
            |r| r.get(0),
        )?;
        Ok(changed == 1 || linked)
    }

    /// Where the alerts for a pupil's report also go: the email addresses of the enabled
    /// teacher accounts linked to the pupil's class.
    pub fn class_teacher_emails(&self, pupil: &PupilId) -> Result<Vec<String>, StoreError> {
        class_teacher_emails_in(&**self.lock(), pupil.as_str())
    }
}

/// The email addresses of the enabled teacher accounts linked to a pupil's class, on the
/// store's connection or in a transaction (`alert_outbox` queues them with each report).
pub(super) fn class_teacher_emails_in(
    database: &dyn Database,
    pupil: &str,
) -> Result<Vec<String>, StoreError> {
    let mut statement = database.prepare_cached(
        "SELECT DISTINCT s.email FROM pupils p
         JOIN classes c ON c.name = p.class_name
         JOIN staff_classes sc ON sc.class_id = c.id
         JOIN staff s ON s.id = sc.staff_id
         WHERE p.id = $1 AND s.email IS NOT NULL AND s.disabled_at IS NULL
         ORDER BY s.email",
    )?;
    let rows = statement.query_map([pupil], |r| r.get(0))?;
    rows.collect()
}
