//! The decision: given the loaded lists, the policy in force, the active profile and the time,
//! what happens to one query name. Pure: the caller passes `now`; no clock, no I/O, no logging
//! of names. The DNS server ([`crate::server`]) is its only caller on a device.
//!
//! Order, first that applies wins:
//! 1. A malformed name, or no valid policy (fail closed), is blocked.
//! 2. Illegal-content and DoH lists (loaded lists whose category is always enforced) block,
//!    whatever the profile or bypasses say.
//! 3. A list the profile names but the device has not loaded blocks everything (fail closed:
//!    the policy cannot be enforced as written).
//! 4. The safe-search targets themselves always resolve.
//! 5. Unless an active bypass covers the name: the profile's block lists block; in allow-only
//!    mode a name on none of the allow lists is blocked.
//! 6. A search host asked for A, AAAA or HTTPS is rewritten to its safe host.
//! 7. Everything else is allowed.

use crate::lists::{builtin_doh_list, Category, DomainList, Rule, SuffixHashes};
use crate::name;
use crate::policy::{Policy, PolicyError};
use crate::safesearch;
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use std::collections::BTreeMap;

/// DNS query types the rewrite applies to: A, AAAA and HTTPS (an HTTPS record can carry address
/// hints, so it must be rewritten too or it would leak the unrestricted addresses).
pub mod qtype {
    pub const A: u16 = 1;
    pub const AAAA: u16 = 28;
    pub const HTTPS: u16 = 65;
}

/// The `list` of a block made by the filter itself rather than a loaded list.
pub const LIST_FAIL_CLOSED: &str = "slate:no-policy";
pub const LIST_MALFORMED: &str = "slate:malformed-name";
pub const LIST_MISSING: &str = "slate:list-not-loaded";
pub const LIST_ALLOW_ONLY: &str = "slate:allow-only";

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward to the upstream resolver.
    Allow,
    /// Answer with a CNAME to this safe host, then the upstream's answer for it.
    Rewrite(&'static str),
    /// Refuse, and record a block event.
    Block(Block),
}

/// Why a name was blocked: the rule and the list it came from (the DfE log fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The rule as written (`*.example.com`), or a short reason for the filter's own blocks.
    pub rule: String,
    /// The list's name, or one of the `slate:` names above.
    pub list: String,
    /// The list's category; `None` for the filter's own blocks.
    pub category: Option<Category>,
}

impl Block {
    fn own(rule: &str, list: &str) -> Self {
        Self { rule: rule.to_string(), list: list.to_string(), category: None }
    }

    fn listed(rule: Rule, list: &DomainList) -> Self {
        Self { rule: rule.to_string(), list: list.name.clone(), category: Some(list.category) }
    }
}

/// Lists, policy and active profile: everything a decision depends on except the time.
#[derive(Debug, Clone)]
pub struct Filter {
    lists: BTreeMap<String, DomainList>,
    policy: Option<Policy>,
    profile: Option<String>,
    /// [`Filter::missing_lists`], worked out when lists, policy or profile change rather than
    /// on every query.
    missing: Vec<String>,
    /// Names that always resolve, policy or not: the school server's own host, without which a
    /// new device could never fetch its first policy (exact names only, no subdomains).
    infrastructure: std::collections::BTreeSet<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Self::new()
    }
}

impl Filter {
    /// A filter with the built-in DoH list and no policy: it blocks every name until a valid
    /// policy arrives.
    pub fn new() -> Self {
        let mut filter = Self {
            lists: BTreeMap::new(),
            policy: None,
            profile: None,
            missing: Vec::new(),
            infrastructure: Default::default(),
        };
        filter.add_list(builtin_doh_list());
        filter
    }

    /// Lets `name` always resolve (the school server's host). Refuses what is not a name.
    pub fn always_allow(&mut self, name: &str) -> Result<(), String> {
        let normalised = name::normalise(name).ok_or_else(|| format!("{name:?} is not a name"))?;
        self.infrastructure.insert(normalised);
        Ok(())
    }

    /// Adds or replaces a list by name.
    pub fn add_list(&mut self, list: DomainList) {
        self.lists.insert(list.name.clone(), list);
        self.refresh();
    }

    /// The list called `name`, if loaded.
    pub fn list(&self, name: &str) -> Option<&DomainList> {
        self.lists.get(name)
    }

