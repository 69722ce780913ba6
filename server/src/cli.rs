//! The command line's shape: subcommands, flags, defaults and per-value parsing. It does no I/O;
//! `main.rs` carries the commands out.

use clap::{Args, Parser, Subcommand};
use slate_protocol::{DeviceNumber, PupilId};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "slate-server",
    version,
    about = "Slate's school server: devices report here, the DSL reads here"
)]
pub struct Cli {
    /// Where the database, staff key and generated certificate live (created, mode 0700).
    #[arg(long, global = true, default_value = crate::running::DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Where records are kept when not in the data directory's SQLite file.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Keep records in PostgreSQL instead of the data directory's SQLite file (for trusts with
    /// many schools): `host=/run/postgresql dbname=slate` on this machine, or
    /// `host=db.trust.example dbname=slate user=school12 sslmode=require` over a network (TLS
    /// is then required). Give it through the environment if it holds a password.
    #[arg(
        long,
        global = true,
        env = "SLATE_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub postgres: Option<String>,

    /// A PEM file of the certificate authority that signed PostgreSQL's certificate, trusted
    /// besides the system's certificates.
    #[arg(long, global = true, env = "SLATE_DATABASE_CA", value_name = "FILE")]
    pub postgres_ca: Option<PathBuf>,

    /// This school's own schema in a PostgreSQL database the trust's schools share (created if
    /// missing), e.g. `oakfield_primary`: each school's records, device numbers included, stay
    /// apart.
    #[arg(long, global = true, env = "SLATE_DATABASE_SCHEMA", value_name = "NAME")]
    pub postgres_schema: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the device API and the staff pages.
    Serve(ServeArgs),
    /// Set up the school's server, once (running it again is safe): the school's own CA and a
    /// server certificate for the names and addresses devices and browsers use, the policy key,
    /// and the first DSL account. Prints what goes on every card.
    Init(InitArgs),
    /// Make a one-time token that lets one device enroll (or, with --class-set N, up to N new
    /// devices); prints the token alone.
    EnrollmentToken(EnrollmentTokenArgs),
    /// Manage the roster of pupils.
    #[command(subcommand)]
    Pupil(PupilCommand),
    /// Manage staff accounts.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Import the school's roster.
    #[command(subcommand)]
    Roster(RosterCommand),
    /// A device's credential: revoke a lost or stolen device, or have one replace its
    /// credential.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Device updates: IT's update CA, the signed RAUC bundles devices install, and who is
    /// offered which (a few named devices first, then everyone).
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Provisioning files for the cards (Wi-Fi, timezone, keyboard, IT's ssh keys, USB
    /// switches): an enrolled device takes one only when it is signed with this server's policy
    /// key.
    #[command(subcommand)]
    Provision(ProvisionCommand),
    /// Back up the database and the data directory's keys, certificate and lists into one file
    /// encrypted to IT's age public key (`age-keygen` makes the pair; keep the private half off
    /// this server). Restore it with `restore`, or open it with `age -d`.
    Backup(BackupArgs),
    /// Restore a backup into an empty data directory (a fresh machine): every enrolled device
    /// goes on working, with the same policy key, certificate and credentials.
    Restore(RestoreArgs),
    /// Print the shell completion script for bash, zsh or fish (the Debian package installs
    /// them).
    Completions(CompletionsArgs),
    /// Write the man pages (slate-server.1 and one per subcommand) into a directory; the
    /// Debian package is built with them.
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages into (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The school's name, for its CA ("Oakfield Primary").
    #[arg(long, value_name = "NAME")]
    pub school: String,

    /// A name or address devices and staff browsers reach the server by (repeat for each),
    /// e.g. --host slate.oakfield.sch.uk --host 10.20.0.5.
    #[arg(long = "host", value_name = "NAME", required = true)]
    pub hosts: Vec<String>,

    /// Make this DSL account too, if it does not exist (its one-time password and TOTP key are
    /// printed, as `staff add` prints them).
    #[arg(long, value_name = "USERNAME", value_parser = parse_username)]
    pub dsl: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// IT's age public key (age1…).
    #[arg(long, value_name = "AGE1…", required_unless_present = "recipient_file")]
    pub recipient: Option<String>,

    /// A file holding IT's age public key (what the nightly timer reads).
    #[arg(long, value_name = "FILE", conflicts_with = "recipient")]
    pub recipient_file: Option<PathBuf>,

    /// Write the backup to this file.
    #[arg(long, value_name = "FILE", required_unless_present = "dir", conflicts_with = "dir")]
    pub out: Option<PathBuf>,

    /// Write `slate-server-<time>.age` into this folder and delete the oldest beyond --keep.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// With --dir: how many backups to keep.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u16).range(1..))]
    pub keep: u16,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// IT's age identity file (AGE-SECRET-KEY-1…), as `age-keygen` wrote it.
    #[arg(long, value_name = "FILE")]
    pub identity: PathBuf,

    /// The backup file.
    #[arg(value_name = "BACKUP")]
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Revoke a lost or stolen device in one step: nothing it holds is accepted any more (its
    /// credential, a replacement it was given, its enrollment tokens) and its session ends.
    /// Only a new `enrollment-token` brings it back.
    Revoke(DeviceArgs),
    /// Have a device replace its credential: its next upload is told to, it fetches a new
    /// one, and the old one stops working the moment the new one is first used.
    Rotate(DeviceArgs),
    /// Replace the list of which device number each Raspberry Pi serial (or MAC address) gets:
    /// a device whose slate.toml has no number asks with its class-set token and gets its
    /// number without anyone typing it. The file is CSV with the header `serial,device`; it is
    /// refused whole, naming the line, if a row is wrong or a serial or number appears twice.
    Numbers(DeviceNumbersArgs),
    /// Open root ssh on one device for a limited time with IT's own OpenSSH public keys (as
    /// the Fleet page's "Root ssh" does), or close it early with --close. Audited as the
    /// console. The device gets it at its next commands poll (within half a minute).
    Ssh(DeviceSshArgs),
}

#[derive(Debug, Args)]
pub struct DeviceSshArgs {
    /// The number painted on the device, 1 to 9999.
    #[arg(long, value_parser = parse_device)]
    pub device: DeviceNumber,
    /// OpenSSH public keys, one a line (ssh-ed25519, ecdsa, or RSA of 3072 bits or more; no
    /// options).
    #[arg(long, value_name = "FILE", required_unless_present = "close", conflicts_with = "close")]
    pub keys: Option<PathBuf>,
    /// How long the keys work, 15 to 480 minutes.
    #[arg(long, default_value_t = 60)]
    pub minutes: i64,
    /// Close timed ssh on the device now (the card's own keys stay).
    #[arg(long)]
    pub close: bool,
}

#[derive(Debug, Args)]
pub struct DeviceNumbersArgs {
    /// The CSV file: `serial,device`, then one row per device.
    #[arg(long, value_name = "CSV")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// The number painted on the device, 1 to 9999.
    #[arg(long, value_parser = parse_device)]
    pub device: DeviceNumber,
}

#[derive(Debug, Subcommand)]
pub enum ProvisionCommand {
    /// Check a slate-provision.conf and sign it with the policy key, for the boot partition of
    /// the school's cards (as slate-provision.signed). Every line is checked first; a bad one
    /// signs nothing. The signing is in the audit log.
    Sign(ProvisionSignArgs),
}

#[derive(Debug, Args)]
pub struct ProvisionSignArgs {
    /// The provisioning file to sign (slate-provision.conf, as images/slate-provision.conf.example).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Where to write the signed file (for the card: slate-provision.signed).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where the certificate and key files the file names are (wifi_eap_ca,
    /// wifi_eap_client_cert, wifi_eap_client_key, ssl_inspection_ca): their SHA-256 is signed
    /// with the text, so a device refuses a file swapped on the card. By default the directory
    /// of --file.
    #[arg(long, value_name = "DIR")]
    pub files_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Keep FILE as IT's update CA (the certificate devices hold as /etc/rauc/keyring.pem):
    /// every bundle is checked against it before it is kept.
    Ca(UpdateCaArgs),
    /// Add a signed RAUC bundle (the .raucb images/build makes): `rauc info` checks its
    /// signature against IT's update CA, then it is kept under its SHA-256. A refused bundle
    /// is deleted.
    Add(UpdateAddArgs),
    /// The uploaded bundles, the rollout in force and what each device last reported.
    List,
    /// Offer a bundle's version to named devices (a pilot) or to everyone, from now on (the
    /// rollout before it stops).
    Rollout(UpdateRolloutArgs),
    /// Stop the rollout in force: devices are offered nothing more (one already installing
    /// finishes).
    Stop,
    /// Remove a bundle no rollout in force offers: its file is deleted (the fleet's history of
    /// its rollouts stays). Uploading the same file again brings it back.
    Remove(UpdateRemoveArgs),
}

#[derive(Debug, Args)]
pub struct UpdateCaArgs {
    /// The CA certificate, PEM.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct UpdateAddArgs {
    /// The bundle.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Keep this PEM file as IT's update CA first (as `update ca` does).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpdateRemoveArgs {
    /// The bundle's version, as `update list` shows it.
    #[arg(long, value_name = "VERSION")]
    pub version: String,
}

#[derive(Debug, Args)]
pub struct UpdateRolloutArgs {
    /// The bundle's version, as `update list` shows it.
    #[arg(long, value_name = "VERSION")]
    pub version: String,

    /// The pilot: these devices only, e.g. --devices 12,13.
    #[arg(
        long,
        value_name = "N,N",
        required_unless_present = "everyone",
        conflicts_with = "everyone"
    )]
    pub devices: Option<String>,

    /// Every device.
    #[arg(long)]
    pub everyone: bool,

    /// Devices restart into the update no earlier than this time of day (UK time, e.g. 16:30);
    /// without it, whenever they are idle.
    #[arg(long, value_name = "HH:MM", value_parser = parse_reboot_at)]
    pub reboot_at: Option<chrono::NaiveTime>,

    /// Offer it again to devices that reported it as failed (once what failed is fixed).
    /// Without it, a device that failed with a version, or rolled back from it, is not offered
    /// that version again.
    #[arg(long)]
    pub retry_failed: bool,
}

fn parse_reboot_at(text: &str) -> Result<chrono::NaiveTime, String> {
    crate::update_rollout::parse_reboot_time(text)
}

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Import a CSV file with the columns class,first_name,last_name,key_stage, or an MIS
    /// export (SIMS, Arbor, Bromcom column names; UPN or Adno recognise pupils again). Ids are
    /// made here; devices get the first name and the family name's initial (more letters only
    /// where classmates share both). A bad row refuses the whole file, naming its line and
    /// column.
    Import(RosterImportArgs),
}

