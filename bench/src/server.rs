//! `server`: the school server's two load figures, with the real library code in this process
//! on 127.0.0.1 and a real SQLite file in a temporary directory (or, with `--postgres URL`, an
//! empty PostgreSQL database).
//!
//! 1. Ingest rate: a few devices enrolled through `POST /api/v1/enroll`, then several
//!    concurrent uploaders posting full batches (256 events: session started/ended pairs and the
//!    odd report) to `POST /api/v1/events` over loopback HTTP with reqwest. Events stored per
//!    second, wall clock from the first post to the last answer.
//! 2. "Who had device N at T": the same database filled to `--events` events spread over 300
//!    devices and school days (six lessons a weekday), then 1,000 random in-lesson questions
//!    through `Store::who_had`, each answer checked against the plan. p99 in ms.
//!
//! The fill is the bench's bulk path: it writes through the store's own `Store::ingest`, one
//! device's run of lessons (thousands of events) per call and so per transaction, with the
//! events generated on another thread. No SQL here; only `slate_server::store` speaks SQL.

use crate::local_server::LocalServer;
use anyhow::{bail, Context};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use slate_protocol::{
    Batch, DeviceNumber, EnrollReply, EnrollRequest, Event, EventBody, IngestReply, PupilId,
    SessionEndReason, SessionId, MAX_EVENTS_PER_BATCH, PROTOCOL_VERSION,
};
use slate_server::secrets::Secret;
use slate_server::store::{EnrollOutcome, Store};
use std::time::Instant;

/// Devices in the filled school.
const FILL_DEVICES: u32 = 300;
/// Devices uploading at once in the ingest figure (numbered after the fill's).
const UPLOADERS: u32 = 8;
/// Batches each uploader posts.
const BATCHES_PER_UPLOADER: usize = 40;
/// Lessons a device is signed in for on a school day.
const LESSONS: u64 = 6;
/// Lesson start times (minutes after midnight, UTC).
const LESSON_STARTS: [i64; LESSONS as usize] =
    [9 * 60, 10 * 60, 11 * 60 + 15, 12 * 60 + 15, 13 * 60 + 45, 14 * 60 + 45];
/// One session in this many also has a report pressed during it.
const REPORT_EVERY: u64 = 200;
/// Lessons (per device) the fill hands `Store::ingest` in one call.
const LESSONS_PER_CALL: u64 = 2_000;
/// How many who-had questions are timed.
const QUERIES: usize = 1_000;