    /// Puts `policy` and exactly `lists` (plus the built-in DoH list) in force together, so no
    /// query sees the new policy with the old lists. Refused, changing nothing, when `policy` is
    /// older than the one in force.
    pub fn install(&mut self, policy: Policy, lists: Vec<DomainList>) -> Result<(), PolicyError> {
        self.check_not_older(&policy)?;
        let doh = builtin_doh_list();
        self.lists = lists.into_iter().map(|l| (l.name.clone(), l)).collect();
        self.lists.entry(doh.name.clone()).or_insert(doh);
        self.policy = Some(policy);
        self.refresh();
        Ok(())
    }

    fn check_not_older(&self, policy: &Policy) -> Result<(), PolicyError> {
        match &self.policy {
            Some(current) if policy.issued_at < current.issued_at => {
                Err(PolicyError::Older { offered: policy.issued_at, current: current.issued_at })
            }
            _ => Ok(()),
        }
    }

    pub fn lists(&self) -> impl Iterator<Item = &DomainList> {
        self.lists.values()
    }

    /// The policy in force, if any.
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// Puts `policy` in force unless it is older than the one in force.
    pub fn set_policy(&mut self, policy: Policy) -> Result<(), PolicyError> {
        self.check_not_older(&policy)?;
        self.policy = Some(policy);
        self.refresh();
        Ok(())
    }

    /// Opens a signed policy bundle and puts it in force. On any error the policy in force (the
    /// last good one, or none: fail closed) stays.
    pub fn offer_policy(&mut self, bundle: &[u8], key: &VerifyingKey) -> Result<(), PolicyError> {
        self.set_policy(Policy::open(bundle, key)?)
    }

    /// Selects the profile in force (the signed-in pupil's class); `None` for the default.
    pub fn set_profile(&mut self, profile: Option<String>) {
        self.profile = profile;
        self.refresh();
    }

    /// The profile asked for (`None`: the policy's default).
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// Names of lists the active profile needs but are not loaded: those it names, and every
    /// illegal-content or DoH list in the policy's manifest (those apply to every profile).
    pub fn missing_lists(&self) -> Vec<String> {
        self.missing.clone()
    }

    fn refresh(&mut self) {
        self.missing.clear();
        let Some(policy) = &self.policy else { return };
        let profile = policy.profile(self.profile.as_deref());
        let always = policy.lists.keys().filter(|l| Category::of_list(l).is_always_enforced());
        for list in
            profile.block_lists.iter().chain(profile.allow_only.iter().flatten()).chain(always)
        {
            if !self.lists.contains_key(list) && !self.missing.contains(list) {
                self.missing.push(list.clone());
            }
        }
    }

    /// What to do with a query for `name` of type `qtype` at `now`.
    pub fn decide(&self, name: &str, qtype: u16, now: DateTime<Utc>) -> Decision {
        match name::normalise(name) {
            Some(name) => self.decide_normalised(&name, qtype, now),
            None => Decision::Block(Block::own("malformed name", LIST_MALFORMED)),
        }
    }

