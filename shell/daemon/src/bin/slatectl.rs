//! `slatectl`: control a running `slated` through its control socket.
//!
//! Exit status: 0 done; 1 slated refused the request or could not be understood; 2 bad usage;
//! 3 slated could not be reached.

use clap::{Parser, Subcommand};
use slate_daemon::ctl;
use slate_daemon::staff::StaffPin;
use slate_ipc::client::{self, ClientError};
use slate_ipc::control::{self, Pin, Request};
use slate_protocol::{FilterLayer, PupilId, RefusedDevice, ResolutionChoice, StaffId};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "slatectl", version, about = "Control a running slated")]
struct Cli {
    /// The control socket.
    #[arg(long, env = control::SOCKET_ENV, default_value = control::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print slated's JSON reply instead of a sentence.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Choice {
    /// Close the app; the page is not shown again.
    Close,
    /// Nothing wrong: the app resumes.
    FalseAlarm,
    /// Close the app and ask for the site to be blocked.
    BlockSite,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Press the report button (blank the screen, file a report, hold the device).
    #[command(visible_alias = "report")]
    Press,
    /// Sign a pupil in by their pseudonymous id.
    SignIn { pupil: String },
    /// Sign the current pupil out.
    SignOut,
    /// Say what is on screen (what the next report records).
    Foreground {
        #[arg(long)]
        app: String,
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        title: Option<String>,
        /// The app's process id (in an app cgroup the launcher made): its cgroup is frozen on
        /// a report.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Staff unlock of a held device, with the staff PIN and what happens next.
    Unlock {
        /// A staff PIN: a member of staff's own, or IT's `[staff] pin_hash` (the unlock
        /// records whose it is). Other users can read a command line: prefer --pin-stdin.
        #[arg(long, conflicts_with = "pin_stdin")]
        pin: Option<String>,
        /// Read the staff PIN from standard input (one line), where nobody else can see it.
        #[arg(long)]
        pin_stdin: bool,
        /// What happens next.
        #[arg(long, value_enum, default_value_t = Choice::Close)]
        choice: Choice,
        /// Ignored: slated records whose PIN it was, never who the client says it is.
        #[arg(long, hide = true)]
        staff: Option<String>,
    },
    /// Print the argon2id hash of a staff PIN, for `[staff] pin_hash` (the PIN is read from
    /// standard input when not given).
    HashPin {
        #[arg(long)]
        pin: Option<String>,
    },
    /// Show the device's state.
    Status,
    /// IT's setup code for a device with no number (read from standard input), as typed on its
    /// setup screen.
    SetupCode,
    /// The device number, on a device with no number, after the setup code.
    SetupNumber { number: u32 },
    /// Confirm the number typed ("This is device N"): yes enrolls as it, no asks again.
    SetupConfirm {
        #[arg(value_parser = ["yes", "no"])]
        answer: String,
    },
    /// Say that the pupil opened an app (what the kiosk UI sends).
    AppOpened { app: String },
    /// Say that the pupil accepted the acceptable use agreement (what the kiosk UI sends).
    AupAccepted {
        #[arg(long)]
        key_stage: String,
        /// `<key stage>-<8 hex digits of the agreement text's sha256>`.
        #[arg(long)]
        text_version: String,
        /// The school's number for its own text, when that was shown.
        #[arg(long)]
        school_version: Option<u32>,
    },
    /// Say that the pupil touched the screen (resets the idle timer).
    Activity,
    /// File a filter block (what slate-dns and the browser send).
    FilterBlocked {
        #[arg(long, value_enum)]
        layer: Layer,
        #[arg(long)]
        target: String,
        #[arg(long)]
        rule: String,
        #[arg(long)]
        list: String,
    },
    /// "Tell my teacher" from a blocked page: a report, no darkness, nothing held.
    TellTeacher {
        #[arg(long)]
        url: String,
        #[arg(long)]
        app: Option<String>,
    },
    /// File a device the policy refused (what the udev rule sends).
    DeviceRefused {
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long)]
        description: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Layer {
    Dns,
    Url,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
enum Kind {
    UsbStorage,
    Camera,
    OtherUsb,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let request = match cli.command {
        Cmd::Press => Request::Press {},
        Cmd::SignIn { pupil } => match PupilId::new(pupil) {
            Ok(pupil) => Request::SignIn { pupil, pictures: None },
            Err(e) => {
                eprintln!("slatectl: {e}");
                return ExitCode::from(2);
            }
        },
        Cmd::SignOut => Request::SignOut {},
        Cmd::Foreground { app, url, title, pid } => Request::Foreground { app, url, title, pid },
        Cmd::Unlock { pin, pin_stdin, choice, staff } => {
            let pin = if pin_stdin {
                match read_pin() {
                    Ok(pin) => Some(pin),
                    Err(e) => {
                        eprintln!("slatectl: cannot read the PIN: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                pin
            };
            let staff = match staff.map(StaffId::new).transpose() {
                Ok(staff) => staff,
                Err(e) => {
                    eprintln!("slatectl: {e}");
                    return ExitCode::from(2);
                }
            };
            let choice = match choice {
                Choice::Close => ResolutionChoice::CloseApp,
                Choice::FalseAlarm => ResolutionChoice::FalseAlarm,
                Choice::BlockSite => ResolutionChoice::BlockSite,
            };
            Request::Unlock { pin: pin.map(Pin), choice: Some(choice), staff }
        }
        Cmd::HashPin { pin } => return hash_pin(pin),
        Cmd::Status => Request::Status {},
        Cmd::SetupCode => match read_pin() {
            Ok(code) => Request::SetupCode { code: Pin(code) },
            Err(e) => {
                eprintln!("slatectl: cannot read the setup code: {e}");
                return ExitCode::from(2);
            }
        },
        Cmd::SetupNumber { number } => Request::SetupNumber { number },
        Cmd::SetupConfirm { answer } => Request::SetupConfirm { yes: answer == "yes" },
        Cmd::AppOpened { app } => Request::AppOpened { app },
        Cmd::AupAccepted { key_stage, text_version, school_version } => {
            Request::AupAccepted { key_stage, text_version, school_version }
        }
        Cmd::Activity => Request::Activity {},
        Cmd::FilterBlocked { layer, target, rule, list } => Request::FilterBlocked {
            layer: match layer {
                Layer::Dns => FilterLayer::Dns,
                Layer::Url => FilterLayer::Url,
            },
            target,
            rule,
            list,
        },
        Cmd::TellTeacher { url, app } => Request::TellTeacher { url, app },
        Cmd::DeviceRefused { kind, description } => Request::DeviceRefused {
            kind: match kind {
                Kind::UsbStorage => RefusedDevice::UsbStorage,
                Kind::Camera => RefusedDevice::Camera,
                Kind::OtherUsb => RefusedDevice::OtherUsb,
            },
            description,
        },
    };
    // The daemon checks again; checking here gives exit status 2 for bad usage.
    let line = serde_json::to_vec(&request).expect("a request serialises");
    if let Err(e) = control::parse_request(&line) {
        eprintln!("slatectl: {e}");
        return ExitCode::from(2);
    }
    match client::send(&cli.socket, &request) {
        Ok(reply) if cli.json => {
            println!("{}", serde_json::to_string(&reply).expect("a reply serialises"));
            if reply.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Ok(reply) if reply.ok => {
            println!("{}", ctl::describe(&request, &reply));
            ExitCode::SUCCESS
        }
        Ok(reply) => {
            eprintln!(
                "slatectl: slated refused: {}",
                reply.error.as_deref().unwrap_or("no reason given")
            );
            ExitCode::from(1)
        }
        Err(e @ ClientError::NotRunning { .. }) => {
            eprintln!("slatectl: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("slatectl: {e}");
            ExitCode::from(1)
        }
    }
}

/// One line of standard input, trimmed: a PIN nobody else can read off the command line.
fn read_pin() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

fn hash_pin(pin: Option<String>) -> ExitCode {
    let pin = match pin {
        Some(pin) => pin,
        None => match read_pin() {
            Ok(pin) => pin,
            Err(e) => {
                eprintln!("slatectl: cannot read the PIN: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match StaffPin::hash(&pin) {
        Ok(hash) => {
            println!("{}", hash.phc());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("slatectl: {e}");
            ExitCode::from(2)
        }
    }
}
