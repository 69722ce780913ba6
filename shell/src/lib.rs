//! The Slate device shell: `slated`, the daemon on every classroom device, and `slatectl`, its
//! control client.
//!
//! Functional core, imperative shell: [`core`] holds every rule and does no I/O; the adapters
//! around it each sit behind a small trait with a real implementation and a fake.
//!
//! # Layout
//!
//! - [`core`]: the device's state machine (sessions, report button, staff hold). Pure.
//! - [`config`]: the configuration file, parsed purely and checked field by field.
//! - [`spool`]: the durable on-disk queue of events; nothing filed is lost.
//! - [`upload`]: enrollment and the upload loop to the school server (pure policy + transport).
//! - [`credential`]: the device's server credential on disk.
//! - [`button`], [`display`], [`apps`]: adapters for the report button, the screen and the
//!   foreground app.
//! - [`control`]: the control socket's protocol and server (what `slatectl` speaks).
//! - [`daemon`]: wires it together; one task owns the core and carries out its commands.
//! - [`ctl`]: the `slatectl` client.

pub mod apps;
pub mod button;
pub mod config;
pub mod control;
pub mod core;
pub mod credential;
pub mod ctl;
pub mod daemon;
pub mod display;
pub mod spool;
pub mod upload;

/// This software's version, as sent in `hello` and enrollment.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
