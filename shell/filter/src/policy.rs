//! The filtering policy the school server sends: per profile (a class or age group) which lists
//! apply, how strict safe search is, and which time-bound bypasses teachers asked for. Pure:
//! parses, validates and opens signed bundles from bytes handed to it; no files, no clock.
//!
//! ```json
//! {"v":1,"issued_at":"2026-11-17T08:00:00Z","default_profile":"ks2",
//!  "profiles":{
//!    "ks1":{"allow_only":["ks1-sites"],"safe_search":"strict"},
//!    "ks2":{"block_lists":["adult","gambling"],"safe_search":"strict",
//!           "bypasses":[{"domain":"example.org","from":"2026-11-17T10:00:00Z",
//!                        "until":"2026-11-17T11:00:00Z","reason":"Year 5 history lesson",
//!                        "approved_by":"staff-42"}]}},
//!  "lists":{"adult":{"sha256":"<64 hex>","bytes":123456},"gambling":{…},"ks1-sites":{…},
//!           "iwf":{…}},
//!  "url_salt":"<hex>"}
//! ```
//!
//! `lists` is the manifest of list files (see [`crate::source`]): the device loads exactly these,
//! and only when a file's size and SHA-256 match. A list a profile names that is not in the
//! manifest, or whose file did not match, is "not loaded" and that profile refuses every name
//! (fail closed). `url_salt` (optional, hex) salts the URL-layer list lines
//! (`url-sha256:<hex>`) the kiosk browser checks; the DNS layer skips those lines.
//!
//! It arrives as the payload of a [`SignedBundle`]; see [`Policy::open`].

use crate::lists::Category;
use crate::name;
use crate::safesearch::SafeSearchLevel;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use slate_protocol::bundle::{BundleKind, SignedBundle};
use slate_protocol::device::ListFile;
use slate_protocol::ProtocolError;
use std::collections::BTreeMap;

/// The policy document version this build reads.
pub const POLICY_VERSION: u16 = 1;
/// Longest bypass accepted: a bypass is "time-bound" (seed 003), so one that never ends in
/// practice is refused rather than trusted.
pub const MAX_BYPASS_DAYS: i64 = 366;

/// Why a policy was refused. The device keeps its last good policy (or fails closed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policy bundle refused: {0}")]
    Bundle(#[from] ProtocolError),
    #[error("policy is not valid JSON: {0}")]
    Malformed(String),
    #[error("policy version {0} is not supported (this build reads {POLICY_VERSION})")]
    UnsupportedVersion(u16),
    #[error("invalid policy field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error("policy issued at {offered} is older than the one in force (issued at {current})")]
    Older { offered: DateTime<Utc>, current: DateTime<Utc> },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError::Invalid { field: field.into(), reason: reason.into() }
}

/// The whole filtering policy for one school's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub v: u16,
    /// When the server issued it; a device never goes back to an older one (a replayed old
    /// bundle must not bring back an expired bypass or a weaker list set).
    pub issued_at: DateTime<Utc>,
    /// The profile in force when nobody is signed in, or the signed-in pupil's profile is not
    /// in this policy.
    pub default_profile: String,
    pub profiles: BTreeMap<String, Profile>,
    /// The signed manifest of list files: name to SHA-256 and size.
    #[serde(default)]
    pub lists: BTreeMap<String, ListFile>,
    /// Salt (hex) of the URL-layer list lines (`url-sha256:<hex of sha256(salt + URL)>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_salt: Option<String>,
}

/// The rules for one class or age group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Names of block lists to enforce. Illegal-content and DoH lists apply whether named or not.
    #[serde(default)]
    pub block_lists: Vec<String>,
    /// Allow-list-only mode (the youngest classes): when set, only names on these lists resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_only: Option<Vec<String>>,
    #[serde(default)]
    pub safe_search: SafeSearchLevel,
    #[serde(default)]
    pub bypasses: Vec<Bypass>,
}

/// A teacher's time-bound exception: `domain` and every name under it skip the profile's block
/// lists and allow-only mode from `from` until `until`. It never lifts an illegal-content or
/// DoH list, and never turns safe search off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bypass {
    pub domain: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Why, as the teacher gave it (seed 004: "auditable, with clear reasons").
    pub reason: String,
    /// The staff member who approved it, by staff id.
    pub approved_by: String,
}

impl Bypass {
    /// In force at `now`: from `from` (inclusive) to `until` (exclusive).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.from <= now && now < self.until
    }

    /// Covers `name` (normalised) while active.
    pub fn covers(&self, name: &str) -> bool {
        name::is_within(name, &self.domain)
    }
}

impl Policy {
    /// Opens a signed policy bundle (slated's `filter.json`): checks that it is a filter policy
    /// (or the legacy form with no kind that the release before wrote) and the signature against
    /// the school server's key, then parses and validates the payload. A bad signature or
    /// another kind of bundle is refused before the payload is read.
    pub fn open(bundle: &[u8], key: &VerifyingKey) -> Result<Self, PolicyError> {
        let payload = SignedBundle::open_cached_as(BundleKind::FilterPolicy, bundle, key)?;
        Self::from_json(&payload)
    }

