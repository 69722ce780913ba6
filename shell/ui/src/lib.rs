// The Chromium policy in `browser` is one large `json!` literal.
#![recursion_limit = "256"]
//! `slate-ui`: the screens a pupil sees on a Slate device (sign in, the acceptable use agreement,
//! home, reported, staff unlock, "ask your teacher", offline), drawn with Slint, and the pieces
//! that decide what they show. Functional core, imperative shell: the rules are pure and
//! table-tested; slated, the network and Slint are reached through narrow adapters.
//!
//! # Layout
//!
//! - `ui/*.slint`: the theme, widgets and one file per page. Each page exports a global adapter
//!   with preview defaults; Rust touches only those globals (as in Slint's energy-monitor demo).
//! - [`screen`]: which screen, and what a tap means. Pure.
//! - [`setup`]: IT's setup page of a device with no number: slated's step, what its pads send. Pure.
//! - The roster and approved apps are `slate_protocol::kiosk` (a wire type: the school server
//!   makes it, slated and slate-ui read it), parsed and checked (first name + initial only).
//! - [`policy_file`]: slated's cached signed policy, checked with the server's key and read again
//!   when it changes (or a plain file for the demo).
//! - [`agreement`]: the key stages' acceptable use agreements, embedded from `assets/aup/`.
//! - [`browser`]: Chromium's managed policy and kiosk command line for a web app. Pure.
//! - [`launcher`]: the real `app::Launcher` (Chromium in kiosk mode, native apps), per-session
//!   directories on tmpfs, exits reported so the kiosk goes home.
//! - [`cdp`]: the browser's control pipe and the guard that checks each navigation (URL layer).
//! - [`link`]: the `DeviceLink` to slated over its control socket, and a fake.
//! - [`config_error`]: the provisioning unit's message when slated's config was refused.
//! - [`front`]: whether slate-ui's window is mapped in front of a running app (pure) and the
//!   window adapter that maps and unmaps it.
//! - [`keyboard`]: shows and hides the on-screen keyboard (wvkbd) by signal.
//! - [`text_focus`]: whether a text field of the app in front has the focus (a web page reports
//!   it through CDP), so the keyboard is up only then, and the page fits above it.
//! - [`native_focus`]: the same for a native app, told by the compositor to slate-wayland's input
//!   method; which source answers for the app in front.
//! - [`app`]: the controller that runs the machine's effects and computes the view.
//! - [`ui`]: copies the view into the Slint globals and their callbacks into events.

slint::include_modules!();

pub mod agreement;
pub mod app;
pub mod browser;
pub mod cdp;
pub mod config_error;
pub mod front;
pub mod keyboard;
pub mod launcher;
pub mod link;
pub mod native_focus;
pub mod policy_file;
pub mod screen;
pub mod setup;
pub mod speech;
pub mod text_focus;
pub mod ui;
