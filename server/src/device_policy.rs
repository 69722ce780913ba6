//! What devices are told, built from the school's records: the kiosk policy (classes, pupils by
//! first name and initial, apps, session rules), the filter policy (profiles, the list manifest,
//! approved bypasses, the URL salt) and the staff document (each enabled account's unlock PIN
//! hash under its pseudonymous id; no names). Pure: the records and the time come in, JSON
//! documents go out; signing and storage are the caller's.
//!
//! The server never signs what a device would refuse: the kiosk and staff documents are checked
//! with `slate_protocol::kiosk::parse_policy` and `slate_protocol::staff::parse_staff_pins`
//! before they are returned. No PIN hash is ever in the kiosk document (the kiosk user and its
//! apps can read it on the device).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use slate_protocol::agreement::SchoolAgreement;
use slate_protocol::device::ListFile;
pub use slate_protocol::kiosk::default_profile_name;
use slate_protocol::kiosk::{self, App, Class, KeyStage, Pupil, SessionRules};
use slate_protocol::staff::{self, StaffPinEntry, StaffPins};
use slate_protocol::{PupilId, StaffId};
use std::collections::BTreeMap;

/// The filter profile in force when nobody is signed in.
pub const DEFAULT_PROFILE: &str = "default";

/// Pictures a pupil's tile may show (the names `ui/symbols.slint` draws).
pub const PUPIL_SYMBOLS: &[&str] =
    &["star", "fish", "heart", "moon", "sun", "flower", "boat", "tree"];
/// Tile colours are indices into the UI's palette.
pub const COLOURS: u8 = 8;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// The records do not make a policy a device would accept (no classes yet, say).
    #[error("the kiosk policy is not ready: {0}")]
    Kiosk(String),
    /// A stored unlock PIN hash a device would refuse (a damaged record).
    #[error("the staff PINs are not ready: {0}")]
    Staff(String),
}

/// A member of staff's unlock PIN as devices get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffPinRecord {
    /// Pseudonymous (`s-` and random hex); the server maps it back to the account.
    pub id: StaffId,
    pub pin_phc: String,
}

/// A class as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassRecord {
    pub id: i64,
    pub name: String,
    pub key_stage: KeyStage,
    pub symbol: String,
    pub colour: u8,
    /// The filter profile its pupils get.
    pub profile: String,
    /// Approved app ids, in tile order.
    pub apps: Vec<String>,
}

/// A pupil as devices may know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPupil {
    pub id: PupilId,
    pub class_name: String,
    pub first_name: String,
    pub initial: String,
    pub symbol: String,
    pub colour: u8,
    /// The pictures to tap after the tile, in order (names from [`PUPIL_SYMBOLS`]).
    pub picture_pin: Option<Vec<String>>,
    /// "Amira Kh." or "Amira K. (2)" when a classmate has the same first name and initial.
    pub label: Option<String>,
}

impl PolicyPupil {
    /// What the sign-in screen shows: the label, or "Amira K.".
    pub fn shown_name(&self) -> String {
        self.label.clone().unwrap_or_else(|| format!("{} {}.", self.first_name, self.initial))
    }
}

/// A filter profile as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileRecord {
    pub name: String,
    pub block_lists: Vec<String>,
    pub allow_only: Option<Vec<String>>,
    /// `strict` or `moderate` (safe search is never off).
    pub safe_search: String,
}

/// An approved bypass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedBypass {
    pub profile: String,
    pub domain: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub approved_by: String,
}

/// Everything the three documents are made from.
#[derive(Debug, Clone, Default)]
pub struct PolicyRecords {
    /// When any of these records last changed: the documents' `issued_at`, so fetching twice
    /// gives the same bytes and a device never sees time go backwards.
    pub changed_at: DateTime<Utc>,
    pub classes: Vec<ClassRecord>,
    pub pupils: Vec<PolicyPupil>,
    pub apps: Vec<App>,
    /// Enabled accounts' unlock PINs.
    pub staff_pins: Vec<StaffPinRecord>,
    pub sessions: SessionRules,
    pub lists: BTreeMap<String, ListFile>,
    pub profiles: Vec<ProfileRecord>,
    pub bypasses: Vec<ApprovedBypass>,
    pub url_salt: Option<String>,
    /// The school's own acceptable use agreements in force (none: the built-in texts).
    pub agreements: Vec<SchoolAgreement>,
}

