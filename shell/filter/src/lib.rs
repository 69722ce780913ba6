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
//! - [`events`]: block events and recently looked-up names, for the daemon.
//! - [`lockdown`]: the nftables rules and Chromium policy that stop DNS going around the filter.
//! - [`bench`]: building a large generated list, for the `slate-bench dns` figure.
//!
//! Imperative shell:
//! - [`server`]: the loopback DNS server (hickory) that asks the core and forwards to upstreams.
//! - `bin/slate-dns.rs`: flags, files and signals around [`server::run`].
//!
//! # What the daemon must add
//!
//! Block events ([`events::BlockEvent`]) need a protocol `EventBody` variant (not added here):
//! `filter_blocked { session?, pupil?, name, qtype, rule, list, category? }`.

pub mod bench;
pub mod events;
pub mod filter;
pub mod lists;
pub mod lockdown;
pub mod name;
pub mod policy;
pub mod safesearch;
pub mod server;

pub use filter::{Block, Decision, Filter};
