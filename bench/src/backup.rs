//! `slate-bench backup`: a school's server with `--events` events (a SQLite file filled through
//! the store's own ingest), backed up with the real `slate_server::backup` code (the database
//! copied while open, tarred, encrypted to an age key), then restored into an empty data
//! directory. Times both, and the file's size.

use crate::server::{bulk_fill, SchoolPlan};
use anyhow::Context;
use slate_server::data_dir::DataDir;
use slate_server::Store;
use std::time::Instant;

const DEVICES: u32 = 30;

pub fn run(events: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data_dir = DataDir::open(dir.path().join("data"))?;
    let store = Store::open(&data_dir.database_path()).context("open the server's database")?;
    data_dir.policy_key()?;
    let seal = slate_server::totp_seal::TotpSeal::new(data_dir.totp_key()?);
    let store = store.with_totp_seal(seal)?;
    let filled = bulk_fill(&store, &SchoolPlan::new(DEVICES), events)?;
    let database_bytes = std::fs::metadata(data_dir.database_path())?.len();
    println!("backup: {} events, database {database_bytes} bytes", filled.events);

    let identity = age::x25519::Identity::generate();
    let file = dir.path().join("backup.age");
    let started = Instant::now();
    let out = std::io::BufWriter::new(std::fs::File::create(&file)?);
    let summary = slate_server::backup::write(
        &data_dir,
        slate_server::backup::DatabaseSource::Sqlite(&store),
        &identity.to_public(),
        out,
    )?;
    let backup_s = started.elapsed().as_secs_f64();
    let file_bytes = std::fs::metadata(&file)?.len();
    println!(
        "written: {} files, {} bytes in, {file_bytes} bytes out",
        summary.files, summary.bytes
    );

    let target = dir.path().join("restored");
    let started = Instant::now();
    let input = std::io::BufReader::new(std::fs::File::open(&file)?);
    slate_server::backup::restore(&target, &identity, input, None)?;
    let restore_s = started.elapsed().as_secs_f64();
    let restored = Store::open(&target.join("slate.sqlite"))?;
    drop(restored);
    println!(
        "backup events={} backup_s={backup_s:.1} restore_s={restore_s:.1} file_mb={:.1}",
        filled.events,
        file_bytes as f64 / 1_048_576.0
    );
    Ok(())
}
