//! `dsl-pages`: the DSL's pages on a big school's database. A real SQLite file, made by the
//! server's own migrations and filled through the store's own calls (`Store::ingest` for a
//! year of devices' events, then the DSL's workflow steps on the incidents the reports opened:
//! see [`plan`] for the school), answers a real `slate-server` on 127.0.0.1 in this process,
//! which a DSL signs in to through the sign-in form (password and TOTP code). Then, one
//! request at a time:
//!
//! - the incident list, `/reports`: later pages and searches by class, device, dates, state,
//!   kind of concern and pupil, alone and together, in turn;
//! - pupils' chronologies, `/pupils/{id}`, of the pupils with the most records.
//!
//! Filling is most of the work, so the filled file is kept in `$HOME/.cache/slate-bench/`,
//! named by the fill's parameters, [`FILL_VERSION`] and the schema's version; a later run
//! copies it instead of filling. The fill runs in a tmpfs (`/dev/shm`) where there is one: the
//! store commits each workflow step with an fsync, and those are free there.
//!
//! Figures: p99 of each kind, in ms.

mod plan;

use crate::local_server::LocalServer;
use anyhow::{anyhow, bail, Context};
use chrono::{Duration as ChronoDuration, Utc};
use plan::{Handling, PlannedSession, YearPlan};
use slate_protocol::{
    DeviceNumber, Event, EventBody, FilterLayer, PupilId, SessionEndReason, SessionId,
};
use slate_server::auth::{self, HashCost, Role};
use slate_server::incident::{Action, Details, Step, CATEGORIES};
use slate_server::roster::PupilEntry;
use slate_server::store::Store;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Bump when the plan or the fill changes what the filled file holds.
const FILL_VERSION: u32 = 1;
/// Requests timed of each kind at the full size.
const QUERIES: usize = 300;
/// Lesson slots each call to `Store::ingest` carries per device (one transaction each).
const SLOTS_PER_CALL: u64 = 100;
/// The DSL who handled the incidents in the fill, and who signs in to the pages.
const DSL: &str = "bench.dsl";
const DSL_PASSWORD: &str = "the DSL's long bench password";

/// What one run of the bench asks for.
pub struct Options<'a> {
    pub incidents: u64,
    pub events: u64,
    /// Where filled files are kept between runs.
    pub cache: &'a Path,
    /// Requests timed of each kind.
    pub queries: usize,
}

/// What one run measured.
#[derive(Debug)]
pub struct Figures {
    pub incidents: u64,
    /// Whether the filled file came from the cache.
    pub reused: bool,
    /// Milliseconds, each incident-list request.
    pub list: Vec<f64>,
    /// Milliseconds, each chronology.
    pub pupil: Vec<f64>,
}

pub fn run(incidents: u64, events: u64) -> anyhow::Result<()> {
    let home = std::env::var_os("HOME").context("HOME is not set: the fill is cached under it")?;
    let cache = PathBuf::from(home).join(".cache/slate-bench");
    let figures = measure(&Options { incidents, events, cache: &cache, queries: QUERIES })?;
    let (list, pupil) = (&figures.list, &figures.pupil);
    let fill = if figures.reused { "the cached fill" } else { "a new fill" };
    println!(
        "on {fill}: incident list: p50={:.1} ms p99={:.1} ms n={}; pupil page: p50={:.1} ms p99={:.1} ms n={}",
        crate::quantile(list, 0.5),
        crate::quantile(list, 0.99),
        list.len(),
        crate::quantile(pupil, 0.5),
        crate::quantile(pupil, 0.99),
        pupil.len()
    );
    println!(
        "dsl_pages incidents={} list_p99_ms={:.1} pupil_p99_ms={:.1}",
        figures.incidents,
        crate::quantile(list, 0.99),
        crate::quantile(pupil, 0.99)
    );
    Ok(())
}

