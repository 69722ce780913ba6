//! `slate-server`: the school server that Slate devices enroll with and report to, and the
//! staff pages where the DSL reads those reports.
//!
//! # Layout
//!
//! - [`server`]: the HTTP seam. [`router`] builds the routes over an [`AppState`]; [`serve`] runs
//!   them on a listener (TLS or plain) until a shutdown future resolves. Tests call both
//!   in-process on `127.0.0.1:0`; the binary (`src/main.rs`) only parses flags and calls them.
//! - [`api`]: the device API (`/api/v1/enroll`, `/api/v1/events`), speaking `slate_protocol`.
//! - [`staff`]: staff sign-in (password + TOTP, throttled), sessions, CSRF, sign-out, and the
//!   extractors that say who is asking; the staff-key link stays as IT's break-glass way in.
//! - [`desk`]: the staff handlers: incidents and their workflow, live updates (SSE), exports,
//!   device pages, "who had device N at T" (page and API), the iPad register, fleet, audit log.
//! - [`pages`] renders HTML; [`export`] writes CSV; [`pdf`] writes a printable incident
//!   record; `live.js` is the only script.
//! - Pure rules: [`auth`] (roles and permissions, password and TOTP checks, throttling, session
//!   lifetimes), [`incident`] (the workflow and the incident form), [`retention`] (the cut-off,
//!   and the daily purge job that applies it), [`governors`] (the termly anonymised counts
//!   and their SVG charts).
//! - [`config`]: the TOML config file, checked field by field; [`notify`]: email and webhook
//!   alerts for new reports.
//! - [`store`]: the SQLite database, its migrations and every query. Nothing else touches SQL.
//! - [`data_dir`], [`tls`], [`listen`], [`secrets`], [`roster`]: the data directory and its
//!   private files, certificates, where to listen, random secrets and hashes, roster entries.
//! - [`cli`]: the command line's shape.
//!
//! Invariants: secrets are stored only as SHA-256 hashes (the staff key file and TOTP secrets,
//! which must be readable to check codes, excepted; passwords as argon2id);
//! every view of pupil data and every staff action is written to the audit log;
//! logs carry device numbers and event ids, never pupil names, page titles, URLs or secrets;
//! clients get short safe error messages, never internal causes.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod desk;
pub mod export;
pub mod governors;
pub mod incident;
pub mod listen;
pub mod notify;
pub mod pages;
pub mod pdf;
pub mod retention;
pub mod roster;
pub mod secrets;
pub mod server;
pub mod staff;
pub mod store;
pub mod tls;

pub use server::{router, serve, AppState, LiveReport, ServeError};
pub use store::{Store, StoreError};
pub use tls::TlsConfig;
