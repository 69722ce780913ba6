//! `slate-server`: the school server that Slate devices enroll with and report to, and the
//! staff pages where the DSL reads those reports.
//!
//! # Layout
//!
//! - [`server`]: the HTTP seam. [`router`] builds the routes over an [`AppState`]; [`serve`] runs
//!   them on a listener (TLS or plain) until a shutdown future resolves. Tests call both
//!   in-process on `127.0.0.1:0`; the binary (`src/main.rs`) only parses flags and calls them.
//! - [`api`]: the device API (`/api/v1/enroll`, `/api/v1/events`), speaking `slate_protocol`.
//! - [`staff`]: staff sign-in, the staff pages and the staff JSON API; [`pages`] renders HTML.
//! - [`store`]: the SQLite database, its migrations and every query. Nothing else touches SQL.
//! - [`data_dir`], [`tls`], [`listen`], [`secrets`], [`roster`]: the data directory and its
//!   private files, certificates, where to listen, random secrets and hashes, roster entries.
//! - [`cli`]: the command line's shape.
//!
//! Invariants: secrets are stored only as SHA-256 hashes (the staff key file excepted);
//! logs carry device numbers and event ids, never pupil names, page titles, URLs or secrets;
//! clients get short safe error messages, never internal causes.

pub mod api;
pub mod cli;
pub mod data_dir;
pub mod listen;
pub mod pages;
pub mod roster;
pub mod secrets;
pub mod server;
pub mod staff;
pub mod store;
pub mod tls;

pub use server::{router, serve, AppState, ServeError};
pub use store::{Store, StoreError};
pub use tls::TlsConfig;