/// Fills (or takes from the cache) the school's database, then times the pages.
pub fn measure(options: &Options) -> anyhow::Result<Figures> {
    let plan = YearPlan::new(options.incidents, options.events).map_err(|e| anyhow!(e))?;
    std::fs::create_dir_all(options.cache)
        .with_context(|| format!("create {}", options.cache.display()))?;
    let name = format!(
        "dsl-pages-fill{FILL_VERSION}-schema{}-incidents{}-events{}.sqlite",
        slate_server::store::schema_version(),
        plan.incidents,
        plan.events
    );
    let cached = options.cache.join(&name);
    let work = work_dir()?;
    let database = work.path().join("slate.sqlite");
    let reused = cached.exists();
    if reused {
        let started = Instant::now();
        std::fs::copy(&cached, &database).context("copy the cached database")?;
        println!(
            "dsl-pages: reusing the filled database {} (same fill and schema), copied in {:.1} s",
            cached.display(),
            started.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "dsl-pages: filling {} with {} incidents in {} events ({} sessions, {} blocked, {} \
             heartbeats) on {} devices",
            database.display(),
            plan.incidents,
            plan.events,
            plan.sessions,
            plan.blocked,
            plan.heartbeats,
            plan::DEVICES
        );
        let started = Instant::now();
        fill(&database, &plan)?;
        println!("fill: done in {:.1} s", started.elapsed().as_secs_f64());
        keep(&database, &cached)?;
        println!("fill: cached as {} for the next run", cached.display());
    }
    let store = Store::open(&database).context("open the filled database")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (list, pupil) = runtime.block_on(pages(store, &plan, options.queries))?;
    Ok(Figures { incidents: plan.incidents, reused, list, pupil })
}

/// A private directory for the run's copy: in the tmpfs where there is one.
fn work_dir() -> anyhow::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new().prefix("slate-bench-dsl-pages-").tempdir_in(shm);
    match builder {
        Ok(dir) => Ok(dir),
        Err(_) => Ok(tempfile::tempdir()?),
    }
}

/// Copies the filled database into the cache with the store's own consistent copy (what a
/// backup takes), under a temporary name first so that a stopped run leaves no half a file.
fn keep(database: &Path, cached: &Path) -> anyhow::Result<()> {
    let partial = cached.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    Store::open(database)?.copy_sqlite_to(&partial).context("copy the filled database")?;
    std::fs::rename(&partial, cached)?;
    Ok(())
}

