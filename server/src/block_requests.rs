//! Site block requests (issue 17): a member of staff unlocks a held device choosing "block the
//! site", and the report's site becomes a pending change for the DSL or IT to accept into one of
//! the school's block lists or decline. The decisions, pure: which site a report's URL names
//! ([`site_of`], with the filter lists' own domain check), which pending entry a new ask joins
//! ([`merge_into`]), which lists a site may go into ([`lists_to_offer`]), what the DSL may type
//! instead of the recorded host ([`check_accept_site`]), whether a list already blocks a site
//! ([`blocking_line`]) and what accepting changes in a list ([`list_with_site`]). No I/O: the
//! store records the asks (`store/block_requests.rs`), `features/block_requests` is the page.

use crate::alert_rules::ILLEGAL_LISTS;
use crate::device_policy::{list_line_ok, ProfileRecord};
use std::fmt;

/// Why a report's URL names no site a block list can hold. Says nothing of the URL itself, so
/// it can go in a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteRefusal {
    /// The report carried no URL (an app that is not a browser, say).
    NoUrl,
    /// Not an http or https URL with a host.
    NotAWebAddress,
    /// An IP address: devices' lists block names, and nobody looks an address up.
    IpAddress,
    /// A name with one label (`localhost`) or characters no list line may hold.
    NotADomain,
}

impl fmt::Display for SiteRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SiteRefusal::NoUrl => "the report has no address",
            SiteRefusal::NotAWebAddress => "the report's address is not a web address with a host",
            SiteRefusal::IpAddress => "the report's address is an IP address, which no list blocks",
            SiteRefusal::NotADomain => "the report's host is not a domain name a list can hold",
        })
    }
}

/// The site a report's URL names: its host, normalised as the URL lists are
/// (`slate_protocol::url_lists::normalise`: lower case, IDNA to punycode, no trailing dot),
/// and checked as a list line is (`device_policy::list_line_ok`, the devices' own rule), with at
/// least two labels.
pub fn site_of(url: Option<&str>) -> Result<String, SiteRefusal> {
    let url = url.map(str::trim).filter(|u| !u.is_empty()).ok_or(SiteRefusal::NoUrl)?;
    let normalised =
        slate_protocol::url_lists::normalise(url).map_err(|_| SiteRefusal::NotAWebAddress)?;
    let authority = normalised.split_once("://").map_or("", |(_, rest)| rest);
    let authority = authority.split(['/', '?']).next().unwrap_or_default();
    if authority.starts_with('[') {
        return Err(SiteRefusal::IpAddress);
    }
    let host = authority.split(':').next().unwrap_or_default();
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(SiteRefusal::IpAddress);
    }
    check_domain(host).ok_or(SiteRefusal::NotADomain)
}

/// A domain a list line may hold, lower case, at least two labels; `None` otherwise.
fn check_domain(text: &str) -> Option<String> {
    let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = domain.contains('.')
        && !domain.contains('*')
        && !domain.starts_with('#')
        && !domain.contains(':')
        && list_line_ok(&domain);
    ok.then_some(domain)
}

/// Which pending entry (`(id, site)`, pending ones only) a new ask for `site` joins: the one
/// for the same site, so one site waits as one entry however many times it is asked for.
/// `None`: a new entry. A site asked for again after a decision is a new entry (a new
/// decision).
pub fn merge_into(pending: &[(i64, String)], site: &str) -> Option<i64> {
    pending.iter().find(|(_, s)| s == site).map(|(id, _)| *id)
}

/// The lists a site may be accepted into, with the profiles that block with each: uploaded
/// lists some profile blocks with (a list no profile uses reaches no device), never an
/// illegal-content list (the IWF's and the police's come from them, not from the school) and
/// never one a profile uses as an allow list.
pub fn lists_to_offer(
    uploaded: &[String],
    profiles: &[ProfileRecord],
) -> Vec<(String, Vec<String>)> {
    uploaded
        .iter()
        .filter(|name| !ILLEGAL_LISTS.contains(&name.as_str()))
        .filter(|name| {
            !profiles.iter().any(|p| p.allow_only.as_ref().is_some_and(|a| a.contains(name)))
        })
        .map(|name| {
            let users: Vec<String> = profiles
                .iter()
                .filter(|p| p.block_lists.contains(name))
                .map(|p| p.name.clone())
                .collect();
            (name.clone(), users)
        })
        .filter(|(_, users)| !users.is_empty())
        .collect()
}

