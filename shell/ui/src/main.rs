//! `slate-ui`: opens the kiosk window (winit; the software renderer draws it), polls slated over
//! its control socket and drives the screens.

use anyhow::Context;
use clap::Parser;
use slate_ui::app::{link_up, Controller, RecordingLauncher};
use slate_ui::link::SocketLink;
use slate_ui::policy::parse_policy;
use slint::ComponentHandle;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(version, about = "The Slate kiosk screens")]
struct Args {
    /// slated's control socket.
    #[arg(long, env = slate_shell::ctl::SOCKET_ENV, default_value = "/run/slate/control.sock")]
    socket: PathBuf,
    /// The policy (roster and approved apps) as JSON. Missing or invalid: "Ask your teacher".
    #[arg(long, env = "SLATE_POLICY", default_value = "/var/lib/slate/policy.json")]
    policy: PathBuf,
    /// Where network interfaces are listed (for the offline notice).
    #[arg(long, default_value = "/sys/class/net", hide = true)]
    class_net: PathBuf,
    /// Run full screen.
    #[arg(long)]
    fullscreen: bool,
    /// How often to ask slated for its state, in milliseconds.
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();

    // Prefer winit with the software renderer; nothing else is compiled in.
    let backend = slint::BackendSelector::new().backend_name("winit".into()).renderer_name("software".into());
    backend.select().context("no window system to draw on (is WAYLAND_DISPLAY or DISPLAY set?)")?;

    let policy = std::fs::read_to_string(&args.policy)
        .map_err(|e| format!("cannot read {}: {e}", args.policy.display()))
        .and_then(|text| parse_policy(&text).map_err(|e| format!("{}: {e}", args.policy.display())));
    if let Err(why) = &policy {
        tracing::warn!(%why, "no valid policy: failing closed");
    }

    let window = slate_ui::AppWindow::new().context("creating the window")?;
    window.window().set_fullscreen(args.fullscreen);
    let controller = Rc::new(RefCell::new(Controller::new(
        SocketLink { socket: args.socket.clone() },
        RecordingLauncher::default(),
        policy,
    )));
    let class_net = args.class_net.clone();
    let online: slate_ui::ui::Online = Rc::new(move || link_up(&class_net));
    slate_ui::ui::connect(&window, controller.clone(), online.clone());

    let timer = slint::Timer::default();
    let weak = window.as_weak();
    timer.start(slint::TimerMode::Repeated, Duration::from_millis(args.poll_ms), move || {
        if let Some(window) = weak.upgrade() {
            slate_ui::ui::poll(&window, &controller, online());
        }
    });
    window.run().context("running the window")?;
    Ok(())
}
