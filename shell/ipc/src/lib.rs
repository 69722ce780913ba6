//! Slate's local protocol on the device, like greetd's `greetd_ipc`: what the programs on one
//! device say to each other and where they find each other's files. The school server's wire
//! types are `slate-protocol`'s; this crate is what never leaves the device.
//!
//! - [`control`]: slated's control socket, its messages typed both ways and checked.
//! - [`client`]: the blocking client (`slatectl`, slate-ui).
//! - [`dns`]: slate-dns's socket, for slated.
//! - [`listen`] (feature `listen`): binding a socket with its permission checks, and the line
//!   framing both servers use.
//! - [`state_dir`]: where slated's signed policy files are for slate-ui and slate-dns.
//! - [`cgroup`]: the app cgroups slate-ui makes and slated freezes.
//! - [`atomic`]: replacing a file whole (temporary file, fsync, rename, fsync of the directory).
//! - [`logging`] (feature `logging`): the one logging setup every device binary uses; and
//!   [`EX_CONFIG`], the exit status each uses for a configuration it refuses.

pub mod atomic;
pub mod cgroup;
pub mod client;
pub mod control;
pub mod dns;
#[cfg(feature = "listen")]
pub mod listen;
#[cfg(feature = "logging")]
pub mod logging;
pub mod state_dir;

/// slate-ui's Wayland app id: it sets it before its window is made; slated's darkness lifts
/// the reassurance overlay over the window with this id.
pub const KIOSK_APP_ID: &str = "slate-ui";

/// sysexits.h's `EX_CONFIG` (78): the exit status of slated, slate-dns and slate-ui for a
/// configuration they refuse (its message names the file or flag and the field); their units do
/// not restart them for it (`RestartPreventExitStatus=78`). 2 is clap's, for bad usage.
pub const EX_CONFIG: u8 = 78;
