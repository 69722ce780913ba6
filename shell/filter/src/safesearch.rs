//! The safe-search rewrite table: which query names are answered with a CNAME to a search
//! engine's enforced-safe host. Pure and total: a name in, an optional target out. It owns the
//! list of hosts; it does not decide whether a name is blocked (that is [`crate::filter`]).
//!
//! Included, each because the engine documents DNS-based enforcement:
//! - Google: `google.<tld>` and `www.google.<tld>` for every domain of Google's supported-domains
//!   list (`data/google-domains.txt`) → `forcesafesearch.google.com`.
//! - YouTube: `www.youtube.com`, `m.youtube.com`, `youtubei.googleapis.com`,
//!   `youtube.googleapis.com`, `www.youtube-nocookie.com` → `restrict.youtube.com` (strict) or
//!   `restrictmoderate.youtube.com` (moderate), Google Workspace help "Restrict YouTube content".
//! - Bing: `www.bing.com` (and `bing.com`) → `strict.bing.com`, Microsoft's "Block adult content
//!   with SafeSearch".
//! - DuckDuckGo: `duckduckgo.com`, `www.duckduckgo.com`, `start.duckduckgo.com` →
//!   `safe.duckduckgo.com`, DuckDuckGo help "Enforcing safe search".
//!
//! Not included: Pixabay (`safesearch.pixabay.com` appears in third-party filter lists but not in
//! Pixabay's own documentation), Yandex (documents a hosts-file IP for family search, not a
//! name, and its domain list was not verified). Engines without an enforceable safe mode belong
//! in a block list, not here.

use crate::name;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Google's supported search domains, embedded so the table works offline and is reviewed in
/// the diff when it changes.
pub const GOOGLE_DOMAINS: &str = include_str!("../data/google-domains.txt");

pub const GOOGLE_SAFE: &str = "forcesafesearch.google.com";
pub const YOUTUBE_STRICT: &str = "restrict.youtube.com";
pub const YOUTUBE_MODERATE: &str = "restrictmoderate.youtube.com";
pub const BING_STRICT: &str = "strict.bing.com";
pub const DUCKDUCKGO_SAFE: &str = "safe.duckduckgo.com";

/// The YouTube hosts Google documents for Restricted Mode by DNS.
pub const YOUTUBE_HOSTS: [&str; 5] = [
    "www.youtube.com",
    "m.youtube.com",
    "youtubei.googleapis.com",
    "youtube.googleapis.com",
    "www.youtube-nocookie.com",
];
pub const BING_HOSTS: [&str; 2] = ["www.bing.com", "bing.com"];
pub const DUCKDUCKGO_HOSTS: [&str; 3] =
    ["duckduckgo.com", "www.duckduckgo.com", "start.duckduckgo.com"];

/// How strict enforced safe search is. There is no "off": a Slate device always enforces it.
/// Only YouTube has two levels; every other engine is always at its strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SafeSearchLevel {
    #[default]
    Strict,
    Moderate,
}

#[derive(Clone, Copy)]
enum Target {
    Google,
    YouTube,
    Bing,
    DuckDuckGo,
}

fn table() -> &'static HashMap<String, Target> {
    static TABLE: OnceLock<HashMap<String, Target>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        for domain in google_domains() {
            table.insert(domain.to_string(), Target::Google);
            table.insert(format!("www.{domain}"), Target::Google);
        }
        for host in YOUTUBE_HOSTS {
            table.insert(host.to_string(), Target::YouTube);
        }
        for host in BING_HOSTS {
            table.insert(host.to_string(), Target::Bing);
        }
        for host in DUCKDUCKGO_HOSTS {
            table.insert(host.to_string(), Target::DuckDuckGo);
        }
        table
    })
}

/// The domains of `data/google-domains.txt` (comments and blank lines skipped).
pub fn google_domains() -> impl Iterator<Item = &'static str> {
    GOOGLE_DOMAINS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The safe host that `name` (normalised) must be answered with, if it is a search host.
