//! The one logging setup of the device binaries (slated, slate-dns, slate-ui; slate-server has
//! the same shape in `slate_server::logging`): lines to stderr, plain (no colour codes) unless
//! stderr is a terminal, so the journal gets readable lines. `RUST_LOG` filters, `default`
//! otherwise; `always` are directives that hold whatever `RUST_LOG` says (slate-dns keeps
//! hickory-server, which would log every name a pupil looks up, at `warn`).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Panics on a directive in `always` that does not parse (they
/// are constants in the binaries).
pub fn init(default: &str, always: &[&str]) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    for directive in always {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
