//! A guard against the server's own clock for the silent-device alerts (issue 17). A device
//! is "silent" when the server's clock says days have passed since it was last in touch; if
//! that clock jumps forward (bad NTP, a real-time clock reset to a far date), every device looks
//! silent at once and the DSL gets a flood of false alerts. A guard on the newest event would
//! hide the silence that matters most (the school network down: every device silent), so this
//! one uses the server's own evidence instead: the wall clock against `CLOCK_BOOTTIME` (which
//! counts from boot, suspend included, and is never set) within one boot
//! (`/proc/sys/kernel/random/boot_id`).
//!
//! Each silence check's reading is kept (`store/alert_rules.rs`, in the settings). If, since the
//! last check in the same boot, the wall clock moved more than [`JUMP`] away from what boot
//! time did (forward or back), the clock is suspect: that check raises no silent-device alert
//! and the jump is logged once; the guard waits until the clock has run with boot time for
//! [`SETTLE`] (counted in boot time) before it trusts it again. What it cannot see: a jump
//! across a reboot (a new boot id starts a new comparison), a wrong clock the server started
//! with, or one that stays wrong after [`SETTLE`] (then alerts flow again; the log line says
//! when it began). Without a boot clock or boot id (not Linux) every check is trusted, as before.
//!
//! [`judge`] is pure and table-tested; reading the clocks is [`ServerClock`]'s ([`SystemClock`]
//! on a real server, [`FakeClock`] in tests).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// How far the wall clock may drift from boot time between two checks (a minute apart) before
/// it counts as a jump: far more than NTP ever slews, far less than the days a silence needs.
pub const JUMP: Duration = Duration::minutes(10);
/// How long (in boot time) the wall clock must keep step with boot time after a jump before
/// silent-device alerts are raised again.
pub const SETTLE: Duration = Duration::hours(2);

/// What the server's clocks say at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReading {
    /// The wall clock: what every time the server stores is.
    pub wall: DateTime<Utc>,
    /// `CLOCK_BOOTTIME`, in milliseconds; `None` where it cannot be read.
    pub since_boot_ms: Option<i64>,
    /// This boot's id; `None` where it cannot be read.
    pub boot_id: Option<String>,
}

impl ClockReading {
    /// A clock that never jumped: boot time moving in step with the wall clock, whatever the
    /// wall clock does. For tests (and fakes) that move time on by setting the wall clock.
    pub fn steady(wall: DateTime<Utc>) -> ClockReading {
        ClockReading {
            wall,
            since_boot_ms: Some(wall.timestamp_millis()),
            boot_id: Some("steady".to_owned()),
        }
    }
}

/// Reads the server's clocks.
pub trait ServerClock: Send + Sync + 'static {
    fn read(&self) -> ClockReading;
}

/// The real clocks: the wall clock, `CLOCK_BOOTTIME` and the kernel's boot id.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl ServerClock for SystemClock {
    fn read(&self) -> ClockReading {
        use nix::time::{clock_gettime, ClockId};
        let since_boot_ms = clock_gettime(ClockId::CLOCK_BOOTTIME)
            .ok()
            .map(|t| t.tv_sec().saturating_mul(1000).saturating_add(t.tv_nsec() / 1_000_000));
        let wall = Utc::now();
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|text| text.trim().to_owned())
            .filter(|id| valid_boot_id(id));
        ClockReading { wall, since_boot_ms, boot_id }
    }
}

/// A boot id as the kernel writes it: a UUID (anything else is not trusted as one).
fn valid_boot_id(id: &str) -> bool {
    id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// A clock a test sets.
#[derive(Debug)]
pub struct FakeClock(Mutex<ClockReading>);

impl FakeClock {
    pub fn new(reading: ClockReading) -> FakeClock {
        FakeClock(Mutex::new(reading))
    }

    pub fn set(&self, reading: ClockReading) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = reading;
    }
}