#[derive(Debug, Args)]
pub struct RosterImportArgs {
    /// The CSV file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff account, or reset one: prints a one-time password and, for roles that need
    /// it (or with --totp), the TOTP secret and otpauth URI for an authenticator app.
    Add(StaffAddArgs),
    /// Disable a staff account: it cannot sign in, its sessions end, and its unlock PIN leaves
    /// every device with the next policy. `staff add` with the same username enables it again
    /// (with a new password and no unlock PIN).
    Disable(StaffDisableArgs),
    /// On the server's own console: print a one-time link (valid 10 minutes) that lets the
    /// account's owner set up TOTP again and choose a new password, then signs them in. The
    /// link is printed here only, never logged; the audit log names the account.
    Recover(StaffRecoverArgs),
}

#[derive(Debug, Args)]
pub struct StaffRecoverArgs {
    #[arg(long, value_parser = parse_username)]
    pub username: String,

    /// The server's address as staff browsers reach it, for the printed link.
    #[arg(long, default_value = "https://127.0.0.1:8443", value_name = "URL")]
    pub url: String,
}

#[derive(Debug, Args)]
pub struct StaffDisableArgs {
    #[arg(long, value_parser = parse_username)]
    pub username: String,
}

#[derive(Debug, Args)]
pub struct StaffAddArgs {
    /// 2 to 32 of a-z, 0-9, '.', '_' or '-', e.g. j.smith.
    #[arg(long, value_parser = parse_username)]
    pub username: String,

