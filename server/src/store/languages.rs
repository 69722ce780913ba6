//! The language of the pupils' screens as staff set it on the languages page (issue 17): the
//! school's in the `school_language` setting, each class that differs in `class_languages`.
//! Nothing is stored until the first save, and until then the config's `[languages]` is in
//! force (`PolicyRecords::languages_in_force`). A save writes the languages, its audit entry
//! and the policy change (devices fetch the new policy) in one transaction.

use super::policy_records::policy_changed;
use super::settings::set_setting_in;
use super::sql::{Database, OptionalExtension};
use super::staff::append_audit;
use super::{Store, StoreError};
use crate::device_policy::Languages;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The setting that holds the school's language once the page saved it.
const SCHOOL_LANGUAGE: &str = "school_language";

fn saved_in(database: &dyn Database) -> Result<Option<Languages>, StoreError> {
    let school: Option<String> = database
        .query_row("SELECT value FROM settings WHERE key = $1", [SCHOOL_LANGUAGE], |r| r.get(0))
        .optional()?;
    let Some(school) = school else { return Ok(None) };
    let mut statement =
        database.prepare("SELECT class_name, language FROM class_languages ORDER BY class_name")?;
    let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let classes: BTreeMap<String, String> = rows.collect::<Result<_, StoreError>>()?;
    Ok(Some(Languages::normalised(Some(school), classes)))
}

impl Store {
    /// The languages saved on the page; `None` if it was never saved.
    pub fn saved_languages(&self) -> Result<Option<Languages>, StoreError> {
        saved_in(&**self.read())
    }

    /// Saves the school's language and each class's that differs (as
    /// [`Languages::normalised`] makes them; the caller checked the codes), with its audit
    /// entry, and tells devices. `Ok(false)` when they are what is already saved (nothing is
    /// written).
    pub fn save_languages(
        &self,
        languages: &Languages,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.immediate(|tx| {
            if saved_in(&**tx)?.as_ref() == Some(languages) {
                return Ok(false);
            }
            set_setting_in(tx, SCHOOL_LANGUAGE, languages.school_code())?;
            tx.execute("DELETE FROM class_languages", [])?;
            for (class, code) in &languages.classes {
                tx.execute(
                    "INSERT INTO class_languages (class_name, language) VALUES ($1, $2)",
                    (class, code),
                )?;
            }
            let detail = languages.describe();
            append_audit(&**tx, now, actor, "changed the screens' language", None, Some(&detail))?;
            policy_changed(tx, now)?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn nothing_is_saved_until_the_first_save_and_a_same_save_writes_nothing() {
        let (_dir, store) = store_with_device(1);
        assert_eq!(store.saved_languages().unwrap(), None);
        let welsh = Languages::normalised(
            Some("cy".into()),
            [("Oak".to_owned(), "en".to_owned()), ("Ash".into(), "cy".into())].into(),
        );
        let before = store.policy_records().unwrap().changed_at;
        let now = at("2026-12-01T09:00:00Z");
        assert!(store.save_languages(&welsh, "it.admin", now).unwrap());
        assert_eq!(store.saved_languages().unwrap().as_ref(), Some(&welsh));
        assert!(store.policy_records().unwrap().changed_at > before, "devices are told");
        assert!(!store.save_languages(&welsh, "it.admin", now).unwrap(), "the same again");
        // Back to English everywhere: saved, so the config's no longer counts.
        assert!(store.save_languages(&Languages::default(), "a.dsl", now).unwrap());
        assert_eq!(store.saved_languages().unwrap(), Some(Languages::default()));
        let audit = store.audit_log(10).unwrap();
        let saves: Vec<_> =
            audit.iter().filter(|e| e.action == "changed the screens' language").collect();
        assert_eq!(saves.len(), 2);
        assert_eq!(saves[1].detail.as_deref(), Some("school cy; Oak en"));
        assert_eq!(saves[0].detail.as_deref(), Some("school en"));
    }
}