impl ServerClock for FakeClock {
    fn read(&self) -> ClockReading {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the guard keeps between checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardState {
    /// The last check's reading.
    pub last: ClockReading,
    /// While the clock is suspect: the boot time (this boot's) from which it has kept step.
    pub settling_since_ms: Option<i64>,
}

/// A jump of the wall clock against boot time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    /// How far the wall clock moved beyond boot time, in seconds (negative: backwards).
    pub seconds: i64,
}

/// Whether the wall clock may be believed at this check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockVerdict {
    Trusted,
    /// It just jumped: raise no silent-device alert, and say so (once per suspect spell).
    Jumped {
        jump: Jump,
        newly_suspect: bool,
    },
    /// It jumped earlier and has not yet kept step with boot time for [`SETTLE`].
    Settling,
    /// It kept step for [`SETTLE`] after a jump: trusted again (worth a line in the log).
    Settled,
}

impl ClockVerdict {
    pub fn trusted(self) -> bool {
        matches!(self, ClockVerdict::Trusted | ClockVerdict::Settled)
    }
}

/// Judges the clock at `now` from the state the last check left (`None`: the first check).
/// Pure.
pub fn judge(previous: Option<&GuardState>, now: &ClockReading) -> (ClockVerdict, GuardState) {
    let keep = |settling_since_ms| GuardState { last: now.clone(), settling_since_ms };
    let Some(previous) = previous else { return (ClockVerdict::Trusted, keep(None)) };
    let last = &previous.last;
    let comparable = match (last.since_boot_ms, now.since_boot_ms) {
        (Some(then), Some(boot)) => {
            now.boot_id.is_some() && last.boot_id == now.boot_id && boot >= then
        }
        _ => false,
    };
    let (Some(boot), true) = (now.since_boot_ms, comparable) else {
        // Another boot, or no boot clock: nothing to compare with. A spell of suspicion carries
        // over and settles anew from this boot's time.
        let settling = previous.settling_since_ms.and(now.since_boot_ms);
        let verdict = match settling {
            Some(_) => ClockVerdict::Settling,
            None => ClockVerdict::Trusted,
        };
        return (verdict, keep(settling));
    };
    let boot_moved = boot - last.since_boot_ms.unwrap_or(boot);
    let wall_moved = (now.wall - last.wall).num_milliseconds();
    let drift = wall_moved - boot_moved;
    if drift.abs() > JUMP.num_milliseconds() {
        let jump = Jump { seconds: drift / 1000 };
        let newly_suspect = previous.settling_since_ms.is_none();
        return (ClockVerdict::Jumped { jump, newly_suspect }, keep(Some(boot)));
    }
    match previous.settling_since_ms {
        None => (ClockVerdict::Trusted, keep(None)),
        Some(since) if boot - since >= SETTLE.num_milliseconds() => {
            (ClockVerdict::Settled, keep(None))
        }
        Some(since) => (ClockVerdict::Settling, keep(Some(since))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn reading(wall: &str, boot_min: i64, boot: &str) -> ClockReading {
        ClockReading {
            wall: at(wall),
            since_boot_ms: Some(boot_min * 60_000),
            boot_id: Some(boot.to_owned()),
        }
    }

    fn state(last: ClockReading, settling_min: Option<i64>) -> GuardState {
        GuardState { last, settling_since_ms: settling_min.map(|m| m * 60_000) }
    }

    #[test]
    fn a_jump_within_one_boot_is_suspect_until_the_clock_keeps_step() {
        let t = "2026-11-17T10:00:00Z";
        let base = reading(t, 600, "a");
        let jumped = |seconds| ClockVerdict::Jumped { jump: Jump { seconds }, newly_suspect: true };
        let again = |seconds| ClockVerdict::Jumped { jump: Jump { seconds }, newly_suspect: false };
        #[rustfmt::skip]
        type Case<'a> = (&'a str, Option<GuardState>, ClockReading, ClockVerdict, Option<i64>);
        let cases: Vec<Case> = vec![
            // (name, what the last check left, this reading, verdict, settling since (min))
            ("first check", None, base.clone(), ClockVerdict::Trusted, None),
            (
                "a minute on",
                Some(state(base.clone(), None)),
                reading("2026-11-17T10:01:00Z", 601, "a"),
                ClockVerdict::Trusted,
                None,
            ),
            (
                "NTP slews 9 minutes",
                Some(state(base.clone(), None)),
                reading("2026-11-17T10:10:00Z", 601, "a"),
                ClockVerdict::Trusted,
                None,
            ),
            (
                "suspended an hour",
                Some(state(base.clone(), None)),
                reading("2026-11-17T11:00:00Z", 660, "a"),
                ClockVerdict::Trusted,
                None,
            ),
            (
                "jumps 30 days",
                Some(state(base.clone(), None)),
                reading("2026-12-17T10:01:00Z", 601, "a"),
                jumped(30 * 86_400),
                Some(601),
            ),
            (
                "goes back a day",
                Some(state(base.clone(), None)),
                reading("2026-11-16T10:01:00Z", 601, "a"),
                jumped(-86_400),
                Some(601),
            ),
            (
                "jumps again while suspect",
                Some(state(base.clone(), Some(590))),
                reading("2026-11-18T10:01:00Z", 601, "a"),
                again(86_400),
                Some(601),
            ),
            (
                "settling",
                Some(state(base.clone(), Some(590))),
                reading("2026-11-17T10:01:00Z", 601, "a"),
                ClockVerdict::Settling,
                Some(590),
            ),
            (
                "settled after two hours",
                Some(state(base.clone(), Some(480))),
                reading("2026-11-17T10:01:00Z", 601, "a"),
                ClockVerdict::Settled,
                None,
            ),
            // A reboot (or a boot clock that went back) cannot be compared with: trusted,
            // unless a suspect spell was under way, which settles anew.
            (
                "another boot",
                Some(state(base.clone(), None)),
                reading("2027-01-01T00:00:00Z", 1, "b"),
                ClockVerdict::Trusted,
                None,
            ),
            (
                "another boot while suspect",
                Some(state(base.clone(), Some(590))),
                reading("2026-11-17T10:05:00Z", 2, "b"),
                ClockVerdict::Settling,
                Some(2),
            ),
            (
                "boot clock back",
                Some(state(base.clone(), None)),
                reading("2026-12-17T10:00:00Z", 5, "a"),
                ClockVerdict::Trusted,
                None,
            ),
            (
                "no boot id",
                Some(state(base.clone(), None)),
                ClockReading { boot_id: None, ..reading("2026-12-17T10:00:00Z", 601, "a") },
                ClockVerdict::Trusted,
                None,
            ),
            (
                "no boot clock",
                Some(state(base.clone(), None)),
                ClockReading { since_boot_ms: None, ..reading("2026-12-17T10:00:00Z", 601, "a") },
                ClockVerdict::Trusted,
                None,
            ),
        ];
        for (name, previous, now, verdict, settling) in cases {
            let (got, kept) = judge(previous.as_ref(), &now);
            assert_eq!(got, verdict, "{name}");
            assert_eq!(kept.last, now, "{name}: each check's reading is kept");
            assert_eq!(kept.settling_since_ms, settling.map(|m| m * 60_000), "{name}");
        }
        assert!(ClockVerdict::Settled.trusted() && !ClockVerdict::Settling.trusted());
    }

    #[test]
    fn a_steady_clock_is_never_suspect_however_far_it_moves() {
        let first = ClockReading::steady(at("2026-11-17T10:00:00Z"));
        let (_, kept) = judge(None, &first);
        let later = ClockReading::steady(at("2026-12-25T10:00:00Z"));
        assert_eq!(judge(Some(&kept), &later).0, ClockVerdict::Trusted);
    }

    /// The real clocks, read twice: one boot, boot time not going back, the wall clock in step.
    #[test]
    fn the_system_clock_reads_this_machines_boot() {
        let first = SystemClock.read();
        let second = SystemClock.read();
        let boot_id = first.boot_id.clone().expect("Linux has a boot id");
        assert!(valid_boot_id(&boot_id), "{boot_id}");
        assert_eq!(second.boot_id, first.boot_id);
        assert!(second.since_boot_ms.unwrap() >= first.since_boot_ms.unwrap());
        let (_, kept) = judge(None, &first);
        assert!(judge(Some(&kept), &second).0.trusted());
        assert!(!valid_boot_id("not-a-uuid") && !valid_boot_id(""));
    }
}