/// What the DSL or IT typed as the site to block, for a request recorded for `recorded`: the
/// recorded host itself, or a parent of it with at least two labels (to block the whole of
/// `example.org` when `www.example.org` was reported), never another site. The error is for
/// the form.
pub fn check_accept_site(recorded: &str, typed: &str) -> Result<String, String> {
    let typed = typed.trim();
    let typed = typed.strip_prefix("*.").unwrap_or(typed);
    let refused =
        || format!("Site: {recorded} or a domain it is under (such as the part after \"www.\").");
    let site = check_domain(typed).ok_or_else(refused)?;
    if site == recorded || recorded.ends_with(&format!(".{site}")) {
        Ok(site)
    } else {
        Err(refused())
    }
}

/// The line of a list's text that already blocks `site`, if one does: `site` itself, or a
/// wildcard on it or a parent (`*.example.org` blocks `www.example.org`), as devices read it
/// (case and a trailing dot do not matter).
pub fn blocking_line<'t>(text: &'t str, site: &str) -> Option<&'t str> {
    text.lines().map(str::trim).find(|line| {
        let rule = line.to_ascii_lowercase();
        let rule = rule.trim_end_matches('.');
        match rule.strip_prefix("*.") {
            Some(parent) => site == parent || site.ends_with(&format!(".{parent}")),
            None => rule == site,
        }
    })
}

/// What accepting `site` into a list does to its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListChange {
    /// The list already blocks the site and everything under it (this line): nothing changes.
    AlreadyBlocked(String),
    /// The list's new bytes: the old text with `*.site` (the site and every name under it)
    /// added as its last line.
    Add(Vec<u8>),
}

/// Accepting `site` into a list whose text is `text`: a wildcard line, since a site blocked but
/// not its `www.` would be a hole; the lines already there kept as they are.
pub fn list_with_site(text: &str, site: &str) -> ListChange {
    let covering = text.lines().map(str::trim).find(|line| {
        line.strip_prefix("*.").map(|p| p.to_ascii_lowercase()).is_some_and(|p| {
            let p = p.trim_end_matches('.');
            site == p || site.ends_with(&format!(".{p}"))
        })
    });
    if let Some(line) = covering {
        return ListChange::AlreadyBlocked(line.to_owned());
    }
    let mut bytes = text.as_bytes().to_vec();
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(format!("*.{site}\n").as_bytes());
    ListChange::Add(bytes)
}

