//! The URL layer (issue 5): lists of whole URLs, for what the DNS layer cannot see (one page on a
//! site that is otherwise fine). Lists such as the IWF's and CTIRU's are never shipped in the
//! clear: each entry is the SHA-256 of the policy's salt followed by the normalised URL, so the
//! device can check a URL without holding a readable list of them. Pure: no files, no network.
//!
//! Entry forms, one a line (blank lines and `#` comments ignored):
//! - `url-sha256:<hex>`: exactly this URL (query included).
//! - `prefix-sha256:<hex>`: every URL under this path: the hash of a normalised URL cut just
//!   after a `/` of its path, such as `https://host/a/` (or `https://host/` for a whole site).
//! - `host-sha256:<hex>`: every URL on this host, any scheme or port: the hash of salt + host.

use sha2::{Digest, Sha256};
use std::collections::HashSet;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("url {0:?} cannot be parsed: {1}")]
    Unparsable(String, String),
    #[error("url scheme {0:?} is not http or https")]
    Scheme(String),
    #[error("url has no host")]
    NoHost,
    #[error("list {list:?} line {line}: {reason}")]
    BadLine { list: String, line: usize, reason: String },
    #[error("url_salt: {0}")]
    BadSalt(String),
}

/// Characters RFC 3986 calls unreserved: a `%XX` escape of one of these means the same URL as
/// the character itself, so it is decoded; every other escape keeps upper-case hex.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes escapes of unreserved characters and upper-cases the hex of the others.
fn normalise_escapes(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = String::with_capacity(part.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                let v = h * 16 + l;
                if unreserved(v) {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push(bytes[i + 1].to_ascii_uppercase() as char);
                    out.push(bytes[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                continue;
            }
        }
        // The url crate has already percent-encoded everything outside ASCII.
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// A URL in the one form lists are made from: http or https only; host lower-case (IDNA to
/// punycode) without a trailing dot; default port dropped; no user info; no fragment; `.` and
/// `..` resolved; escapes of unreserved characters decoded and other escapes in upper-case hex;
/// an empty query dropped.
pub fn normalise(input: &str) -> Result<String, UrlError> {
    let url = url::Url::parse(input.trim())
        .map_err(|e| UrlError::Unparsable(input.chars().take(200).collect(), e.to_string()))?;
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(UrlError::Scheme(scheme.to_owned()));
    }
    let host = url.host_str().ok_or(UrlError::NoHost)?;
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let mut out = format!("{scheme}://{host}");
    // `port()` is already None for the scheme's default port.
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(&normalise_escapes(url.path()));
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(&normalise_escapes(query));
    }
    Ok(out)
}

/// The host of a normalised URL (what `host-sha256:` entries hash).
fn host_of(normalised: &str) -> &str {
    let rest = normalised.split_once("://").map_or(normalised, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    // IPv6 literals keep their brackets and colons; otherwise a `:port` is cut.
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Every path prefix of a normalised URL that ends in `/`, longest first: for
/// `https://h/a/b?q` that is `https://h/a/` and `https://h/`.
fn prefixes(normalised: &str) -> Vec<&str> {
    let without_query = normalised.split('?').next().unwrap_or(normalised);
    let path_start = without_query
        .find("://")
        .and_then(|i| without_query[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(without_query.len());
    let mut out: Vec<&str> = without_query[path_start..]
        .match_indices('/')
        .map(|(i, _)| &without_query[..path_start + i + 1])
        .collect();
    out.reverse();
    out
}

/// `sha256(salt + text)` in lower-case hex: how list entries are made.
pub fn salted_hash(salt: &[u8], text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(text.as_bytes());
    hex::encode(hasher.finalize())
}

/// Parses the policy's `url_salt` (hex).
pub fn parse_salt(hex_salt: &str) -> Result<Vec<u8>, UrlError> {
    hex::decode(hex_salt.trim()).map_err(|e| UrlError::BadSalt(e.to_string()))
}

/// One URL list, as hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlList {
    pub name: String,
    exact: HashSet<[u8; 32]>,
    prefix: HashSet<[u8; 32]>,
    host: HashSet<[u8; 32]>,
}

fn parse_digest(hex_digest: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_digest).map_err(|e| format!("not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("digest is {} bytes, not 32", b.len()))
}

impl UrlList {
    /// Parses a list file. Every line must be an entry, a comment or blank: a list that does
    /// not parse is refused whole, naming its line.
    pub fn parse(name: &str, text: &str) -> Result<Self, UrlError> {
        let mut list = UrlList { name: name.to_owned(), ..Default::default() };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad =
                |reason: String| UrlError::BadLine { list: name.to_owned(), line: i + 1, reason };
            let (kind, digest) =
                line.split_once(':').ok_or_else(|| bad("no `kind:` prefix".into()))?;
            let set = match kind {
                "url-sha256" => &mut list.exact,
                "prefix-sha256" => &mut list.prefix,
                "host-sha256" => &mut list.host,
                other => return Err(bad(format!("unknown entry kind {other:?}"))),
            };
            set.insert(parse_digest(&digest.to_ascii_lowercase()).map_err(bad)?);
        }
        Ok(list)
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.prefix.len() + self.host.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry (as it is written in the list) that covers `normalised`, if any.
    fn matches(&self, salt: &[u8], normalised: &str) -> Option<String> {
        let digest = |text: &str| -> [u8; 32] {
            let mut hasher = Sha256::new();
            hasher.update(salt);
            hasher.update(text.as_bytes());
            hasher.finalize().into()
        };
        let d = digest(normalised);
        if self.exact.contains(&d) {
            return Some(format!("url-sha256:{}", hex::encode(d)));
        }
        for prefix in prefixes(normalised) {
            let d = digest(prefix);
            if self.prefix.contains(&d) {
                return Some(format!("prefix-sha256:{}", hex::encode(d)));
            }
        }
        let d = digest(host_of(normalised));
        if self.host.contains(&d) {
            return Some(format!("host-sha256:{}", hex::encode(d)));
        }
        None
    }
}

/// Why a URL is blocked: which list and which entry (a hash: safe to report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlBlock {
    pub list: String,
    pub rule: String,
}

/// The URL lists in force and their salt.
#[derive(Debug, Clone, Default)]
pub struct UrlLists {
    pub salt: Vec<u8>,
    pub lists: Vec<UrlList>,
}

/// The decision for one top-level navigation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlDecision {
    Allow,
    Block(UrlBlock),
}

impl UrlLists {
    /// Checks a URL. Schemes other than http and https are not this layer's business (the
    /// browser policy blocks them) and are allowed here; an http(s) URL that cannot be
    /// normalised is blocked, since it cannot be checked.
    pub fn check(&self, url: &str) -> UrlDecision {
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            return UrlDecision::Allow;
        }
        let Ok(normalised) = normalise(url) else {
            return UrlDecision::Block(UrlBlock {
                list: "url-layer".into(),
                rule: "unparsable".into(),
            });
        };
        for list in &self.lists {
            if let Some(rule) = list.matches(&self.salt, &normalised) {
                return UrlDecision::Block(UrlBlock { list: list.name.clone(), rule });
            }
        }
        UrlDecision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        let table = [
            ("https://EXAMPLE.org/a", "https://example.org/a"),
            ("https://example.org", "https://example.org/"),
            ("https://example.org:443/a", "https://example.org/a"),
            ("http://example.org:80/a", "http://example.org/a"),
            ("http://example.org:8080/a", "http://example.org:8080/a"),
            ("https://example.org/a#frag", "https://example.org/a"),
            ("https://example.org/%7Euser/%41b", "https://example.org/~user/Ab"),
            ("https://example.org/a%2fb", "https://example.org/a%2Fb"),
            ("https://example.org/a/./b/../c", "https://example.org/a/c"),
            ("https://user:pw@example.org/x", "https://example.org/x"),
            ("https://example.org./x", "https://example.org/x"),
            ("https://example.org/x?", "https://example.org/x"),
            ("https://example.org/x?q=%6a%2f", "https://example.org/x?q=j%2F"),
            ("https://example.org/a b", "https://example.org/a%20b"),
            ("HTTPS://Bücher.example/", "https://xn--bcher-kva.example/"),
            ("http://127.0.0.1:8080/p", "http://127.0.0.1:8080/p"),
            ("  https://example.org/x  ", "https://example.org/x"),
        ];
        for (input, expected) in table {
            assert_eq!(normalise(input).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn normalisation_refusals() {
        assert!(matches!(normalise("ftp://example.org/"), Err(UrlError::Scheme(_))));
        assert!(matches!(normalise("file:///etc/passwd"), Err(UrlError::Scheme(_))));
        assert!(matches!(normalise("not a url"), Err(UrlError::Unparsable(..))));
    }

    #[test]
    fn prefixes_and_hosts() {
        assert_eq!(prefixes("https://h/a/b?q=/x"), ["https://h/a/", "https://h/"]);
        assert_eq!(prefixes("https://h/"), ["https://h/"]);
        assert_eq!(prefixes("https://h/a/b/"), ["https://h/a/b/", "https://h/a/", "https://h/"]);
        assert_eq!(host_of("https://h.example:8080/a"), "h.example");
        assert_eq!(host_of("https://h.example/a:b"), "h.example");
        assert_eq!(host_of("http://[::1]:8080/"), "[::1]");
        assert_eq!(host_of("http://[::1]/"), "[::1]");
    }

    fn lists(salt: &[u8], entries: &[(&str, &str)]) -> UrlLists {
        let text: String = entries
            .iter()
            .map(|(kind, text)| format!("{kind}:{}\n", salted_hash(salt, text)))
            .collect();
        UrlLists { salt: salt.to_vec(), lists: vec![UrlList::parse("iwf", &text).unwrap()] }
    }

    #[test]
    fn decisions_table() {
        let salt = b"\x01\x02salt";
        let l = lists(
            salt,
            &[
                ("url-sha256", "https://bad.example/page?id=1"),
                ("prefix-sha256", "https://mixed.example/gallery/"),
                ("host-sha256", "whole.example"),
            ],
        );
        let table = [
            ("https://bad.example/page?id=1", Some("url-sha256")),
            ("https://BAD.example:443/page?id=1#top", Some("url-sha256")),
            ("https://bad.example/%70age?id=1", Some("url-sha256")),
            ("https://bad.example/page?id=2", None),
            ("https://bad.example/page", None),
            ("https://mixed.example/gallery/", Some("prefix-sha256")),
            ("https://mixed.example/gallery/2024/x.html?z", Some("prefix-sha256")),
            ("https://mixed.example/gallery", None),
            ("https://mixed.example/about/", None),
            ("http://whole.example:8080/anything", Some("host-sha256")),
            ("https://sub.whole.example/", None),
            ("chrome://settings", None),
            ("data:text/html,hi", None),
        ];
        for (url, expected) in table {
            let got = match l.check(url) {
                UrlDecision::Allow => None,
                UrlDecision::Block(b) => {
                    assert_eq!(b.list, "iwf");
                    Some(b.rule.split(':').next().unwrap().to_owned())
                }
            };
            assert_eq!(got.as_deref(), expected, "{url}");
        }
        // The same list with another salt matches nothing.
        let other = UrlLists { salt: b"other".to_vec(), lists: l.lists.clone() };
        assert_eq!(other.check("https://bad.example/page?id=1"), UrlDecision::Allow);
        // A rule names the entry exactly as the list holds it.
        let UrlDecision::Block(b) = l.check("https://bad.example/page?id=1") else { panic!() };
        assert_eq!(
            b.rule,
            format!("url-sha256:{}", salted_hash(salt, "https://bad.example/page?id=1"))
        );
    }

    #[test]
    fn list_refusals_name_the_line() {
        let good = format!("# comment\n\nurl-sha256:{}\n", "ab".repeat(32));
        assert_eq!(UrlList::parse("iwf", &good).unwrap().len(), 1);
        let table = [
            ("example.org\n", 1, "prefix"),
            ("\nurl-sha256:abcd\n", 2, "32"),
            ("url-md5:00\n", 1, "unknown"),
            ("url-sha256:zz\n", 1, "hex"),
        ];
        for (text, line, reason) in table {
            match UrlList::parse("ctiru", text) {
                Err(UrlError::BadLine { list, line: l, reason: r }) => {
                    assert_eq!((list.as_str(), l), ("ctiru", line), "{text:?}");
                    assert!(r.contains(reason), "{text:?}: {r}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(parse_salt("zz").is_err());
        assert_eq!(parse_salt("0102").unwrap(), [1, 2]);
    }
}
