//! The school's own acceptable use agreements (`aup_texts`): every saved version of each key
//! stage's text, kept, the newest in force. A save writes its row, its audit entry and the
//! policy change (devices fetch the new text) in one transaction. The text itself is checked by
//! the caller (`slate_protocol::agreement`); this stores and reads it.

use super::policy_records::policy_changed;
use super::sql::{OptionalExtension, Transaction};
use super::staff::append_audit;
use super::{db_time, parse_db_time, Store, StoreError};
use chrono::{DateTime, Utc};
use slate_protocol::agreement::{stage_name, SchoolAgreement};
use slate_protocol::kiosk::KeyStage;

/// One saved version of a key stage's agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementVersion {
    pub key_stage: KeyStage,
    pub version: u32,
    /// The school's words; `None`: this save went back to the built-in text.
    pub text: Option<SchoolAgreement>,
    pub saved_at: DateTime<Utc>,
    pub saved_by: String,
}

const COLUMNS: &str = "key_stage, version, title, promises, saved_at, saved_by";

type Row = (String, i64, Option<String>, Option<String>, String, String);

fn read_row(r: &super::sql::Row) -> Result<Row, StoreError> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn to_version(row: Row) -> Result<AgreementVersion, StoreError> {
    let (stage, version, title, promises, saved_at, saved_by) = row;
    let key_stage = match stage.as_str() {
        "ks1" => KeyStage::Ks1,
        "ks2" => KeyStage::Ks2,
        other => return Err(StoreError::Corrupt(format!("aup_texts key stage {other:?}"))),
    };
    let version = u32::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("aup_texts version {version}")))?;
    let text = match (title, promises) {
        (Some(title), Some(promises)) => {
            let promises: Vec<String> = serde_json::from_str(&promises)?;
            Some(SchoolAgreement::new(key_stage, version, title, promises))
        }
        _ => None,
    };
    Ok(AgreementVersion { key_stage, version, text, saved_at: parse_db_time(&saved_at)?, saved_by })
}

fn newest_in(
    tx: &Transaction<'_>,
    stage: KeyStage,
) -> Result<Option<AgreementVersion>, StoreError> {
    tx.query_row(
        &format!(
            "SELECT {COLUMNS} FROM aup_texts WHERE key_stage = $1 ORDER BY version DESC LIMIT 1"
        ),
        [stage_name(stage)],
        read_row,
    )
    .optional()?
    .map(to_version)
    .transpose()
}

