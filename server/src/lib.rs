//! `slate-server`: the school server that Slate devices enroll with and report to, and the
//! staff pages where the DSL reads those reports.
//!
//! # Layout
//!
//! - [`http`]: the HTTP core. [`router`] merges every feature's routes over an [`AppState`];
//!   [`serve`] runs them on a listener (TLS or plain) until a shutdown future resolves. Tests call
//!   both in-process on `127.0.0.1:0`; the binary (`src/main.rs`) only parses flags and calls
//!   them. Beside it, what every feature shares: `http::error` (`PageError`, `ApiError`),
//!   `http::staff` (who is asking, cookies, CSRF), `http::forms` (reading forms, device numbers,
//!   UK times), `http::layout` (the page frame and small shared pieces of HTML),
//!   `http::connections` (connection limits and deadlines for slow clients).
//! - [`features`]: one module per feature, each with its `routes()`, handlers and pages; no
//!   feature imports another. `device_api` (`/api/v1/enroll`, `/api/v1/events`, and
//!   `/api/v1/device/policy`, `/lists/{name}`, `/commands`: signed policies, list files, the
//!   teacher-command long poll; documented in `server/openapi.json`, served at
//!   `/api/v1/openapi.json`), `sign_in` (password + TOTP, throttled, sign-out, password, "My
//!   account" with the unlock PIN; the staff-key link only where the config turns it on),
//!   `recovery` (a one-time link from `slate-server staff recover` on the server's console:
//!   TOTP set up again, a new password, a normal session),
//!   `incidents` (the list with live updates, one incident and its workflow, exports, the staff
//!   reports API), `devices` (device pages, "who had device N at T" as page and API, the iPad
//!   register, the fleet), `setup` (classes, roster import, apps, picture PINs, unlock PIN
//!   holders, session rules, filter lists and profiles, the policy key), `bypasses` (filter
//!   bypass requests and decisions), `commands` ("eyes on me", sign everyone out), `governors`
//!   (the termly report page), `audit` (the audit log page and CSV), `alert_settings` (the
//!   DSL's alert rules and escalation), `block_requests` (sites staff asked to block on
//!   unlocking a held device, accepted into a school block list or declined).
//! - [`export`] writes CSV; [`pdf`] writes a printable incident record; `live.js` (in
//!   `features/incidents/`) is the only script.
//! - Pure rules: [`access`] (who may do what: one table of permissions by role, each route's
//!   gate), [`auth`] (roles, password and TOTP checks, the sign-in throttle and username check, session and recovery-link
//!   lifetimes), [`incident`] (the workflow and the incident form), [`retention`] (the retention
//!   schedule per record type, its cut-offs, and the daily purge job that applies it), [`governors`] (the termly anonymised counts
//!   and their SVG charts), [`device_policy`] (the kiosk and filter documents devices get, built
//!   from the records), [`roster`] (the roster CSV), [`uk_time`] (Europe/London for pages and
//!   forms), [`who_had`] (who had a device at a time: one pupil, nobody, or a conflict),
//!   [`alert_rules`] (monitoring the filter: the alert rules, their de-duplication, and when an
//!   unacknowledged incident is escalated), [`block_requests`] (a site block request: the site
//!   a report's URL names, duplicates merged, what accepting it changes in a list).
//! - [`config`]: the TOML config file, checked field by field; [`notify`]: email and webhook
//!   alerts for new reports, alert rules and escalations, sent by [`alert_outbox`]'s worker
//!   from the outbox the store fills in each report's own transaction (and each batch's that
//!   fired a rule; the monitoring job's for silent devices and escalations), retried with
//!   backoff, across restarts.
//! - [`store`]: the SQLite database, its migrations and every query. Nothing else touches SQL.
//! - [`data_dir`], [`tls`], [`listen`], [`secrets`], [`roster`]: the data directory and its
//!   private files, certificates, where to listen, random secrets and hashes, roster entries;
//!   [`list_files`]: the uploaded list files, stored by content hash, old ones removed only
//!   after the row naming the new one is committed.
//! - [`cli`]: the command line's shape; [`run_as`]: commands run as the data directory's owner
//!   (root becomes it, anyone else is refused); [`running`]: an admin command on a data
//!   directory no running server uses says so, naming the one that does; [`logging`]: plain lines to stderr.
//!
//! Invariants: secrets are stored only as SHA-256 hashes (the staff key file and TOTP secrets,
//! which must be readable to check codes, excepted; passwords as argon2id);
//! every view of pupil data and every staff action is written to the audit log;
//! logs carry device numbers and event ids, never pupil names, page titles, URLs or secrets;
//! clients get short safe error messages, never internal causes.

pub mod access;
pub mod alert_outbox;
pub mod alert_rules;
pub mod auth;
pub mod backup;
pub mod block_requests;
pub mod chronology;
pub mod cli;
pub mod clock_guard;
pub mod config;
pub mod data_dir;
pub mod device_policy;
pub mod device_serials;
pub mod export;
pub mod features;
pub mod filter_checks;
pub mod governors;
pub mod http;
pub mod incident;
pub mod list_files;
pub mod listen;
pub mod logging;
pub mod notify;
pub mod pdf;
pub mod provision_sign;
pub mod retention;
pub mod roster;
pub mod run_as;
pub mod running;
pub mod secrets;
pub mod session_end;
pub mod ssh_access;
pub mod staff_accounts;
pub mod store;
pub mod tls;
pub mod totp_seal;
pub mod uk_time;
pub mod update_bundles;
pub mod update_rollout;
pub mod who_had;

pub use http::connections::ServeLimits;
pub use http::{router, serve, AppState, LiveReport, ServeError};
pub use store::{Store, StoreError};
pub use tls::TlsConfig;
