//! When the server ends a pupil's session itself, because the device cannot (issue 13): after a
//! power cut or a crash nobody signs out, and "who had device 12 at T" must not name the last
//! pupil until the next sign-in. The decisions are pure; `store::ingest` and
//! `store::sessions` carry them out, and [`spawn_silence_job`] runs the silence check.
//!
//! - **The device restarted.** slated keeps no session across a restart (a pupil signs in
//!   again), so a session still open when the device's boot id changes, or when slated says
//!   `hello` again, is over. It ends at the last thing the server heard from the device before
//!   (its last event or heartbeat, by the device's clock, like the session's start), as
//!   `device_restarted`, marked inferred.
//! - **The device went silent.** A device online sends a heartbeat every 60 s (slated's default
//!   `[upload] heartbeat_s`; uploads count too). No word for [`SILENT_AFTER`] (two periods and a
//!   margin for a slow network) ends its open sessions at the last thing heard, as
//!   `device_silent`, marked inferred. A device that was only offline comes back with the same
//!   boot id: its silent-ended sessions open again, and its own `session_ended` (kept in its
//!   spool) sets the real end. A recorded end always replaces an inferred one.

use crate::store::Store;
use chrono::{DateTime, Utc};
use slate_protocol::BootId;

/// How long a device may say nothing before its open sessions end: two heartbeat periods (60 s,
/// slated's default) and a minute's margin.
pub const SILENT_AFTER: std::time::Duration = std::time::Duration::from_secs(2 * 60 + 60);
/// How often the silence check runs.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The end reasons only the server records (the device's own are the protocol's
/// `SessionEndReason`; `device_restarted` is also one of those, for a clean shutdown).
pub const DEVICE_RESTARTED: &str = "device_restarted";
pub const DEVICE_SILENT: &str = "device_silent";
/// IT or the DSL revoked the device (lost or stolen): nothing it says is taken after that.
pub const DEVICE_REVOKED: &str = "device_revoked";

/// Whether a newly stored event shows the device restarted since the last one: slated said
/// `hello` (it starts every time with one), or the boot id changed. A device that never sent a
/// boot id (older software) restarts only by its `hello`.
pub fn restarted(known_boot: Option<BootId>, event_boot: Option<BootId>, is_hello: bool) -> bool {
    is_hello || matches!((known_boot, event_boot), (Some(known), Some(now)) if known != now)
}

/// Where an open session ends when the server ends it: at the last thing heard from the device,
/// never before the session started (the device's clock may have stepped back).
pub fn inferred_end(started_at: DateTime<Utc>, last_heard: Option<DateTime<Utc>>) -> DateTime<Utc> {
    last_heard.map_or(started_at, |heard| heard.max(started_at))
}

/// Whether a device last seen (by the server's clock) at `last_seen_at` has gone silent by
/// `now`. A device never seen has nothing open to end.
pub fn silent(last_seen_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    let limit = chrono::Duration::from_std(SILENT_AFTER).unwrap_or(chrono::Duration::MAX);
    last_seen_at.is_some_and(|seen| now - seen > limit)
}

/// How a session's end reads on the staff pages: "10:41" for a recorded end; for an inferred
/// one "until at least 10:41, then the device restarted" (`time` is the end as staff read it).
pub fn end_label(time: &str, end_reason: Option<&str>, inferred: bool) -> String {
    match (inferred, end_reason) {
        (true, Some(DEVICE_RESTARTED)) => {
            format!("until at least {time}, then the device restarted (power cut or crash)")
        }
        (true, Some(DEVICE_SILENT)) => {
            format!("until at least {time}, then the device went silent")
        }
        (true, Some(DEVICE_REVOKED)) => {
            format!("until at least {time}, then the device was revoked")
        }
        (true, _) => format!("until at least {time}"),
        (false, _) => time.to_owned(),
    }
}

/// Ends the sessions of silent devices every [`CHECK_EVERY`] until the task is dropped or
/// aborted.
pub fn spawn_silence_job(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(CHECK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match store.run(|store| store.end_silent_sessions(Utc::now())).await {
                Ok(0) => {}
                Ok(ended) => tracing::info!(ended, "sessions of silent devices ended"),
                Err(error) => tracing::error!(%error, "the silence check failed; will try again"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn boot(n: u8) -> Option<BootId> {
        Some(BootId::parse(&format!("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b{n:02x}")).unwrap())
    }

    #[test]
    fn a_restart_is_a_hello_or_a_new_boot() {
        let cases = [
            ("same boot, an event", boot(1), boot(1), false, false),
            ("same boot, hello: slated restarted", boot(1), boot(1), true, true),
            ("new boot, hello", boot(1), boot(2), true, true),
            ("new boot, no hello (it was lost)", boot(1), boot(2), false, true),
            ("first boot id ever, an event", None, boot(1), false, false),
            ("first boot id ever, hello", None, boot(1), true, true),
            ("old software, an event", None, None, false, false),
            ("old software, hello", None, None, true, true),
            ("a device downgraded: no boot id now", boot(1), None, false, false),
        ];
        for (name, known, event, hello, expected) in cases {
            assert_eq!(restarted(known, event, hello), expected, "{name}");
        }
    }

    #[test]
    fn an_inferred_end_is_the_last_word_never_before_the_start() {
        let start = at("2026-11-17T10:00:00Z");
        let cases = [
            ("heard after the start", Some("2026-11-17T10:41:00Z"), "2026-11-17T10:41:00Z"),
            (
                "heard before the start (clock stepped)",
                Some("2026-11-17T09:00:00Z"),
                "2026-11-17T10:00:00Z",
            ),
            ("heard nothing else", None, "2026-11-17T10:00:00Z"),
        ];
        for (name, heard, expected) in cases {
            assert_eq!(inferred_end(start, heard.map(at)), at(expected), "{name}");
        }
    }

    #[test]
    fn silence_is_longer_than_two_heartbeats_and_a_margin() {
        let now = at("2026-11-17T10:10:00Z");
        let cases = [
            ("never seen", None, false),
            ("a heartbeat ago", Some("2026-11-17T10:09:00Z"), false),
            ("exactly the limit", Some("2026-11-17T10:07:00Z"), false),
            ("just over the limit", Some("2026-11-17T10:06:59Z"), true),
            ("a weekend ago", Some("2026-11-14T16:00:00Z"), true),
            ("ahead of the server's clock", Some("2026-11-17T10:20:00Z"), false),
        ];
        for (name, seen, expected) in cases {
            assert_eq!(silent(seen.map(at), now), expected, "{name}");
        }
    }

    #[test]
    fn an_inferred_end_says_so() {
        let cases = [
            ("signed out", Some("signed_out"), false, "10:41"),
            ("clean shutdown", Some(DEVICE_RESTARTED), false, "10:41"),
            (
                "power cut",
                Some(DEVICE_RESTARTED),
                true,
                "until at least 10:41, then the device restarted (power cut or crash)",
            ),
            (
                "silent",
                Some(DEVICE_SILENT),
                true,
                "until at least 10:41, then the device went silent",
            ),
            (
                "revoked",
                Some(DEVICE_REVOKED),
                true,
                "until at least 10:41, then the device was revoked",
            ),
            ("unknown inferred", None, true, "until at least 10:41"),
        ];
        for (name, reason, inferred, expected) in cases {
            assert_eq!(end_label("10:41", reason, inferred), expected, "{name}");
        }
    }
}
