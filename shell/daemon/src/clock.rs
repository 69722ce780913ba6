//! What each event says about the device's clock ([`ClockEvidence`]): the boot id, the time
//! since boot on `CLOCK_BOOTTIME`, and whether the wall clock was synchronised. A Raspberry Pi
//! has no real-time clock: until a time server answers, the clock says whatever systemd-timesyncd
//! restored from `/var/lib/systemd/timesync/clock` (the image keeps that on the data partition)
//! or the image's build time. The server flags such times; it also ends a session left open
//! when the boot id changes.
//!
//! The last known good time is kept across reboots in `<state_dir>/last-good-time`, written
//! (at most every [`RECORD_EVERY`]) while the clock is synchronised. A clock behind it at start
//! has gone backwards: slated logs it, moves the clock forward to it, and marks events not
//! synchronised until a time source has set the clock.
//!
//! Time sources: systemd-timesyncd (NTP) first. A school network may block NTP, so the school
//! server is the second: its `Date` on an answer over TLS, checked against the school's CA,
//! sets the clock when no time server has this boot and the clock is off by more than
//! [`SERVER_SKEW`] ([`correction`]). Until then [`crate::server_tls`] accepts a server
//! certificate that starts after the clock. slated's unit grants `CAP_SYS_TIME` for this alone.
//!
//! The sources sit behind [`ClockSource`] ([`SystemClock`] on a device, [`FakeClock`] in
//! tests); the decisions ([`synchronised`], [`record_due`]) are pure. The core task reads both
//! clocks through it ([`ClockWatch::now`], a [`Now`]): the wall clock for what events record,
//! the time since boot for every span it measures (idle timeout, PIN lockout), so that a clock
//! stepped backwards or forwards neither stretches nor cuts one.

pub use crate::core::Now;
use chrono::{DateTime, Utc};
use slate_protocol::{BootId, ClockEvidence};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Where the kernel says which boot this is.
pub const BOOT_ID_FILE: &str = "/proc/sys/kernel/random/boot_id";
/// Read instead of [`BOOT_ID_FILE`] when set. For tests only: a test cannot reboot the machine
/// it runs on, and this is how it gives a restarted slated a new boot.
pub const BOOT_ID_FILE_ENV: &str = "SLATE_BOOT_ID_FILE";
/// systemd-timesyncd touches this file each time a time server has set the clock (since
/// systemd 239; it is under `/run`, so it is gone after a reboot until the next answer).
pub const TIMESYNC_SYNCHRONIZED: &str = "/run/systemd/timesync/synchronized";
/// Where the last time seen with a synchronised clock is kept, in the state directory.
pub const LAST_GOOD_FILE: &str = "last-good-time";
/// How often the last good time is written while the clock is synchronised: often enough that a
/// clock restored after a power cut is caught, rarely enough to spare the SD card.
pub const RECORD_EVERY: Duration = Duration::from_secs(10 * 60);
/// How far the clock may be from the school server's before slated sets it: more than the
/// second an HTTP `Date` is rounded to and a slow answer's round trip.
pub const SERVER_SKEW: Duration = Duration::from_secs(30);

/// Where the clock facts come from.
pub trait ClockSource: Send + Sync {
    /// This boot's id, as the kernel wrote it.
    fn boot_id(&self) -> Result<BootId, String>;
    /// Time since boot, counting suspend.
    fn boottime(&self) -> Duration;
    /// The wall clock (which time sources, and slated itself, may step).
    fn wall_clock(&self) -> DateTime<Utc>;
    /// Whether a time server has set the clock during this boot.
    fn time_server_set_clock(&self) -> bool;
    /// Sets the wall clock.
    fn set_wall_clock(&self, to: DateTime<Utc>) -> Result<(), String>;
}

