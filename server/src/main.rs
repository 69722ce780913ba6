//! The `slate-server` binary: parses the command line, sets up logging, and calls the library.
//! Logs go to stderr; stdout carries only what scripts read (start-up lines, a token).
//!
//! Exit status: 0 when done; 1 when it failed; 2 for a command line it cannot parse (clap);
//! 78 (`EX_CONFIG`) for a configuration it refuses: the config file, its alert settings, the
//! TLS files, `--plain-http` off loopback. Every command that touches the data directory runs
//! as its owner (`slate_server::run_as`).

use anyhow::Context;
use clap::{CommandFactory, Parser};
use slate_server::auth::{self, HashCost};
use slate_server::cli::{
    BackupArgs, Cli, Command, CompletionsArgs, DatabaseArgs, DeviceArgs, DeviceCommand,
    DeviceSshArgs, EnrollmentTokenArgs, InitArgs, ManArgs, ProvisionCommand, ProvisionSignArgs,
    PupilAddArgs, PupilCommand, RestoreArgs, RosterCommand, RosterImportArgs, ServeArgs,
    StaffAddArgs, StaffCommand, StaffDisableArgs, StaffRecoverArgs, UpdateAddArgs, UpdateCaArgs,
    UpdateCommand, UpdateRemoveArgs, UpdateRolloutArgs,
};
use slate_server::config::{self, Config};
use slate_server::data_dir::DataDir;
use slate_server::notify::Notifier;
use slate_server::roster::PupilEntry;
use slate_server::secrets::Secret;
use slate_server::store::PostgresOptions;
use slate_server::update_bundles::{Added, UpdateBundles};
use slate_server::update_rollout::{self, Audience};
use slate_server::{listen, running, tls, AppState, Store};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// sysexits.h's `EX_CONFIG`: the unit does not restart the server for it
/// (`RestartPreventExitStatus=78`).
const EX_CONFIG: u8 = 78;

/// Marks an error as the configuration's: the exit status is then [`EX_CONFIG`].
#[derive(Debug)]
struct ConfigRefused;

