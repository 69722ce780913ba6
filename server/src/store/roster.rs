//! The roster: pupils, their tiles and picture PINs, and roster imports (which make the classes
//! they name).

use super::classes::key_stage_name;
use super::policy_records::policy_changed;
use super::sql::{params, OptionalExtension, Transaction};
use super::{db_time, Store, StoreError};
use crate::device_policy::{default_profile_name, pupil_tile, PolicyPupil, StoredPicturePin};
use crate::roster::{
    class_labels, KnownPupil, LabelName, NextClass, PupilEdit, PupilEntry, RosterRow, RowMatch,
};
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
    /// Recognised by their MIS id in another class than before.
    pub pupils_moved: usize,
    pub classes_added: usize,
}

/// What [`Store::edit_pupil`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PupilChange {
    Changed { class_from: String, first_name_changed: bool, family_name_changed: bool },
    NoSuchPupil,
    NoSuchClass,
}

/// A pupil as the pupils page lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterPupil {
    pub id: PupilId,
    pub class_name: String,
    /// Their label, as devices show it.
    pub name: String,
    /// `None` for a pupil entered before first names were kept (not on devices).
    pub first_name: Option<String>,
    /// The family name's first letters kept (or the initial alone).
    pub family_letters: Option<String>,
}

/// Every pupil devices know, as a re-import compares its rows with them.
fn known_pupils(tx: &Transaction<'_>) -> Result<Vec<KnownPupil>, StoreError> {
    let mut statement = tx.prepare(
        "SELECT id, class_name, first_name, initial, family_start, mis_id, left_at FROM pupils
         WHERE first_name IS NOT NULL AND initial IS NOT NULL",
    )?;
    let rows = statement.query_map([], |r| {
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            (r.get::<_, String>(2)?, r.get::<_, String>(3)?),
            (r.get::<_, Option<String>>(4)?, r.get::<_, Option<String>>(5)?),
            r.get::<_, Option<String>>(6)?.is_some(),
        ))
    })?;
    rows.map(|row| {
        let ((id, class), (first_name, initial), (family_start, mis_id), left) = row?;
        let id = PupilId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(KnownPupil { id, class, first_name, initial, family_start, mis_id, left })
    })
    .collect()
}