/// A clock shared with whoever steps it (a test keeps one end of a [`FakeClock`]).
impl<T: ClockSource + ?Sized> ClockSource for std::sync::Arc<T> {
    fn boot_id(&self) -> Result<BootId, String> {
        (**self).boot_id()
    }
    fn boottime(&self) -> Duration {
        (**self).boottime()
    }
    fn wall_clock(&self) -> DateTime<Utc> {
        (**self).wall_clock()
    }
    fn time_server_set_clock(&self) -> bool {
        (**self).time_server_set_clock()
    }
    fn set_wall_clock(&self, to: DateTime<Utc>) -> Result<(), String> {
        (**self).set_wall_clock(to)
    }
}

/// The device's own clock facts.
///
/// Synchronised means systemd-timesyncd's `synchronized` file exists, rather than adjtimex(2)'s
/// `STA_UNSYNC` being clear: slated's unit has `ProtectClock=yes`, whose seccomp filter refuses
/// adjtimex even to read, and timesyncd is what the image runs to keep time.
#[derive(Debug, Clone)]
pub struct SystemClock {
    boot_id_file: PathBuf,
    synchronized_file: PathBuf,
}

impl SystemClock {
    /// The kernel's boot id file (or the test's, from [`BOOT_ID_FILE_ENV`]) and timesyncd's flag.
    pub fn from_env() -> Self {
        let boot_id_file = std::env::var_os(BOOT_ID_FILE_ENV)
            .map_or_else(|| PathBuf::from(BOOT_ID_FILE), PathBuf::from);
        Self { boot_id_file, synchronized_file: PathBuf::from(TIMESYNC_SYNCHRONIZED) }
    }
}

impl ClockSource for SystemClock {
    fn boot_id(&self) -> Result<BootId, String> {
        let path = &self.boot_id_file;
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        BootId::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn boottime(&self) -> Duration {
        match nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) {
            Ok(t) => Duration::from(t),
            // Linux has had CLOCK_BOOTTIME since 2.6.39; zero says "unknown" without failing.
            Err(_) => Duration::ZERO,
        }
    }

    fn wall_clock(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn time_server_set_clock(&self) -> bool {
        self.synchronized_file.exists()
    }

    fn set_wall_clock(&self, to: DateTime<Utc>) -> Result<(), String> {
        let nanos = to.timestamp_nanos_opt().ok_or("time out of range")?;
        let spec = nix::sys::time::TimeSpec::from_duration(Duration::from_nanos(
            u64::try_from(nanos).map_err(|_| "time before 1970")?,
        ));
        nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, spec)
            .map_err(|e| format!("clock_settime: {e}"))
    }
}

/// The time now on both of the machine's clocks, for a core task with no [`ClockWatch`].
pub fn system_now() -> Now {
    let clock = SystemClock::from_env();
    Now { wall: clock.wall_clock(), since_boot: clock.boottime() }
}

/// Clock facts set by a test.
#[derive(Debug)]
pub struct FakeClock {
    pub boot_id: BootId,
    pub boottime: Mutex<Duration>,
    pub synced: std::sync::atomic::AtomicBool,
    /// Every time the wall clock was set to.
    pub set_to: std::sync::Arc<Mutex<Vec<DateTime<Utc>>>>,
    /// The wall clock as the test steps it; `None`: the machine's.
    pub wall: Mutex<Option<DateTime<Utc>>>,
}

impl FakeClock {
    /// Moves the time since boot on by `by` and sets the wall clock to `wall`: a test jumps the
    /// wall clock by giving a `wall` that does not move by `by`.
    pub fn pass(&self, by: Duration, wall: DateTime<Utc>) {
        *self.boottime.lock().unwrap_or_else(|e| e.into_inner()) += by;
        *self.wall.lock().unwrap_or_else(|e| e.into_inner()) = Some(wall);
    }
}

impl FakeClock {
    pub fn new(boot_id: BootId, synced: bool) -> Self {
        Self {
            boot_id,
            boottime: Mutex::new(Duration::from_secs(30)),
            synced: std::sync::atomic::AtomicBool::new(synced),
            set_to: Default::default(),
            wall: Mutex::new(None),
        }
    }
}