    /// [`Filter::decide`] for a name already normalised ([`name::normalise`]), as the server's
    /// fast path reads it off the wire.
    pub fn decide_normalised(&self, name: &str, qtype: u16, now: DateTime<Utc>) -> Decision {
        if self.infrastructure.contains(name) {
            return Decision::Allow;
        }
        let Some(policy) = &self.policy else {
            return Decision::Block(Block::own("no valid policy", LIST_FAIL_CLOSED));
        };
        let profile = policy.profile(self.profile.as_deref());
        let hashes = SuffixHashes::new(name);

        for list in self.lists.values().filter(|l| l.category.is_always_enforced()) {
            if let Some(rule) = list.set.lookup(&hashes) {
                return Decision::Block(Block::listed(rule, list));
            }
        }
        if let Some(missing) = self.missing.first() {
            return Decision::Block(Block::own("list not loaded", missing));
        }
        if safesearch::is_safe_target(name) {
            return Decision::Allow;
        }

        let bypassed = profile.bypasses.iter().any(|b| b.is_active(now) && b.covers(name));
        if !bypassed {
            for list in profile.block_lists.iter().filter_map(|l| self.lists.get(l)) {
                if list.category.is_always_enforced() {
                    continue; // checked above
                }
                if let Some(rule) = list.set.lookup(&hashes) {
                    return Decision::Block(Block::listed(rule, list));
                }
            }
            if let Some(allow) = &profile.allow_only {
                let allowed = allow
                    .iter()
                    .filter_map(|l| self.lists.get(l))
                    .any(|l| l.set.lookup(&hashes).is_some());
                if !allowed {
                    return Decision::Block(Block::own("not on an allow list", LIST_ALLOW_ONLY));
                }
            }
        }

        if matches!(qtype, qtype::A | qtype::AAAA | qtype::HTTPS) {
            if let Some(target) = safesearch::rewrite(name, profile.safe_search) {
                return Decision::Rewrite(target);
            }
        }
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::DomainSet;
    use crate::policy::tests::EXAMPLE;
    use ed25519_dalek::SigningKey;
    use slate_protocol::bundle::{BundleKind, SignedBundle};
    const FILTER: BundleKind = BundleKind::FilterPolicy;

    const TXT: u16 = 16;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn list(name: &str, category: Category, text: &str) -> DomainList {
        DomainList::new(name, category, DomainSet::parse(text).0)
    }

    /// The example policy with its lists loaded: `adult`, `gambling`, `ks1-sites`, `iwf`.
    fn filter() -> Filter {
        let mut f = Filter::new();
        f.add_list(list("adult", Category::Adult, "*.adult.test\nexample.org\n"));
        f.add_list(list("gambling", Category::Gambling, "*.casino.test\n*.google.com\n"));
        f.add_list(list("ks1-sites", Category::Allowed, "*.bbc.co.uk\nwww.google.co.uk\n"));
        f.add_list(list("iwf", Category::ChildAbuse, "*.illegal.test\nbad.example.org\n"));
        f.add_list(list("ctiru", Category::Terrorism, "*.terror.test\n"));
        f.set_policy(Policy::from_json(EXAMPLE).unwrap()).unwrap();
        f
    }

    const LESSON: &str = "2026-11-17T10:30:00Z";
    const BEFORE: &str = "2026-11-17T09:00:00Z";

    fn block(rule: &str, list: &str, category: Option<Category>) -> Decision {
        Decision::Block(Block { rule: rule.into(), list: list.into(), category })
    }

    #[test]
    fn decisions_for_the_default_profile() {
        let f = filter();
        let cases = [
            (
                "www.adult.test",
                qtype::A,
                BEFORE,
                block("*.adult.test", "adult", Some(Category::Adult)),
            ),
            (
                "x.casino.test",
                qtype::AAAA,
                BEFORE,
                block("*.casino.test", "gambling", Some(Category::Gambling)),
            ),
            (
                "a.illegal.test",
                TXT,
                BEFORE,
                block("*.illegal.test", "iwf", Some(Category::ChildAbuse)),
            ),
            (
                "x.terror.test",
                qtype::A,
                BEFORE,
                block("*.terror.test", "ctiru", Some(Category::Terrorism)),
            ),
            (
                "dns.google",
                qtype::HTTPS,
                BEFORE,
                block("dns.google", "slate-doh", Some(Category::DnsBypass)),
            ),
            ("www.bbc.co.uk", qtype::A, BEFORE, Decision::Allow),
            ("www.google.co.uk", qtype::A, BEFORE, Decision::Rewrite("forcesafesearch.google.com")),
            (
                "www.google.co.uk",
                qtype::HTTPS,
                BEFORE,
                Decision::Rewrite("forcesafesearch.google.com"),
            ),
            ("www.google.co.uk", TXT, BEFORE, Decision::Allow),
            (
                "www.youtube.com",
                qtype::AAAA,
                BEFORE,
                Decision::Rewrite("restrictmoderate.youtube.com"),
            ),
            ("example.org", qtype::A, BEFORE, block("example.org", "adult", Some(Category::Adult))),
            ("www.example.org", qtype::A, BEFORE, Decision::Allow),
            ("bad name!", qtype::A, BEFORE, block("malformed name", LIST_MALFORMED, None)),
        ];
        for (name, qt, now, expected) in cases {
            assert_eq!(f.decide(name, qt, at(now)), expected, "{name} type {qt}");
        }
    }

    #[test]
    fn a_block_list_beats_a_rewrite_unless_it_is_the_safe_target() {
        let f = filter();
        // `gambling` (silly, but a school may) blocks *.google.com, which covers www.google.com.
        assert_eq!(
            f.decide("www.google.com", qtype::A, at(BEFORE)),
            block("*.google.com", "gambling", Some(Category::Gambling))
        );
        // The safe host itself stays reachable so rewrites elsewhere keep working.
        assert_eq!(f.decide("forcesafesearch.google.com", qtype::A, at(BEFORE)), Decision::Allow);
    }

    #[test]
    fn a_bypass_lifts_ordinary_lists_only_while_active() {
        let f = filter();
        let name = "example.org";
        assert!(matches!(f.decide(name, qtype::A, at(BEFORE)), Decision::Block(_)));
        assert_eq!(f.decide(name, qtype::A, at("2026-11-17T10:00:00Z")), Decision::Allow);
        assert_eq!(f.decide(name, qtype::A, at("2026-11-17T10:59:59Z")), Decision::Allow);
        // It stops on time, with no network and no new policy.
        assert_eq!(
            f.decide(name, qtype::A, at("2026-11-17T11:00:00Z")),
            block("example.org", "adult", Some(Category::Adult))
        );
    }

    #[test]
    fn no_bypass_lifts_an_illegal_content_list() {
        let f = filter();
        // The active bypass covers example.org and every name under it, but IWF wins.
        assert_eq!(
            f.decide("bad.example.org", qtype::A, at(LESSON)),
            block("bad.example.org", "iwf", Some(Category::ChildAbuse))
        );
    }

    #[test]
    fn illegal_lists_apply_to_profiles_that_do_not_name_them() {
        let mut f = filter();
        f.set_profile(Some("ks1".into()));
        let d = f.decide("x.terror.test", qtype::A, at(BEFORE));
        assert_eq!(d, block("*.terror.test", "ctiru", Some(Category::Terrorism)));
    }

    #[test]
    fn allow_only_mode_for_the_youngest() {
        let mut f = filter();
        f.set_profile(Some("ks1".into()));
        let cases = [
            ("www.bbc.co.uk", qtype::A, Decision::Allow),
            ("www.google.co.uk", qtype::A, Decision::Rewrite("forcesafesearch.google.com")),
            ("forcesafesearch.google.com", qtype::A, Decision::Allow),
            ("www.youtube.com", qtype::A, block("not on an allow list", LIST_ALLOW_ONLY, None)),
            ("example.net", qtype::A, block("not on an allow list", LIST_ALLOW_ONLY, None)),
        ];
        for (name, qt, expected) in cases {
            assert_eq!(f.decide(name, qt, at(BEFORE)), expected, "{name}");
        }
    }

    #[test]
    fn without_a_policy_every_name_is_refused() {
        let f = Filter::new();
        for name in ["www.bbc.co.uk", "www.google.com", "localhost"] {
            assert_eq!(
                f.decide(name, qtype::A, at(BEFORE)),
                block("no valid policy", LIST_FAIL_CLOSED, None),
                "{name}"
            );
        }
    }

    #[test]
    fn the_school_servers_own_name_resolves_even_without_a_policy() {
        let mut f = Filter::new();
        f.always_allow("School-Server.example.").unwrap();
        assert_eq!(f.decide("school-server.example", qtype::A, at(BEFORE)), Decision::Allow);
        assert_eq!(
            f.decide("www.school-server.example", qtype::A, at(BEFORE)),
            block("no valid policy", LIST_FAIL_CLOSED, None),
            "exactly the name, not its subdomains"
        );
        assert!(f.always_allow("not a name").is_err());
    }

    #[test]
    fn a_list_the_profile_needs_but_is_missing_fails_closed() {
        let mut f = Filter::new();
        f.add_list(list("adult", Category::Adult, "x.test\n"));
        f.set_policy(Policy::from_json(EXAMPLE).unwrap()).unwrap();
        assert_eq!(f.missing_lists(), ["gambling"]);
        assert_eq!(
            f.decide("www.bbc.co.uk", qtype::A, at(BEFORE)),
            block("list not loaded", "gambling", None)
        );
    }

    #[test]
    fn an_illegal_list_in_the_manifest_but_not_loaded_fails_closed_for_every_profile() {
        let mut doc: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        doc["lists"] = serde_json::json!({"iwf": {"sha256": "0".repeat(64), "bytes": 1}});
        let mut f = Filter::new();
        for l in ["adult", "gambling", "ks1-sites"] {
            f.add_list(list(l, Category::Adult, ""));
        }
        f.set_policy(Policy::from_json(&doc.to_string()).unwrap()).unwrap();
        for profile in [None, Some("ks1")] {
            f.set_profile(profile.map(String::from));
            assert_eq!(f.missing_lists(), ["iwf"], "{profile:?}");
            assert_eq!(
                f.decide("www.bbc.co.uk", qtype::A, at(BEFORE)),
                block("list not loaded", "iwf", None)
            );
        }
        f.add_list(list("iwf", Category::ChildAbuse, "*.illegal.test\n"));
        f.set_profile(None);
        assert!(f.missing_lists().is_empty());
        assert_eq!(f.decide("www.bbc.co.uk", qtype::A, at(BEFORE)), Decision::Allow);
    }

    #[test]
    fn install_swaps_policy_and_lists_together_and_keeps_the_doh_list() {
        let mut f = filter();
        let newer = EXAMPLE.replace("2026-11-17T08:00:00Z", "2026-11-18T08:00:00Z");
        let lists = vec![list("adult", Category::Adult, "*.new-adult.test\n")];
        f.install(Policy::from_json(&newer).unwrap(), lists).unwrap();
        let names: Vec<_> = f.lists().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["adult", "slate-doh"]);
        assert_eq!(
            f.missing_lists(),
            ["gambling"],
            "the old gambling list went with the old policy"
        );
        assert_eq!(
            f.decide("dns.google", qtype::A, at(BEFORE)),
            block("dns.google", "slate-doh", Some(Category::DnsBypass))
        );
        // An older one changes nothing.
        let err = f.install(Policy::from_json(EXAMPLE).unwrap(), Vec::new()).unwrap_err();
        assert!(matches!(err, PolicyError::Older { .. }));
        assert_eq!(f.lists().count(), 2);
    }

