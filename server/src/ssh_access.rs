//! Timed root ssh's words for staff pages: what a device's latest `ssh_access` command and its
//! answer mean at a given time ("ssh open until 11:30 (by it.admin)"). Pure; the Fleet's ssh
//! page and the device page both say it.

use crate::store::SshAccessState;
use crate::uk_time::format_uk_clock;
use chrono::{DateTime, Utc};
use slate_protocol::ssh_access::SshOutcome;

/// What the page says of a device's timed ssh at `now`. Pure.
pub fn ssh_words(state: Option<&SshAccessState>, now: DateTime<Utc>) -> String {
    let Some(s) = state else { return "ssh closed (never opened from the server)".into() };
    let until = format_uk_clock(s.until);
    match (&s.answer, s.keys) {
        (None, 0) => format!("closing: sent by {}, not answered yet", s.by),
        (None, _) if now < s.until => {
            format!("opening until {until} (by {}): the device has not answered yet", s.by)
        }
        (None, _) => {
            format!("ssh closed (the opening until {until} by {} was never answered)", s.by)
        }
        (Some(SshOutcome::Opened { until, .. }), _) if now < *until => {
            format!("ssh open until {} (by {})", format_uk_clock(*until), s.by)
        }
        (Some(SshOutcome::Opened { .. }), _) => format!("ssh closed (expired at {until})"),
        (Some(SshOutcome::Closed), _) => format!("ssh closed (by {})", s.by),
        (Some(SshOutcome::Refused { reason }), _) => format!("the device refused: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_says_whether_ssh_is_open_and_by_whom() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let until = t("2026-12-07T11:30:00Z");
        let state = |keys, answer| SshAccessState {
            command: 4,
            by: "it.admin".into(),
            issued_at: t("2026-12-07T10:30:00Z"),
            keys,
            until,
            answer,
        };
        let before = t("2026-12-07T11:00:00Z");
        let after = t("2026-12-07T11:31:00Z");
        let opened = Some(SshOutcome::Opened { until, keys: 1 });
        let cases = [
            (None, before, "never opened"),
            (Some(state(1, None)), before, "opening until 11:30 GMT (by it.admin)"),
            (Some(state(1, None)), after, "never answered"),
            (Some(state(1, opened.clone())), before, "ssh open until 11:30 GMT (by it.admin)"),
            (Some(state(1, opened)), after, "expired at 11:30 GMT"),
            (Some(state(0, Some(SshOutcome::Closed))), before, "ssh closed (by it.admin)"),
            (Some(state(0, None)), before, "closing"),
            (
                Some(state(1, Some(SshOutcome::Refused { reason: "clock".into() }))),
                before,
                "refused: clock",
            ),
        ];
        for (state, now, part) in cases {
            let words = ssh_words(state.as_ref(), now);
            assert!(words.contains(part), "{words:?} lacks {part:?}");
        }
    }
}