    /// Parses and validates a policy document (already trusted).
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let mut policy: Policy =
            serde_json::from_str(text).map_err(|e| PolicyError::Malformed(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Checks what types cannot, and normalises bypass domains.
    fn validate(&mut self) -> Result<(), PolicyError> {
        if self.v != POLICY_VERSION {
            return Err(PolicyError::UnsupportedVersion(self.v));
        }
        if !self.profiles.contains_key(&self.default_profile) {
            return Err(invalid("default_profile", "names no profile in `profiles`"));
        }
        for (pname, profile) in &mut self.profiles {
            check_id(&format!("profiles.{pname}"), pname)?;
            let lists = profile.block_lists.iter().chain(profile.allow_only.iter().flatten());
            for list in lists {
                check_id(&format!("profiles.{pname}.lists"), list)?;
            }
            if profile.allow_only.as_ref().is_some_and(Vec::is_empty) {
                return Err(invalid(
                    format!("profiles.{pname}.allow_only"),
                    "names no allow list (nothing would resolve)",
                ));
            }
            for (i, bypass) in profile.bypasses.iter_mut().enumerate() {
                let field = format!("profiles.{pname}.bypasses[{i}]");
                bypass.domain = name::normalise(&bypass.domain)
                    .ok_or_else(|| invalid(format!("{field}.domain"), "is not a domain name"))?;
                if bypass.until <= bypass.from {
                    return Err(invalid(format!("{field}.until"), "is not after `from`"));
                }
                if bypass.until - bypass.from > Duration::days(MAX_BYPASS_DAYS) {
                    return Err(invalid(
                        format!("{field}.until"),
                        format!("bypass lasts over {MAX_BYPASS_DAYS} days"),
                    ));
                }
                check_text(&format!("{field}.reason"), &bypass.reason, 512)?;
                check_text(&format!("{field}.approved_by"), &bypass.approved_by, 64)?;
            }
        }
        for (name, file) in &self.lists {
            file.validate(name).map_err(|e| match e {
                ProtocolError::InvalidField { field, reason } if field == "list" => {
                    invalid(format!("lists.{name}"), reason)
                }
                ProtocolError::InvalidField { field, reason } => invalid(field, reason),
                other => invalid(format!("lists.{name}"), other.to_string()),
            })?;
        }
        if let Some(salt) = &self.url_salt {
            let hex = (2..=128).contains(&salt.len())
                && salt.len() % 2 == 0
                && salt.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(invalid("url_salt", "is not 2 to 128 lowercase hex digits"));
            }
        }
        Ok(())
    }

    /// The profile called `name`, or the default profile.
    pub fn profile(&self, name: Option<&str>) -> &Profile {
        name.and_then(|n| self.profiles.get(n))
            .unwrap_or_else(|| &self.profiles[&self.default_profile])
    }
}

fn check_id(field: &str, id: &str) -> Result<(), PolicyError> {
    let ok = (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(field, format!("{id:?} is not 1 to 64 of [A-Za-z0-9_-]")))
    }
}

fn check_text(field: &str, text: &str, limit: usize) -> Result<(), PolicyError> {
    if text.trim().is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if text.len() > limit || text.chars().any(char::is_control) {
        return Err(invalid(field, format!("is over {limit} bytes or has control characters")));
    }
    Ok(())
}