/// The language of the pupils' screens: the school's and each class's that differs, by class
/// name (`[languages]` in the server's config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Languages {
    /// `None`: English.
    pub school: Option<String>,
    pub classes: BTreeMap<String, String>,
}

/// The kiosk policy document, checked as a device would check it. `languages` only for a
/// device that said it understands them (`can=languages`): one before them refuses the field.
pub fn kiosk_payload(
    records: &PolicyRecords,
    languages: Option<&Languages>,
) -> Result<String, BuildError> {
    let classes = records
        .classes
        .iter()
        .map(|class| Class {
            name: class.name.clone(),
            key_stage: class.key_stage,
            symbol: class.symbol.clone(),
            colour: class.colour,
            apps: class.apps.clone(),
            profile: Some(class.profile.clone()),
            language: languages.and_then(|l| l.classes.get(&class.name).cloned()),
            pupils: records
                .pupils
                .iter()
                .filter(|p| p.class_name == class.name)
                .map(|p| Pupil {
                    id: p.id.clone(),
                    first_name: p.first_name.clone(),
                    initial: p.initial.clone(),
                    symbol: p.symbol.clone(),
                    colour: p.colour,
                    picture_pin: p.picture_pin.clone(),
                    label: p.label.clone(),
                })
                .collect(),
        })
        .collect();
    let policy = kiosk::Policy {
        v: 1,
        issued_at: Some(records.changed_at),
        sessions: records.sessions.clone(),
        classes,
        apps: records.apps.clone(),
        agreements: records.agreements.clone(),
        language: languages.and_then(|l| l.school.clone()),
    };
    let text = serde_json::to_string(&policy).expect("a kiosk policy serialises");
    kiosk::parse_policy(&text).map_err(|e| BuildError::Kiosk(e.to_string()))?;
    Ok(text)
}

/// The staff document: who may unlock, checked as a device would check it.
pub fn staff_payload(records: &PolicyRecords) -> Result<String, BuildError> {
    let document = StaffPins {
        v: 1,
        issued_at: records.changed_at,
        staff: records
            .staff_pins
            .iter()
            .map(|r| StaffPinEntry { id: r.id.clone(), pin_hash: r.pin_phc.clone() })
            .collect(),
    };
    let text = serde_json::to_string(&document).expect("a staff document serialises");
    staff::parse_staff_pins(&text).map_err(|e| BuildError::Staff(e.to_string()))?;
    Ok(text)
}

/// The filter policy document (slate-filter's format plus the `lists` manifest). Bypasses that
/// have ended by `now` are left out; one for a profile with no rules of its own gets a copy of
/// the default profile's rules, so the bypass is all that differs.
pub fn filter_payload(records: &PolicyRecords, now: DateTime<Utc>) -> String {
    let default =
        records.profiles.iter().find(|p| p.name == DEFAULT_PROFILE).cloned().unwrap_or_else(|| {
            ProfileRecord {
                name: DEFAULT_PROFILE.into(),
                block_lists: Vec::new(),
                allow_only: None,
                safe_search: "strict".into(),
            }
        });
    let mut profiles: BTreeMap<String, (ProfileRecord, Vec<Value>)> = BTreeMap::new();
    profiles.insert(DEFAULT_PROFILE.into(), (default.clone(), Vec::new()));
    for profile in &records.profiles {
        profiles.insert(profile.name.clone(), (profile.clone(), Vec::new()));
    }
    for bypass in records.bypasses.iter().filter(|b| b.until > now) {
        let entry = profiles.entry(bypass.profile.clone()).or_insert_with(|| {
            (ProfileRecord { name: bypass.profile.clone(), ..default.clone() }, Vec::new())
        });
        entry.1.push(json!({
            "domain": bypass.domain,
            "from": bypass.from,
            "until": bypass.until,
            "reason": bypass.reason,
            "approved_by": bypass.approved_by,
        }));
    }
    let profiles: Map<String, Value> = profiles
        .into_iter()
        .map(|(name, (profile, bypasses))| {
            let mut value = json!({
                "block_lists": profile.block_lists,
                "safe_search": profile.safe_search,
                "bypasses": bypasses,
            });
            if let Some(allow) = profile.allow_only {
                value["allow_only"] = json!(allow);
            }
            (name, value)
        })
        .collect();
    let mut document = json!({
        "v": 1,
        "issued_at": records.changed_at,
        "default_profile": DEFAULT_PROFILE,
        "profiles": profiles,
        "lists": records.lists,
    });
    if let Some(salt) = &records.url_salt {
        document["url_salt"] = json!(salt);
    }
    document.to_string()
}

