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
//! - [`policy`]: the roster and approved apps, parsed and checked (first name + initial only).
//! - [`agreement`]: the key stages' acceptable use agreements, embedded from `assets/aup/`.
//! - [`browser`]: Chromium's managed policy and kiosk command line for a web app. Pure.
//! - [`link`]: the `DeviceLink` to slated over its control socket, and a fake.
//! - [`app`]: the controller that runs the machine's effects and computes the view.
//! - [`ui`]: copies the view into the Slint globals and their callbacks into events.
//!
//! # Not yet
//!
//! Apps are not launched yet (`app::Launcher` records the request). The policy is a local JSON
//! file until it arrives signed from the school server.

slint::include_modules!();

pub mod agreement;
pub mod app;
pub mod browser;
pub mod link;
/// The kiosk policy is a wire type: the school server makes it, `slated` and `slate-ui` read it.
pub use slate_protocol::kiosk as policy;
pub mod screen;
pub mod ui;