impl ClockSource for FakeClock {
    fn boot_id(&self) -> Result<BootId, String> {
        Ok(self.boot_id)
    }

    fn boottime(&self) -> Duration {
        *self.boottime.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wall_clock(&self) -> DateTime<Utc> {
        self.wall.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or_else(Utc::now)
    }

    fn time_server_set_clock(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_wall_clock(&self, to: DateTime<Utc>) -> Result<(), String> {
        self.set_to.lock().unwrap_or_else(|e| e.into_inner()).push(to);
        Ok(())
    }
}

/// Whether events may say the clock is synchronised: a time server set it, and it is not behind
/// the last good time seen before (a clock that went backwards is wrong whatever else says so).
/// Pure.
pub fn synchronised(
    now: DateTime<Utc>,
    time_server_set_clock: bool,
    last_good: Option<DateTime<Utc>>,
) -> bool {
    time_server_set_clock && last_good.is_none_or(|good| now >= good)
}

/// What to set the wall clock to when a trusted source says it is `source_time`: nothing once a
/// time source has set it this boot, or when it is within [`SERVER_SKEW`]. Pure.
pub fn correction(
    now: DateTime<Utc>,
    source_time: DateTime<Utc>,
    clock_known: bool,
) -> Option<DateTime<Utc>> {
    let skew = chrono::Duration::from_std(SERVER_SKEW).unwrap_or(chrono::Duration::MAX);
    (!clock_known && (source_time - now).abs() > skew).then_some(source_time)
}

/// Whether to write `now` as the last good time: only a synchronised time, and at most every
/// [`RECORD_EVERY`] (or when the recorded one is ahead of it, which a synchronised clock says is
/// wrong). Pure.
pub fn record_due(
    now: DateTime<Utc>,
    synchronised: bool,
    last_recorded: Option<DateTime<Utc>>,
) -> bool {
    let every = chrono::Duration::from_std(RECORD_EVERY).unwrap_or(chrono::Duration::MAX);
    synchronised && last_recorded.is_none_or(|recorded| now >= recorded + every || now < recorded)
}

/// Reads the last good time: `Ok(None)` when there is none yet, `Err` naming the file and what
/// is wrong with it.
pub fn load_last_good(path: &Path) -> Result<Option<DateTime<Utc>>, String> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
        Ok(bytes) if bytes.len() > 64 => Err(format!("{}: too large", path.display())),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            DateTime::parse_from_rfc3339(text.trim())
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| format!("{}: not an RFC 3339 time: {e}", path.display()))
        }
    }
}

/// Stamps events with the clock's evidence and keeps the last good time. Shared by the core task
/// and the uploader (heartbeats).
pub struct ClockWatch {
    source: Box<dyn ClockSource>,
    /// Read once: the boot id does not change while slated runs. `None`: unreadable (logged at
    /// start), and events go without evidence rather than with a made-up boot.
    boot_id: Option<BootId>,
    file: Option<PathBuf>,
    last_good: Mutex<Option<DateTime<Utc>>>,
    /// The school server's time set the clock this boot.
    set_by_server: std::sync::atomic::AtomicBool,
}