impl std::fmt::Display for ConfigRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("configuration refused")
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    slate_server::logging::init("info");
    let database = &cli.database;
    let result = match cli.command {
        Command::Serve(args) => serve(&cli.data_dir, database, args).await,
        Command::EnrollmentToken(args) => enrollment_token(&cli.data_dir, database, args),
        Command::Pupil(PupilCommand::Add(args)) => add_pupil(&cli.data_dir, database, args),
        Command::Roster(RosterCommand::Import(args)) => {
            import_roster(&cli.data_dir, database, args)
        }
        Command::Staff(StaffCommand::Add(args)) => add_staff(&cli.data_dir, database, args),
        Command::Staff(StaffCommand::Disable(args)) => disable_staff(&cli.data_dir, database, args),
        Command::Staff(StaffCommand::Recover(args)) => recover_staff(&cli.data_dir, database, args),
        Command::Device(DeviceCommand::Revoke(args)) => {
            revoke_device(&cli.data_dir, database, args)
        }
        Command::Device(DeviceCommand::Rotate(args)) => {
            rotate_device(&cli.data_dir, database, args)
        }
        Command::Device(DeviceCommand::Ssh(args)) => device_ssh(&cli.data_dir, database, args),
        Command::Device(DeviceCommand::Numbers(args)) => {
            device_numbers(&cli.data_dir, database, args)
        }
        Command::Update(UpdateCommand::Ca(args)) => update_ca(&cli.data_dir, database, args),
        Command::Update(UpdateCommand::Add(args)) => {
            update_add(&cli.data_dir, database, args).await
        }
        Command::Update(UpdateCommand::List) => update_list(&cli.data_dir, database),
        Command::Update(UpdateCommand::Rollout(args)) => {
            update_rollout(&cli.data_dir, database, args)
        }
        Command::Update(UpdateCommand::Stop) => update_stop(&cli.data_dir, database),
        Command::Update(UpdateCommand::Remove(args)) => {
            update_remove(&cli.data_dir, database, args).await
        }
        Command::Provision(ProvisionCommand::Sign(args)) => {
            provision_sign(&cli.data_dir, database, args)
        }
        Command::Init(args) => init(&cli.data_dir, database, args),
        Command::Backup(args) => backup(&cli.data_dir, database, args),
        Command::Restore(args) => restore(&cli.data_dir, database, args),
        Command::Completions(args) => completions(args),
        Command::Man(args) => man(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` gives the whole chain on one line, for IT, without a backtrace.
            eprintln!("slate-server: error: {error:#}");
            if error.downcast_ref::<ConfigRefused>().is_some() {
                ExitCode::from(EX_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "slate-server", &mut std::io::stdout());
    Ok(())
}

fn man(args: ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    clap_mangen::generate_to(Cli::command(), &args.out)
        .with_context(|| format!("cannot write the man pages into {}", args.out.display()))
}

/// Opens the data directory and the database for an admin command, first saying so when no
/// running server uses this data directory but another runs (`slate_server::running`).
fn open(data_dir: &Path, database: &DatabaseArgs) -> anyhow::Result<(DataDir, Store)> {
    let opened = open_for(data_dir, database)?;
    let ours = std::fs::canonicalize(opened.0.root()).unwrap_or_else(|_| opened.0.root().into());
    if let Some(notice) = running::notice(&ours, &running::running_servers()) {
        eprintln!("{notice}");
    }
    Ok(opened)
}

fn open_for(data_dir: &Path, database: &DatabaseArgs) -> anyhow::Result<(DataDir, Store)> {
    // Before anything in the directory is read or made: as its owner, or not at all.
    slate_server::run_as::run_as_owner(data_dir)?;
    let data_dir = DataDir::open(data_dir)?;
    let store = match &database.postgres {
        // The address is not repeated: it may hold a password.
        Some(url) => Store::connect_postgres(
            url,
            PostgresOptions {
                ca_file: database.postgres_ca.as_deref(),
                schema: database.postgres_schema.as_deref(),
            },
        )
        .context("cannot open the PostgreSQL database")?,
        None => {
            let database = data_dir.database_path();
            Store::open(&database)
                .with_context(|| format!("cannot open the database {}", database.display()))?
        }
    };
    let seal = slate_server::totp_seal::TotpSeal::new(data_dir.totp_key()?);
    let store = store.with_totp_seal(seal).context("cannot seal the stored TOTP secrets")?;
    Ok((data_dir, store))
}

async fn serve(data_dir: &Path, database: &DatabaseArgs, args: ServeArgs) -> anyhow::Result<()> {
    listen::check_plain_http_allowed(args.listen, args.plain_http).context(ConfigRefused)?;
    let config = match &args.config {
        Some(path) => config::load(path).context(ConfigRefused)?,
        None => Config::default(),
    };
    let notifier = Notifier::from_config(&config).context(ConfigRefused)?;
    let (data_dir, store) = open_for(data_dir, database)?;
    let staff_key = data_dir.staff_key()?;
    let policy_key = data_dir.policy_key()?;
    let lists_dir = data_dir.lists_dir()?;
    // IT's own certificate files are configuration; the generated ones are not.
    let given_tls_files = args.tls_cert.is_some();
    let tls_files = match (args.plain_http, args.tls_cert, args.tls_key) {
        (true, _, _) => None,
        (false, Some(cert), Some(key)) => Some(tls::TlsFiles { cert, key }),
        (false, _, _) => Some(tls::self_signed(&data_dir)?),
    };
    let tls_config = match tls_files.as_ref().map(tls::load).transpose() {
        Err(e) if given_tls_files => return Err(anyhow::Error::new(e).context(ConfigRefused)),
        loaded => loaded?,
    };

    let listener =
        listen::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    // What devices trust: the school's CA once `init` made one, else the certificate itself.
    let school_ca = data_dir.tls_dir()?.join("ca.pem");
    let trust = match &tls_files {
        Some(_) if !given_tls_files && school_ca.exists() => Some(school_ca.as_path()),
        Some(files) => Some(files.cert.as_path()),
        None => None,
    };
    let certificate = trust;
    let mut text = String::new();
    for line in listen::startup_lines(local, certificate) {
        text.push_str(&line);
        text.push('\n');
    }
    // Devices put this in slate.toml `[server] public_key`.
    let public_key = slate_protocol::bundle::verifying_key_to_base64(&policy_key.verifying_key());
    text.push_str(&format!("policy key: {public_key}\n"));
    // One write, so a script that reads only the first lines and closes the pipe cannot make
    // a later line fail.
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(%local, tls = tls_config.is_some(), "serving");

    let purge = slate_server::retention::spawn_purge_job(store.clone(), config.retention.clone());
    let silence = slate_server::session_end::spawn_silence_job(store.clone());
    let updates = slate_server::update_bundles::UpdateBundles::open(&data_dir)?;
    let state = AppState::with_config(store, staff_key, config, notifier)
        .with_policy(policy_key, lists_dir)
        .with_updates(updates);
    slate_server::serve(listener, state, tls_config, shutdown_signal()).await?;
    purge.abort();
    silence.abort();
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

fn enrollment_token(
    data_dir: &Path,
    database: &DatabaseArgs,
    args: EnrollmentTokenArgs,
) -> anyhow::Result<()> {
    let (_, store) = open(data_dir, database)?;
    let valid_for = chrono::Duration::hours(args.valid_hours.into());
    let now = chrono::Utc::now();
    let token = match (args.device, args.class_set) {
        (Some(device), _) => {
            let token = store.issue_enrollment_token(device, valid_for, now)?;
            tracing::info!(%device, valid_hours = args.valid_hours, "enrollment token issued");
            token
        }
        (None, Some(devices)) => {
            let token = store.issue_class_set_token(devices, valid_for, "console", now)?;
            tracing::info!(
                devices,
                valid_hours = args.valid_hours,
                "class-set enrollment token issued"
            );
            token
        }
        (None, None) => anyhow::bail!("give --device N or --class-set N"),
    };
    println!("{}", token.expose());
    if args.class_set.is_some() {
        // On stderr, so `token=$(slate-server enrollment-token …)` still takes the token alone.
        eprintln!(
            "setup code for devices with no number: {} (type it on the device's setup screen)",
            slate_protocol::class_set::setup_code(token.expose())
        );
    }
    Ok(())
}

fn device_numbers(
    data_dir: &Path,
    database: &DatabaseArgs,
    args: slate_server::cli::DeviceNumbersArgs,
) -> anyhow::Result<()> {
    // Read as the caller, before the command becomes the data directory's owner.
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let rows = slate_server::device_serials::parse_serials_csv(&text)
        .with_context(|| format!("{} refused, nothing changed", args.file.display()))?;
    let (_, store) = open(data_dir, database)?;
    store.replace_device_serials(&rows, "console", chrono::Utc::now())?;
    println!("IT's list of device serial numbers: {} devices", rows.len());
    Ok(())
}

/// `provision sign`: the file is read and checked, and the signed file opened, as the caller
/// (IT's own folder); the key is read as the data directory's owner. A file that fails its
/// check signs nothing and leaves `--out` as it was.
fn provision_sign(
    data_dir: &Path,
    database: &DatabaseArgs,
    args: ProvisionSignArgs,
) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: is not text (UTF-8)", args.file.display()))?;
    if text.len() > slate_protocol::provisioning::MAX_FILE_BYTES {
        anyhow::bail!("{}: is over 64 KiB", args.file.display());
    }
    // Checked before anything else, with the device's own messages.
    slate_protocol::provisioning::parse(&text, &slate_protocol::provisioning::AnyInstalled)
        .with_context(|| format!("{} refused, nothing signed", args.file.display()))?;
    // It holds the Wi-Fi password: readable by IT only. Not emptied until the signature is made.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let (data_dir, store) = open(data_dir, database)?;
    // A key made now would be one no device trusts.
    if !data_dir.policy_key_path().exists() {
        anyhow::bail!(
            "this server has no policy key yet ({}): run `slate-server init` first",
            data_dir.policy_key_path().display()
        );
    }
    let key = data_dir.policy_key()?;
    let files_dir = match &args.files_dir {
        Some(dir) => dir.clone(),
        None => args.file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    let read_file = |name: &str| read_card_file(&files_dir.join(name));
    let signed = slate_server::provision_sign::sign(text, &key, &read_file)
        .with_context(|| format!("{} refused, nothing signed", args.file.display()))?;
    out.set_len(0)
        .and_then(|()| out.write_all(signed.json.as_bytes()))
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    store.audit(
        chrono::Utc::now(),
        "console",
        "signed a provisioning file",
        None,
        Some(&signed.summary),
    )?;
    println!(
        "{}: signed with the policy key {} ({}). Copy it to the cards' boot partition as slate-provision.signed.",
        args.out.display(),
        slate_server::provision_sign::policy_key_id(&key),
        signed.summary
    );
    Ok(())
}

/// A certificate or key file for the card, as the device will read it (a file of at most
/// 64 KiB), for `provision sign` to hash.
fn read_card_file(path: &Path) -> Result<Vec<u8>, String> {
    let refuse = |why: String| format!("{} {why}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| refuse(format!("cannot be read: {e}")))?;
    if !meta.is_file() || meta.len() > slate_protocol::provisioning::MAX_FILE_BYTES as u64 {
        return Err(refuse("is not a file of at most 64 KiB".into()));
    }
    std::fs::read(path).map_err(|e| refuse(format!("cannot be read: {e}")))
}

fn init(data_dir: &Path, database: &DatabaseArgs, args: InitArgs) -> anyhow::Result<()> {
    let school = args.school.trim();
    if school.is_empty() || school.chars().count() > 80 || school.chars().any(char::is_control) {
        anyhow::bail!("--school must be 1 to 80 characters of text");
    }
    for host in &args.hosts {
        let host = host.trim();
        let name_like =
            host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if host.is_empty() || host.len() > 253 || !name_like {
            anyhow::bail!("--host {host:?} is not a host name or IP address");
        }
    }
    let (data_dir, store) = open(data_dir, database)?;
    let tls_dir = data_dir.tls_dir()?;
    // Enrolled devices trust the certificate they were given: a new CA would cut them off.
    if !tls_dir.join("ca.pem").exists() && !store.fleet()?.is_empty() {
        anyhow::bail!(
            "devices are enrolled and trust this server's current certificate ({}): a new CA would cut them off. Give the server the school's own files with --tls-cert and --tls-key instead",
            tls_dir.join("cert.pem").display()
        );
    }
    let made = slate_server::tls::school_certificates(&data_dir, school, &args.hosts)?;
    let policy_key = data_dir.policy_key()?;
    store.audit(
        chrono::Utc::now(),
        "console",
        "set up the server (init)",
        None,
        Some(&made.names.join(", ")),
    )?;
    println!(
        "school CA: {} ({}). Copy it to every card's boot partition as server-ca.pem, and add it to staff browsers' trusted authorities.",
        made.ca.display(),
        if made.ca_made { "made now" } else { "kept from before" }
    );
    println!("server certificate for: {}", made.names.join(", "));
    println!(
        "policy key: {} (slate.toml, [server] public_key)",
        slate_protocol::bundle::verifying_key_to_base64(&policy_key.verifying_key())
    );
    if let Some(username) = args.dsl {
        if store.staff_by_username(&username)?.is_some() {
            println!("DSL account {username} exists already: unchanged");
        } else {
            drop(store);
            add_staff(
                data_dir.root(),
                database,
                StaffAddArgs { username, role: auth::Role::Dsl, totp: true },
            )?;
        }
    }
    println!("Restart the server to serve the new certificate: systemctl restart slate-server");
    Ok(())
}

fn backup(data_dir: &Path, database: &DatabaseArgs, args: BackupArgs) -> anyhow::Result<()> {
    let recipient = match (&args.recipient, &args.recipient_file) {
        (Some(text), _) => text.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
            .with_context(|| format!("{} holds no age public key", file.display()))?
            .to_owned(),
        (None, None) => anyhow::bail!("give --recipient or --recipient-file"),
    };
    let recipient = slate_server::backup::parse_recipient(&recipient).context(ConfigRefused)?;
    let (data_dir, store) = open(data_dir, database)?;
    let postgres = postgres_database(database);
    let source = match &postgres {
        Some(pg) => slate_server::backup::DatabaseSource::Postgres(pg),
        None => slate_server::backup::DatabaseSource::Sqlite(&store),
    };
    let started = std::time::Instant::now();
    let (path, summary) = match (&args.out, &args.dir) {
        (Some(out), _) => {
            let file = std::fs::File::create(out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let mut file = std::io::BufWriter::new(file);
            let summary = slate_server::backup::write(&data_dir, source, &recipient, &mut file)?;
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            (out.clone(), summary)
        }
        (None, Some(dir)) => {
            slate_server::backup::write_into(&data_dir, source, &recipient, dir, args.keep.into())?
        }
        (None, None) => anyhow::bail!("give --out FILE or --dir DIR"),
    };
    store.audit(chrono::Utc::now(), "console", "backed up the server", None, None)?;
    println!(
        "backup written: {} ({} files, {} bytes before encryption, {:.1} s)",
        path.display(),
        summary.files,
        summary.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The PostgreSQL database the server was told to use, for pg_dump and pg_restore.
fn postgres_database(database: &DatabaseArgs) -> Option<slate_server::backup::PgDatabase> {
    database.postgres.as_ref().map(|url| slate_server::backup::PgDatabase {
        url: url.clone(),
        ca_file: database.postgres_ca.clone(),
        schema: database.postgres_schema.clone(),
    })
}

fn restore(data_dir: &Path, database: &DatabaseArgs, args: RestoreArgs) -> anyhow::Result<()> {
    use std::str::FromStr;
    let text = std::fs::read_to_string(&args.identity)
        .with_context(|| format!("cannot read {}", args.identity.display()))?;
    let identity = text
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("AGE-SECRET-KEY-"))
        .and_then(|line| age::x25519::Identity::from_str(line).ok())
        .with_context(|| {
            format!("{} holds no age identity (AGE-SECRET-KEY-1…)", args.identity.display())
        })?;
    let input = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot make {}", data_dir.display()))?;
    slate_server::run_as::run_as_owner(data_dir)?;
    let started = std::time::Instant::now();
    let summary = slate_server::backup::restore(
        data_dir,
        &identity,
        std::io::BufReader::new(input),
        postgres_database(database).as_ref(),
    )
    .with_context(|| format!("{} was not restored", args.file.display()))?;
    println!(
        "restored into {}: {} files, {} bytes ({:.1} s). Start the server: every enrolled device goes on as before.",
        data_dir.display(),
        summary.files,
        summary.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn revoke_device(data_dir: &Path, database: &DatabaseArgs, args: DeviceArgs) -> anyhow::Result<()> {
    let (_, store) = open(data_dir, database)?;
    if !store.revoke_device(args.device, "console", chrono::Utc::now())? {
        anyhow::bail!("device {} is not enrolled, or is revoked already", args.device);
    }
    println!(
        "revoked: device {}. To use it again, give it a new `slate-server enrollment-token --device {}`.",
        args.device, args.device
    );
    Ok(())
}

fn rotate_device(data_dir: &Path, database: &DatabaseArgs, args: DeviceArgs) -> anyhow::Result<()> {
    let (_, store) = open(data_dir, database)?;
    if !store.request_credential_rotation(args.device, "console", chrono::Utc::now())? {
        anyhow::bail!("device {} is not enrolled, or is revoked", args.device);
    }
    println!(
        "device {} will replace its credential at its next upload; its page says when it has",
        args.device
    );
    Ok(())
}

/// `device ssh`: the keys read as the caller (IT's file), checked, then queued and audited as
/// the console; the running server's devices take it at their next poll.
fn device_ssh(data_dir: &Path, database: &DatabaseArgs, args: DeviceSshArgs) -> anyhow::Result<()> {
    use slate_protocol::ssh_access::{check_minutes, parse_keys, MAX_OPEN};
    let keys = match &args.keys {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the keys {}", file.display()))?;
            parse_keys(&text).map_err(anyhow::Error::msg)?
        }
        None => Vec::new(),
    };
    let open_for = if args.close {
        MAX_OPEN
    } else {
        check_minutes(args.minutes).map_err(anyhow::Error::msg)?
    };
    let (_, store) = open(data_dir, database)?;
    let now = chrono::Utc::now();
    if store.queue_ssh_access(args.device, &keys, open_for, now, "console")?.is_none() {
        anyhow::bail!("device {} is not enrolled", args.device);
    }
    let until = now + open_for;
    if keys.is_empty() {
        println!("device {}: timed ssh closes at its next poll", args.device);
    } else {
        println!(
            "device {}: root ssh with {} key(s) until {}; its Fleet page says when it answers",
            args.device,
            keys.len(),
            slate_server::uk_time::format_uk(until)
        );
    }
    Ok(())
}

/// Reads a CA file as the caller (before the command becomes the data directory's owner, who
/// may not be able to read IT's copy).
fn read_ca(file: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("cannot read the update CA {}", file.display()))
}

fn keep_ca(updates: &UpdateBundles, store: &Store, pem: &[u8]) -> anyhow::Result<()> {
    updates.set_ca(pem)?;
    store.audit(chrono::Utc::now(), "console", "set the update CA", None, None)?;
    println!("update CA kept in {}", updates.ca_path().display());
    Ok(())
}

fn update_ca(data_dir: &Path, database: &DatabaseArgs, args: UpdateCaArgs) -> anyhow::Result<()> {
    let pem = read_ca(&args.file)?;
    let (data_dir, store) = open(data_dir, database)?;
    keep_ca(&UpdateBundles::open(&data_dir)?, &store, &pem)
}

async fn update_add(
    data_dir: &Path,
    database: &DatabaseArgs,
    args: UpdateAddArgs,
) -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    // Opened as the caller: the copy made from it belongs to the data directory's owner.
    let source = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let pem = args.ca.as_deref().map(read_ca).transpose()?;
    let (data_dir, store) = open(data_dir, database)?;
    let updates = UpdateBundles::open(&data_dir)?;
    if let Some(pem) = pem {
        keep_ca(&updates, &store, &pem)?;
    }
    let mut incoming = updates.incoming().await?;
    let mut source = tokio::fs::File::from_std(source);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = source
            .read(&mut buffer)
            .await
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        if read == 0 {
            break;
        }
        incoming.write(&buffer[..read]).await?;
    }
    let received = incoming.finish().await?;
    match updates.add(&store, received, "console", chrono::Utc::now()).await? {
        Added::New(bundle) => println!(
            "added: version {} for {} ({} bytes, sha256 {}). Roll it out to a few devices first: slate-server update rollout --version {} --devices 12,13",
            bundle.version, bundle.compatible, bundle.bytes, bundle.sha256, bundle.version
        ),
        Added::AlreadyUploaded(bundle) => println!(
            "already uploaded: version {} (sha256 {})",
            bundle.version, bundle.sha256
        ),
    }
    Ok(())
}

fn update_list(data_dir: &Path, database: &DatabaseArgs) -> anyhow::Result<()> {
    let (_, store) = open(data_dir, database)?;
    let bundles = store.update_bundles()?;
    let rollout = store.current_rollout()?;
    let failures = store.update_failures()?;
    let uk = slate_server::uk_time::format_uk;
    if bundles.is_empty() {
        println!("bundles: none (slate-server update add FILE)");
    } else {
        println!("bundles:");
    }
    for b in &bundles {
        println!(
            "  {}  {}  {} bytes  sha256 {}  uploaded {} by {}",
            b.version,
            b.compatible,
            b.bytes,
            b.sha256,
            uk(b.uploaded_at),
            b.uploaded_by
        );
    }
    match &rollout {
        None => println!("rollout: none"),
        Some(r) => {
            let who = match &r.audience {
                Audience::Everyone => "everyone".to_owned(),
                Audience::Devices(devices) => {
                    let numbers: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
                    format!("devices {}", numbers.join(","))
                }
            };
            let restart = r
                .reboot_at
                .map_or("when idle".to_owned(), |t| format!("from {} UK time", t.format("%H:%M")));
            println!(
                "rollout: version {} to {who}, restart {restart} (started {} by {})",
                r.bundle.version,
                uk(r.started_at),
                r.started_by
            );
        }
    }
    for report in store.device_update_reports()? {
        let words = update_rollout::describe(Some(&report), &bundles, rollout.as_ref(), &failures);
        let error = update_rollout::shown_error(&report, rollout.as_ref(), &failures)
            .map(|e| format!("  error: {e}"))
            .unwrap_or_default();
        println!(
            "device {}: runs {}, {} (reported {}){error}",
            report.device,
            report.running,
            words.words,
            uk(report.reported_at)
        );
    }
    Ok(())
}

fn update_rollout(
    data_dir: &Path,
    database: &DatabaseArgs,
    args: UpdateRolloutArgs,
) -> anyhow::Result<()> {
    let audience = match &args.devices {
        Some(text) => Audience::Devices(
            update_rollout::parse_devices(text).map_err(|e| anyhow::anyhow!("--devices: {e}"))?,
        ),
        None => Audience::Everyone,
    };
    let (_, store) = open(data_dir, database)?;
    let now = chrono::Utc::now();
    if !store.start_rollout(&args.version, &audience, args.reboot_at, "console", now)? {
        anyhow::bail!(
            "no uploaded bundle has version {:?} (slate-server update list shows them)",
            args.version
        );
    }
    let who = match audience {
        Audience::Everyone => "every device".to_owned(),
        Audience::Devices(devices) => format!("{} devices", devices.len()),
    };
    println!("rollout: version {} is offered to {who} from their next check", args.version);
    if args.retry_failed {
        let again = store.forget_update_failures(&args.version, "console", now)?;
        println!("offered again to {again} devices where it had failed");
    }
    Ok(())
}

fn update_stop(data_dir: &Path, database: &DatabaseArgs) -> anyhow::Result<()> {
    let (_, store) = open(data_dir, database)?;
    if !store.stop_rollout("console", chrono::Utc::now())? {
        anyhow::bail!("no rollout is in force");
    }
    println!("rollout stopped: devices are offered nothing more");
    Ok(())
}

async fn update_remove(
    data_dir: &Path,
    database: &DatabaseArgs,
    args: UpdateRemoveArgs,
) -> anyhow::Result<()> {
    let (data_dir, store) = open(data_dir, database)?;
    let updates = UpdateBundles::open(&data_dir)?;
    let sha256 = updates.remove(&store, &args.version, "console", chrono::Utc::now()).await?;
    println!("removed: version {} (sha256 {sha256}); its file is deleted", args.version);
    Ok(())
}

fn add_pupil(data_dir: &Path, database: &DatabaseArgs, args: PupilAddArgs) -> anyhow::Result<()> {
    let entry = PupilEntry::new(args.id.as_str(), &args.name, &args.class)?;
    let (_, store) = open(data_dir, database)?;
    store.save_pupil(&entry)?;
    println!("saved pupil {}", entry.id);
    Ok(())
}

fn import_roster(
    data_dir: &Path,
    database: &DatabaseArgs,
    args: RosterImportArgs,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let rows = slate_server::roster::parse_roster_csv(&text)
        .with_context(|| format!("{} was not imported", args.file.display()))?;
    let rows: Vec<_> =
        rows.into_iter().map(|row| (slate_server::roster::new_pupil_id(), row)).collect();
    let (_, store) = open(data_dir, database)?;
    let now = chrono::Utc::now();
    let done = store.import_roster(&rows, now)?;
    let detail = slate_server::roster::import_summary(&done);
    store.audit(now, "cli", "imported roster", None, Some(&detail))?;
    println!("{detail}");
    let classes = store.classes()?;
    let profiles = store.profiles()?;
    for class in slate_server::device_policy::classes_without_profile(&classes, &profiles) {
        if rows.iter().any(|(_, row)| row.class == class.name) {
            eprintln!(
                "warning: class {:?} names filter profile {:?}, which is not set up: its pupils get the default profile until it is",
                class.name, class.profile
            );
        }
    }
    Ok(())
}

fn disable_staff(
    data_dir: &Path,
    database: &DatabaseArgs,
    args: StaffDisableArgs,
) -> anyhow::Result<()> {
    let (_, store) = open(data_dir, database)?;
    let now = chrono::Utc::now();
    if !store.disable_staff(&args.username, now)? {
        anyhow::bail!("no enabled staff account is called {:?}", args.username);
    }
    store.audit(now, "cli", "disabled staff account", Some(&args.username), None)?;
    println!("disabled: {}", args.username);
    Ok(())
}

/// Prints a recovery link to this console (stdout) alone: never to the log.
fn recover_staff(
    data_dir: &Path,
    database: &DatabaseArgs,
    args: StaffRecoverArgs,
) -> anyhow::Result<()> {
    let (_, store) = open(data_dir, database)?;
    let token = Secret::generate();
    let now = chrono::Utc::now();
    let expires = now + auth::RECOVERY_LINK_LIFETIME;
    if !store.save_recovery_link(&args.username, &token.hash(), now, expires)? {
        anyhow::bail!("no enabled staff account is called {:?}", args.username);
    }
    store.audit(now, "console", "made a recovery link", Some(&args.username), None)?;
    let base = args.url.trim_end_matches('/');
    println!("recovery link for {} (works once, for 10 minutes):", args.username);
    println!("{base}/staff/recover?token={}", token.expose());
    Ok(())
}

fn add_staff(data_dir: &Path, database: &DatabaseArgs, args: StaffAddArgs) -> anyhow::Result<()> {
    let (_, store) = open(data_dir, database)?;
    let password = Secret::generate();
    // 20 characters of a 43-character random secret: 120 bits, short enough to type once.
    let password = &password.expose()[..20];
    let phc = auth::hash_password(password, HashCost::Production);
    let totp = (args.role.requires_totp() || args.totp).then(auth::new_totp_secret);
    store.save_staff(&args.username, args.role, &phc, totp.as_deref(), chrono::Utc::now())?;
    store.audit(
        chrono::Utc::now(),
        "cli",
        "saved staff account",
        Some(&args.username),
        Some(args.role.name()),
    )?;
    println!("username: {}", args.username);
    println!("role: {}", args.role);
    println!("one-time password: {password}");
    if let Some(secret) = totp {
        let uri = auth::otpauth_uri("Slate", &args.username, &secret);
        println!("totp secret: {secret}");
        println!("totp uri: {uri}");
        // The same key for an authenticator app's camera; the secret above is for typing in.
        println!("scan this with the authenticator app (or type the secret above):");
        println!("{}", auth::terminal_qr(&uri)?);
    }
    Ok(())
}