impl Store {
    /// Every saved version of a key stage's agreement, newest first.
    pub fn agreement_versions(&self, stage: KeyStage) -> Result<Vec<AgreementVersion>, StoreError> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM aup_texts WHERE key_stage = $1 ORDER BY version DESC"
        ))?;
        let rows = statement.query_map([stage_name(stage)], read_row)?;
        rows.map(|row| to_version(row?)).collect()
    }

    /// One saved version, if there is one.
    pub fn agreement_version(
        &self,
        stage: KeyStage,
        version: u32,
    ) -> Result<Option<AgreementVersion>, StoreError> {
        let row = self
            .read()
            .query_row(
                &format!("SELECT {COLUMNS} FROM aup_texts WHERE key_stage = $1 AND version = $2"),
                (stage_name(stage), i64::from(version)),
                read_row,
            )
            .optional()?;
        row.map(to_version).transpose()
    }

    /// The school's own texts in force (a key stage whose newest save went back to the built-in
    /// text, or that never had one, has none): what the kiosk policy carries.
    pub fn agreements_in_force(&self) -> Result<Vec<SchoolAgreement>, StoreError> {
        let mut texts = Vec::new();
        for stage in [KeyStage::Ks1, KeyStage::Ks2] {
            if let Some(text) =
                self.agreement_versions(stage)?.into_iter().next().and_then(|v| v.text)
            {
                texts.push(text);
            }
        }
        Ok(texts)
    }

    /// Saves a new version of a key stage's agreement (`None`: back to the built-in text), with
    /// its audit entry, and tells devices. Returns the new version's number, or `None` when it
    /// is what is already in force (nothing is written).
    pub fn save_agreement(
        &self,
        stage: KeyStage,
        text: Option<(String, Vec<String>)>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        self.immediate(|tx| {
            let newest = newest_in(tx, stage)?;
            let current = newest.as_ref().and_then(|v| v.text.as_ref());
            let unchanged = match (&text, current) {
                (None, None) => true,
                (Some((title, promises)), Some(c)) => *title == c.title && *promises == c.promises,
                _ => false,
            };
            if unchanged {
                return Ok(None);
            }
            let version = newest.map_or(1, |v| v.version + 1);
            let stage_text = stage_name(stage);
            let (title, promises, text_version, detail) = match &text {
                Some((title, promises)) => {
                    let named =
                        SchoolAgreement::new(stage, version, title.clone(), promises.clone());
                    let detail = format!(
                        "{} version {version} ({}): {} promises",
                        stage_text.to_uppercase(),
                        named.text_version,
                        promises.len()
                    );
                    (
                        Some(title.clone()),
                        Some(serde_json::to_string(promises)?),
                        Some(named.text_version),
                        detail,
                    )
                }
                None => (
                    None,
                    None,
                    None,
                    format!(
                        "{} version {version}: back to the built-in text",
                        stage_text.to_uppercase()
                    ),
                ),
            };
            tx.execute(
                "INSERT INTO aup_texts
                 (key_stage, version, builtin, title, promises, text_version, saved_at, saved_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                (
                    stage_text,
                    i64::from(version),
                    i64::from(text.is_none()),
                    title,
                    promises,
                    text_version,
                    db_time(now),
                    actor,
                ),
            )?;
            append_audit(
                &**tx,
                now,
                actor,
                "changed the acceptable use agreement",
                None,
                Some(&detail),
            )?;
            policy_changed(tx, now)?;
            Ok(Some(version))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn each_save_is_a_version_kept_and_the_newest_is_in_force() {
        let (_dir, store) = store_with_device(1);
        let text =
            |t: &str, p: &[&str]| Some((t.to_owned(), p.iter().map(|s| s.to_string()).collect()));
        assert!(store.agreements_in_force().unwrap().is_empty());
        type Text = Option<(String, Vec<String>)>;
        let steps: [(KeyStage, Text, Option<u32>, usize); 6] = [
            // (key stage, text saved, the version it made, texts in force after)
            (KeyStage::Ks1, None, None, 0),
            (KeyStage::Ks1, text("T", &["A."]), Some(1), 1),
            (KeyStage::Ks1, text("T", &["A."]), None, 1),
            (KeyStage::Ks2, text("U", &["B.", "C."]), Some(1), 2),
            (KeyStage::Ks1, text("T", &["A!"]), Some(2), 2),
            (KeyStage::Ks1, None, Some(3), 1),
        ];
        for (i, (stage, saved, made, in_force)) in steps.into_iter().enumerate() {
            let now = at("2026-12-01T09:00:00Z") + chrono::Duration::minutes(i as i64);
            assert_eq!(store.save_agreement(stage, saved, "a.dsl", now).unwrap(), made, "step {i}");
            assert_eq!(store.agreements_in_force().unwrap().len(), in_force, "step {i}");
        }
        let ks1 = store.agreement_versions(KeyStage::Ks1).unwrap();
        assert_eq!(ks1.iter().map(|v| v.version).collect::<Vec<_>>(), [3, 2, 1]);
        assert!(ks1[0].text.is_none(), "back to the built-in text");
        let first = store.agreement_version(KeyStage::Ks1, 1).unwrap().unwrap();
        assert_eq!(first.text.unwrap().promises, ["A."]);
        assert_eq!(first.saved_by, "a.dsl");
        let audit = store.audit_log(20).unwrap();
        let saves = audit.iter().filter(|e| e.action == "changed the acceptable use agreement");
        assert_eq!(saves.count(), 4);
        assert_eq!(store.agreements_in_force().unwrap()[0].key_stage, KeyStage::Ks2);
    }
}