    #[test]
    fn a_bad_signature_keeps_the_last_good_policy_or_fails_closed() {
        let school = SigningKey::from_bytes(&[1; 32]);
        let forger = SigningKey::from_bytes(&[2; 32]);
        let key = school.verifying_key();
        let permissive = EXAMPLE.replace("\"adult\",", "");
        let forged =
            serde_json::to_vec(&SignedBundle::sign_as(FILTER, permissive, "k1", &forger)).unwrap();

        // No last good policy: refused, and the filter stays closed.
        let mut f = Filter::new();
        assert!(matches!(f.offer_policy(&forged, &key), Err(PolicyError::Bundle(_))));
        assert!(f.policy().is_none());
        assert!(matches!(f.decide("www.bbc.co.uk", qtype::A, at(BEFORE)), Decision::Block(_)));

        // A last good policy: refused, and the last good one stays in force.
        let mut f = filter();
        assert!(f.offer_policy(&forged, &key).is_err());
        assert!(matches!(f.decide("www.adult.test", qtype::A, at(BEFORE)), Decision::Block(_)));

        // A kiosk policy signed by the school's key, where the filter policy goes: refused.
        let kiosk = SignedBundle::sign_as(BundleKind::KioskPolicy, EXAMPLE.into(), "k1", &school);
        let mut f = filter();
        let err = f.offer_policy(&serde_json::to_vec(&kiosk).unwrap(), &key).unwrap_err();
        assert!(err.to_string().contains("is a kiosk-policy, where a filter-policy"), "{err}");
        assert!(matches!(f.decide("www.adult.test", qtype::A, at(BEFORE)), Decision::Block(_)));

        // A good one is taken.
        let good =
            serde_json::to_vec(&SignedBundle::sign_as(FILTER, EXAMPLE.into(), "k1", &school))
                .unwrap();
        let mut f = Filter::new();
        f.offer_policy(&good, &key).unwrap();
        assert!(f.policy().is_some());
    }

    #[test]
    fn an_older_policy_is_not_taken_back() {
        let mut f = filter();
        let old = EXAMPLE.replace("2026-11-17T08:00:00Z", "2026-11-01T08:00:00Z");
        let err = f.set_policy(Policy::from_json(&old).unwrap()).unwrap_err();
        assert!(matches!(err, PolicyError::Older { .. }), "{err}");
        assert_eq!(f.policy().unwrap().issued_at, at("2026-11-17T08:00:00Z"));
    }
}