/// Whether a list line means something to a device's filter: blank, a `#` comment, a URL-layer
/// rule (`url-sha256:…`), or a domain name, `*.` for a wildcard, every label 1 to 63 of
/// `[A-Za-z0-9_-]`, 253 characters at most. The devices' own parser (`slate_filter::lists`)
/// skips any other line; a test holds the two to the same answers.
pub fn list_line_ok(line: &str) -> bool {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return true;
    }
    if line.split_once(':').is_some_and(|(kind, _)| kind.ends_with("-sha256")) {
        return true;
    }
    let name = line.strip_prefix("*.").unwrap_or(line);
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A pupil's tile picture and colour, spread by position in the class so neighbours differ.
/// The `issued_at` a change to what devices are told gets: the clock's time, but always
/// later than the one before (by at least a second, which every encoding keeps), so that a
/// server clock stepped back cannot make devices refuse new policies as older. Pure.
pub fn next_policy_version(previous: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match previous {
        Some(previous) if now <= previous => previous + chrono::Duration::seconds(1),
        _ => now,
    }
}

pub fn pupil_tile(index: usize) -> (&'static str, u8) {
    (PUPIL_SYMBOLS[index % PUPIL_SYMBOLS.len()], (index % COLOURS as usize) as u8)
}

/// Classes whose filter profile is not set up, so their pupils get the default profile's
/// rules instead: IT must be told (a roster's class "Year 5, Kingfishers" makes the profile
/// `year-5,-kingfishers`, which nobody will ever have made).
pub fn classes_without_profile<'c>(
    classes: &'c [ClassRecord],
    profiles: &[ProfileRecord],
) -> Vec<&'c ClassRecord> {
    classes
        .iter()
        .filter(|c| c.profile != DEFAULT_PROFILE && !profiles.iter().any(|p| p.name == c.profile))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use slate_protocol::kiosk::AppKind;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_policy_version_only_ever_grows() {
        let cases = [
            (None, "2026-11-17T10:00:00Z", "2026-11-17T10:00:00Z"),
            (Some("2026-11-17T09:00:00Z"), "2026-11-17T10:00:00Z", "2026-11-17T10:00:00Z"),
            // The clock stepped back a day: one second past the last version.
            (Some("2026-11-17T10:00:00Z"), "2026-11-16T10:00:00Z", "2026-11-17T10:00:01Z"),
            (Some("2026-11-17T10:00:00Z"), "2026-11-17T10:00:00Z", "2026-11-17T10:00:01Z"),
        ];
        for (previous, now, expected) in cases {
            assert_eq!(
                next_policy_version(previous.map(at), at(now)),
                at(expected),
                "{previous:?} {now}"
            );
        }
    }

    const PHC: &str = "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";

    pub(crate) fn records() -> PolicyRecords {
        PolicyRecords {
            changed_at: at("2026-11-23T08:00:00Z"),
            classes: vec![ClassRecord {
                id: 1,
                name: "Oak".into(),
                key_stage: KeyStage::Ks1,
                symbol: "tree".into(),
                colour: 3,
                profile: "oak".into(),
                apps: vec!["maths".into()],
            }],
            pupils: vec![
                PolicyPupil {
                    id: PupilId::new("p-1").unwrap(),
                    class_name: "Oak".into(),
                    first_name: "Amira".into(),
                    initial: "K".into(),
                    symbol: "star".into(),
                    colour: 0,
                    picture_pin: Some(vec!["moon".into(), "star".into(), "fish".into()]),
                    label: None,
                },
                PolicyPupil {
                    id: PupilId::new("p-2").unwrap(),
                    class_name: "Ash".into(),
                    first_name: "Ben".into(),
                    initial: "T".into(),
                    symbol: "fish".into(),
                    colour: 1,
                    picture_pin: None,
                    label: None,
                },
            ],
            apps: vec![App {
                id: "maths".into(),
                title: "Maths".into(),
                symbol: "numbers".into(),
                colour: 4,
                kind: AppKind::Web {
                    start_url: "https://www.topmarks.co.uk/maths".into(),
                    sites: vec!["https://www.topmarks.co.uk".into()],
                    camera: false,
                },
            }],
            staff_pins: vec![StaffPinRecord {
                id: StaffId::new("s-4f2a9c1e7b30").unwrap(),
                pin_phc: PHC.into(),
            }],
            sessions: SessionRules { idle_timeout_min: 15, lesson_ends: vec![] },
            lists: BTreeMap::from([(
                "adult".to_string(),
                ListFile { sha256: "a".repeat(64), bytes: 12 },
            )]),
            profiles: vec![ProfileRecord {
                name: "oak".into(),
                block_lists: vec![],
                allow_only: Some(vec!["ks1-sites".into()]),
                safe_search: "strict".into(),
            }],
            bypasses: vec![],
            url_salt: Some("00ff".into()),
            agreements: Vec::new(),
        }
    }

    #[test]
    fn the_kiosk_document_holds_only_the_classes_pupils_and_checks() {
        let text = kiosk_payload(&records(), None).unwrap();
        let policy = kiosk::parse_policy(&text).unwrap();
        assert_eq!(policy.classes[0].pupils.len(), 1, "a pupil of no known class is left out");
        assert_eq!(policy.classes[0].pupils[0].display_name(), "Amira K.");
        assert_eq!(policy.issued_at, Some(at("2026-11-23T08:00:00Z")));
        assert_eq!(policy.sessions.idle_timeout_min, 15);
        assert!(!text.contains("argon2") && !text.contains("pin_hash"), "no PIN hash: {text}");
    }

    #[test]
    fn languages_go_only_to_a_device_that_understands_them() {
        let r = records();
        let class = r.classes[0].name.clone();
        let languages = Languages {
            school: Some("cy".into()),
            classes: [(class, "en".into()), ("No such class".into(), "cy".into())].into(),
        };
        let text = kiosk_payload(&r, Some(&languages)).unwrap();
        let policy = kiosk::parse_policy(&text).unwrap();
        assert_eq!(policy.language.as_deref(), Some("cy"));
        assert_eq!(policy.language_of(None), "cy");
        assert_eq!(policy.language_of(Some(&policy.classes[0])), "en");
        // An older device: not a word of it (it would refuse the whole policy).
        let older = kiosk_payload(&r, None).unwrap();
        assert!(!older.contains("language"), "{older}");
        // A school that keeps English sends the same as before to every device.
        assert_eq!(kiosk_payload(&r, Some(&Languages::default())).unwrap(), older);
    }

    #[test]
    fn the_staff_document_holds_ids_and_hashes_only_and_checks() {
        let text = staff_payload(&records()).unwrap();
        let document = slate_protocol::staff::parse_staff_pins(&text).unwrap();
        assert_eq!(document.issued_at, at("2026-11-23T08:00:00Z"));
        assert_eq!(document.staff.len(), 1);
        assert_eq!(document.staff[0].id.as_str(), "s-4f2a9c1e7b30");
        assert_eq!(document.staff[0].pin_hash, PHC);
        let mut r = records();
        r.staff_pins.clear();
        assert!(slate_protocol::staff::parse_staff_pins(&staff_payload(&r).unwrap())
            .unwrap()
            .staff
            .is_empty());
        type Edit = fn(&mut PolicyRecords);
        let cases: [(Edit, &str); 3] = [
            (|r| r.staff_pins[0].pin_phc = "4821".into(), "staff[0].pin_hash"),
            (|r| r.staff_pins[0].id = StaffId::new("it").unwrap(), "staff[0].id"),
            (|r| r.staff_pins.push(r.staff_pins[0].clone()), "staff[1].id"),
        ];
        for (edit, field) in cases {
            let mut r = records();
            edit(&mut r);
            let err = staff_payload(&r).unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn a_kiosk_document_a_device_would_refuse_is_not_made() {
        type Edit = Box<dyn Fn(&mut PolicyRecords)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|r| r.classes.clear()), "classes"),
            (Box::new(|r| r.classes[0].apps = vec!["nope".into()]), "classes[0].apps[0]"),
            (Box::new(|r| r.pupils[0].first_name = "Amira Khan".into()), "first_name"),
            (Box::new(|r| r.sessions.idle_timeout_min = 0), "idle_timeout_min"),
        ];
        for (edit, field) in cases {
            let mut r = records();
            edit(&mut r);
            let err = kiosk_payload(&r, None).unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn the_filter_document_has_profiles_manifest_salt_and_live_bypasses_only() {
        let mut r = records();
        let bypass = |domain: &str, profile: &str, until: &str| ApprovedBypass {
            profile: profile.into(),
            domain: domain.into(),
            from: at("2026-11-23T09:00:00Z"),
            until: at(until),
            reason: "Year 5 history".into(),
            approved_by: "dsl.jones".into(),
        };
        r.bypasses = vec![
            bypass("live.example", "ash", "2026-11-23T11:00:00Z"),
            bypass("over.example", "oak", "2026-11-23T10:00:00Z"),
        ];
        let text = filter_payload(&r, at("2026-11-23T10:00:00Z"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["default_profile"], "default");
        assert_eq!(doc["profiles"]["default"]["safe_search"], "strict");
        assert_eq!(doc["profiles"]["oak"]["allow_only"], json!(["ks1-sites"]));
        assert_eq!(doc["profiles"]["oak"]["bypasses"], json!([]), "ended at 10:00");
        assert_eq!(doc["profiles"]["ash"]["bypasses"][0]["domain"], "live.example");
        assert_eq!(doc["profiles"]["ash"]["bypasses"][0]["approved_by"], "dsl.jones");
        assert_eq!(doc["profiles"]["ash"]["safe_search"], "strict", "default's rules copied");
        assert_eq!(doc["lists"]["adult"]["bytes"], 12);
        assert_eq!(doc["url_salt"], "00ff");
        assert_eq!(doc["issued_at"], "2026-11-23T08:00:00Z");
        r.url_salt = None;
        let doc: Value =
            serde_json::from_str(&filter_payload(&r, at("2026-11-23T10:00:00Z"))).unwrap();
        assert!(doc.get("url_salt").is_none());
    }

    #[test]
    fn profile_names_and_tiles() {
        assert_eq!(pupil_tile(0), ("star", 0));
        assert_eq!(pupil_tile(9), ("fish", 1));
    }

    #[test]
    fn classes_whose_profile_is_not_set_up_are_found() {
        let records = records();
        let class = |name: &str, profile: &str| ClassRecord {
            name: name.into(),
            profile: profile.into(),
            ..records.classes[0].clone()
        };
        let classes = [
            class("Oak", "oak"),
            class("Year 5, Kingfishers", &default_profile_name("Year 5, Kingfishers")),
            class("Nursery", DEFAULT_PROFILE),
            class("Ash", "ash"),
        ];
        let missing: Vec<(&str, &str)> = classes_without_profile(&classes, &records.profiles)
            .iter()
            .map(|c| (c.name.as_str(), c.profile.as_str()))
            .collect();
        assert_eq!(missing, [("Year 5, Kingfishers", "year-5,-kingfishers"), ("Ash", "ash")]);
        assert!(classes_without_profile(&classes[..1], &records.profiles).is_empty());
    }
}
