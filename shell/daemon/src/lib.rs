//! The Slate device shell: `slated`, the daemon on every classroom device, and `slatectl`, its
//! control client.
//!
//! Functional core, imperative shell: [`core`] holds every rule and does no I/O; the adapters
//! around it each sit behind a small trait with a real implementation and a fake.
//!
//! # Layout
//!
//! - [`core`]: the device's state machine (sessions, report button with debounce and stuck/missing
//!   faults, staff hold with PIN lockout and the staff's choice). Pure.
//! - [`config`]: the configuration file, parsed purely and checked field by field.
//! - [`staff`]: the staff PIN's argon2id hash (checking only; the lockout is the core's).
//! - [`spool`]: the durable on-disk queue of events; nothing filed is lost.
//! - [`upload`]: enrollment and the upload loop to the school server (pure policy + transport).
//! - [`credential`]: the device's server credential on disk.
//! - [`button`]: the report button (evdev: device chosen by path, name or vendor/product,
//!   exclusive grab, udev-less hot-plug; stdin for the demo). Edges only; no rules.
//! - [`activity`]: the pupil's input anywhere (touchscreen, keyboards, mice; read, never
//!   grabbed, never what was typed) for the idle timeout, at most once every 30 s.
//! - [`display`]: darkness, confirmed: sysfs backlight, logind `SetBrightness` over zbus, a
//!   logging stand-in, a fake; one contract test runs on all of them (`tests/display.rs`).
//! - [`apps`]: the foreground app's process group stopped/resumed/closed by signal, audio muted
//!   by `wpctl`/`amixer`.
//! - [`led`]: the status LED's pattern as pure functions of the device's state.
//! - [`gpio`]: direct GPIO (button on a pin with pull-up and edge interrupts, the LED pin):
//!   pure edge/time mapping always; the rppal adapter only with the cargo feature `gpio`.
//! - [`dns`]: the client of slate-dns's socket (recent names, profile, reload), never blocking.
//! - [`policy`]: the signed policy from the server: verified, never older, lists checked by
//!   sha256, written atomically for slate-ui and slate-dns; the staff PIN and session rules.
//! - [`commands`]: teacher commands long-polled from the server (expired ones ignored).
//! - [`control`]: the control socket's server: peers, roles, the hand-off to the core (the
//!   messages are `slate_ipc::control`).
//! - [`daemon`]: wires it together; one task owns the core and carries out its commands.
//! - [`update`]: the device updating itself: check-in, resumable download, RAUC install while
//!   nobody is signed in, reboot when idle, a rolled-back slot reported and never tried again.
//! - [`school_network`]: `slate-network`: the school-network settings of `slate-provision.conf`
//!   (Wi-Fi country, WPA2/WPA3-Enterprise keyfiles, proxy, time servers, SSL-inspection CA),
//!   checked purely, then written atomically.
//! - [`data_key`]: `slate-data-key`: the data partition's LUKS2 passphrase wrapped under a key
//!   derived from the SD card's CID and the Pi's serial, kept as a token in the LUKS2 header.
//! - [`ctl`]: `slatectl`'s sentences for slated's replies (the client is `slate_ipc::client`).

pub mod activity;
pub mod apps;
pub mod button;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod core;
pub mod credential;
pub mod ctl;
pub mod daemon;
pub mod data_key;
pub mod display;
pub mod dns;
pub mod filter_check;
pub mod gpio;
pub mod led;
pub mod policy;
pub mod provision;
pub mod roster;
pub mod school_network;
pub mod server_tls;
pub mod setup;
pub mod spool;
pub mod ssh_access;
pub mod staff;
#[cfg(test)]
mod test_http;
pub mod update;
pub mod upload;

/// This software's version, as sent in `hello` and enrollment.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
