//! What devices are told, built from the school's records: the kiosk policy (classes, pupils by
//! first name and initial, apps, session rules), the filter policy (profiles, the list manifest,
//! approved bypasses, the URL salt) and the staff document (each enabled account's unlock PIN
//! hash under its pseudonymous id; no names). Pure: the records and the time come in, JSON
//! documents go out; signing and storage are the caller's.
//!
//! The server never signs what a device would refuse: the kiosk and staff documents are checked
//! with `slate_protocol::kiosk::parse_policy` and `slate_protocol::staff::parse_staff_pins`
//! before they are returned. No PIN hash is ever in the kiosk document (the kiosk user and its
//! apps can read it on the device): to a device that says it understands hashed picture PINs
//! ([`Form::hashed_picture_pins`]) the kiosk document gives each PIN's length only and the staff
//! document its hash; a device before them gets the plain pictures in the kiosk document, as
//! it always did.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use slate_protocol::agreement::SchoolAgreement;
use slate_protocol::device::ListFile;
pub use slate_protocol::kiosk::default_profile_name;
use slate_protocol::kiosk::{self, App, Class, KeyStage, Pupil, SessionRules};
use slate_protocol::staff::{self, PicturePinEntry, StaffPinEntry, StaffPins};
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
    /// The pictures to tap after the tile, in order (names from [`PUPIL_SYMBOLS`]). Kept in
    /// plain text on the server: the setup page shows it, so staff can tell a pupil theirs.
    pub picture_pin: Option<Vec<String>>,
    /// Its argon2id hash (`auth::hash_picture_pin`), made once when it was set; `None` for a
    /// PIN set by a server before hashes until the first policy fetch that needs it.
    pub picture_pin_phc: Option<String>,
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
    /// The languages staff saved on the languages page; `None` until the first save, when the
    /// config's `[languages]` are in force ([`PolicyRecords::languages_in_force`]).
    pub languages: Option<Languages>,
}

impl PolicyRecords {
    /// The languages devices are told: the page's once saved there, else the config's (which
    /// only seeds the defaults). Pure.
    pub fn languages_in_force<'a>(&'a self, config: &'a Languages) -> &'a Languages {
        self.languages.as_ref().unwrap_or(config)
    }
}

/// The language of the pupils' screens: the school's and each class's that differs, by class
/// name (the languages page, or `[languages]` in the server's config before its first save).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Languages {
    /// `None`: English.
    pub school: Option<String>,
    pub classes: BTreeMap<String, String>,
}

impl Languages {
    /// The school's language and each class's, kept the way devices are sent them: English as
    /// nothing at all (so a school that keeps it sends what older devices read) and a class
    /// only where it differs from the school. Codes are the caller's to check. Pure.
    pub fn normalised(school: Option<String>, classes: BTreeMap<String, String>) -> Languages {
        let english = |code: &String| code == slate_protocol::kiosk::DEFAULT_LANGUAGE;
        let school = school.filter(|c| !english(c));
        let school_is = |code: &String| school.as_ref().map_or(english(code), |s| s == code);
        let classes = classes.into_iter().filter(|(_, c)| !school_is(c)).collect();
        Languages { school, classes }
    }

    /// The school's language code (`en` when none is set).
    pub fn school_code(&self) -> &str {
        self.school.as_deref().unwrap_or(slate_protocol::kiosk::DEFAULT_LANGUAGE)
    }

    /// What the audit log says of them: `school cy; Oak en`.
    pub fn describe(&self) -> String {
        let mut text = format!("school {}", self.school_code());
        for (class, code) in &self.classes {
            text += &format!("; {class} {code}");
        }
        text
    }
}

/// What a device said it understands on the policy fetch (`?can=…`); each `false` gets the
/// form devices before it read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Form {
    /// `can=bundle_kind`: bundles that name their kind, signed over it.
    pub bundle_kinds: bool,
    /// `can=picture_pin_hash`: picture PINs as hashes in the staff document, only their length
    /// in the kiosk document.
    pub hashed_picture_pins: bool,
    /// `can=languages`: the school's and classes' languages in the kiosk document (one before
    /// them refuses the whole policy for the unknown field).
    pub languages: bool,
    /// `can=school_agreements`: the school's own acceptable use agreements in the kiosk
    /// document (one before them refuses the whole policy for the unknown field; without them
    /// it shows its built-in texts).
    pub school_agreements: bool,
}

