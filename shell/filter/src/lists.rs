//! Domain lists (block lists and allow lists) in a compact form: a sorted array of 64-bit
//! hashes of normalised names, 8 bytes a rule, searched by binary search. Pure: it parses list
//! text handed to it and answers lookups; it does not read files or know about policy.
//!
//! # List text
//!
//! One rule a line; `#` starts a comment line; blank lines are skipped.
//! - `example.com` is exact: it matches `example.com` only.
//! - `*.example.com` is a wildcard: it matches `example.com` **and** every name under it
//!   (a filter that blocked `*.example.com` but let `example.com` through would be a hole).
//!
//! Malformed lines are skipped and counted, not fatal: refusing a whole illegal-content list
//! because of one bad line would unblock everything else on it.
//!
//! # Layout of an entry
//!
//! `hash(name)` with its lowest bit replaced by the rule kind (0 exact, 1 wildcard), so the two
//! rules for one name sit side by side and one binary search finds both. A lookup hashes the
//! query name and each parent suffix once ([`SuffixHashes`]) and probes every enabled list.

use crate::name;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a list is about. Decides whether anything may bypass it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// The IWF list. Illegal content: enforced in every profile, never bypassed.
    ChildAbuse,
    /// The police (CTIRU) terrorism list. Illegal content: enforced in every profile, never
    /// bypassed.
    Terrorism,
    /// DNS-over-HTTPS and similar resolvers a browser could use to go around this filter.
    /// Enforced in every profile, never bypassed: a bypass here would undo every other rule.
    DnsBypass,
    Adult,
    Gambling,
    Violence,
    Drugs,
    Malware,
    SocialMedia,
    Games,
    /// An allow list (for allow-list-only mode).
    Allowed,
    /// A category this build does not know yet (a newer server); bypassable like any ordinary
    /// category.
    #[serde(other)]
    Other,
}

impl Category {
    /// Illegal-content categories: no profile, bypass or person can turn these off.
    pub fn is_illegal(self) -> bool {
        matches!(self, Category::ChildAbuse | Category::Terrorism)
    }

    /// Lists of these categories apply to every profile whether or not the profile names them,
    /// and no bypass lifts them.
    pub fn is_always_enforced(self) -> bool {
        self.is_illegal() || self == Category::DnsBypass
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self).ok();
        f.write_str(text.as_ref().and_then(|v| v.as_str()).unwrap_or("other"))
    }
}

/// A rule that matched: the name it was written for and whether it was a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub domain: String,
    pub wildcard: bool,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            write!(f, "*.{}", self.domain)
        } else {
            f.write_str(&self.domain)
        }
    }
}

/// A query name with the hash of itself and each parent suffix, computed once per query and
/// probed against every list.
pub struct SuffixHashes<'n> {
    suffixes: Vec<(&'n str, u64)>,
}

impl<'n> SuffixHashes<'n> {
    /// `name` must be normalised.
    pub fn new(name: &'n str) -> Self {
        Self { suffixes: name::suffixes(name).map(|s| (s, name::hash(s) & !1)).collect() }
    }
}

/// A set of exact and wildcard domain rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainSet {
    entries: Box<[u64]>,
}

/// What parsing list text found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseReport {
    pub rules: usize,
    /// Line numbers (1-based) of the first few malformed lines.
    pub bad_lines: Vec<usize>,
    pub bad_count: usize,
}

const WILDCARD: u64 = 1;

impl DomainSet {
    /// Builds a set from `(name, wildcard)` rules; names must be normalised.
    pub fn from_rules<'a>(rules: impl IntoIterator<Item = (&'a str, bool)>) -> Self {
        let mut entries: Vec<u64> = rules
            .into_iter()
            .map(|(domain, wildcard)| (name::hash(domain) & !1) | u64::from(wildcard))
            .collect();
        entries.sort_unstable();
        entries.dedup();
        Self { entries: entries.into_boxed_slice() }
    }

    /// Parses list text (see the module doc). Hashes as it goes, so a million-line list costs
    /// the 8 MB of its entries plus one name at a time, never a million strings.
    pub fn parse(text: &str) -> (Self, ParseReport) {
        let mut report = ParseReport::default();
        let mut entries = Vec::with_capacity(text.len() / 24);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (body, wildcard) = match line.strip_prefix("*.") {
                Some(rest) => (rest, true),
                None => (line, false),
            };
            match name::normalise(body) {
                Some(domain) => {
                    report.rules += 1;
                    entries.push((name::hash(&domain) & !1) | u64::from(wildcard));
                }
                None => {
                    report.bad_count += 1;
                    if report.bad_lines.len() < 10 {
                        report.bad_lines.push(i + 1);
                    }
                }
            }
        }
        entries.sort_unstable();
        entries.dedup();
        (Self { entries: entries.into_boxed_slice() }, report)
    }

    /// The most specific rule matching the name, if any.
    pub fn lookup(&self, name: &SuffixHashes<'_>) -> Option<Rule> {
        for (depth, &(suffix, key)) in name.suffixes.iter().enumerate() {
            let (exact, wildcard) = self.probe(key);
            if depth == 0 && exact {
                return Some(Rule { domain: suffix.to_string(), wildcard: false });
            }
            if wildcard {
                return Some(Rule { domain: suffix.to_string(), wildcard: true });
            }
        }
        None
    }

    /// Whether an exact and a wildcard rule exist for the name whose hash (low bit cleared) is
    /// `key`.
    fn probe(&self, key: u64) -> (bool, bool) {
        let i = self.entries.partition_point(|&e| e < key);
        let at = |j: usize| self.entries.get(j).copied();
        let exact = at(i) == Some(key);
        let wildcard = at(i) == Some(key | WILDCARD) || at(i + 1) == Some(key | WILDCARD);
        (exact, wildcard)
    }

    /// Number of distinct rules.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Heap bytes held (the figure behind "bytes per domain").
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries)
    }
}

