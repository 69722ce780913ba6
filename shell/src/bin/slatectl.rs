//! `slatectl`: control a running `slated` through its control socket.
//!
//! Exit status: 0 done; 1 slated refused the request or could not be understood; 2 bad usage;
//! 3 slated could not be reached.

use clap::{Parser, Subcommand};
use slate_protocol::{PupilId, ResolutionChoice, StaffId};
use slate_shell::config::DEFAULT_CONTROL_SOCKET;
use slate_shell::control::{Pin, Request};
use slate_shell::ctl::{self, CtlError};
use slate_shell::staff::StaffPin;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "slatectl", version, about = "Control a running slated")]
struct Cli {
    /// The control socket.
    #[arg(long, env = ctl::SOCKET_ENV, default_value = DEFAULT_CONTROL_SOCKET)]
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
        /// The app's process id: its process group is stopped on a report.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Staff unlock of a held device, with the staff PIN and what happens next.
    Unlock {
        /// The staff PIN (required when slated has a `[staff] pin_hash`).
        #[arg(long)]
        pin: Option<String>,
        /// What happens next.
        #[arg(long, value_enum, default_value_t = Choice::Close)]
        choice: Choice,
        /// Who is unlocking: the school's staff id.
        #[arg(long)]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let request = match cli.command {
        Cmd::Press => Request::Press {},
        Cmd::SignIn { pupil } => match PupilId::new(pupil) {
            Ok(pupil) => Request::SignIn { pupil },
            Err(e) => {
                eprintln!("slatectl: {e}");
                return ExitCode::from(2);
            }
        },
        Cmd::SignOut => Request::SignOut {},
        Cmd::Foreground { app, url, title, pid } => Request::Foreground { app, url, title, pid },
        Cmd::Unlock { pin, choice, staff } => {
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
    };
    match ctl::send(&cli.socket, &request) {
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
        Err(e @ CtlError::NotRunning { .. }) => {
            eprintln!("slatectl: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("slatectl: {e}");
            ExitCode::from(1)
        }
    }
}

fn hash_pin(pin: Option<String>) -> ExitCode {
    let pin = match pin {
        Some(pin) => pin,
        None => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("slatectl: cannot read the PIN: {e}");
                return ExitCode::from(2);
            }
            line.trim().to_owned()
        }
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