/// The year's events through `Store::ingest`, one device's run of lessons a call (generated on
/// another thread), then the DSL's workflow on each incident.
fn fill(path: &Path, plan: &YearPlan) -> anyhow::Result<()> {
    let store = Store::open(path).context("open the server's database")?;
    for n in 0..plan::PUPILS {
        let class = format!("Class {}", n % plan::CLASSES);
        store.save_pupil(&PupilEntry::new(&pupil_id(n), &format!("Pupil {n}"), &class)?)?;
    }
    crate::server::enroll_devices(&store, plan::DEVICES, Utc::now())?;

    let (sender, receiver) = std::sync::mpsc::sync_channel::<(DeviceNumber, Vec<Event>)>(4);
    let generator_plan = plan.clone();
    let generator = std::thread::spawn(move || -> anyhow::Result<()> {
        let plan = generator_plan;
        let devices = u64::from(plan::DEVICES);
        let slots = plan.sessions.div_ceil(devices);
        for first in (0..slots).step_by(SLOTS_PER_CALL as usize) {
            for d in 0..devices {
                let device = DeviceNumber::new(d as u32 + 1)?;
                let mut events = Vec::new();
                for slot in first..(first + SLOTS_PER_CALL).min(slots) {
                    let k = slot * devices + d;
                    if k < plan.sessions {
                        push_events(&plan.session(k), device, &mut events);
                    }
                }
                if !events.is_empty() && sender.send((device, events)).is_err() {
                    return Ok(()); // the writer stopped; its error is the one to report
                }
            }
        }
        Ok(())
    });
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut stored = 0u64;
    for (device, events) in receiver {
        stored += u64::from(store.ingest(device, &events, Utc::now())?.stored);
        if last_print.elapsed().as_secs() >= 10 {
            last_print = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "fill: {stored}/{} events, {:.0} events/s, {secs:.0} s",
                plan.events,
                stored as f64 / secs
            );
        }
    }
    generator.join().map_err(|_| anyhow!("the event generator panicked"))??;
    if stored != plan.events {
        bail!("the store kept {stored} events of the {} planned", plan.events);
    }
    println!("fill: {stored} events ingested in {:.1} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    let incidents = store.incidents_after(0, u32::try_from(plan.incidents + 1)?)?;
    if incidents.len() as u64 != plan.incidents {
        bail!("the reports opened {} incidents, not {}", incidents.len(), plan.incidents);
    }
    let dsl = DSL;
    let mut steps = 0;
    for incident in &incidents {
        let mut at = incident.report.pressed_at + ChronoDuration::minutes(20);
        let category = match plan::handling(incident.id, CATEGORIES.len(), Action::ALL.len()) {
            Handling::New => continue,
            Handling::Acknowledged { category } => category,
            Handling::Actioned { category, .. } => category,
        };
        store.incident_step(incident.id, Step::Acknowledge, dsl, None, at)?;
        at += ChronoDuration::hours(2);
        let details = Details {
            category: Some(CATEGORIES[category].0.to_owned()),
            location: Some("Classroom".into()),
            description: Some("What the pupil saw, as the DSL wrote it down.".into()),
            ..Details::default()
        };
        store.incident_details(incident.id, &details, dsl, at)?;
        steps += 2;
        if let Handling::Actioned { action, .. } =
            plan::handling(incident.id, CATEGORIES.len(), Action::ALL.len())
        {
            at += ChronoDuration::hours(1);
            let note = Some("Spoke to the class teacher.");
            store.incident_step(incident.id, Step::Act(Action::ALL[action]), dsl, note, at)?;
            steps += 1;
        }
    }
    println!(
        "fill: {steps} workflow steps on {} incidents in {:.1} s",
        incidents.len(),
        started.elapsed().as_secs_f64()
    );
    settle(&store)
}

