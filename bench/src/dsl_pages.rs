//! `dsl-pages`: the DSL's pages on a big school's database. A real SQLite file filled through
//! the store's own ingest (as `server` fills it) with `--events` events, of which about 100,000
//! are reports (one session in 48) and one session in 20 has a blocked attempt in a harmful
//! list; 2,000 pupils in 60 classes on the roster. Then a real `slate-server` in this process on
//! 127.0.0.1 answers a signed-in DSL over HTTP:
//!
//! - the incident list: the first page, a later page, and searches by class, device, a week,
//!   state and kind of concern (one that matches nothing, so the whole list is read), in turn;
//! - pupils' chronologies, for random pupils of the roster.
//!
//! Figures: p99 of each, in ms, over `QUERIES` requests each.

use crate::local_server::LocalServer;
use crate::server::{bulk_fill, SchoolPlan};
use anyhow::{bail, Context};
use chrono::Utc;
use slate_server::auth::{self, HashCost, Role};
use slate_server::roster::PupilEntry;
use slate_server::secrets::Secret;
use slate_server::store::Store;
use std::time::Instant;

/// Devices in the school.
const DEVICES: u32 = 300;
/// A report in one session in this many: about 100,000 among 10,000,000 events.
const REPORT_EVERY: u64 = 48;
/// A blocked attempt in a harmful list in one session in this many.
const BLOCKED_EVERY: u64 = 20;
/// Requests timed per page kind.
const QUERIES: usize = 200;
/// Classes the plan's 2,000 pupils are in.
const CLASSES: u32 = 60;

/// The incident-list searches, in turn.
const SEARCHES: [&str; 7] = [
    "/reports",
    "/reports?page=40",
    "/reports?class=Class+7",
    "/reports?device=120",
    "/reports?from=2025-03-03&to=2025-03-09",
    "/reports?state=new&page=3",
    "/reports?category=bullying",
];

pub fn run(events: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("slate.sqlite");
    let store = Store::open(&path).context("open the server's database")?;
    for n in 0..2_000u64 {
        let class = format!("Class {}", n % u64::from(CLASSES));
        let pupil = PupilEntry::new(&format!("p-{n:06x}"), &format!("Pupil {n}"), &class)?;
        store.save_pupil(&pupil)?;
    }
    let plan = SchoolPlan::with_incidents(DEVICES, REPORT_EVERY, BLOCKED_EVERY);
    let filled = bulk_fill(&store, &plan, events)?;
    let incidents = filled.sessions.div_ceil(REPORT_EVERY);
    println!(
        "dsl-pages: SQLite in {}, {} events, {incidents} incidents, {DEVICES} devices",
        path.display(),
        filled.events
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let (list, pupil) = runtime.block_on(bench(store))?;
    println!(
        "incident list: p50={:.1} ms p99={:.1} ms; pupil page: p50={:.1} ms p99={:.1} ms",
        crate::quantile(&list, 0.5),
        crate::quantile(&list, 0.99),
        crate::quantile(&pupil, 0.5),
        crate::quantile(&pupil, 0.99)
    );
    println!(
        "dsl_pages incidents={incidents} list_p99_ms={:.1} pupil_p99_ms={:.1}",
        crate::quantile(&list, 0.99),
        crate::quantile(&pupil, 0.99)
    );
    Ok(())
}

async fn bench(store: Store) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    // A DSL who has signed in (the session made as sign-in makes it: the pages, not the
    // password check, are what is measured).
    let phc = auth::hash_password("the DSL's password", HashCost::Cheap);
    let dsl =
        store.save_staff("a.dsl", Role::Dsl, &phc, Some(&auth::new_totp_secret()), Utc::now())?;
    store.set_password(dsl, &phc)?;
    let session = Secret::generate();
    store.create_session(&session.hash(), dsl, "bench", Utc::now())?;
    let server = LocalServer::start(&store)?;
    let client = reqwest::Client::builder().build()?;
    let cookie = format!("slate_session={}", session.expose());
    let get = |path: String| {
        let request = client.get(format!("{}{path}", server.url)).header("cookie", &cookie);
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
    if first.matches("<tr data-incident=").count() != 50 {
        bail!("the first page does not hold 50 incidents");
    }
    let mut list = Vec::with_capacity(QUERIES);
    for n in 0..QUERIES {
        list.push(get(SEARCHES[n % SEARCHES.len()].into()).await?.0);
    }
    let mut pupil = Vec::with_capacity(QUERIES);
    let mut rng = 0x5eed_u64;
    for _ in 0..QUERIES {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let (ms, body) = get(format!("/pupils/p-{:06x}", (rng >> 33) % 2_000)).await?;
        if !body.contains("Chronology: Pupil ") {
            bail!("a pupil page without its pupil");
        }
        pupil.push(ms);
    }
    server.stop().await?;
    Ok((list, pupil))
}