    /// dsl, deputy_dsl, teacher or it_admin. DSLs, deputies and IT always get TOTP.
    #[arg(long, value_parser = parse_role)]
    pub role: crate::auth::Role,

    /// Give a teacher TOTP too.
    #[arg(long)]
    pub totp: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Serve plain HTTP instead of HTTPS. Only allowed on a loopback address.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub plain_http: bool,

    /// PEM certificate chain to serve instead of the generated self-signed one.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// TOML config file: alerts (email, webhook), the retention schedule, the staff key.
    /// Without it, the defaults: no alerts, the schedule's default periods (README,
    /// "Retention"), no staff key. The Debian package's unit passes
    /// /etc/slate-server/slate-server.toml (a commented example).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EnrollmentTokenArgs {
    /// The number painted on the device, 1 to 9999.
    #[arg(long, value_parser = parse_device, required_unless_present = "class_set")]
    pub device: Option<DeviceNumber>,

    /// Instead of one device: one token for a class set of up to N devices, the same
    /// `slate.toml` on every card (with only `device_number` changed, or with none: each device
    /// then takes its number from `device numbers` or asks IT on its screen for the setup code
    /// printed with the token). Each device number it enrolls must not be enrolled yet (it
    /// never replaces a device's credential).
    #[arg(long, value_name = "N", conflicts_with = "device", value_parser = clap::value_parser!(u16).range(1..=9999))]
    pub class_set: Option<u16>,