/// Runs the server once on the filled file until its alerts outbox is empty (each report
/// queued one; with no e-mail or webhook set up they are done at once), as a school's server
/// that had run all year would have it: the pages are then timed without that catching up.
fn settle(store: &Store) -> anyhow::Result<()> {
    let started = Instant::now();
    // The monitoring job's check first (escalations of old unacknowledged incidents), so that
    // what it queues is in the outbox the server empties.
    let escalated = slate_server::alert_outbox::monitor_once(
        store,
        &slate_server::clock_guard::ClockReading::steady(Utc::now()),
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let server = LocalServer::start(store)?;
        while !store.due_alerts(Utc::now(), 1)?.is_empty() {
            if started.elapsed().as_secs() > 600 {
                bail!("the alerts outbox did not empty in 10 minutes");
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        server.stop().await
    })?;
    println!(
        "fill: alerts outbox emptied ({escalated} escalations queued first) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn pupil_id(n: u32) -> String {
    format!("p-{n:06x}")
}

/// The session's events as its device sends them, in time order.
fn push_events(session: &PlannedSession, device: DeviceNumber, events: &mut Vec<Event>) {
    let pupil = PupilId::new(pupil_id(session.pupil)).expect("a pupil id");
    let id = SessionId::new();
    let (start, end) = (session.start, session.end);
    let mut mine = vec![
        Event::new(device, start, EventBody::SessionStarted { session: id, pupil: pupil.clone() }),
        Event::new(
            device,
            start + ChronoDuration::seconds(1),
            EventBody::AupAccepted {
                session: id,
                pupil: pupil.clone(),
                key_stage: "ks2".into(),
                text_version: "ks2-0a1b2c3d".into(),
                school_version: None,
            },
        ),
    ];
    for (n, app) in session.apps.iter().enumerate() {
        let at = start + ChronoDuration::seconds(30 + 600 * n as i64);
        let body = EventBody::AppOpened { session: id, pupil: pupil.clone(), app: (*app).into() };
        mine.push(Event::new(device, at, body));
    }
    let length = (end - start).num_seconds();
    for n in 1..=session.heartbeats as i64 {
        let at = start + ChronoDuration::seconds(length * n / (session.heartbeats as i64 + 1));
        let uptime_s = (at - start).num_seconds() as u64 + 1_800;
        let body = EventBody::Heartbeat {
            uptime_s,
            spool_pending: 0,
            button_fault: None,
            display_fault: None,
            storage_fault: None,
        };
        mine.push(Event::new(device, at, body));
    }
    if let Some((at, list)) = session.blocked {
        let target = format!("{list}-site.example");
        let body = EventBody::FilterBlocked {
            session: Some(id),
            pupil: Some(pupil.clone()),
            layer: FilterLayer::Dns,
            rule: format!("exact:{target}"),
            target,
            list: list.into(),
        };
        mine.push(Event::new(device, at, body));
    }
    if let Some(at) = session.report_at {
        let body = EventBody::ReportFiled {
            session: Some(id),
            pupil: Some(pupil.clone()),
            app: Some("browser".into()),
            url: Some("https://example.org/page".into()),
            page_title: Some("A page".into()),
            blank_latency_us: Some(12_000),
            recent_names: vec![],
            origin: slate_protocol::ReportOrigin::Button,
        };
        mine.push(Event::new(device, at, body));
    }
    let reason = SessionEndReason::EndOfLesson;
    let ended = EventBody::SessionEnded { session: id, pupil, started_at: start, reason };
    mine.push(Event::new(device, end, ended));
    mine.sort_by_key(|e| e.at);
    events.extend(mine);
}

/// The incident list's requests, in turn: realistic searches over the plan's own dates.
fn searches(plan: &YearPlan) -> Vec<String> {
    let (first, last) = plan.days();
    let middle = first + (last - first) / 2;
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let (week, month) =
        (day(middle + ChronoDuration::days(6)), day(middle + ChronoDuration::days(30)));
    let (mid, first, term) = (day(middle), day(first), day(first + ChronoDuration::days(90)));
    vec![
        "/reports".into(),
        "/reports?page=2".into(),
        "/reports?page=40".into(),
        "/reports?class=Class+7".into(),
        "/reports?class=Class+23&state=new".into(),
        "/reports?device=120".into(),
        format!("/reports?device=45&from={mid}&to={month}"),
        format!("/reports?from={mid}&to={week}"),
        format!("/reports?from={mid}&to={month}&category=bullying"),
        "/reports?state=acknowledged".into(),
        "/reports?state=escalated&page=3".into(),
        "/reports?category=contact".into(),
        format!("/reports?class=Class+12&category=bullying&from={first}&to={term}"),
        "/reports?state=referred&class=Class+3".into(),
        format!("/reports?pupil={}&page=2", pupil_id(3)),
        "/reports?class=Class+40&page=5".into(),
    ]
}

/// Signs the DSL in and times the pages; milliseconds of each list and each chronology.
async fn pages(
    store: Store,
    plan: &YearPlan,
    queries: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    // The DSL's account as the server's tests make one; the sign-in is the real form's.
    let phc = auth::hash_password(DSL_PASSWORD, HashCost::Cheap);
    let totp = auth::new_totp_secret();
    let id = store.save_staff(DSL, Role::Dsl, &phc, Some(&totp), Utc::now())?;
    store.set_password(id, &phc)?;
    let server = LocalServer::start(&store)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookies = sign_in(&client, &server.url, &totp).await?;
    let get = |path: String| {
        let request = client.get(format!("{}{path}", server.url)).header("cookie", &cookies);
        async move {
            let started = Instant::now();
            let response = request.send().await?;
            let status = response.status();
            let body = response.text().await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if !status.is_success() || !body.contains("<h1>") {
                bail!("GET {path}: HTTP {status}");
            }
            anyhow::Ok((ms, body))
        }
    };
    let (_, first) = get("/reports".into()).await?;
    let rows = first.matches("<tr data-incident=").count() as u64;
    if rows != plan.incidents.min(50) {
        bail!("the first page of the list holds {rows} incidents");
    }

    let searches = searches(plan);
    let mut list = Vec::with_capacity(queries);
    let mut by_search = vec![Vec::new(); searches.len()];
    for n in 0..queries {
        let (ms, body) = get(searches[n % searches.len()].clone()).await?;
        if body.contains("id=\"search-problems\"") {
            bail!("{}: the search was refused", searches[n % searches.len()]);
        }
        by_search[n % searches.len()].push(ms);
        list.push(ms);
    }
    for (search, times) in searches.iter().zip(&by_search) {
        if !times.is_empty() {
            let worst = times.iter().copied().fold(0.0, f64::max);
            println!(
                "  {search}: median {:.1} ms, worst {worst:.1} ms",
                crate::quantile(times, 0.5)
            );
        }
    }

    let mut pupil = Vec::with_capacity(queries);
    for n in 0..queries {
        // The pupils with the most records, in turn.
        let id = pupil_id(n as u32 % plan::FREQUENT_PUPILS);
        let (ms, body) = get(format!("/pupils/{id}")).await?;
        if !body.contains("Chronology: Pupil ") {
            bail!("the chronology of {id} does not name its pupil");
        }
        pupil.push(ms);
    }
    server.stop().await?;
    Ok((list, pupil))
}

/// Signs in through the form (password and the current TOTP code); the cookies to send after.
async fn sign_in(client: &reqwest::Client, url: &str, totp: &str) -> anyhow::Result<String> {
    let mut jar = Vec::<(String, String)>::new();
    let form = client.get(format!("{url}/staff/login")).send().await?;
    keep_cookies(&mut jar, &form);
    let html = form.text().await?;
    let start = html.find(r#"name="csrf" value=""#).context("a csrf field on the form")? + 19;
    let csrf = html[start..].split('"').next().unwrap_or_default().to_owned();
    let code = auth::totp_code(totp, auth::totp_step(Utc::now())).context("a TOTP code")?;
    let answer = client
        .post(format!("{url}/staff/login"))
        .header("cookie", cookie_header(&jar))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("username", DSL),
            ("password", DSL_PASSWORD),
            ("code", &code),
            ("csrf", &csrf),
        ]))
        .send()
        .await?;
    keep_cookies(&mut jar, &answer);
    if answer.status() != reqwest::StatusCode::SEE_OTHER {
        bail!("signing in as the DSL: HTTP {}", answer.status());
    }
    Ok(cookie_header(&jar))
}

