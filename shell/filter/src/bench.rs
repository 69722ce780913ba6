//! Generated lists and the figures behind `slate-bench dns`: how many bytes a domain costs and
//! how long a million take to load. Pure apart from reading the monotonic clock to time the
//! build; no files, no network. Driven by `benches/build.rs` and `examples/dns_bench.rs`.

use crate::lists::{Category, DomainList, DomainSet};
use crate::policy::Policy;
use crate::Filter;
use std::time::{Duration, Instant};

/// `n` distinct, well-formed, deterministic domain names, one a line (list text), shaped like
/// real block-list entries (two to four labels, a tenth of them wildcards).
pub fn generate_list_text(n: usize) -> String {
    let mut out = String::with_capacity(n * 28);
    for i in 0..n {
        out.push_str(&generated_name(i, true));
        out.push('\n');
    }
    out
}

/// The `i`th generated name; with `rule`, every tenth is written as a wildcard rule.
pub fn generated_name(i: usize, rule: bool) -> String {
    // A cheap mix so names do not sort in generation order.
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let tld = ["com", "net", "org", "co.uk", "test"][i % 5];
    let wildcard = if rule && i.is_multiple_of(10) { "*." } else { "" };
    match i % 3 {
        0 => format!("{wildcard}b{i}-{:x}.{tld}", x & 0xffff),
        1 => format!("{wildcard}cdn{}.s{i}-{:x}.{tld}", i % 7, x & 0xfff),
        _ => format!("{wildcard}w.m{}.x{i}.{tld}", x % 97),
    }
}

/// What building the filter cost.
#[derive(Debug, Clone)]
pub struct BuildFigure {
    pub domains: usize,
    pub rules: usize,
    pub heap_bytes: usize,
    pub load: Duration,
}

impl BuildFigure {
    pub fn bytes_per_domain(&self) -> f64 {
        self.heap_bytes as f64 / self.domains.max(1) as f64
    }
}

/// A policy whose default profile enforces the one generated list, `bench`.
pub const BENCH_POLICY: &str = r#"{"v":1,"issued_at":"2026-01-01T00:00:00Z","default_profile":"all",
 "profiles":{"all":{"block_lists":["bench"],"safe_search":"strict"}}}"#;

/// Loads list text of `domains` names into a filter enforcing it, timing the parse and build.
pub fn build_filter(text: &str, domains: usize) -> (Filter, BuildFigure) {
    let start = Instant::now();
    let (set, report) = DomainSet::parse(text);
    let load = start.elapsed();
    let figure = BuildFigure { domains, rules: report.rules, heap_bytes: set.heap_bytes(), load };
    let mut filter = Filter::new();
    filter.add_list(DomainList::new("bench", Category::Other, set));
    filter
        .set_policy(Policy::from_json(BENCH_POLICY).expect("the bench policy is valid"))
        .expect("a fresh filter takes any policy");
    (filter, figure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::qtype;
    use crate::Decision;

    #[test]
    fn generated_names_are_distinct_rules_and_all_blocked() {
        let n = 2_000;
        let text = generate_list_text(n);
        let (filter, figure) = build_filter(&text, n);
        assert_eq!(figure.rules, n, "every generated line is a valid rule");
        assert_eq!(figure.heap_bytes, 8 * n, "8 bytes a rule, no duplicates");
        let now = chrono::Utc::now();
        for i in (0..n).step_by(97) {
            let name = generated_name(i, false);
            assert!(matches!(filter.decide(&name, qtype::A, now), Decision::Block(_)), "{name}");
        }
        assert_eq!(filter.decide("www.bbc.co.uk", qtype::A, now), Decision::Allow);
        assert!(matches!(filter.decide("sub.b0-0.com", qtype::A, now), Decision::Block(_)));
    }
}