impl ClockWatch {
    /// Reads the boot id and the last good time from `state_dir` (`None`: not kept, tests), and
    /// logs a clock that is behind it.
    pub fn open(
        source: Box<dyn ClockSource>,
        state_dir: Option<&Path>,
        now: DateTime<Utc>,
    ) -> Self {
        let boot_id = match source.boot_id() {
            Ok(id) => {
                tracing::info!(boot_id = %id, "this boot");
                Some(id)
            }
            Err(e) => {
                tracing::error!(error = %e, "the boot id cannot be read: events carry no clock evidence");
                None
            }
        };
        let file = state_dir.map(|dir| dir.join(LAST_GOOD_FILE));
        let last_good = match file.as_deref().map(load_last_good) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(good))) => Some(good),
            Some(Err(e)) => {
                tracing::error!(error = %e, "the last good time is unreadable; ignored");
                None
            }
        };
        if let Some(good) = last_good.filter(|good| now < *good) {
            // A Pi with no real-time clock, after a power cut before timesyncd saved its clock:
            // the last known time is nearer the truth than the image's build time.
            let moved = match source.time_server_set_clock() {
                true => "",
                false => match source.set_wall_clock(good) {
                    Ok(()) => "; moved forward to it",
                    Err(e) => {
                        tracing::warn!(error = %e, "the clock could not be moved forward");
                        ""
                    }
                },
            };
            tracing::warn!(
                clock = %now.to_rfc3339(),
                last_good = %good.to_rfc3339(),
                "the system clock is behind the last synchronised time slated saw{moved}: events \
                 are marked not synchronised until a time source sets the clock"
            );
        }
        Self {
            source,
            boot_id,
            file,
            last_good: Mutex::new(last_good),
            set_by_server: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The time now on both clocks, for the core.
    pub fn now(&self) -> Now {
        Now { wall: self.source.wall_clock(), since_boot: self.source.boottime() }
    }

    /// Whether a time source has set the clock this boot (and it has not gone back since).
    pub fn known(&self, now: DateTime<Utc>) -> bool {
        let last_good = *self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        self.set_by_server.load(std::sync::atomic::Ordering::Relaxed)
            || synchronised(now, self.source.time_server_set_clock(), last_good)
    }

    /// [`ClockWatch::known`] as of each call, for [`crate::server_tls`]'s certificate checks.
    pub fn known_now(self: &std::sync::Arc<Self>) -> crate::server_tls::ClockKnown {
        let clock = self.clone();
        std::sync::Arc::new(move || clock.known(Utc::now()))
    }

    /// The school server said it is `server_time` (the `Date` of an answer over TLS checked
    /// against the school's CA, never plain HTTP): sets the clock if [`correction`] says so.
    pub fn server_time(&self, now: DateTime<Utc>, server_time: DateTime<Utc>) {
        let Some(to) = correction(now, server_time, self.known(now)) else { return };
        match self.source.set_wall_clock(to) {
            Ok(()) => {
                self.set_by_server.store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    was = %now.to_rfc3339(),
                    now = %to.to_rfc3339(),
                    "clock set from the school server's time (no time server has answered)"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "the clock could not be set from the school server's time")
            }
        }
    }

    /// The evidence for an event happening `now` (`None` without a boot id), and the last good
    /// time written when it is due.
    pub fn stamp(&self, now: DateTime<Utc>) -> Option<ClockEvidence> {
        let boot_id = self.boot_id?;
        let mut last_good = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        let synchronised = self.set_by_server.load(std::sync::atomic::Ordering::Relaxed)
            || synchronised(now, self.source.time_server_set_clock(), *last_good);
        if record_due(now, synchronised, *last_good) {
            match &self.file {
                Some(path) => {
                    match crate::policy::write_private(
                        path,
                        format!("{}\n", now.to_rfc3339()).as_bytes(),
                    ) {
                        Ok(()) => *last_good = Some(now),
                        Err(e) => tracing::warn!(error = %e, "the last good time was not recorded"),
                    }
                }
                None => *last_good = Some(now),
            }
        }
        let boottime_ms = u64::try_from(self.source.boottime().as_millis()).unwrap_or(u64::MAX);
        Some(ClockEvidence { boot_id, boottime_ms, synchronised })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn boot() -> BootId {
        BootId::parse("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b0f").unwrap()
    }

    #[test]
    fn synchronised_needs_a_time_server_and_no_step_back() {
        let good = Some(at("2026-11-17T10:00:00Z"));
        let cases = [
            ("never synchronised, nothing known", false, None, "2026-11-17T10:00:00Z", false),
            ("time server, nothing known", true, None, "2026-11-17T10:00:00Z", true),
            ("time server, after the last good", true, good, "2026-11-17T10:00:01Z", true),
            ("time server, exactly the last good", true, good, "2026-11-17T10:00:00Z", true),
            ("time server, behind the last good", true, good, "2026-11-17T09:59:59Z", false),
            ("build time after a power cut", false, good, "2026-09-01T00:00:00Z", false),
            ("no time server, ahead", false, good, "2026-11-17T11:00:00Z", false),
        ];
        for (name, server, last_good, now, expected) in cases {
            assert_eq!(synchronised(at(now), server, last_good), expected, "{name}");
        }
    }

    #[test]
    fn the_last_good_time_is_written_now_and_then_and_only_when_synchronised() {
        let recorded = Some(at("2026-11-17T10:00:00Z"));
        let cases = [
            ("first synchronised time", true, None, "2026-11-17T10:00:00Z", true),
            ("not synchronised", false, None, "2026-11-17T10:00:00Z", false),
            ("a minute later", true, recorded, "2026-11-17T10:01:00Z", false),
            ("just under ten minutes", true, recorded, "2026-11-17T10:09:59Z", false),
            ("ten minutes later", true, recorded, "2026-11-17T10:10:00Z", true),
            ("the recorded one is ahead", true, recorded, "2026-11-17T09:00:00Z", true),
            ("hours later, unsynchronised", false, recorded, "2026-11-17T14:00:00Z", false),
        ];
        for (name, synced, last, now, expected) in cases {
            assert_eq!(record_due(at(now), synced, last), expected, "{name}");
        }
    }

    #[test]
    fn a_clock_behind_the_last_good_time_is_not_synchronised_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let before = ClockWatch::open(
            Box::new(FakeClock::new(boot(), true)),
            Some(dir.path()),
            at("2026-11-17T10:00:00Z"),
        );
        let stamp = before.stamp(at("2026-11-17T10:00:00Z")).unwrap();
        assert!(stamp.synchronised);
        assert_eq!(stamp.boot_id, boot());
        assert_eq!(stamp.boottime_ms, 30_000);
        assert_eq!(
            load_last_good(&dir.path().join(LAST_GOOD_FILE)).unwrap(),
            Some(at("2026-11-17T10:00:00Z"))
        );
        // After a power cut the clock came back at the image's build time; timesyncd says
        // synchronised (wrongly, or from a bad server): still not trusted.
        let after_boot = BootId::parse("5c2d3b0f-7d2f-4a2b-9d64-0e669f3c4c10").unwrap();
        let after = ClockWatch::open(
            Box::new(FakeClock::new(after_boot, true)),
            Some(dir.path()),
            at("2026-09-01T00:00:00Z"),
        );
        let stamp = after.stamp(at("2026-09-01T00:00:05Z")).unwrap();
        assert!(!stamp.synchronised);
        assert_eq!(stamp.boot_id, after_boot);
        assert_eq!(
            load_last_good(&dir.path().join(LAST_GOOD_FILE)).unwrap(),
            Some(at("2026-11-17T10:00:00Z")),
            "an unsynchronised time is never recorded"
        );
        // Once the time server has set it forward again, it is trusted.
        assert!(after.stamp(at("2026-11-17T10:30:00Z")).unwrap().synchronised);
    }

    #[test]
    fn the_clock_is_set_only_when_no_source_has_and_it_is_off() {
        let now = at("2026-12-06T16:00:00Z");
        let cases = [
            ("a year behind", "2027-12-06T16:00:00Z", false, true),
            ("a year ahead", "2025-12-06T16:00:00Z", false, true),
            ("just over the allowed skew", "2026-12-06T16:00:31Z", false, true),
            ("within the skew", "2026-12-06T16:00:30Z", false, false),
            ("a time source set it already", "2027-12-06T16:00:00Z", true, false),
        ];
        for (name, server, known, set) in cases {
            let expected = set.then(|| at(server));
            assert_eq!(correction(now, at(server), known), expected, "{name}");
        }
    }

    #[test]
    fn the_school_servers_time_sets_the_clock_once_and_events_say_so() {
        let clock = FakeClock::new(boot(), false);
        let set_to = clock.set_to.clone();
        let watch = ClockWatch::open(Box::new(clock), None, at("2025-12-06T16:00:00Z"));
        assert!(!watch.known(at("2025-12-06T16:00:00Z")));
        watch.server_time(at("2025-12-06T16:00:00Z"), at("2026-12-06T16:00:00Z"));
        assert_eq!(*set_to.lock().unwrap(), [at("2026-12-06T16:00:00Z")]);
        assert!(watch.known(at("2026-12-06T16:00:01Z")));
        assert!(watch.stamp(at("2026-12-06T16:00:01Z")).unwrap().synchronised);
        watch.server_time(at("2026-12-06T16:00:02Z"), at("2026-12-06T18:00:00Z"));
        assert_eq!(set_to.lock().unwrap().len(), 1, "set once: then the clock is known");

        let ntp = FakeClock::new(boot(), true);
        let set_to = ntp.set_to.clone();
        let watch = ClockWatch::open(Box::new(ntp), None, at("2026-12-06T16:00:00Z"));
        watch.server_time(at("2026-12-06T16:00:00Z"), at("2026-12-06T17:00:00Z"));
        assert!(set_to.lock().unwrap().is_empty(), "a time server's clock is not overridden");
    }

    #[test]
    fn a_clock_behind_the_last_good_time_at_start_is_moved_forward_to_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LAST_GOOD_FILE), "2026-12-01T09:00:00Z\n").unwrap();
        let clock = FakeClock::new(boot(), false);
        let set_to = clock.set_to.clone();
        let watch = ClockWatch::open(Box::new(clock), Some(dir.path()), at("2025-06-01T00:00:00Z"));
        assert_eq!(*set_to.lock().unwrap(), [at("2026-12-01T09:00:00Z")]);
        assert!(!watch.known(at("2026-12-01T09:00:00Z")), "still not known to be right");
        let ahead = FakeClock::new(boot(), false);
        let set_to = ahead.set_to.clone();
        ClockWatch::open(Box::new(ahead), Some(dir.path()), at("2026-12-02T00:00:00Z"));
        assert!(set_to.lock().unwrap().is_empty(), "a clock past it is left alone");
    }

    #[test]
    fn a_bad_last_good_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAST_GOOD_FILE);
        std::fs::write(&path, "yesterday\n").unwrap();
        let err = load_last_good(&path).unwrap_err();
        assert!(err.contains(LAST_GOOD_FILE) && err.contains("RFC 3339"), "{err}");
        std::fs::write(&path, "x".repeat(100)).unwrap();
        assert!(load_last_good(&path).unwrap_err().contains("too large"));
        // Ignored, not fatal: events still carry their evidence.
        let watch = ClockWatch::open(
            Box::new(FakeClock::new(boot(), false)),
            Some(dir.path()),
            at("2026-11-17T10:00:00Z"),
        );
        assert!(!watch.stamp(at("2026-11-17T10:00:00Z")).unwrap().synchronised);
    }

    #[test]
    fn the_system_boot_id_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("boot_id");
        let clock = SystemClock {
            boot_id_file: file.clone(),
            synchronized_file: dir.path().join("synchronized"),
        };
        assert!(clock.boot_id().unwrap_err().contains("boot_id"), "missing file");
        std::fs::write(&file, "4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b0f\n").unwrap();
        assert_eq!(clock.boot_id().unwrap(), boot());
        std::fs::write(&file, "not a boot\n").unwrap();
        assert!(clock.boot_id().unwrap_err().contains("UUID"));
        assert!(!clock.time_server_set_clock());
        std::fs::write(dir.path().join("synchronized"), "").unwrap();
        assert!(clock.time_server_set_clock());
        let (a, b) = (clock.boottime(), clock.boottime());
        assert!(b >= a, "CLOCK_BOOTTIME never goes back");
    }
}