/// A named list of one category, as the policy refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainList {
    pub name: String,
    pub category: Category,
    pub set: DomainSet,
}

impl DomainList {
    pub fn new(name: impl Into<String>, category: Category, set: DomainSet) -> Self {
        Self { name: name.into(), category, set }
    }

    /// Parses list text into a named list.
    pub fn parse(name: impl Into<String>, category: Category, text: &str) -> (Self, ParseReport) {
        let (set, report) = DomainSet::parse(text);
        (Self::new(name, category, set), report)
    }
}

/// The built-in `dns-bypass` list: names of public DNS-over-HTTPS/TLS resolvers and the canary
/// domains browsers check before turning DoH on themselves. Blocked in every profile.
pub const DOH_ENDPOINTS: &str = include_str!("../data/doh-endpoints.txt");

/// The built-in DoH list, parsed.
pub fn builtin_doh_list() -> DomainList {
    DomainList::parse("slate-doh", Category::DnsBypass, DOH_ENDPOINTS).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> DomainSet {
        let (set, report) = DomainSet::parse(text);
        assert_eq!(report.bad_count, 0, "{report:?}");
        set
    }

    fn lookup(set: &DomainSet, name: &str) -> Option<String> {
        let name = name::normalise(name).unwrap();
        set.lookup(&SuffixHashes::new(&name)).map(|r| r.to_string())
    }

    #[test]
    fn exact_and_wildcard_rules_match_as_documented() {
        let s =
            set("# a comment\n\nexact.example\n*.wild.example\n  *.both.example\nboth.example\n");
        let cases = [
            ("exact.example", Some("exact.example")),
            ("EXACT.example.", Some("exact.example")),
            ("www.exact.example", None),
            ("wild.example", Some("*.wild.example")),
            ("a.wild.example", Some("*.wild.example")),
            ("a.b.c.wild.example", Some("*.wild.example")),
            ("notwild.example", None),
            ("both.example", Some("both.example")),
            ("x.both.example", Some("*.both.example")),
            ("example", None),
            ("other.test", None),
        ];
        for (name, expected) in cases {
            assert_eq!(lookup(&s, name).as_deref(), expected, "{name}");
        }
    }

    #[test]
    fn the_most_specific_wildcard_wins() {
        let s = set("*.example.com\n*.ads.example.com\n");
        assert_eq!(lookup(&s, "x.ads.example.com").as_deref(), Some("*.ads.example.com"));
        assert_eq!(lookup(&s, "x.example.com").as_deref(), Some("*.example.com"));
    }

    #[test]
    fn bad_lines_are_skipped_and_counted() {
        let (s, report) =
            DomainSet::parse("good.example\nnot a name\n*.\n**.x.example\nok.example");
        assert_eq!(report.rules, 2);
        assert_eq!(report.bad_count, 3);
        assert_eq!(report.bad_lines, [2, 3, 4]);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn duplicates_cost_nothing() {
        let s = set("a.example\na.example\nA.EXAMPLE.\n*.a.example\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s.heap_bytes(), 16);
    }

    #[test]
    fn the_builtin_doh_list_parses_cleanly_and_is_always_enforced() {
        let (list, report) = DomainList::parse("slate-doh", Category::DnsBypass, DOH_ENDPOINTS);
        assert_eq!(report.bad_count, 0, "{report:?}");
        assert!(list.set.len() >= 20);
        assert!(list.category.is_always_enforced());
        for name in [
            "dns.google",
            "cloudflare-dns.com",
            "mozilla.cloudflare-dns.com",
            "use-application-dns.net",
        ] {
            assert!(lookup(&list.set, name).is_some(), "{name}");
        }
    }

    #[test]
    fn categories_parse_with_unknown_ones_as_other() {
        let c: Vec<Category> =
            serde_json::from_str(r#"["child-abuse","terrorism","adult","brand-new"]"#).unwrap();
        assert_eq!(
            c,
            [Category::ChildAbuse, Category::Terrorism, Category::Adult, Category::Other]
        );
        assert!(Category::ChildAbuse.is_illegal() && Category::Terrorism.is_illegal());
        assert!(!Category::Adult.is_always_enforced());
        assert_eq!(Category::SocialMedia.to_string(), "social-media");
    }
}
