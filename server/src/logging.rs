//! The one logging setup of `slate-server`, the same shape as the device binaries'
//! (`slate_ipc::logging`): lines to stderr, plain (no colour codes) unless stderr is a
//! terminal, so the journal gets readable lines; `RUST_LOG` filters, `default` otherwise.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