pub fn run(events: u64, postgres: Option<&str>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (store, database) = match postgres {
        Some(url) => (
            Store::connect_postgres(url, Default::default()).context("connect to PostgreSQL")?,
            "PostgreSQL".into(),
        ),
        None => {
            let path = dir.path().join("slate.sqlite");
            let store = Store::open(&path).context("open the server's database")?;
            (store, format!("SQLite in {}", path.display()))
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench(store, &database, events))
}

async fn bench(store: Store, database: &str, events: u64) -> anyhow::Result<()> {
    let plan = SchoolPlan::new(FILL_DEVICES);
    println!(
        "server: slate-server over http://127.0.0.1 (in-process, {database}), {UPLOADERS} uploaders x {BATCHES_PER_UPLOADER} batches of {MAX_EVENTS_PER_BATCH}, then fill to {events} events over {FILL_DEVICES} devices",
    );

    let (ingest_eps, uploaded) = ingest_over_http(&store).await?;
    println!("ingest: {uploaded} events stored over HTTP at {ingest_eps:.0} events/s");

    // The uploaded events count towards the total; the fill adds the rest.
    let (store2, plan2) = (store.clone(), plan.clone());
    let rest = events.saturating_sub(uploaded);
    let filled = tokio::task::spawn_blocking(move || bulk_fill(&store2, &plan2, rest)).await??;

    let store2 = store.clone();
    let latencies_ms =
        tokio::task::spawn_blocking(move || time_who_had(&store2, &plan, filled.sessions))
            .await??;
    let p50 = crate::quantile(&latencies_ms, 0.50);
    let p99 = crate::quantile(&latencies_ms, 0.99);
    println!(
        "who_had over {} sessions: p50={p50:.3} ms p99={p99:.3} ms n={QUERIES}",
        filled.sessions
    );
    println!(
        "ingest_eps={ingest_eps:.0} who_had_p99_ms={p99:.3} events={}",
        uploaded + filled.events
    );
    Ok(())
}

/// Enrolls the uploaders over HTTP, then has them post their batches at once; events/s stored,
/// and how many.
async fn ingest_over_http(store: &Store) -> anyhow::Result<(f64, u64)> {
    let server = LocalServer::start(store)?;
    let url = server.url.clone();
    let client = reqwest::Client::new();

    let mut devices = Vec::new();
    for n in FILL_DEVICES + 1..=FILL_DEVICES + UPLOADERS {
        let device = DeviceNumber::new(n)?;
        let token = store.issue_enrollment_token(device, ChronoDuration::hours(1), Utc::now())?;
        let request = EnrollRequest {
            v: PROTOCOL_VERSION,
            device,
            token: token.expose().to_owned(),
            software_version: "bench".into(),
        };
        let reply = client.post(format!("{url}/api/v1/enroll")).json(&request).send().await?;
        if !reply.status().is_success() {
            bail!("enrolling device {n}: HTTP {}", reply.status());
        }
        let reply: EnrollReply = reply.json().await?;
        devices.push((device, reply.credential));
    }

    // Batches are built before the clock starts: the figure is the server's, not the generator's.
    let uploads: Vec<_> = devices
        .into_iter()
        .enumerate()
        .map(|(i, (device, credential))| {
            let plan = SchoolPlan::new(1);
            let mut batches = Vec::new();
            let mut k = (i as u64) * 1_000_000;
            for _ in 0..BATCHES_PER_UPLOADER {
                let mut events = Vec::with_capacity(MAX_EVENTS_PER_BATCH);
                while events.len() + 3 <= MAX_EVENTS_PER_BATCH {
                    plan.session(k).push_events(device, &mut events);
                    k += 1;
                }
                batches.push(Batch::new(events));
            }
            (credential, batches)
        })
        .collect();
    let total: usize = uploads.iter().flat_map(|(_, b)| b).map(|b| b.events.len()).sum();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (credential, batches) in uploads {
        let client = client.clone();
        let url = format!("{url}/api/v1/events");
        tasks.push(tokio::spawn(async move {
            let mut stored = 0u64;
            for batch in batches {
                let reply = client.post(&url).bearer_auth(&credential).json(&batch).send().await?;
                if !reply.status().is_success() {
                    bail!("upload refused: HTTP {}", reply.status());
                }
                let reply: IngestReply = reply.json().await?;
                stored += u64::from(reply.stored);
            }
            anyhow::Ok(stored)
        }));
    }
    let mut stored = 0;
    for task in tasks {
        stored += task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if stored != total as u64 {
        bail!("posted {total} events, the server stored {stored}");
    }

    server.stop().await?;
    Ok((stored as f64 / elapsed, stored))
}

/// What the fill stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    pub events: u64,
    /// Sessions 0..sessions of the plan are stored.
    pub sessions: u64,
}

/// Bulk path: fills `store` with `plan`'s sessions until at least `target` events are stored
/// in the fill, through `Store::ingest`, one device's run of lessons per call (one transaction).
pub fn bulk_fill(store: &Store, plan: &SchoolPlan, target: u64) -> anyhow::Result<Filled> {
    enroll_devices(store, plan.devices, Utc::now())?;
    // Whole rounds of `LESSONS_PER_CALL` lessons on every device, the last round cut short.
    let sessions = plan.sessions_for(target);
    let (sender, receiver) = std::sync::mpsc::sync_channel::<(DeviceNumber, Vec<Event>)>(4);
    let generator_plan = plan.clone();
    let generator = std::thread::spawn(move || -> anyhow::Result<()> {
        let devices = u64::from(generator_plan.devices);
        let slots = sessions.div_ceil(devices);
        let mut slot = 0;
        while slot < slots {
            let end = (slot + LESSONS_PER_CALL).min(slots);
            for d in 0..devices {
                let device = DeviceNumber::new(d as u32 + 1)?;
                let mut events = Vec::new();
                for s in slot..end {
                    let k = s * devices + d;
                    if k < sessions {
                        generator_plan.session(k).push_events(device, &mut events);
                    }
                }
                if !events.is_empty() && sender.send((device, events)).is_err() {
                    return Ok(()); // the writer stopped; its error is the one to report
                }
            }
            slot = end;
        }
        Ok(())
    });

    let started = Instant::now();
    let mut stored = 0u64;
    let mut last_print = Instant::now();
    for (device, events) in receiver {
        let reply = store.ingest(device, &events, Utc::now())?;
        stored += u64::from(reply.stored);
        if last_print.elapsed().as_secs() >= 5 {
            last_print = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "fill: {stored}/{target} events ({:.0}%), {:.0} events/s, {secs:.0} s",
                100.0 * stored as f64 / target.max(1) as f64,
                stored as f64 / secs
            );
        }
    }
    generator.join().map_err(|_| anyhow::anyhow!("the event generator panicked"))??;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fill: {stored} events ({sessions} sessions) in {secs:.1} s, {:.0} events/s",
        stored as f64 / secs
    );
    Ok(Filled { events: stored, sessions })
}

