//! Slate's on-device DNS filter: enforced safe search, block lists by category, allow-list-only
//! mode, time-bound bypasses, all driven by a signed policy from the school server (seed 004:
//! filtering "irrespective of their location").
//!
//! # Layout
//!
//! Functional core (no I/O, no clock, no tokio):
//! - [`name`]: normalising, hashing and walking domain names.
//! - [`safesearch`]: the rewrite table (search host → safe host).
//! - [`lists`]: compact block and allow lists (sorted 64-bit hashes), categories.
//! - [`policy`]: the policy document, its validation and its signed bundle.
//! - [`filter`]: [`filter::Filter::decide`], the one decision per query.
//! - [`events`]: block events, their coalescing, and recently looked-up names.
//! - [`wire`]: the UDP fast path's question reader and in-place refusal.
//! - [`source`]'s [`source::verify`] and [`source::assemble`]: list files against the manifest.
//! - [`lockdown`]: the nftables rules and Chromium policy that stop DNS going around the filter.
//! - [`refusal`]'s [`refusal::outcome_of`] and [`refusal::Filed`]: which of slate-dns's own
//!   refusals of the policy on the card are security breaches, each filed once.
//! - [`drops`]' [`drops::DropWatch`]: DNS the firewall refused around the filter, filed at most
//!   once a window.
//! - [`bench`]: building a large generated list, for the `slate-bench dns` figure.
//!
//! Imperative shell:
//! - [`server`]: the loopback DNS server (hickory) that asks the core and forwards to upstreams.
//! - [`source::Files`]: the signed policy bundle and list files on disk (fail closed).
//! - [`socket`]: slate-dns's own socket for slated (`recent`, `profile`, `reload`).
//! - [`notify`]: blocked attempts to slated's control socket (`filter_blocked`), from a bounded
//!   queue that never holds up an answer.
//! - [`refusal::ReportingFiles`], [`notify::send_breaches`]: those refusals to slated's control
//!   socket as `security_breach`.
//! - [`drops::NftCounter`], [`drops::run`]: the lockdown's counter, read with `nft`.
//! - `bin/slate-dns.rs`: flags, files and signals around the above; `bin/slate-dns-drops.rs`:
//!   the drop counter's own process (it needs CAP_NET_ADMIN, which slate-dns has not).

pub mod bench;
pub mod drops;
pub mod events;
pub mod filter;
pub mod lists;
pub mod lockdown;
pub mod name;
pub mod notify;
pub mod policy;
pub mod refusal;
pub mod safesearch;
pub mod server;
pub mod socket;
pub mod source;
pub mod wire;

pub use filter::{Block, Decision, Filter};