    /// How long the token may be used, in hours (up to a year).
    #[arg(long, default_value_t = 168, value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub valid_hours: u32,
}

#[derive(Debug, Subcommand)]
pub enum PupilCommand {
    /// Add a pupil to the roster, or update their names.
    Add(PupilAddArgs),
}

#[derive(Debug, Args)]
pub struct PupilAddArgs {
    /// The pseudonymous id devices use, e.g. p-7f3a9c.
    #[arg(long, value_parser = parse_pupil)]
    pub id: PupilId,

    /// What staff see: first name and initial, e.g. "Amira K." (at most 40 characters).
    #[arg(long)]
    pub name: String,

    /// The pupil's class, e.g. "Year 2" (at most 40 characters).
    #[arg(long)]
    pub class: String,
}

fn parse_device(text: &str) -> Result<DeviceNumber, String> {
    let n: u32 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    DeviceNumber::new(n).map_err(|e| e.to_string())
}

fn parse_username(text: &str) -> Result<String, String> {
    crate::auth::check_username(text)?;
    Ok(text.to_owned())
}

fn parse_role(text: &str) -> Result<crate::auth::Role, String> {
    crate::auth::Role::parse(text)
}

fn parse_pupil(text: &str) -> Result<PupilId, String> {
    PupilId::new(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn data_dir_is_accepted_before_or_after_the_subcommand() {
        let after = Cli::try_parse_from([
            "slate-server",
            "pupil",
            "--data-dir",
            "/d",
            "add",
            "--id",
            "p-1",
            "--name",
            "A",
            "--class",
            "Y2",
        ])
        .unwrap();
        assert_eq!(after.data_dir, PathBuf::from("/d"));
        let serve = Cli::try_parse_from([
            "slate-server",
            "serve",
            "--data-dir",
            "/e",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(serve.data_dir, PathBuf::from("/e"));
        let Command::Serve(args) = serve.command else { panic!("serve") };
        assert_eq!(args.listen.port(), 0);
        assert!(!args.plain_http);
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let cases: [&[&str]; 6] = [
            &["slate-server", "staff", "add", "--username", "J Smith", "--role", "dsl"],
            &["slate-server", "staff", "add", "--username", "j.smith", "--role", "head"],
            &["slate-server", "enrollment-token", "--device", "0"],
            &["slate-server", "enrollment-token", "--device", "12", "--valid-hours", "0"],
            &["slate-server", "pupil", "add", "--id", "Amira K", "--name", "A", "--class", "Y"],
            &["slate-server", "serve", "--tls-cert", "c.pem"],
        ];
        for args in cases {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