/// Whether a list of `category` may be lifted by a bypass.
pub fn bypass_can_lift(category: Category) -> bool {
    !category.is_always_enforced()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    pub(crate) const EXAMPLE: &str = r#"{"v":1,"issued_at":"2026-11-17T08:00:00Z","default_profile":"ks2",
 "profiles":{
   "ks1":{"allow_only":["ks1-sites"],"safe_search":"strict"},
   "ks2":{"block_lists":["adult","gambling"],"safe_search":"moderate",
          "bypasses":[{"domain":"Example.ORG.","from":"2026-11-17T10:00:00Z",
                       "until":"2026-11-17T11:00:00Z","reason":"Year 5 history lesson",
                       "approved_by":"staff-42"}]}}}"#;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_documented_example_parses() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        assert_eq!(p.default_profile, "ks2");
        let ks2 = p.profile(Some("ks2"));
        assert_eq!(ks2.block_lists, ["adult", "gambling"]);
        assert_eq!(ks2.safe_search, SafeSearchLevel::Moderate);
        assert_eq!(ks2.bypasses[0].domain, "example.org", "bypass domains are normalised");
        assert_eq!(
            p.profile(Some("ks1")).allow_only.as_deref(),
            Some(&["ks1-sites".to_string()][..])
        );
        assert_eq!(p.profile(Some("no-such-class")), ks2, "unknown profiles fall back to default");
        assert_eq!(p.profile(None), ks2);
    }

    #[test]
    fn the_list_manifest_and_url_salt_are_read() {
        let mut doc: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        doc["lists"] = serde_json::json!({"adult": {"sha256": "0".repeat(64), "bytes": 12}});
        doc["url_salt"] = "00ff".into();
        let p = Policy::from_json(&doc.to_string()).unwrap();
        assert_eq!(p.lists["adult"], ListFile { sha256: "0".repeat(64), bytes: 12 });
        assert_eq!(p.url_salt.as_deref(), Some("00ff"));
        let plain = Policy::from_json(EXAMPLE).unwrap();
        assert!(plain.lists.is_empty() && plain.url_salt.is_none(), "both are optional");
    }

    #[test]
    fn a_bypass_is_active_from_its_start_until_just_before_its_end() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let b = &p.profile(None).bypasses[0];
        assert!(!b.is_active(at("2026-11-17T09:59:59Z")));
        assert!(b.is_active(at("2026-11-17T10:00:00Z")));
        assert!(b.is_active(at("2026-11-17T10:59:59.999Z")));
        assert!(!b.is_active(at("2026-11-17T11:00:00Z")));
        assert!(b.covers("www.example.org") && b.covers("example.org"));
        assert!(!b.covers("notexample.org"));
    }

    #[test]
    fn invalid_policies_name_what_is_wrong() {
        let base: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("version", Box::new(|p| p["v"] = 2.into()), "version 2"),
            ("default", Box::new(|p| p["default_profile"] = "ks9".into()), "default_profile"),
            (
                "unknown field",
                Box::new(|p| p["profiles"]["ks2"]["off"] = true.into()),
                "unknown field",
            ),
            (
                "no safe search off",
                Box::new(|p| p["profiles"]["ks2"]["safe_search"] = "off".into()),
                "unknown variant",
            ),
            (
                "empty allow",
                Box::new(|p| p["profiles"]["ks1"]["allow_only"] = serde_json::json!([])),
                "allow_only",
            ),
            (
                "list name",
                Box::new(|p| p["profiles"]["ks2"]["block_lists"][0] = "a b".into()),
                "lists",
            ),
            (
                "bypass domain",
                Box::new(|p| p["profiles"]["ks2"]["bypasses"][0]["domain"] = "not a domain".into()),
                "bypasses[0].domain",
            ),
            (
                "bypass backwards",
                Box::new(|p| {
                    p["profiles"]["ks2"]["bypasses"][0]["until"] = "2026-11-17T09:00:00Z".into()
                }),
                "bypasses[0].until",
            ),
            (
                "bypass forever",
                Box::new(|p| {
                    p["profiles"]["ks2"]["bypasses"][0]["until"] = "2036-11-17T09:00:00Z".into()
                }),
                "366 days",
            ),
            (
                "no reason",
                Box::new(|p| p["profiles"]["ks2"]["bypasses"][0]["reason"] = " ".into()),
                "reason",
            ),
            (
                "no approver",
                Box::new(|p| p["profiles"]["ks2"]["bypasses"][0]["approved_by"] = "".into()),
                "approved_by",
            ),
            (
                "list hash",
                Box::new(|p| {
                    p["lists"] = serde_json::json!({"adult": {"sha256": "AB", "bytes": 1}})
                }),
                "lists.adult.sha256",
            ),
            (
                "list file name",
                Box::new(|p| {
                    p["lists"] = serde_json::json!({"../x": {"sha256": "a".repeat(64), "bytes": 1}})
                }),
                "lists.../x",
            ),
            (
                "list size",
                Box::new(|p| p["lists"] = serde_json::json!({"adult": {"sha256": "a".repeat(64)}})),
                "bytes",
            ),
            ("url salt", Box::new(|p| p["url_salt"] = "0G".into()), "url_salt"),
            ("odd url salt", Box::new(|p| p["url_salt"] = "abc".into()), "url_salt"),
            (
                "missing until",
                Box::new(|p| {
                    p["profiles"]["ks2"]["bypasses"][0].as_object_mut().unwrap().remove("until");
                }),
                "until",
            ),
        ];
        for (name, edit, expected) in cases {
            let mut doc = base.clone();
            edit(&mut doc);
            let err = Policy::from_json(&doc.to_string()).expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err:?} should mention {expected:?}");
        }
    }

    #[test]
    fn a_signed_policy_opens_only_with_the_school_key() {
        let school = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let bundle = SignedBundle::sign_as(BundleKind::FilterPolicy, EXAMPLE.into(), "k1", &school);
        let wire = serde_json::to_vec(&bundle).unwrap();
        assert!(Policy::open(&wire, &school.verifying_key()).is_ok());
        let err = Policy::open(&wire, &other.verifying_key()).unwrap_err();
        assert!(matches!(err, PolicyError::Bundle(_)), "{err}");
        assert!(err.to_string().contains("signature"), "{err}");
    }

    #[test]
    fn illegal_and_doh_lists_cannot_be_lifted() {
        assert!(!bypass_can_lift(Category::ChildAbuse));
        assert!(!bypass_can_lift(Category::Terrorism));
        assert!(!bypass_can_lift(Category::DnsBypass));
        assert!(bypass_can_lift(Category::Adult));
    }
}
