//! `slatectl`: control a running `slated` through its control socket.
//!
//! Exit status: 0 done; 1 slated refused the request or could not be understood; 2 bad usage;
//! 3 slated could not be reached.

use clap::{Parser, Subcommand};
use slate_protocol::PupilId;
use slate_shell::config::DEFAULT_CONTROL_SOCKET;
use slate_shell::control::Request;
use slate_shell::ctl::{self, CtlError};
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
    },
    /// Staff unlock of a held device.
    Unlock,
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
        Cmd::Foreground { app, url, title } => Request::Foreground { app, url, title },
        Cmd::Unlock => Request::Unlock {},
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
