//! The school year `dsl-pages` fills its database with: pure, so the same parameters always
//! give the same school (the cached file is keyed by them) and its shape has table tests.
//!
//! 300 devices in six lessons a school day from Monday 1 September 2025, one pupil signed in
//! to each device each lesson. Every session has its sign-in, the agreement accepted, three
//! apps opened and its end; exactly `incidents` of them have a report pressed, one in eight a
//! blocked attempt (most in a harmful list), and heartbeats make up the rest of `events`.
//! A quarter of the sessions go to 40 "frequent" pupils: the chronologies with many records.

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// Devices in the school.
pub const DEVICES: u32 = 300;
/// Pupils on the roster, `p-000000` up.
pub const PUPILS: u32 = 2_000;
/// Classes the pupils are in, `Class 0` up (pupil n is in class n % CLASSES).
pub const CLASSES: u32 = 60;
/// Pupils with a quarter of all sessions between them, `p-000000` to `p-000027`.
pub const FREQUENT_PUPILS: u32 = 40;
/// A session has about this many events at the full size: it decides how many sessions.
const EVENTS_PER_SESSION: u64 = 30;
/// Lesson start times (minutes after midnight, UTC).
const LESSON_STARTS: [i64; 6] =
    [9 * 60, 10 * 60, 11 * 60 + 15, 12 * 60 + 15, 13 * 60 + 45, 14 * 60 + 45];
/// School days in a year: sessions are spread over about this many whatever their number.
const SCHOOL_DAYS: u64 = 190;
/// Events every session has: started, agreement accepted, three apps, ended.
const BASE_EVENTS: u64 = 6;
/// One session in this many has a blocked attempt.
const BLOCKED_EVERY: u64 = 8;
/// The lists blocked attempts are in, in turn: most harmful (the chronology shows those),
/// some not.
pub const BLOCKED_LISTS: [&str; 8] =
    ["adult", "violence", "gambling", "social", "drugs", "adult", "games", "terrorism"];
/// Apps opened, in turn.
const APPS: [&str; 4] = ["browser", "scratch", "maths", "reading"];

/// The whole year's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearPlan {
    pub incidents: u64,
    pub events: u64,
    pub sessions: u64,
    /// Blocked attempts in all.
    pub blocked: u64,
    /// Heartbeats in all (the events the rest leave).
    pub heartbeats: u64,
    /// Lesson slots each device has (`sessions / DEVICES`, rounded up).
    slots: u64,
}

/// One planned session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSession {
    pub device: u32,
    /// Pupil number: the id is `p-{n:06x}`.
    pub pupil: u32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub report_at: Option<DateTime<Utc>>,
    /// When, and in which list.
    pub blocked: Option<(DateTime<Utc>, &'static str)>,
    pub apps: [&'static str; 3],
    pub heartbeats: u64,
}

/// The DSL's work on one incident, decided from its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Still new.
    New,
    /// Acknowledged, and a kind of concern recorded.
    Acknowledged { category: usize },
    /// Acknowledged, kind recorded, an action taken (index into `Action::ALL`).
    Actioned { category: usize, action: usize },
}

impl YearPlan {
    /// The plan for `incidents` reports among `events` events, or why there can be none.
    pub fn new(incidents: u64, events: u64) -> Result<Self, String> {
        let sessions = incidents.max(events / EVENTS_PER_SESSION).max(1);
        let blocked = sessions / BLOCKED_EVERY;
        let fixed = BASE_EVENTS * sessions + incidents + blocked;
        let Some(heartbeats) = events.checked_sub(fixed) else {
            return Err(format!(
                "{incidents} incidents need at least {fixed} events ({sessions} sessions of \
                 {BASE_EVENTS} events, the reports and the blocked attempts)"
            ));
        };
        let slots = sessions.div_ceil(u64::from(DEVICES));
        Ok(Self { incidents, events, sessions, blocked, heartbeats, slots })
    }

    /// Session `k` (`0..sessions`).
    pub fn session(&self, k: u64) -> PlannedSession {
        let devices = u64::from(DEVICES);
        let lessons = LESSON_STARTS.len() as u64;
        let device = (k % devices) as u32 + 1;
        let slot = k / devices;
        // Spread over the school year: at most six slots a day, each its own lesson.
        let (day, lesson) = if self.slots > SCHOOL_DAYS * lessons {
            (slot / lessons, slot % lessons)
        } else {
            let day = slot * SCHOOL_DAYS / self.slots;
            (day, slot - (day * self.slots).div_ceil(SCHOOL_DAYS))
        };
        let date = first_monday() + Duration::days((day / 5 * 7 + day % 5) as i64);
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let mut h = k ^ 0x51a7_e000_0000_0017;
        let start = midnight
            + Duration::minutes(LESSON_STARTS[lesson as usize])
            + Duration::seconds((mix(&mut h) % 300) as i64);
        let end = start + Duration::seconds(35 * 60 + (mix(&mut h) % (15 * 60)) as i64);
        let pupil = if mix(&mut h).is_multiple_of(4) {
            (mix(&mut h) % u64::from(FREQUENT_PUPILS)) as u32
        } else {
            (mix(&mut h) % u64::from(PUPILS)) as u32
        };
        let report_at = (spread(self.sessions, self.incidents, k) == 1)
            .then(|| start + Duration::seconds(60 + (mix(&mut h) % 1800) as i64));
        let blocked = (spread(self.sessions, self.sessions / BLOCKED_EVERY, k) == 1).then(|| {
            let list = BLOCKED_LISTS[(mix(&mut h) % BLOCKED_LISTS.len() as u64) as usize];
            (start + Duration::seconds(120 + (mix(&mut h) % 1200) as i64), list)
        });
        let first_app = (mix(&mut h) % APPS.len() as u64) as usize;
        let apps = [0, 1, 2].map(|i| APPS[(first_app + i) % APPS.len()]);
        let heartbeats = spread(self.sessions, self.heartbeats, k);
        PlannedSession { device, pupil, start, end, report_at, blocked, apps, heartbeats }
    }