/// The newer forms, what the device of this release asks for.
pub const NEWEST: Form = Form {
    bundle_kinds: true,
    hashed_picture_pins: true,
    languages: true,
    school_agreements: true,
};

/// The policy fetch's query: `can` (comma-separated; names this server does not know are
/// ignored, so a newer device can ask for more). Nothing else. Pure.
pub fn parse_policy_query(query: Option<&str>) -> Result<Form, String> {
    use slate_protocol::device::{
        CAN_BUNDLE_KIND, CAN_LANGUAGES, CAN_PICTURE_PIN_HASH, CAN_SCHOOL_AGREEMENTS,
    };
    let mut form = Form::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("can", value)) => {
                for can in value.split(',') {
                    form.bundle_kinds |= can == CAN_BUNDLE_KIND;
                    form.hashed_picture_pins |= can == CAN_PICTURE_PIN_HASH;
                    form.languages |= can == CAN_LANGUAGES;
                    form.school_agreements |= can == CAN_SCHOOL_AGREEMENTS;
                }
            }
            _ => return Err("unknown query parameter (can only)".to_owned()),
        }
    }
    Ok(form)
}

/// How a picture PIN is kept in `pupils.picture_pin`: the pictures with their hash, or (set by
/// a server before hashes) the bare list of pictures. No migration: the column holds JSON
/// either way, and an old row gets its hash the first time a device needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum StoredPicturePin {
    Hashed { pictures: Vec<String>, phc: String },
    Legacy(Vec<String>),
}

impl StoredPicturePin {
    /// Reads the column. Pure.
    pub fn parse(text: &str) -> Result<(Vec<String>, Option<String>), serde_json::Error> {
        Ok(match serde_json::from_str(text)? {
            StoredPicturePin::Hashed { pictures, phc } => (pictures, Some(phc)),
            StoredPicturePin::Legacy(pictures) => (pictures, None),
        })
    }

    /// What a server before hashes wrote for these pictures (to replace it only if unchanged).
    pub fn legacy_text(pictures: &[String]) -> String {
        serde_json::to_string(pictures).expect("a list of strings serialises")
    }

    pub fn hashed_text(pictures: &[String], phc: &str) -> String {
        let stored = StoredPicturePin::Hashed { pictures: pictures.to_vec(), phc: phc.to_owned() };
        serde_json::to_string(&stored).expect("a picture PIN serialises")
    }
}

/// Pupils whose picture PIN has no hash yet (set by a server before hashes): what must be
/// hashed before a device that wants hashes can be sent a policy. Pure.
pub fn unhashed_picture_pins(records: &PolicyRecords) -> Vec<(PupilId, Vec<String>)> {
    records
        .pupils
        .iter()
        .filter(|p| p.picture_pin_phc.is_none())
        .filter_map(|p| Some((p.id.clone(), p.picture_pin.clone()?)))
        .collect()
}

/// The kiosk policy document, checked as a device would check it: with plain picture PINs for
/// a device before hashes, with their lengths only for one that understands them; `languages`
/// and the school's own agreements only for a device that understands them.
pub fn kiosk_payload(
    records: &PolicyRecords,
    form: Form,
    languages: &Languages,
) -> Result<String, BuildError> {
    let languages = form.languages.then_some(languages);
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
                    picture_pin: p.picture_pin.clone().filter(|_| !form.hashed_picture_pins),
                    picture_pin_length: p
                        .picture_pin
                        .as_ref()
                        .filter(|_| form.hashed_picture_pins)
                        .map(|pin| u8::try_from(pin.len()).unwrap_or(u8::MAX)),
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
        agreements: match form.school_agreements {
            true => records.agreements.clone(),
            false => Vec::new(),
        },
        language: languages.and_then(|l| l.school.clone()),
    };
    let text = serde_json::to_string(&policy).expect("a kiosk policy serialises");
    kiosk::parse_policy(&text).map_err(|e| BuildError::Kiosk(e.to_string()))?;
    Ok(text)
}