/// Decides every class's sign-in labels again ([`class_labels`]) and keeps them as the
/// pupils' display names, so staff pages and devices name a pupil alike. In a stable order
/// (by id), so the same roster always gives the same labels.
pub(super) fn relabel(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let mut statement = tx.prepare(
        "SELECT id, class_name, first_name, initial, family_start, display_name FROM pupils
         WHERE first_name IS NOT NULL AND initial IS NOT NULL AND left_at IS NULL
         ORDER BY class_name, id",
    )?;
    let rows = statement.query_map([], |r| {
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            LabelName { first_name: r.get(2)?, initial: r.get(3)?, family_start: r.get(4)? },
            r.get::<_, String>(5)?,
        ))
    })?;
    let pupils = rows.collect::<Result<Vec<_>, _>>()?;
    drop(statement);
    for class in pupils.chunk_by(|a, b| a.0 .1 == b.0 .1) {
        let names: Vec<LabelName> = class.iter().map(|(_, name, _)| name.clone()).collect();
        for (((id, _), _, shown), label) in class.iter().zip(class_labels(&names)) {
            if *shown != label {
                tx.execute("UPDATE pupils SET display_name = $2 WHERE id = $1", (id, &label))?;
            }
        }
    }
    Ok(())
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

    /// Changes a pupil's names and class (their key stage is their class's), and decides the
    /// labels again. Refused, with nothing changed, for a pupil not on the roster (or marked
    /// as left) and a class that does not exist.
    pub fn edit_pupil(
        &self,
        pupil: &PupilId,
        edit: &PupilEdit,
        now: DateTime<Utc>,
    ) -> Result<PupilChange, StoreError> {
        self.immediate(|tx| {
            let before: Option<(String, String, String, Option<String>)> = tx
                .query_row(
                    "SELECT class_name, first_name, initial, family_start FROM pupils
                     WHERE id = $1 AND first_name IS NOT NULL AND left_at IS NULL",
                    [pupil.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((class_before, first_before, initial_before, family_before)) = before else {
                return Ok(PupilChange::NoSuchPupil);
            };
            let class: Option<i64> = tx
                .query_row("SELECT id FROM classes WHERE name = $1", [&edit.class], |r| r.get(0))
                .optional()?;
            if class.is_none() {
                return Ok(PupilChange::NoSuchClass);
            }
            let (family_start, initial) = match &edit.family {
                Some((start, initial)) => (Some(start.clone()), initial.clone()),
                None => (family_before.clone(), initial_before.clone()),
            };
            tx.execute(
                "UPDATE pupils SET class_name = $2, first_name = $3, initial = $4,
                        family_start = $5
                 WHERE id = $1",
                params![pupil.as_str(), &edit.class, &edit.first_name, &initial, family_start],
            )?;
            relabel(tx)?;
            policy_changed(tx, now)?;
            Ok(PupilChange::Changed {
                class_from: class_before,
                first_name_changed: first_before != edit.first_name,
                family_name_changed: edit.family.is_some()
                    && (initial_before != initial || family_before != family_start),
            })
        })
    }

    /// Marks a pupil as left: off every device and the register's list from the next policy;
    /// their reports, sessions and chronology stay for the retention schedule's leaver period
    /// (`Store::purge`). `Ok(false)` for no such pupil on the roster.
    pub fn mark_pupil_left(&self, pupil: &PupilId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.immediate(|tx| {
            let changed = tx.execute(
                "UPDATE pupils SET left_at = $2, leaver_purged = 0 WHERE id = $1 AND left_at IS NULL",
                (pupil.as_str(), db_time(now)),
            )?;
            if changed == 0 {
                return Ok(false);
            }
            relabel(tx)?;
            policy_changed(tx, now)?;
            Ok(true)
        })
    }

    /// The year-end rollover: every pupil on the roster goes where their class goes, all at
    /// once in one transaction (so a chain does not carry anyone two years), keeping their id;
    /// leavers are marked as left. Returns (moved, left).
    pub fn roll_over(
        &self,
        plan: &[(String, NextClass)],
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError> {
        self.immediate(|tx| {
            let mut statement =
                tx.prepare("SELECT id, class_name FROM pupils WHERE left_at IS NULL")?;
            let pupils = statement
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            drop(statement);
            let (mut moved, mut left) = (0, 0);
            for (id, class) in pupils {
                match plan.iter().find(|(from, _)| *from == class).map(|(_, next)| next) {
                    Some(NextClass::MovesTo(next)) => {
                        tx.execute("UPDATE pupils SET class_name = $2 WHERE id = $1", (&id, next))?;
                        moved += 1;
                    }
                    Some(NextClass::Leaves) => {
                        tx.execute(
                            "UPDATE pupils SET left_at = $2, leaver_purged = 0 WHERE id = $1",
                            (&id, db_time(now)),
                        )?;
                        left += 1;
                    }
                    Some(NextClass::Stays) | None => {}
                }
            }
            relabel(tx)?;
            policy_changed(tx, now)?;
            Ok((moved, left))
        })
    }

    /// Every pupil on the roster (not marked as left), by class then name, for the pupils page.
    pub fn roster_pupils(&self) -> Result<Vec<RosterPupil>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT id, class_name, display_name, first_name, initial, family_start FROM pupils
             WHERE left_at IS NULL ORDER BY class_name, display_name, id",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                (r.get::<_, Option<String>>(3)?, r.get::<_, Option<String>>(4)?),
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        rows.map(|row| {
            let ((id, class_name, name), (first_name, initial), family_start) = row?;
            let id = PupilId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(RosterPupil {
                id,
                class_name,
                name,
                first_name,
                family_letters: family_start.or(initial),
            })
        })
        .collect()
    }

    /// Every pupil on the roster by class, then name: what the iPad register picks from.
    pub fn roster_names(&self) -> Result<Vec<RosterName>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare_cached(
            "SELECT id, class_name, display_name FROM pupils WHERE left_at IS NULL
             ORDER BY class_name, display_name, id",
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

    /// Imports checked roster rows, all or nothing: each row is the pupil
    /// [`crate::roster::match_rows`] decides (its MIS id, else first name and family name's
    /// first letters in its class), whose class, names and id it brings up to date, or a new
    /// pupil with the id given. A row that could be two pupils, or two rows that would be one,
    /// refuse the file ([`StoreError::RosterRefused`]). A class not yet known is made with the
    /// row's key stage. Every class's labels are decided again afterwards.
    pub fn import_roster(
        &self,
        rows: &[(PupilId, RosterRow)],
        now: DateTime<Utc>,
    ) -> Result<Imported, StoreError> {
        self.immediate(|tx| {
            let mut done =
                Imported { pupils_added: 0, already_there: 0, pupils_moved: 0, classes_added: 0 };
            let known = known_pupils(tx)?;
            let checked: Vec<RosterRow> = rows.iter().map(|(_, row)| row.clone()).collect();
            let matches = crate::roster::match_rows(&known, &checked)?;
            for ((id, row), matched) in rows.iter().zip(matches) {
                let known_class: Option<i64> = tx
                    .query_row("SELECT id FROM classes WHERE name = $1", [&row.class], |r| r.get(0))
                    .optional()?;
                if known_class.is_none() {
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
                if let RowMatch::Existing(existing) = matched {
                    let moved = known.iter().any(|k| k.id == existing && k.class != row.class);
                    tx.execute(
                        "UPDATE pupils SET class_name = $2, first_name = $3, initial = $4,
                                family_start = $5, mis_id = COALESCE($6, mis_id),
                                left_at = NULL
                         WHERE id = $1",
                        params![
                            existing.as_str(),
                            &row.class,
                            &row.first_name,
                            &row.initial,
                            &row.family_start,
                            row.mis_id.as_deref(),
                        ],
                    )?;
                    if moved {
                        done.pupils_moved += 1;
                    } else {
                        done.already_there += 1;
                    }
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
                                         family_start, mis_id, symbol, colour)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    params![
                        id.as_str(),
                        format!("{} {}.", row.first_name, row.initial),
                        &row.class,
                        &row.first_name,
                        &row.initial,
                        &row.family_start,
                        row.mis_id.as_deref(),
                        symbol,
                        colour,
                    ],
                )?;
                done.pupils_added += 1;
            }
            relabel(tx)?;
            policy_changed(tx, now)?;
            Ok(done)
        })
    }

    pub(super) fn policy_pupils(&self) -> Result<Vec<PolicyPupil>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, class_name, first_name, initial, symbol, colour, picture_pin,
                    display_name
             FROM pupils
             WHERE first_name IS NOT NULL AND initial IS NOT NULL AND symbol IS NOT NULL
                   AND colour IS NOT NULL AND left_at IS NULL
             ORDER BY class_name, first_name, initial",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                (r.get::<_, String>(2)?, r.get::<_, String>(3)?),
                (r.get::<_, String>(4)?, r.get::<_, i64>(5)?),
                r.get::<_, Option<String>>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        rows.map(|row| {
            let ((id, class_name), (first_name, initial), (symbol, colour), picture_pin, shown) =
                row?;
            // The label decided at the last change, sent only when it differs from the plain
            // "Amira K." (and only if a device would take it: a name given by hand must not
            // cost every device its policy).
            let plain = format!("{first_name} {initial}.");
            let label = (shown != plain
                && slate_protocol::kiosk::is_pupil_label(&shown, &first_name, &initial))
            .then_some(shown);
            let (picture_pin, picture_pin_phc) = match picture_pin {
                Some(text) => {
                    let (pictures, phc) = StoredPicturePin::parse(&text)?;
                    (Some(pictures), phc)
                }
                None => (None, None),
            };
            Ok(PolicyPupil {
                id: PupilId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                class_name,
                first_name,
                initial,
                symbol,
                colour: u8::try_from(colour)
                    .map_err(|_| StoreError::Corrupt(format!("colour {colour}")))?,
                picture_pin,
                picture_pin_phc,
                label,
            })
        })
        .collect()
    }

    /// Sets (or with `None` clears) a pupil's picture PIN: the pictures and their hash
    /// (`auth::hash_picture_pin`). `Ok(false)` when no pupil devices know has this id.
    pub fn set_picture_pin(
        &self,
        pupil: &PupilId,
        pin: Option<(&[String], &str)>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let json = pin.map(|(pictures, phc)| StoredPicturePin::hashed_text(pictures, phc));
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

    /// Stores the hashes of picture PINs set by a server before hashes, each only if the PIN is
    /// still the one hashed. The policy's `issued_at` does not move: what devices before hashes
    /// are sent is unchanged, and the others could not be sent this PIN without its hash.
    pub fn store_picture_pin_hashes(
        &self,
        hashed: &[(PupilId, Vec<String>, String)],
    ) -> Result<(), StoreError> {
        self.immediate(|tx| {
            for (pupil, pictures, phc) in hashed {
                tx.execute(
                    "UPDATE pupils SET picture_pin = $3 WHERE id = $1 AND picture_pin = $2",
                    (
                        pupil.as_str(),
                        StoredPicturePin::legacy_text(pictures),
                        StoredPicturePin::hashed_text(pictures, phc),
                    ),
                )?;
            }
            Ok(())
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
        assert_eq!(
            done,
            Imported { pupils_added: 3, already_there: 0, pupils_moved: 0, classes_added: 2 }
        );
        let again = vec![(id("p-z"), row(2, "Oak", "Amira", "K"))];
        let done = store.import_roster(&again, now).unwrap();
        assert_eq!(
            done,
            Imported { pupils_added: 0, already_there: 1, pupils_moved: 0, classes_added: 0 }
        );

        let records = store.policy_records().unwrap();
        assert_eq!(records.classes.len(), 2);
        assert_eq!(records.classes[1].profile, "oak");
        assert_eq!(records.pupils.len(), 3);
        // Two changes at the same instant: the second still moves the version on.
        assert_eq!(records.changed_at, now + Duration::seconds(1));
        let tiles: Vec<_> = records.pupils.iter().map(|p| (p.symbol.as_str(), p.colour)).collect();
        assert!(tiles.contains(&("fish", 1)), "second pupil in Oak: {tiles:?}");
    }

    #[test]
    fn a_pupil_edited_or_marked_left_keeps_their_id_and_leaves_devices() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-11-23T08:00:00Z");
        let rows = vec![
            (id("p-a"), row(2, "Oak", "Amira", "K")),
            (id("p-b"), row(3, "Oak", "Ben", "T")),
            (id("p-c"), row(4, "Ash", "Chloe", "W")),
        ];
        store.import_roster(&rows, now).unwrap();
        let edit = PupilEdit::parse("Amira", "Kerr", "Ash").unwrap();
        let changed = store.edit_pupil(&id("p-a"), &edit, now).unwrap();
        assert_eq!(
            changed,
            PupilChange::Changed {
                class_from: "Oak".into(),
                first_name_changed: false,
                family_name_changed: true
            }
        );
        let to_nowhere = PupilEdit::parse("Amira", "", "Elm").unwrap();
        assert_eq!(
            store.edit_pupil(&id("p-a"), &to_nowhere, now).unwrap(),
            PupilChange::NoSuchClass
        );
        assert_eq!(store.edit_pupil(&id("p-z"), &edit, now).unwrap(), PupilChange::NoSuchPupil);

        assert!(store.mark_pupil_left(&id("p-b"), now).unwrap());
        assert!(!store.mark_pupil_left(&id("p-b"), now).unwrap(), "once");
        assert_eq!(store.edit_pupil(&id("p-b"), &edit, now).unwrap(), PupilChange::NoSuchPupil);
        let on_devices: Vec<_> = store
            .policy_records()
            .unwrap()
            .pupils
            .iter()
            .map(|p| (p.id.as_str().to_owned(), p.class_name.clone()))
            .collect();
        assert_eq!(
            on_devices,
            [("p-a".to_owned(), "Ash".to_owned()), ("p-c".into(), "Ash".into())]
        );
        let listed: Vec<_> = store.roster_pupils().unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(listed, [id("p-a"), id("p-c")]);
        assert!(store.roster_names().unwrap().iter().all(|p| p.id != id("p-b")));
        // The chronology still finds the pupil who left.
        assert!(store.pupil("p-b").unwrap().is_some());
    }

    #[test]
    fn a_rollover_moves_each_class_once_and_marks_leavers() {
        let (_dir, store) = store_with_device(1);
        let now = at("2026-07-20T15:00:00Z");
        let rows = vec![
            (id("p-a"), row(2, "Year 5", "Amira", "K")),
            (id("p-b"), row(3, "Year 6", "Ben", "T")),
            (id("p-c"), row(4, "Year 6", "Chloe", "W")),
        ];
        store.import_roster(&rows, now).unwrap();
        let plan = vec![
            ("Year 5".to_owned(), NextClass::MovesTo("Year 6".into())),
            ("Year 6".to_owned(), NextClass::Leaves),
        ];
        assert_eq!(store.roll_over(&plan, now).unwrap(), (1, 2));
        let listed: Vec<_> = store
            .roster_pupils()
            .unwrap()
            .into_iter()
            .map(|p| (p.id.as_str().to_owned(), p.class_name))
            .collect();
        assert_eq!(listed, [("p-a".to_owned(), "Year 6".to_owned())], "moved once, not twice");
        assert!(store.pupil("p-b").unwrap().unwrap().left);
    }
}
