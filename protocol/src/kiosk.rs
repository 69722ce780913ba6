//! The kiosk policy: the school's classes, their pupils (first name and initial only), the apps
//! approved for each class and the session rules. It never holds a staff PIN or its hash: the
//! kiosk UI's user (and so every app a pupil runs) can read it; the unlock PINs travel in their
//! own document ([`crate::staff`]) that only `slated` reads. The school server makes it
//! and signs it ([`crate::bundle::SignedBundle`]); `slated` fetches and caches it; `slate-ui`
//! and `slated` read it. Owns parsing and checking it; must not read files or the network (the
//! caller hands in the text), and must never hold a pupil's full name: the format has no field
//! for one, and a first name with a space in it is refused.
//!
//! Anything that does not check means no policy, and the kiosk fails closed ("Ask your teacher").

use crate::agreement::SchoolAgreement;
use crate::PupilId;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("the policy is not valid JSON of the expected shape: {0}")]
    Shape(String),
    #[error("the policy has version {0}; this kiosk understands version 1")]
    Version(u32),
    #[error("the policy field `{field}` {problem}")]
    Field { field: String, problem: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStage {
    /// EYFS and Key Stage 1 (ages 4 to 7): the shorter agreement.
    Ks1,
    Ks2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pupil {
    /// The pseudonymous id that goes on the wire.
    pub id: PupilId,
    pub first_name: String,
    /// The first letter of the family name, nothing more.
    pub initial: String,
    /// The picture on the pupil's tile (see `ui/symbols.slint`).
    pub symbol: String,
    pub colour: u8,
    /// An optional picture PIN for older pupils: the pictures (symbol names) to tap, in order,
    /// after their tile. It keeps classmates from signing in as each other. The legacy form,
    /// sent only to devices that did not say they understand hashed picture PINs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_pin: Option<Vec<String>>,
    /// How many pictures the pupil's picture PIN has (the sign-in page shows that many dots):
    /// what a device that says `can=picture_pin_hash` gets instead of `picture_pin`. The PIN
    /// itself travels only as a salted, slow hash in the staff document
    /// ([`crate::staff::PicturePinEntry`]), which `slated` alone reads and checks taps against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_pin_length: Option<u8>,
    /// What the sign-in screen shows instead of "Amira K." when a classmate has the same first
    /// name and initial: "Amira Kh." (the family name's first letters, at most 3) or
    /// "Amira K. (2)". Absent otherwise, so a school without such classmates sends what
    /// devices before it understood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What a picture PIN's hash ([`crate::staff::PicturePinEntry`]) is taken of: the picture names in order as a JSON array
/// (`["moon","star","fish"]`), one encoding on the server and the device, with no two
/// sequences alike.
pub fn picture_pin_secret(pictures: &[String]) -> Vec<u8> {
    serde_json::to_vec(pictures).expect("a list of strings serialises")
}

impl Class {
    /// The filter profile in force while one of this class's pupils is signed in.
    pub fn filter_profile(&self) -> String {
        self.profile.clone().unwrap_or_else(|| default_profile_name(&self.name))
    }
}

/// A class's filter profile when none is given: its name lowercased, spaces as `-`
/// ("Year 2  Kingfishers" -> `year-2-kingfishers`).
pub fn default_profile_name(class_name: &str) -> String {
    class_name.trim().to_lowercase().split_whitespace().collect::<Vec<_>>().join("-")
}

impl Pupil {
    /// How many pictures this pupil's picture PIN has, in either form (`None`: no PIN).
    pub fn picture_pin_length(&self) -> Option<usize> {
        match (&self.picture_pin, self.picture_pin_length) {
            (Some(pin), _) => Some(pin.len()),
            (None, length) => length.map(usize::from),
        }
    }

    /// What the screen shows: "Amira K.", or the label that tells classmates apart.
    pub fn display_name(&self) -> String {
        self.label.clone().unwrap_or_else(|| format!("{} {}.", self.first_name, self.initial))
    }
}

/// Whether `label` is a sign-in label for this first name and initial: the first name, then
/// 1 to 3 letters of the family name starting with the initial and a full stop, then perhaps
/// " (2)" to " (99)". Never more of a name than that.
pub fn is_pupil_label(label: &str, first_name: &str, initial: &str) -> bool {
    let Some(rest) = label.strip_prefix(first_name).and_then(|r| r.strip_prefix(' ')) else {
        return false;
    };
    let (letters, number) = match rest.split_once(". (") {
        Some((letters, number)) => (letters, Some(number)),
        None => match rest.strip_suffix('.') {
            Some(letters) => (letters, None),
            None => return false,
        },
    };
    let letters_ok = (1..=3).contains(&letters.chars().count())
        && letters.chars().all(char::is_alphabetic)
        && letters.starts_with(initial);
    let number_ok = number.is_none_or(|n| {
        n.strip_suffix(')')
            .filter(|digits| !digits.starts_with('0') && digits.chars().all(|c| c.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u8>().ok())
            .is_some_and(|n| (2..=99).contains(&n))
    });
    letters_ok && number_ok
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Class {
    pub name: String,
    pub key_stage: KeyStage,
    pub symbol: String,
    pub colour: u8,
    /// Ids of the apps this class may use, in the order of the tiles.
    pub apps: Vec<String>,
    /// The filter profile its pupils get (a profile of the filter policy); when absent,
    /// [`default_profile_name`] of the class's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub pupils: Vec<Pupil>,
    /// The language of this class's screens when it differs from the school's ([`Policy::language`]):
    /// a Welsh-medium class in an English-medium school. Only sent to a device that said it
    /// understands languages (`can=languages`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum AppKind {
    /// Opens in Chromium in kiosk mode, confined to `sites`.
    Web {
        start_url: String,
        /// Sites the app may reach, as `https://host[/path]` prefixes.
        sites: Vec<String>,
        /// Whether the app may use the camera and microphone (off unless it needs them).
        #[serde(default)]
        camera: bool,
    },
    /// A program on the device, started with a per-session home directory.
    Native { command: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub id: String,
    pub title: String,
    pub symbol: String,
    pub colour: u8,
    /// `{"web": {...}}` or `{"native": {...}}`.
    pub kind: AppKind,
}

impl App {
    pub fn needs_internet(&self) -> bool {
        matches!(self.kind, AppKind::Web { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub v: u32,
    /// When the server issued it; a device never goes back to an older one. Absent in a
    /// hand-written local file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
    /// When sessions end by themselves.
    #[serde(default)]
    pub sessions: SessionRules,
    pub classes: Vec<Class>,
    pub apps: Vec<App>,
    /// The school's own acceptable use agreements, at most one per key stage; a key stage
    /// without one gets the device's built-in text. Absent when the school has none, so such a
    /// school sends what devices before schools' own texts understood.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agreements: Vec<SchoolAgreement>,
    /// The language of the screens for the whole school ([`check_language`]: `"cy"` for
    /// Welsh); absent is English. Each class may differ ([`Class::language`]). Only sent to a
    /// device that said it understands languages (`can=languages` on the policy request), as a
    /// device before languages refuses a policy with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// When a pupil's session ends without them signing out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRules {
    /// Minutes without a touch before the session ends (a pupil who walked away).
    pub idle_timeout_min: u32,
    /// Local times at which every session ends (the end of each lesson), e.g. `"10:30"`.
    #[serde(default)]
    pub lesson_ends: Vec<NaiveTime>,
}

impl Default for SessionRules {
    fn default() -> Self {
        Self { idle_timeout_min: 10, lesson_ends: Vec::new() }
    }
}

impl Policy {
    pub fn app(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.id == id)
    }

    /// The school's own agreement for a key stage, if it has one.
    pub fn agreement(&self, stage: KeyStage) -> Option<&SchoolAgreement> {
        self.agreements.iter().find(|a| a.key_stage == stage)
    }

    /// The language a class's screens are in: its own, else the school's, else English
    /// ([`DEFAULT_LANGUAGE`]). `None`: before a class is chosen (the school's).
    pub fn language_of<'a>(&'a self, class: Option<&'a Class>) -> &'a str {
        class
            .and_then(|c| c.language.as_deref())
            .or(self.language.as_deref())
            .unwrap_or(DEFAULT_LANGUAGE)
    }

    /// The apps of a class, in tile order.
    pub fn apps_of(&self, class: &Class) -> Vec<&App> {
        class.apps.iter().filter_map(|id| self.app(id)).collect()
    }
}

fn field(field: impl Into<String>, problem: impl Into<String>) -> PolicyError {
    PolicyError::Field { field: field.into(), problem: problem.into() }
}

/// Checks a web address the way the browser policy needs it: `https://` and a plain host name.
pub fn check_https(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").ok_or("is not an https:// address")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !host_ok {
        return Err("has no valid host name".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '*' || c == '"') {
        return Err("contains spaces, wildcards or control characters".into());
    }
    Ok(())
}

/// The language of screens when the policy names none.
pub const DEFAULT_LANGUAGE: &str = "en";

/// The languages this release's screens are in (`shell/ui/lang/`), code and own name. The
/// server offers only these; a device shows English for any other.
pub const LANGUAGES: &[(&str, &str)] = &[("en", "English"), ("cy", "Cymraeg")];

/// Checks a language: an ISO 639 code of 2 or 3 lowercase letters (`"en"`, `"cy"`). A device
/// without screens in that language shows English, so a newer server's language never stops
/// an older device. Pure.
pub fn check_language(code: &str) -> Result<(), String> {
    if (2..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err("must be a language code of 2 or 3 lowercase letters, e.g. \"cy\"".into())
    }
}

/// Shortest and longest picture PIN, in pictures.
pub const MIN_PICTURE_PIN: usize = 2;
pub const MAX_PICTURE_PIN: usize = 6;

/// Parses and checks a policy. Pure. Each error names the field it refuses.
pub fn parse_policy(text: &str) -> Result<Policy, PolicyError> {
    let policy: Policy =
        serde_json::from_str(text).map_err(|e| PolicyError::Shape(e.to_string()))?;
    if policy.v != 1 {
        return Err(PolicyError::Version(policy.v));
    }
    let mut app_ids = std::collections::HashSet::new();
    for (i, app) in policy.apps.iter().enumerate() {
        let at = |f: &str| format!("apps[{i}].{f}");
        if app.id.is_empty() || !app.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(field(at("id"), "must be letters, digits and dashes"));
        }
        if !app_ids.insert(app.id.as_str()) {
            return Err(field(at("id"), format!("repeats the id {:?}", app.id)));
        }
        if app.title.trim().is_empty() || app.title.chars().count() > 24 {
            return Err(field(at("title"), "must be 1 to 24 characters"));
        }
        match &app.kind {
            AppKind::Web { start_url, sites, .. } => {
                check_https(start_url).map_err(|p| field(at("start_url"), p))?;
                if sites.is_empty() {
                    return Err(field(at("sites"), "is empty: a web app needs at least one site"));
                }
                for (j, site) in sites.iter().enumerate() {
                    check_https(site).map_err(|p| field(at(&format!("sites[{j}]")), p))?;
                }
            }
            AppKind::Native { command } => {
                if !command.first().is_some_and(|p| p.starts_with('/')) {
                    return Err(field(at("command"), "must start with an absolute program path"));
                }
            }
        }
    }
    if !(1..=240).contains(&policy.sessions.idle_timeout_min) {
        return Err(field("sessions.idle_timeout_min", "must be 1 to 240 minutes"));
    }
    if policy.classes.is_empty() {
        return Err(field("classes", "is empty"));
    }
    if let Some(language) = &policy.language {
        check_language(language).map_err(|p| field("language", p))?;
    }
    let mut pupil_ids = std::collections::HashSet::new();
    for (i, class) in policy.classes.iter().enumerate() {
        let at = |f: &str| format!("classes[{i}].{f}");
        if class.name.trim().is_empty() || class.name.chars().count() > 20 {
            return Err(field(at("name"), "must be 1 to 20 characters"));
        }
        if let Some(language) = &class.language {
            check_language(language).map_err(|p| field(at("language"), p))?;
        }
        for (j, id) in class.apps.iter().enumerate() {
            if policy.app(id).is_none() {
                return Err(field(at(&format!("apps[{j}]")), format!("names no app: {id:?}")));
            }
        }
        for (j, pupil) in class.pupils.iter().enumerate() {
            let at = |f: &str| format!("classes[{i}].pupils[{j}].{f}");
            let name = &pupil.first_name;
            if name.is_empty()
                || name.chars().count() > 16
                || !name.chars().all(|c| c.is_alphabetic() || c == '-' || c == '\'')
            {
                return Err(field(
                    at("first_name"),
                    "must be one first name (letters, - or '), at most 16 characters: never a full name",
                ));
            }
            if let Some(pin) = &pupil.picture_pin {
                if !(MIN_PICTURE_PIN..=MAX_PICTURE_PIN).contains(&pin.len())
                    || pin.iter().any(|s| s.is_empty() || s.len() > 16)
                {
                    return Err(field(
                        at("picture_pin"),
                        format!("must be {MIN_PICTURE_PIN} to {MAX_PICTURE_PIN} picture names"),
                    ));
                }
            }
            if let Some(length) = pupil.picture_pin_length {
                if pupil.picture_pin.is_some() {
                    return Err(field(at("picture_pin_length"), "comes with a plain picture_pin"));
                }
                if !(MIN_PICTURE_PIN..=MAX_PICTURE_PIN).contains(&length.into()) {
                    return Err(field(
                        at("picture_pin_length"),
                        format!("must be {MIN_PICTURE_PIN} to {MAX_PICTURE_PIN}"),
                    ));
                }
            }
            let mut initial = pupil.initial.chars();
            if !(initial.next().is_some_and(char::is_alphabetic) && initial.next().is_none()) {
                return Err(field(at("initial"), "must be exactly one letter"));
            }
            if let Some(label) = &pupil.label {
                if !is_pupil_label(label, &pupil.first_name, &pupil.initial) {
                    return Err(field(
                        at("label"),
                        "must be the first name, 1 to 3 letters of the family name from the initial and a full stop, perhaps then (2) to (99)",
                    ));
                }
            }
            if !pupil_ids.insert(pupil.id.clone()) {
                return Err(field(at("id"), "repeats another pupil's id"));
            }
        }
    }
    for (i, agreement) in policy.agreements.iter().enumerate() {
        agreement.check().map_err(|(f, problem)| field(format!("agreements[{i}].{f}"), problem))?;
        if policy.agreements[..i].iter().any(|a| a.key_stage == agreement.key_stage) {
            return Err(field(format!("agreements[{i}].key_stage"), "repeats a key stage"));
        }
    }
    Ok(policy)
}

/// A small policy for previews, tests and the demo: two classes, made-up first names.
pub const SAMPLE_POLICY: &str = include_str!("../data/sample-kiosk-policy.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_is_checked_and_a_class_may_differ_from_the_school() {
        let mut policy = parse_policy(SAMPLE_POLICY).unwrap();
        assert_eq!(policy.language_of(None), "en");
        assert_eq!(policy.language_of(Some(&policy.classes[0])), "en");
        policy.language = Some("cy".into());
        policy.classes[1].language = Some("en".into());
        let text = serde_json::to_string(&policy).unwrap();
        let policy = parse_policy(&text).unwrap();
        assert_eq!(policy.language_of(None), "cy");
        assert_eq!(policy.language_of(Some(&policy.classes[0])), "cy");
        assert_eq!(policy.language_of(Some(&policy.classes[1])), "en");
        for (code, ok) in [
            ("cy", true),
            ("fil", true),
            ("c", false),
            ("CY", false),
            ("cy-GB", false),
            ("", false),
        ] {
            assert_eq!(check_language(code).is_ok(), ok, "{code:?}");
        }
        let mut bad = policy.clone();
        bad.classes[0].language = Some("Welsh".into());
        let err = parse_policy(&serde_json::to_string(&bad).unwrap()).unwrap_err();
        assert!(err.to_string().contains("classes[0].language"), "{err}");
        bad.classes[0].language = None;
        bad.language = Some("cymraeg".into());
        let err = parse_policy(&serde_json::to_string(&bad).unwrap()).unwrap_err();
        assert!(err.to_string().contains("`language`"), "{err}");
        assert!(LANGUAGES.iter().all(|(code, _)| check_language(code).is_ok()));
    }

    #[test]
    fn a_policy_without_languages_is_what_older_devices_read() {
        let policy = parse_policy(SAMPLE_POLICY).unwrap();
        let text = serde_json::to_string(&policy).unwrap();
        assert!(!text.contains("language"), "{text}");
    }

    #[test]
    fn the_sample_policy_checks() {
        let policy = parse_policy(SAMPLE_POLICY).unwrap();
        assert_eq!(policy.classes[0].pupils[0].display_name(), "Amira K.");
        assert_eq!(policy.apps_of(&policy.classes[0]).len(), policy.classes[0].apps.len());
    }

    #[test]
    fn a_label_tells_classmates_apart_with_no_more_of_a_name() {
        let cases = [
            ("Amira K.", true),
            ("Amira Kh.", true),
            ("Amira Kha.", true),
            ("Amira K. (2)", true),
            ("Amira Kh. (99)", true),
            ("Amira Khan.", false),
            ("Amira Khan", false),
            ("Amira Ba.", false),
            ("Amira K. (1)", false),
            ("Amira K. (02)", false),
            ("Amira K. (100)", false),
            ("Amira K. (2) x", false),
            ("Amira K.(2)", false),
            ("Ben K.", false),
            ("Amira K-.", false),
            ("Amira .", false),
        ];
        for (label, ok) in cases {
            assert_eq!(is_pupil_label(label, "Amira", "K"), ok, "{label:?}");
        }
        let policy = with(|v| v["classes"][0]["pupils"][0]["label"] = "Amira Kh. (2)".into());
        assert_eq!(policy.unwrap().classes[0].pupils[0].display_name(), "Amira Kh. (2)");
    }

    fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Policy, PolicyError> {
        let mut value: serde_json::Value = serde_json::from_str(SAMPLE_POLICY).unwrap();
        edit(&mut value);
        parse_policy(&value.to_string())
    }

    #[test]
    fn bad_policies_name_the_field() {
        use serde_json::json;
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|v| v["v"] = json!(2)), "version 2"),
            (Box::new(|v| v["classes"] = json!([])), "`classes` is empty"),
            (
                Box::new(|v| v["classes"][0]["pupils"][0]["first_name"] = json!("Amira Khan")),
                "classes[0].pupils[0].first_name",
            ),
            (
                Box::new(|v| v["classes"][0]["pupils"][0]["surname"] = json!("Khan")),
                "unknown field `surname`",
            ),
            (
                Box::new(|v| v["classes"][0]["pupils"][0]["initial"] = json!("Kh")),
                "classes[0].pupils[0].initial",
            ),
            (
                Box::new(|v| v["classes"][0]["pupils"][0]["label"] = json!("Amira Khan")),
                "classes[0].pupils[0].label",
            ),
            (
                Box::new(|v| {
                    v["classes"][0]["pupils"][1]["id"] = v["classes"][0]["pupils"][0]["id"].clone()
                }),
                "classes[0].pupils[1].id",
            ),
            (Box::new(|v| v["classes"][0]["pupils"][0]["id"] = json!("Amira K")), "shape"),
            (Box::new(|v| v["classes"][1]["apps"] = json!(["nope"])), "classes[1].apps[0]"),
            (
                Box::new(|v| v["apps"][0]["kind"]["web"]["sites"] = json!(["http://example.org"])),
                "apps[0].sites[0]` is not an https",
            ),
            (
                Box::new(|v| {
                    v["apps"][0]["kind"]["web"]["sites"] = json!(["https://*.example.org"])
                }),
                "apps[0].sites[0]",
            ),
            (
                Box::new(|v| v["apps"][0]["kind"]["web"]["sites"] = json!([])),
                "apps[0].sites` is empty",
            ),
            (
                Box::new(|v| {
                    v["apps"][0]["kind"]["web"]["start_url"] = json!("file:///etc/passwd")
                }),
                "apps[0].start_url",
            ),
            (Box::new(|v| v["apps"][1]["id"] = v["apps"][0]["id"].clone()), "apps[1].id"),
            (Box::new(|v| v["apps"][1]["title"] = json!("")), "apps[1].title"),
            (
                Box::new(|v| v["sessions"] = json!({"idle_timeout_min": 0})),
                "sessions.idle_timeout_min",
            ),
            (
                Box::new(|v| {
                    v["sessions"] = json!({"idle_timeout_min": 5, "lesson_ends": ["25:00"]})
                }),
                "shape",
            ),
            (
                Box::new(|v| {
                    v["staff_pin_hash"] = json!("$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaA")
                }),
                "unknown field `staff_pin_hash`",
            ),
            (
                Box::new(|v| v["classes"][1]["pupils"][0]["picture_pin"] = json!(["star"])),
                "classes[1].pupils[0].picture_pin",
            ),
            (
                Box::new(|v| {
                    v["classes"][1]["pupils"][0]["picture_pin_length"] = json!(3);
                    v["classes"][1]["pupils"][0]["picture_pin"] = json!(["star", "moon", "sun"]);
                }),
                "classes[1].pupils[0].picture_pin_length` comes with a plain",
            ),
            (
                Box::new(|v| v["classes"][1]["pupils"][0]["picture_pin_length"] = json!(7)),
                "classes[1].pupils[0].picture_pin_length` must be 2 to 6",
            ),
            (
                Box::new(|v| v["classes"][1]["pupils"][0]["picture_pin_length"] = json!(1)),
                "classes[1].pupils[0].picture_pin_length` must be 2 to 6",
            ),
            (
                Box::new(|v| {
                    v["classes"][1]["pupils"][0]["picture_pin_hash"] = json!("$argon2id$")
                }),
                "unknown field `picture_pin_hash`",
            ),
            (
                Box::new(|v| {
                    v["agreements"] = json!([agreement("ks1", 1, "T", &[&"x".repeat(73)])])
                }),
                "agreements[0].promises` promise 1 is 73 characters",
            ),
            (
                Box::new(|v| v["agreements"] = json!([agreement("ks1", 1, "", &["One."])])),
                "agreements[0].title` the title is empty",
            ),
            (
                Box::new(|v| {
                    let mut a = agreement("ks2", 1, "T", &["One."]);
                    a["promises"] = json!(["Something else."]);
                    v["agreements"] = json!([a])
                }),
                "agreements[0].text_version",
            ),
            (
                Box::new(|v| {
                    v["agreements"] = json!([
                        agreement("ks1", 1, "T", &["A."]),
                        agreement("ks1", 2, "T", &["B."])
                    ])
                }),
                "agreements[1].key_stage` repeats",
            ),
            (
                Box::new(|v| {
                    let mut a = agreement("ks1", 1, "T", &["One."]);
                    a["audio"] = json!("x.ogg");
                    v["agreements"] = json!([a])
                }),
                "unknown field `audio`",
            ),
        ];
        for (edit, expected) in cases {
            let err = with(edit).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
    }

    #[test]
    fn a_hashed_picture_pin_reads_as_its_length() {
        let policy =
            with(|v| v["classes"][1]["pupils"][0]["picture_pin_length"] = 3.into()).unwrap();
        let pupil = &policy.classes[1].pupils[0];
        assert_eq!(pupil.picture_pin_length(), Some(3));
        assert_eq!(pupil.picture_pin, None);
        assert_eq!(parse_policy(&serde_json::to_string(&policy).unwrap()).unwrap(), policy);
        assert_eq!(policy.classes[0].pupils[1].picture_pin_length(), None);
        let pictures = ["moon".to_owned(), "star".to_owned()];
        assert_eq!(picture_pin_secret(&pictures), br#"["moon","star"]"#);
    }

    /// A school's agreement as the server writes it.
    fn agreement(stage: &str, version: u32, title: &str, promises: &[&str]) -> serde_json::Value {
        let stage_enum = if stage == "ks1" { KeyStage::Ks1 } else { KeyStage::Ks2 };
        let promises: Vec<String> = promises.iter().map(|p| p.to_string()).collect();
        let a = SchoolAgreement::new(stage_enum, version, title.into(), promises);
        serde_json::to_value(a).unwrap()
    }

    #[test]
    fn a_schools_own_agreements_are_optional() {
        // A policy from a server older than schools' own texts (the sample has none) reads,
        // with no agreements, and is written back without the field.
        let old = parse_policy(SAMPLE_POLICY).unwrap();
        assert!(old.agreements.is_empty() && old.agreement(KeyStage::Ks1).is_none());
        assert!(!serde_json::to_string(&old).unwrap().contains("agreements"));
        // One with the school's KS2 text reads; KS1 keeps the built-in.
        let ks2 = agreement("ks2", 4, "We stay safe", &["We ask first.", "We tell an adult."]);
        let policy = with(|v| v["agreements"] = serde_json::json!([ks2])).unwrap();
        assert!(policy.agreement(KeyStage::Ks1).is_none());
        let ours = policy.agreement(KeyStage::Ks2).unwrap();
        assert_eq!((ours.version, ours.promises.len()), (4, 2));
        let text = serde_json::to_string(&policy).unwrap();
        assert_eq!(parse_policy(&text).unwrap(), policy);
    }

    #[test]
    fn a_policy_round_trips_with_its_session_rules() {
        let mut policy = parse_policy(SAMPLE_POLICY).unwrap();
        policy.sessions = SessionRules {
            idle_timeout_min: 15,
            lesson_ends: vec![NaiveTime::from_hms_opt(10, 30, 0).unwrap()],
        };
        policy.issued_at = Some("2026-11-23T08:00:00Z".parse().unwrap());
        let text = serde_json::to_string(&policy).unwrap();
        assert!(text.contains(r#""lesson_ends":["10:30:00"]"#), "{text}");
        assert_eq!(parse_policy(&text).unwrap(), policy);
    }

    #[test]
    fn a_class_names_its_filter_profile() {
        let mut policy = parse_policy(SAMPLE_POLICY).unwrap();
        assert_eq!(default_profile_name(" Year 2  Kingfishers "), "year-2-kingfishers");
        assert_eq!(policy.classes[0].filter_profile(), "oak");
        policy.classes[0].profile = Some("ks1".into());
        assert_eq!(policy.classes[0].filter_profile(), "ks1");
    }

    #[test]
    fn https_addresses() {
        for ok in
            ["https://example.org", "https://www.bbc.co.uk/bitesize", "https://a-b.example/x?y=1"]
        {
            assert_eq!(check_https(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://example.org",
            "https://",
            "https:///x",
            "https://a..b",
            "https://ex ample.org",
            "https://ex_ample.org",
            "chrome://settings",
            "https://example.org/*",
        ] {
            assert!(check_https(bad).is_err(), "{bad}");
        }
    }
}