/// The staff document: who may unlock and, for a device that understands them, the pupils'
/// picture PIN hashes; checked as a device would check it. A picture PIN without a hash (see
/// [`unhashed_picture_pins`]) is refused rather than left out, which would let anyone sign in
/// as that pupil.
pub fn staff_payload(records: &PolicyRecords, form: Form) -> Result<String, BuildError> {
    let mut picture_pins = Vec::new();
    if form.hashed_picture_pins {
        let classes: std::collections::HashSet<&str> =
            records.classes.iter().map(|c| c.name.as_str()).collect();
        for pupil in records.pupils.iter().filter(|p| classes.contains(p.class_name.as_str())) {
            match (&pupil.picture_pin, &pupil.picture_pin_phc) {
                (None, _) => {}
                (Some(_), Some(phc)) => {
                    picture_pins.push(PicturePinEntry { pupil: pupil.id.clone(), phc: phc.clone() })
                }
                (Some(_), None) => {
                    return Err(BuildError::Staff(format!(
                        "pupil {}'s picture PIN has no hash yet",
                        pupil.id.as_str()
                    )))
                }
            }
        }
    }
    let document = StaffPins {
        v: 1,
        issued_at: records.changed_at,
        staff: records
            .staff_pins
            .iter()
            .map(|r| StaffPinEntry { id: r.id.clone(), pin_hash: r.pin_phc.clone() })
            .collect(),
        picture_pins,
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
    const PICTURE_PHC: &str =
        "$argon2id$v=19$m=256,t=1,p=1$cGljdHVyZXNhbHQ$cGljdHVyZWhhc2hwaWN0dXJlaGFzaA";

    #[test]
    fn the_policy_query_says_which_forms_a_device_understands() {
        let both = Form {
            bundle_kinds: true,
            hashed_picture_pins: true,
            languages: false,
            school_agreements: false,
        };
        let cases: [(Option<&str>, Result<Form, ()>); 12] = [
            (None, Ok(Form::default())),
            (Some(""), Ok(Form::default())),
            (Some("can=bundle_kind,picture_pin_hash"), Ok(both)),
            (
                Some("can=picture_pin_hash"),
                Ok(Form { hashed_picture_pins: true, ..Form::default() }),
            ),
            (
                Some("can=from_a_newer_device,bundle_kind"),
                Ok(Form { bundle_kinds: true, ..Form::default() }),
            ),
            (Some("can=bundle_kind&can=picture_pin_hash"), Ok(both)),
            (Some("can=languages"), Ok(Form { languages: true, ..Form::default() })),
            (
                Some("can=bundle_kind,picture_pin_hash,languages"),
                Ok(Form { languages: true, ..both }),
            ),
            (
                Some("can=school_agreements"),
                Ok(Form { school_agreements: true, ..Form::default() }),
            ),
            (Some("can=bundle_kind,picture_pin_hash,languages,school_agreements"), Ok(NEWEST)),
            (Some("after=3"), Err(())),
            (Some("lang=cy"), Err(())),
        ];
        for (query, expected) in cases {
            assert_eq!(parse_policy_query(query).map_err(|_| ()), expected, "{query:?}");
        }
        assert_eq!(NEWEST, Form { languages: true, school_agreements: true, ..both });
        let path = slate_protocol::device::policy_path();
        assert_eq!(parse_policy_query(path.split_once('?').map(|(_, q)| q)), Ok(NEWEST));
    }

    /// A device before hashes gets the plain pictures in the kiosk document and nothing more
    /// in the staff one; a device that understands them gets the length and the hash, and no
    /// picture name anywhere.
    #[test]
    fn picture_pins_go_plain_to_old_devices_and_hashed_to_new_ones() {
        let old = Form::default();
        let kiosk =
            kiosk::parse_policy(&kiosk_payload(&records(), old, &Languages::default()).unwrap())
                .unwrap();
        let amira = &kiosk.classes[0].pupils[0];
        assert_eq!(amira.picture_pin.as_deref().unwrap(), ["moon", "star", "fish"]);
        assert_eq!(amira.picture_pin_length, None);
        let staff = staff_payload(&records(), old).unwrap();
        assert!(!staff.contains("picture_pins"), "{staff}");

        let kiosk_text = kiosk_payload(&records(), NEWEST, &Languages::default()).unwrap();
        let staff_text = staff_payload(&records(), NEWEST).unwrap();
        let kiosk = kiosk::parse_policy(&kiosk_text).unwrap();
        let amira = &kiosk.classes[0].pupils[0];
        assert_eq!((amira.picture_pin.as_ref(), amira.picture_pin_length), (None, Some(3)));
        let staff = slate_protocol::staff::parse_staff_pins(&staff_text).unwrap();
        assert_eq!(staff.picture_pins.len(), 1, "Ben has none; a pupil of no class is left out");
        assert_eq!(
            (staff.picture_pins[0].pupil.as_str(), staff.picture_pins[0].phc.as_str()),
            ("p-1", PICTURE_PHC)
        );
        for text in [&kiosk_text, &staff_text] {
            assert!(!text.contains("moon") && !text.contains("fish"), "{text}");
        }

        // A PIN set before hashes: the old form is made as ever, the new one refused until it
        // is hashed (never sent without it).
        let mut r = records();
        r.pupils[0].picture_pin_phc = None;
        assert_eq!(
            unhashed_picture_pins(&r),
            vec![(r.pupils[0].id.clone(), r.pupils[0].picture_pin.clone().unwrap())]
        );
        assert!(staff_payload(&r, old).is_ok());
        let err = staff_payload(&r, NEWEST).unwrap_err().to_string();
        assert!(err.contains("p-1") && err.contains("no hash"), "{err}");
        assert!(unhashed_picture_pins(&records()).is_empty());
    }

    #[test]
    fn a_stored_picture_pin_reads_in_either_form() {
        let pictures = vec!["moon".to_owned(), "star".to_owned()];
        let legacy = StoredPicturePin::legacy_text(&pictures);
        assert_eq!(legacy, r#"["moon","star"]"#, "what servers before hashes wrote");
        assert_eq!(StoredPicturePin::parse(&legacy).unwrap(), (pictures.clone(), None));
        let hashed = StoredPicturePin::hashed_text(&pictures, PICTURE_PHC);
        assert_eq!(StoredPicturePin::parse(&hashed).unwrap(), (pictures, Some(PICTURE_PHC.into())));
        assert!(StoredPicturePin::parse(r#"{"pictures":["moon"]}"#).is_err());
    }

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
                    picture_pin_phc: Some(PICTURE_PHC.into()),
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
                    picture_pin_phc: None,
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
            languages: None,
        }
    }

    #[test]
    fn the_kiosk_document_holds_only_the_classes_pupils_and_checks() {
        let text = kiosk_payload(&records(), Form::default(), &Languages::default()).unwrap();
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
        let text = kiosk_payload(&r, NEWEST, &languages).unwrap();
        let policy = kiosk::parse_policy(&text).unwrap();
        assert_eq!(policy.language.as_deref(), Some("cy"));
        assert_eq!(policy.language_of(None), "cy");
        assert_eq!(policy.language_of(Some(&policy.classes[0])), "en");
        // An older device: not a word of it (it would refuse the whole policy).
        let older = kiosk_payload(&r, Form { languages: false, ..NEWEST }, &languages).unwrap();
        assert!(!older.contains("language"), "{older}");
        // A school that keeps English sends the same as before to every device.
        assert_eq!(kiosk_payload(&r, NEWEST, &Languages::default()).unwrap(), older);
    }

    #[test]
    fn a_schools_own_agreement_goes_only_to_a_device_that_understands_it() {
        let mut r = records();
        let ours =
            SchoolAgreement::new(KeyStage::Ks1, 1, "Our promise".into(), vec!["Be kind.".into()]);
        r.agreements = vec![ours.clone()];
        let none = Languages::default();
        let text = kiosk_payload(&r, NEWEST, &none).unwrap();
        assert_eq!(kiosk::parse_policy(&text).unwrap().agreements, [ours]);
        // A device before them: not a word of it (it would refuse the whole policy).
        let older = Form { school_agreements: false, ..NEWEST };
        let older = kiosk_payload(&r, older, &none).unwrap();
        assert!(!older.contains("agreements") && !older.contains("Our promise"), "{older}");
        assert_eq!(older, kiosk_payload(&records(), NEWEST, &none).unwrap(), "as if it had none");
    }

    #[test]
    fn the_staff_document_holds_ids_and_hashes_only_and_checks() {
        let text = staff_payload(&records(), Form::default()).unwrap();
        let document = slate_protocol::staff::parse_staff_pins(&text).unwrap();
        assert_eq!(document.issued_at, at("2026-11-23T08:00:00Z"));
        assert_eq!(document.staff.len(), 1);
        assert_eq!(document.staff[0].id.as_str(), "s-4f2a9c1e7b30");
        assert_eq!(document.staff[0].pin_hash, PHC);
        let mut r = records();
        r.staff_pins.clear();
        assert!(slate_protocol::staff::parse_staff_pins(
            &staff_payload(&r, Form::default()).unwrap()
        )
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
            let err = staff_payload(&r, Form::default()).unwrap_err().to_string();
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
            let err =
                kiosk_payload(&r, Form::default(), &Languages::default()).unwrap_err().to_string();
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
