//! Domain names as the filter sees them: normalised (lower case, no trailing dot, checked
//! syntax), hashed to 64 bits, and walked from the full name up through its parent suffixes.
//! Pure: no I/O, no allocation on the lookup path beyond the caller's buffer.

use xxhash_rust::xxh3::xxh3_64;

/// Longest name in presentation form without the trailing dot (RFC 1035: 255 octets on the
/// wire, 253 characters written out).
pub const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Normalises a DNS name for matching: ASCII lower case, one trailing dot removed, every label
/// 1 to 63 characters of `[a-z0-9_-]` (internationalised names arrive as `xn--` punycode).
/// Returns `None` for anything else, which the filter treats as a refused name.
pub fn normalise(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    for label in name.split('.') {
        let well_formed = (1..=MAX_LABEL_LEN).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return None;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.extend(label.chars().map(|c| c.to_ascii_lowercase()));
    }
    Some(out)
}

/// The name itself, then each parent suffix: `a.b.com`, `b.com`, `com`.
/// `name` must already be normalised.
pub fn suffixes(name: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(name);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.split_once('.').map(|(_, rest)| rest);
        Some(current)
    })
}

/// The 64-bit hash of a normalised name. XXH3 is specified and stable across versions, so a
/// server may one day ship pre-hashed lists.
pub fn hash(name: &str) -> u64 {
    xxh3_64(name.as_bytes())
}

/// True when `name` is `domain` or a name under it (`a.example.com` is under `example.com`,
/// `badexample.com` is not). Both normalised.
pub fn is_within(name: &str, domain: &str) -> bool {
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_lowercases_and_drops_one_trailing_dot() {
        let cases = [
            ("Example.COM.", Some("example.com")),
            ("www.google.co.uk", Some("www.google.co.uk")),
            ("xn--bcher-kva.example", Some("xn--bcher-kva.example")),
            ("_dmarc.example.com", Some("_dmarc.example.com")),
            ("", None),
            (".", None),
            ("a..b", None),
            ("example.com..", None),
            ("exa mple.com", None),
            ("bücher.example", None),
            ("*.example.com", None),
        ];
        for (input, expected) in cases {
            assert_eq!(normalise(input).as_deref(), expected, "{input:?}");
        }
        assert!(normalise(&format!("{}.com", "a".repeat(64))).is_none());
        assert!(normalise(&format!("{}.com", "a".repeat(63))).is_some());
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(long.len() > MAX_NAME_LEN);
        assert!(normalise(&long).is_none());
    }

    #[test]
    fn suffixes_walk_up_to_the_top_level() {
        let all: Vec<_> = suffixes("a.b.example.com").collect();
        assert_eq!(all, ["a.b.example.com", "b.example.com", "example.com", "com"]);
        assert_eq!(suffixes("localhost").collect::<Vec<_>>(), ["localhost"]);
    }

    #[test]
    fn within_respects_label_boundaries() {
        assert!(is_within("example.com", "example.com"));
        assert!(is_within("a.example.com", "example.com"));
        assert!(!is_within("badexample.com", "example.com"));
        assert!(!is_within("com", "example.com"));
    }

    #[test]
    fn hash_is_stable() {
        // Pinned: lists hashed by another build or by the server must keep matching.
        assert_eq!(hash("example.com"), 10_044_734_154_400_447_347);
        assert_ne!(hash("example.com"), hash("example.org"));
    }
}
