//! `cargo bench -p slate-filter --bench build`: loads a generated 1,000,000-domain block list
//! and prints bytes per domain, load time and single-thread decision rate. A benchmark, not a
//! test: figures vary with the machine.

use slate_filter::bench::{build_filter, generate_list_text, generated_name};
use slate_filter::filter::qtype;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let text = generate_list_text(n);
    let (filter, figure) = build_filter(&text, n);
    println!(
        "rules={} heap_bytes={} load_ms={:.1}",
        figure.rules,
        figure.heap_bytes,
        figure.load.as_secs_f64() * 1e3
    );

    let now = chrono::Utc::now();
    let queries = 1_000_000usize;
    let names: Vec<String> = (0..1000)
        .map(|i| {
            if i % 2 == 0 {
                generated_name(i * 997 % n, false)
            } else {
                format!("allowed{i}.example.net")
            }
        })
        .collect();
    let start = Instant::now();
    let mut blocked = 0usize;
    for i in 0..queries {
        if matches!(
            filter.decide(&names[i % names.len()], qtype::A, now),
            slate_filter::Decision::Block(_)
        ) {
            blocked += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("decisions_per_s={:.0} blocked={blocked}", queries as f64 / secs);
    println!(
        "dns_filter bytes_per_domain={:.1} load_ms={:.0}",
        figure.bytes_per_domain(),
        figure.load.as_secs_f64() * 1e3
    );
}