/// How a pending entry's asks read on the page: `1 ask` or `3 asks`.
pub fn asks_label(count: usize) -> String {
    if count == 1 {
        "1 ask".into()
    } else {
        format!("{count} asks")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_is_the_reports_host_checked_as_a_list_line() {
        let cases: [(Option<&str>, Result<&str, SiteRefusal>); 14] = [
            (Some("https://www.Example.ORG/upsetting?x=1"), Ok("www.example.org")),
            (Some("http://example.org.:8080/a"), Ok("example.org")),
            (Some("  https://bad.example/  "), Ok("bad.example")),
            (Some("https://user:pw@videos.example.net/watch#t=3"), Ok("videos.example.net")),
            (Some("https://bücher.example/"), Ok("xn--bcher-kva.example")),
            (Some("https://under_score.example/"), Ok("under_score.example")),
            (None, Err(SiteRefusal::NoUrl)),
            (Some(" "), Err(SiteRefusal::NoUrl)),
            (Some("file:///etc/passwd"), Err(SiteRefusal::NotAWebAddress)),
            (Some("not a url"), Err(SiteRefusal::NotAWebAddress)),
            (Some("chrome://settings"), Err(SiteRefusal::NotAWebAddress)),
            (Some("http://192.168.1.20/admin"), Err(SiteRefusal::IpAddress)),
            (Some("http://[::1]:8080/"), Err(SiteRefusal::IpAddress)),
            (Some("http://localhost/"), Err(SiteRefusal::NotADomain)),
        ];
        for (url, expected) in cases {
            assert_eq!(site_of(url), expected.map(str::to_owned), "{url:?}");
        }
    }

    #[test]
    fn refusals_say_nothing_of_the_address() {
        for refusal in [
            SiteRefusal::NoUrl,
            SiteRefusal::NotAWebAddress,
            SiteRefusal::IpAddress,
            SiteRefusal::NotADomain,
        ] {
            let said = refusal.to_string();
            assert!(!said.contains("http") && !said.contains('/'), "{said}");
        }
    }

    #[test]
    fn asks_for_the_same_site_join_its_pending_entry() {
        let pending = vec![(3, "bad.example".to_owned()), (7, "www.worse.example".to_owned())];
        let cases = [
            ("bad.example", Some(3)),
            ("www.worse.example", Some(7)),
            ("worse.example", None),
            ("www.bad.example", None),
            ("other.example", None),
        ];
        for (site, expected) in cases {
            assert_eq!(merge_into(&pending, site), expected, "{site}");
        }
        assert_eq!(merge_into(&[], "bad.example"), None, "the first ask makes the entry");
    }

    fn profile(name: &str, block: &[&str], allow: Option<&[&str]>) -> ProfileRecord {
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ProfileRecord {
            name: name.into(),
            block_lists: names(block),
            allow_only: allow.map(names),
            safe_search: "strict".into(),
        }
    }

    #[test]
    fn a_site_goes_only_into_a_school_block_list_some_profile_uses() {
        let uploaded: Vec<String> =
            ["adult", "iwf", "ks1-allowed", "spare", "school-blocks"].map(String::from).to_vec();
        let profiles = [
            profile("default", &["adult", "iwf", "school-blocks"], None),
            profile("oak", &["adult"], Some(&["ks1-allowed"])),
        ];
        let offered = lists_to_offer(&uploaded, &profiles);
        assert_eq!(
            offered,
            [
                ("adult".to_owned(), vec!["default".to_owned(), "oak".to_owned()]),
                ("school-blocks".to_owned(), vec!["default".to_owned()]),
            ],
            "not iwf (illegal content), not an allow list, not a list no profile uses"
        );
        assert!(lists_to_offer(&uploaded, &[]).is_empty());
    }

    #[test]
    fn the_site_accepted_is_the_recorded_host_or_a_parent() {
        let cases = [
            ("www.bad.example", "www.bad.example", Ok("www.bad.example")),
            ("www.bad.example", " BAD.example. ", Ok("bad.example")),
            ("www.bad.example", "*.bad.example", Ok("bad.example")),
            ("www.bad.example", "example", Err(())),
            ("www.bad.example", "ad.example", Err(())),
            ("www.bad.example", "other.example", Err(())),
            ("www.bad.example", "", Err(())),
            ("bad.example", "sub.bad.example", Err(())),
        ];
        for (recorded, typed, expected) in cases {
            let got = check_accept_site(recorded, typed);
            assert_eq!(got.clone().map_err(|_| ()), expected.map(str::to_owned), "{typed:?}");
            if let Err(e) = got {
                assert!(e.starts_with("Site: "), "{e}");
            }
        }
    }

    #[test]
    fn a_list_already_blocks_a_site_by_its_name_or_a_wildcard_above_it() {
        let list = "# school blocks\nbad.example\n*.Worse.Example.\nurl-sha256:00ff\n";
        let cases = [
            ("bad.example", Some("bad.example")),
            ("www.bad.example", None),
            ("worse.example", Some("*.Worse.Example.")),
            ("a.b.worse.example", Some("*.Worse.Example.")),
            ("notworse.example", None),
            ("example", None),
        ];
        for (site, expected) in cases {
            assert_eq!(blocking_line(list, site), expected, "{site}");
        }
    }

    #[test]
    fn accepting_adds_a_wildcard_line_unless_one_covers_the_site() {
        let cases: [(&str, &str, ListChange); 5] = [
            ("", "bad.example", ListChange::Add(b"*.bad.example\n".to_vec())),
            ("a.example\n", "bad.example", ListChange::Add(b"a.example\n*.bad.example\n".to_vec())),
            ("a.example", "bad.example", ListChange::Add(b"a.example\n*.bad.example\n".to_vec())),
            (
                "bad.example\n",
                "bad.example",
                ListChange::Add(b"bad.example\n*.bad.example\n".to_vec()),
            ),
            (
                "*.bad.example\n",
                "www.bad.example",
                ListChange::AlreadyBlocked("*.bad.example".into()),
            ),
        ];
        for (text, site, expected) in cases {
            let change = list_with_site(text, site);
            assert_eq!(change, expected, "{text:?} + {site}");
            if let ListChange::Add(bytes) = change {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.lines().all(list_line_ok), "still a list devices read: {text}");
                assert!(blocking_line(&text, site).is_some(), "blocked now: {text}");
                assert_eq!(
                    list_with_site(&text, site),
                    ListChange::AlreadyBlocked(format!("*.{site}")),
                    "accepting twice adds nothing"
                );
            }
        }
    }

    #[test]
    fn asks_are_counted_in_words() {
        assert_eq!(asks_label(1), "1 ask");
        assert_eq!(asks_label(3), "3 asks");
    }
}