    /// The first and last day with sessions.
    pub fn days(&self) -> (NaiveDate, NaiveDate) {
        let first = self.session(0).start.date_naive();
        let last = self.session(self.sessions - 1).start.date_naive();
        (first, last)
    }
}

impl PlannedSession {
    #[cfg(test)]
    pub fn events(&self) -> u64 {
        BASE_EVENTS
            + self.heartbeats
            + u64::from(self.report_at.is_some())
            + u64::from(self.blocked.is_some())
    }
}

/// How the DSL has handled incident `id`: 3% still new, 7% acknowledged, the rest actioned.
pub fn handling(id: i64, categories: usize, actions: usize) -> Handling {
    let mut h = id as u64 ^ 0xd5_1000;
    let roll = mix(&mut h) % 100;
    let category = (mix(&mut h) % categories as u64) as usize;
    match roll {
        0..3 => Handling::New,
        3..10 => Handling::Acknowledged { category },
        _ => Handling::Actioned { category, action: (mix(&mut h) % actions as u64) as usize },
    }
}

fn first_monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 9, 1).expect("a date")
}

/// How many of `total` things session `k` of `sessions` gets, spread evenly (Bresenham): the
/// counts of all sessions add up to `total` exactly.
fn spread(sessions: u64, total: u64, k: u64) -> u64 {
    let (s, t, k) = (u128::from(sessions), u128::from(total), u128::from(k));
    ((k + 1) * t / s - k * t / s) as u64
}

/// splitmix64: the next pseudo-random number from `state`.
fn mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Weekday};

    #[test]
    fn the_counts_add_up_to_what_was_asked() {
        for (incidents, events) in [(100_000, 10_000_000), (2_000, 50_000), (1, 7), (10, 200)] {
            let plan = YearPlan::new(incidents, events).unwrap();
            let sessions: Vec<_> = (0..plan.sessions).map(|k| plan.session(k)).collect();
            let reports = sessions.iter().filter(|s| s.report_at.is_some()).count() as u64;
            let blocked = sessions.iter().filter(|s| s.blocked.is_some()).count() as u64;
            assert_eq!(reports, incidents, "{plan:?}");
            assert_eq!(blocked, plan.blocked, "{plan:?}");
            assert_eq!(sessions.iter().map(PlannedSession::events).sum::<u64>(), events);
            if incidents == 100_000 {
                break; // the big one's sums are checked; walking it again adds nothing
            }
        }
    }

    #[test]
    fn too_few_events_for_the_incidents_is_said() {
        let problem = YearPlan::new(2_000, 5_000).unwrap_err();
        assert!(problem.contains("at least 14250 events"), "{problem}");
    }

    #[test]
    fn sessions_are_lessons_on_school_days_over_about_a_year_without_overlaps() {
        for (incidents, events) in [(100_000, 10_000_000), (2_000, 50_000)] {
            let plan = YearPlan::new(incidents, events).unwrap();
            let (first, last) = plan.days();
            assert!((last - first).num_days() > 200, "{first} to {last}");
            let mut previous_end = vec![None; DEVICES as usize + 1];
            for k in 0..plan.sessions.min(20_000) {
                let s = plan.session(k);
                assert!(!matches!(s.start.weekday(), Weekday::Sat | Weekday::Sun));
                assert!(s.start < s.end && s.report_at.is_none_or(|r| s.start < r && r < s.end));
                assert!(s.blocked.is_none_or(|(b, _)| s.start < b && b < s.end));
                if let Some(end) = previous_end[s.device as usize] {
                    assert!(end <= s.start, "device {} overlaps at session {k}", s.device);
                }
                previous_end[s.device as usize] = Some(s.end);
            }
            assert_eq!(plan.session(77), plan.session(77), "pure");
        }
    }

    #[test]
    fn frequent_pupils_have_many_sessions() {
        let plan = YearPlan::new(2_000, 50_000).unwrap();
        let mut per_pupil = vec![0u32; PUPILS as usize];
        for k in 0..plan.sessions {
            per_pupil[plan.session(k).pupil as usize] += 1;
        }
        let frequent: u32 = per_pupil[..FREQUENT_PUPILS as usize].iter().sum();
        assert!(frequent * 5 > plan.sessions as u32, "a quarter or so: {frequent}");
    }

    #[test]
    fn handling_is_mostly_actioned_and_sometimes_new() {
        let all: Vec<_> = (1..=10_000).map(|id| handling(id, 8, 5)).collect();
        let new = all.iter().filter(|h| **h == Handling::New).count();
        let actioned = all.iter().filter(|h| matches!(h, Handling::Actioned { .. })).count();
        assert!((200..400).contains(&new), "{new}");
        assert!((8_700..9_300).contains(&actioned), "{actioned}");
        assert_eq!(handling(17, 8, 5), handling(17, 8, 5), "pure");
    }
}