pub fn rewrite(name: &str, level: SafeSearchLevel) -> Option<&'static str> {
    Some(match table().get(name)? {
        Target::Google => GOOGLE_SAFE,
        Target::YouTube => match level {
            SafeSearchLevel::Strict => YOUTUBE_STRICT,
            SafeSearchLevel::Moderate => YOUTUBE_MODERATE,
        },
        Target::Bing => BING_STRICT,
        Target::DuckDuckGo => DUCKDUCKGO_SAFE,
    })
}

/// Every host the table rewrites, for documentation and tests.
pub fn rewritten_hosts() -> impl Iterator<Item = &'static str> {
    table().keys().map(String::as_str)
}

/// True for the names the rewrite targets point at; they must stay resolvable whatever the
/// block lists say.
pub fn is_safe_target(name: &str) -> bool {
    [GOOGLE_SAFE, YOUTUBE_STRICT, YOUTUBE_MODERATE, BING_STRICT, DUCKDUCKGO_SAFE]
        .iter()
        .any(|t| name::is_within(name, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use SafeSearchLevel::{Moderate, Strict};

    #[test]
    fn the_google_list_is_well_formed_and_complete_enough() {
        let domains: Vec<_> = google_domains().collect();
        assert!(domains.len() >= 190, "{} domains", domains.len());
        let mut sorted = domains.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), domains.len(), "duplicates in google-domains.txt");
        for d in &domains {
            assert_eq!(name::normalise(d).as_deref(), Some(*d), "{d}");
            assert!(d.starts_with("google."), "{d}");
        }
        for must in ["google.com", "google.co.uk", "google.ie", "google.de", "google.com.au"] {
            assert!(domains.contains(&must), "{must}");
        }
    }

    #[test]
    fn every_google_domain_and_its_www_host_is_rewritten() {
        for domain in google_domains() {
            for host in [domain.to_string(), format!("www.{domain}")] {
                for level in [Strict, Moderate] {
                    assert_eq!(rewrite(&host, level), Some(GOOGLE_SAFE), "{host}");
                }
            }
        }
    }

    #[test]
    fn youtube_hosts_follow_the_level() {
        for host in YOUTUBE_HOSTS {
            assert_eq!(rewrite(host, Strict), Some(YOUTUBE_STRICT), "{host}");
            assert_eq!(rewrite(host, Moderate), Some(YOUTUBE_MODERATE), "{host}");
        }
    }

    #[test]
    fn other_engines_are_always_strict() {
        let cases: Vec<(&str, &str)> = BING_HOSTS
            .iter()
            .map(|h| (*h, BING_STRICT))
            .chain(DUCKDUCKGO_HOSTS.iter().map(|h| (*h, DUCKDUCKGO_SAFE)))
            .collect();
        for (host, target) in cases {
            for level in [Strict, Moderate] {
                assert_eq!(rewrite(host, level), Some(target), "{host}");
            }
        }
    }

    #[test]
    fn the_table_holds_exactly_the_documented_hosts() {
        let expected = 2 * google_domains().count()
            + YOUTUBE_HOSTS.len()
            + BING_HOSTS.len()
            + DUCKDUCKGO_HOSTS.len();
        assert_eq!(rewritten_hosts().count(), expected);
    }

    #[test]
    fn near_misses_are_not_rewritten() {
        for host in [
            "mail.google.com",
            "accounts.google.com",
            "images.google.com.evil.example",
            "google.example",
            "wwwgoogle.com",
            "youtube.com",
            "music.youtube.com",
            "forcesafesearch.google.com",
            "restrict.youtube.com",
            "strict.bing.com",
            "safe.duckduckgo.com",
            "html.duckduckgo.com",
        ] {
            assert_eq!(rewrite(host, Strict), None, "{host}");
        }
    }

    #[test]
    fn targets_are_recognised() {
        assert!(is_safe_target("forcesafesearch.google.com"));
        assert!(is_safe_target("restrictmoderate.youtube.com"));
        assert!(!is_safe_target("www.google.com"));
    }
}