/// `application/x-www-form-urlencoded`: every byte but letters and digits percent-encoded.
fn form_body(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b.is_ascii_alphanumeric() {
                true => (b as char).to_string(),
                false => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let pairs: Vec<String> =
        fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    pairs.join("&")
}

fn keep_cookies(jar: &mut Vec<(String, String)>, response: &reqwest::Response) {
    for value in response.headers().get_all("set-cookie") {
        let Ok(value) = value.to_str() else { continue };
        let pair = value.split(';').next().unwrap_or_default();
        if let Some((name, content)) = pair.split_once('=') {
            jar.retain(|(k, _)| k != name);
            if !value.contains("Max-Age=0") {
                jar.push((name.to_owned(), content.to_owned()));
            }
        }
    }
}

fn cookie_header(jar: &[(String, String)]) -> String {
    jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small school, filled, cached, measured; then measured again from the cache.
    #[test]
    fn a_small_school_is_filled_cached_and_its_pages_answered() {
        let cache = tempfile::tempdir().unwrap();
        let options =
            Options { incidents: 2_000, events: 50_000, cache: cache.path(), queries: 40 };
        let first = measure(&options).unwrap();
        assert!(!first.reused);
        assert_eq!(first.incidents, 2_000);
        assert_eq!((first.list.len(), first.pupil.len()), (40, 40));
        let kept: Vec<_> =
            std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(kept.len(), 1, "one filled file kept, no partial one: {kept:?}");

        let second = measure(&options).unwrap();
        assert!(second.reused, "the second run reuses the filled file");
        assert_eq!(second.list.len(), 40);
    }
}
