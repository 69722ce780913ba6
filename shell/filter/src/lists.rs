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
//! - `url-sha256:<hex>`, `prefix-sha256:<hex>`, `host-sha256:<hex>` (any `<kind>-sha256:` line)
//!   are URL-layer rules (IWF and CTIRU publish URLs as well as domains), salted hashes the kiosk
//!   browser checks (see `slate_protocol::url_lists`); the DNS layer skips them (counted in
//!   [`ParseReport::url_rules`]).
//!
//! The file is UTF-8, `\n` or `\r\n` line ends, as served by `GET /api/v1/device/lists/{name}` and
//! stored as `<state_dir>/policy/lists/<sha256>.txt`; its size and SHA-256 are in the signed
//! policy's `lists` manifest, and a file that does not match is not read at all.
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

    /// The category of a list named in the policy's manifest: the illegal-content lists by their
    /// publishers' names (`iwf`, `ctiru`), a category by its own name (`adult`, `social-media`),
    /// anything else [`Category::Other`]. Whether a list is an allow list is the policy's to say
    /// (it is named in `allow_only`), not the name's.
    pub fn of_list(name: &str) -> Category {
        match name {
            "iwf" => Category::ChildAbuse,
            "ctiru" => Category::Terrorism,
            _ => serde_json::from_value(serde_json::Value::from(name)).unwrap_or(Category::Other),
        }
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
    /// `url-sha256:` lines, which are the URL layer's and skipped here.
    pub url_rules: usize,
}

const WILDCARD: u64 = 1;
/// Whether a list line is the URL layer's (`url-sha256:…`, `prefix-sha256:…`, …): a domain rule
/// never holds a `:`.
pub fn is_url_rule(line: &str) -> bool {
    line.split_once(':').is_some_and(|(kind, _)| kind.ends_with("-sha256"))
}

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
            if is_url_rule(line) {
                report.url_rules += 1;
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
        let i = lower_bound(&self.entries, key);
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

/// The first index of `sorted` whose entry is `>= key` (as `partition_point(|&e| e < key)`).
///
/// The entries are hashes, spread evenly over `u64`, so interpolating between the ends of the
/// range lands near the answer: a few rounds touch a few cache lines where a binary search of a
/// million entries (8 MB, far beyond the cache) takes some twenty misses. After a few rounds,
/// or once the range is small, a binary search finishes, so skewed input is never slow.
fn lower_bound(sorted: &[u64], key: u64) -> usize {
    let (mut lo, mut hi) = (0, sorted.len()); // the answer is in lo..=hi
    for _ in 0..6 {
        if hi - lo <= 16 {
            break;
        }
        let (first, last) = (sorted[lo], sorted[hi - 1]);
        if key <= first {
            return lo;
        }
        if key > last {
            return hi;
        }
        // first < key <= last, so last > first and the guess is in lo..hi-1.
        let offset = u128::from(key - first) * (hi - 1 - lo) as u128 / u128::from(last - first);
        let guess = lo + offset as usize;
        if sorted[guess] < key {
            lo = guess + 1;
        } else {
            hi = guess; // the answer is at most guess
        }
    }
    lo + sorted[lo..hi].partition_point(|&e| e < key)
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
    fn lower_bound_agrees_with_a_binary_search() {
        // Deterministic pseudo-random sets: even (like hashes), clustered, tiny, with duplicates
        // of neighbours and the extremes.
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut sets: Vec<Vec<u64>> = vec![
            vec![],
            vec![5],
            vec![0, u64::MAX],
            (0..10_000).map(|_| next()).collect(),
            (0..10_000).map(|_| next() % 1000).collect(),
            (0..5_050).map(|i| if i < 5_000 { next() >> 40 } else { next() }).collect(),
        ];
        for set in &mut sets {
            set.sort_unstable();
            set.dedup();
            let mut keys = vec![0, 1, u64::MAX, u64::MAX - 1];
            for &e in set.iter().step_by(7) {
                keys.extend([e, e.wrapping_sub(1), e.wrapping_add(1)]);
            }
            keys.extend((0..2_000).map(|_| next()));
            for key in keys {
                let expected = set.partition_point(|&e| e < key);
                assert_eq!(lower_bound(set, key), expected, "key {key} in a set of {}", set.len());
            }
        }
    }

    #[test]
    fn url_rules_are_left_to_the_url_layer() {
        let text = "a.example\nurl-sha256:00ff\r\n*.b.example\r\nhost-sha256:abcd\nprefix-sha256:01\nx:y\n";
        let (s, report) = DomainSet::parse(text);
        assert_eq!((report.rules, report.url_rules, report.bad_count), (2, 3, 1));
        assert_eq!(lookup(&s, "x.b.example").as_deref(), Some("*.b.example"));
    }

    #[test]
    fn a_list_name_gives_its_category() {
        let cases = [
            ("iwf", Category::ChildAbuse),
            ("ctiru", Category::Terrorism),
            ("adult", Category::Adult),
            ("social-media", Category::SocialMedia),
            ("child-abuse", Category::ChildAbuse),
            ("ks1-sites", Category::Other),
            ("allowed", Category::Allowed),
        ];
        for (name, expected) in cases {
            assert_eq!(Category::of_list(name), expected, "{name}");
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