/// Enrolls devices `1..=devices` as an enrollment token does (each with its own credential).
pub fn enroll_devices(store: &Store, devices: u32, now: DateTime<Utc>) -> anyhow::Result<()> {
    for n in 1..=devices {
        let device = DeviceNumber::new(n)?;
        let token = store.issue_enrollment_token(device, ChronoDuration::hours(1), now)?;
        let outcome =
            store.enroll(&token.hash(), device, &Secret::generate().hash(), "bench", now)?;
        if outcome != EnrollOutcome::Enrolled {
            bail!("enrolling device {n}: {outcome:?}");
        }
    }
    Ok(())
}

/// Times `QUERIES` who-had questions at random moments inside random stored sessions, checking
/// each answer names the planned pupil. Milliseconds each.
fn time_who_had(store: &Store, plan: &SchoolPlan, sessions: u64) -> anyhow::Result<Vec<f64>> {
    if sessions == 0 {
        bail!("nothing stored to ask about");
    }
    let mut rng = 0x5eed_u64;
    let mut latencies = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let k = mix(&mut rng) % sessions;
        let planned = plan.session(k);
        let length = (planned.end - planned.start).num_seconds() as u64;
        let at = planned.start + ChronoDuration::seconds((mix(&mut rng) % length) as i64);
        let device = DeviceNumber::new(planned.device)?;
        let started = Instant::now();
        let answer = store.who_had(device, at)?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        match answer {
            Some(who) if who.pupil == planned.pupil => {}
            other => bail!(
                "who had device {} at {at}: expected {}, got {other:?}",
                planned.device,
                planned.pupil
            ),
        }
    }
    Ok(latencies)
}

/// Where the filled school's sessions fall: session `k` is on device `k % devices + 1`, in
/// lesson slot `k / devices` (six a weekday, from Monday 2 September 2024 on).
#[derive(Debug, Clone)]
pub struct SchoolPlan {
    pub devices: u32,
    first_monday: NaiveDate,
    /// One session in this many has a report pressed during it.
    report_every: u64,
    /// One session in this many has a blocked attempt in the `adult` list (0: none).
    blocked_every: u64,
}

/// One planned session and whether a report was pressed during it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSession {
    pub device: u32,
    pub pupil: PupilId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub report_at: Option<DateTime<Utc>>,
    pub blocked_at: Option<DateTime<Utc>>,
    pub reason: SessionEndReason,
}

impl SchoolPlan {
    pub fn new(devices: u32) -> Self {
        Self {
            devices,
            first_monday: NaiveDate::from_ymd_opt(2024, 9, 2).expect("a date"),
            report_every: REPORT_EVERY,
            blocked_every: 0,
        }
    }

    /// The same school with a report in one session of `report_every` and a blocked attempt in
    /// one of `blocked_every` (the DSL's pages need more of both than who-had does).
    #[cfg(test)]
    pub fn with_incidents(devices: u32, report_every: u64, blocked_every: u64) -> Self {
        Self { report_every, blocked_every, ..Self::new(devices) }
    }

    /// Sessions needed for at least `events` events (2 a session, 3 with a report).
    pub fn sessions_for(&self, events: u64) -> u64 {
        let mut sessions = events / 2;
        while sessions > 0 && self.events_in(sessions - 1) >= events {
            sessions -= 1;
        }
        while self.events_in(sessions) < events {
            sessions += 1;
        }
        sessions
    }

    /// Events in sessions `0..sessions`.
    pub fn events_in(&self, sessions: u64) -> u64 {
        let blocked = match self.blocked_every {
            0 => 0,
            every => sessions.saturating_sub(1).div_ceil(every).min(sessions),
        };
        2 * sessions + sessions.div_ceil(self.report_every) + blocked
    }

    /// Session `k` of the plan. Pure: the same `k` always gives the same session.
    pub fn session(&self, k: u64) -> PlannedSession {
        let devices = u64::from(self.devices);
        let device = (k % devices) as u32 + 1;
        let slot = k / devices;
        let (day, lesson) = (slot / LESSONS, slot % LESSONS);
        let date = self.first_monday + ChronoDuration::days((day / 5 * 7 + day % 5) as i64);
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let mut h = k ^ 0x9e37_79b9_7f4a_7c15;
        let start = midnight
            + ChronoDuration::minutes(LESSON_STARTS[lesson as usize])
            + ChronoDuration::seconds((mix(&mut h) % 300) as i64);
        let end = start + ChronoDuration::seconds(35 * 60 + (mix(&mut h) % (15 * 60)) as i64);
        let report_at = k.is_multiple_of(self.report_every).then(|| start + (end - start) / 2);
        let blocked_at = (self.blocked_every > 0 && k % self.blocked_every == 1)
            .then(|| start + ChronoDuration::minutes(5));
        let pupil = PupilId::new(format!("p-{:06x}", mix(&mut h) % 2_000)).expect("a pupil id");
        let reason = if mix(&mut h).is_multiple_of(4) {
            SessionEndReason::SignedOut
        } else {
            SessionEndReason::EndOfLesson
        };
        PlannedSession { device, pupil, start, end, report_at, blocked_at, reason }
    }
}

