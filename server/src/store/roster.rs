//! The roster: pupils, their tiles and picture PINs, and roster imports (which make the classes
//! they name).

use super::classes::key_stage_name;
use super::policy_records::policy_changed;
use super::sql::{params, OptionalExtension};
use super::{Store, StoreError};
use crate::device_policy::{default_profile_name, pupil_tile, PolicyPupil};
use crate::roster::{PupilEntry, RosterRow};
use chrono::{DateTime, Utc};
use slate_protocol::PupilId;

/// Class tile pictures given to classes a roster import creates.
const CLASS_SYMBOLS: &[&str] = &["tree", "sun", "boat", "flower", "moon", "star"];

/// A pupil as the register form lists them: under their class, by the roster's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterName {
    pub id: PupilId,
    pub class_name: String,
    pub name: String,
}

/// What a roster import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub pupils_added: usize,
    pub already_there: usize,
    pub classes_added: usize,
}

impl Store {
    /// Adds a pupil to the roster, or updates their names if the id is known.
    pub fn save_pupil(&self, pupil: &PupilEntry) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO pupils (id, display_name, class_name) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name,
                                            class_name = excluded.class_name",
            (pupil.id.as_str(), &pupil.display_name, &pupil.class_name),
        )?;
        Ok(())
    }

    /// Every pupil on the roster by class, then name: what the iPad register picks from.
    pub fn roster_names(&self) -> Result<Vec<RosterName>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT id, class_name, display_name FROM pupils ORDER BY class_name, display_name, id",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|row| {
            let (id, class_name, name) = row?;
            let id = PupilId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(RosterName { id, class_name, name })
        })
        .collect()
    }

    /// Imports checked roster rows with the ids given, all or nothing. A row naming a pupil
    /// already in that class (same first name and initial) adds nothing; a class not yet known
    /// is made with the row's key stage.
    pub fn import_roster(
        &self,
        rows: &[(PupilId, RosterRow)],
        now: DateTime<Utc>,
    ) -> Result<Imported, StoreError> {
        self.immediate(|tx| {
            let mut done = Imported { pupils_added: 0, already_there: 0, classes_added: 0 };
            for (id, row) in rows {
                let known: Option<i64> = tx
                    .query_row("SELECT id FROM classes WHERE name = $1", [&row.class], |r| r.get(0))
                    .optional()?;
                if known.is_none() {
                    let count: i64 =
                        tx.query_row("SELECT count(*) FROM classes", [], |r| r.get(0))?;
                    let symbol = CLASS_SYMBOLS[count as usize % CLASS_SYMBOLS.len()];
                    tx.execute(
                        "INSERT INTO classes (name, key_stage, symbol, colour, profile)
                         VALUES ($1, $2, $3, $4, $5)",
                        (
                            &row.class,
                            key_stage_name(row.key_stage),
                            symbol,
                            count % 8,
                            default_profile_name(&row.class),
                        ),
                    )?;
                    done.classes_added += 1;
                }
                let same: i64 = tx.query_row(
                    "SELECT count(*) FROM pupils
                     WHERE class_name = $1 AND first_name = $2 AND initial = $3",
                    (&row.class, &row.first_name, &row.initial),
                    |r| r.get(0),
                )?;
                if same > 0 {
                    done.already_there += 1;
                    continue;
                }
                let in_class: i64 = tx.query_row(
                    "SELECT count(*) FROM pupils WHERE class_name = $1",
                    [&row.class],
                    |r| r.get(0),
                )?;
                let (symbol, colour) = pupil_tile(in_class as usize);
                tx.execute(
                    "INSERT INTO pupils (id, display_name, class_name, first_name, initial,
                                         symbol, colour)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    params![
                        id.as_str(),
                        format!("{} {}.", row.first_name, row.initial),
                        &row.class,
                        &row.first_name,
                        &row.initial,
                        symbol,
                        colour,
                    ],
                )?;
                done.pupils_added += 1;
            }
            policy_changed(tx, now)?;
            Ok(done)
        })
    }

    pub(super) fn policy_pupils(&self) -> Result<Vec<PolicyPupil>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, class_name, first_name, initial, symbol, colour, picture_pin FROM pupils
             WHERE first_name IS NOT NULL AND initial IS NOT NULL AND symbol IS NOT NULL
                   AND colour IS NOT NULL
             ORDER BY class_name, first_name, initial",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (id, class_name, first_name, initial, symbol, colour, picture_pin) = row?;
            Ok(PolicyPupil {
                id: PupilId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                class_name,
                first_name,
                initial,
                symbol,
                colour: u8::try_from(colour)
                    .map_err(|_| StoreError::Corrupt(format!("colour {colour}")))?,
                picture_pin: picture_pin.map(|text| serde_json::from_str(&text)).transpose()?,
            })
        })
        .collect()
    }

    /// Sets (or with `None` clears) a pupil's picture PIN. `Ok(false)` when no pupil devices
    /// know has this id.
    pub fn set_picture_pin(
        &self,
        pupil: &PupilId,
        pictures: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let json = pictures.map(serde_json::to_string).transpose()?;
        self.immediate(|tx| {
            let changed = tx.execute(
                "UPDATE pupils SET picture_pin = $2 WHERE id = $1 AND first_name IS NOT NULL",
                (pupil.as_str(), json),
            )?;
            if changed == 0 {
                return Ok(false);
            }
            policy_changed(tx, now)?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use chrono::Duration;

    #[test]
    fn a_roster_import_makes_classes_and_pupils_once() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-11-23T08:00:00Z");
        let rows = vec![
            (id("p-a"), row(2, "Oak", "Amira", "K")),
            (id("p-b"), row(3, "Oak", "Ben", "T")),
            (id("p-c"), row(4, "Ash", "Chloe", "W")),
        ];
        let done = store.import_roster(&rows, now).unwrap();
        assert_eq!(done, Imported { pupils_added: 3, already_there: 0, classes_added: 2 });
        let again = vec![(id("p-z"), row(2, "Oak", "Amira", "K"))];
        let done = store.import_roster(&again, now).unwrap();
        assert_eq!(done, Imported { pupils_added: 0, already_there: 1, classes_added: 0 });

        let records = store.policy_records().unwrap();
        assert_eq!(records.classes.len(), 2);
        assert_eq!(records.classes[1].profile, "oak");
        assert_eq!(records.pupils.len(), 3);
        // Two changes at the same instant: the second still moves the version on.
        assert_eq!(records.changed_at, now + Duration::seconds(1));
        let tiles: Vec<_> = records.pupils.iter().map(|p| (p.symbol.as_str(), p.colour)).collect();
        assert!(tiles.contains(&("fish", 1)), "second pupil in Oak: {tiles:?}");
    }
}