impl PlannedSession {
    /// The session's events as `device` would send them (its own number, not the plan's).
    pub fn push_events(&self, device: DeviceNumber, events: &mut Vec<Event>) {
        let session = SessionId::new();
        events.push(Event::new(
            device,
            self.start,
            EventBody::SessionStarted { session, pupil: self.pupil.clone() },
        ));
        if let Some(at) = self.blocked_at {
            events.push(Event::new(
                device,
                at,
                EventBody::FilterBlocked {
                    session: Some(session),
                    pupil: Some(self.pupil.clone()),
                    layer: slate_protocol::FilterLayer::Dns,
                    target: "adult.example".into(),
                    rule: "exact:adult.example".into(),
                    list: "adult".into(),
                },
            ));
        }
        if let Some(at) = self.report_at {
            events.push(Event::new(
                device,
                at,
                EventBody::ReportFiled {
                    session: Some(session),
                    pupil: Some(self.pupil.clone()),
                    app: Some("browser".into()),
                    url: Some("https://example.org/page".into()),
                    page_title: Some("A page".into()),
                    blank_latency_us: Some(12_000),
                    recent_names: vec![],
                    origin: slate_protocol::ReportOrigin::Button,
                },
            ));
        }
        events.push(Event::new(
            device,
            self.end,
            EventBody::SessionEnded {
                session,
                pupil: self.pupil.clone(),
                started_at: self.start,
                reason: self.reason,
            },
        ));
    }
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
    use chrono::{Datelike, Timelike, Weekday};

    #[test]
    fn the_plan_is_school_days_without_overlaps() {
        let plan = SchoolPlan::new(3);
        let sessions: Vec<_> = (0..300).map(|k| plan.session(k)).collect();
        assert_eq!(plan.session(17), sessions[17], "pure");
        for (k, s) in sessions.iter().enumerate() {
            assert_eq!(s.device, (k % 3) as u32 + 1);
            assert!(!matches!(s.start.weekday(), Weekday::Sat | Weekday::Sun), "{k}");
            assert!((9..16).contains(&s.start.hour()) && s.start < s.end, "{k}");
            assert_eq!(s.report_at.is_some(), (k as u64).is_multiple_of(REPORT_EVERY));
            assert!(s.blocked_at.is_none(), "who-had's school has no blocks");
        }
        for d in 1..=3 {
            let mine: Vec<_> = sessions.iter().filter(|s| s.device == d).collect();
            assert!(mine.windows(2).all(|w| w[0].end <= w[1].start), "device {d} overlaps");
        }
    }

    #[test]
    fn events_in_counts_what_push_events_pushes() {
        for plan in [SchoolPlan::new(3), SchoolPlan::with_incidents(3, 48, 20)] {
            for sessions in [0, 1, 2, 21, 22, 48, 49, 500] {
                let mut events = Vec::new();
                for k in 0..sessions {
                    plan.session(k).push_events(DeviceNumber::new(1).unwrap(), &mut events);
                }
                assert_eq!(plan.events_in(sessions), events.len() as u64, "{plan:?} {sessions}");
            }
        }
    }

    #[test]
    fn sessions_for_reaches_the_target_and_no_further_than_needed() {
        let plan = SchoolPlan::new(300);
        for target in [0, 1, 2, 3, 399, 400, 401, 10_000_000] {
            let n = plan.sessions_for(target);
            assert!(plan.events_in(n) >= target, "{target}");
            assert!(n == 0 || plan.events_in(n - 1) < target, "{target}");
        }
    }

    #[test]
    fn a_small_fill_answers_who_had_as_planned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("slate.sqlite")).unwrap();
        let plan = SchoolPlan::new(4);
        let filled = bulk_fill(&store, &plan, 500).unwrap();
        assert_eq!(filled.events, plan.events_in(filled.sessions));
        assert!(filled.events >= 500);
        let latencies = time_who_had(&store, &plan, filled.sessions).unwrap();
        assert_eq!(latencies.len(), QUERIES);
    }
}
