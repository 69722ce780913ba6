//! `slate-ui`: opens the kiosk window (winit; the software renderer draws it), polls slated over
//! its control socket and drives the screens. On each poll it also re-reads the kiosk policy when
//! slated replaced it, looks for the provisioning unit's config-error message and shows or hides
//! the on-screen keyboard, and maps or unmaps its window so that a running app is in front
//! unless a screen must cover it.

use anyhow::Context;
use clap::Parser;
use slate_ui::app::{link_up, Controller};
use slate_ui::front::{Front, SlintWindow};
use slate_ui::keyboard::{Keyboard, Wvkbd, LANDSCAPE_HEIGHT};
use slate_ui::launcher::{LaunchConfig, ProcessLauncher, SocketReporter};
use slate_ui::link::SocketLink;
use slate_ui::native_focus::{compositor_socket, NativeFocus};
use slate_ui::policy_file::{kiosk_bundle_path, PolicyFile, Source};
use slint::ComponentHandle;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(version, about = "The Slate kiosk screens")]
struct Args {
    /// slated's control socket.
    #[arg(long, env = slate_ipc::control::SOCKET_ENV, default_value = "/run/slate/control.sock")]
    socket: PathBuf,
    /// slated's state directory: the kiosk policy is `<state_dir>/policy/kiosk.json`, a signed
    /// bundle checked with `--public-key`. Missing or not verifying: "Ask your teacher".
    #[arg(long, env = "SLATE_STATE_DIR", default_value = "/var/lib/slate")]
    state_dir: PathBuf,
    /// The school server's public key, base64 (`[server] public_key` in slate.toml).
    #[arg(long, env = "SLATE_PUBLIC_KEY")]
    public_key: Option<String>,
    /// Demo and tests only: read a plain, unsigned JSON policy from this file instead (it wins
    /// over `--public-key`).
    #[arg(long)]
    policy_unsigned: Option<PathBuf>,
    /// Where the provisioning unit writes why slated's config was refused at first boot.
    #[arg(long, default_value = "/run/slate/config-error")]
    config_error: PathBuf,
    /// Show the on-screen keyboard (wvkbd-mobintl, started with `-L` [`LANDSCAPE_HEIGHT`]) while
    /// a text field of the app in front has the focus, and fit web pages above it. A native
    /// app's focus is told by the compositor: slate-ui registers as its seat's input method.
    #[arg(long)]
    keyboard: bool,
    /// Where network interfaces are listed (for the offline notice).
    #[arg(long, default_value = "/sys/class/net", hide = true)]
    class_net: PathBuf,
    /// A tmpfs for each session's browser profile and app home (the kiosk user's runtime dir);
    /// they are deleted when the app ends.
    #[arg(long, env = "XDG_RUNTIME_DIR", default_value = "/run/slate-kiosk")]
    runtime_dir: PathBuf,
    /// The school's own certificate authority (PEM; provisioning copies `[server]
    /// ca_certificate` here): web apps on certificates it signed open in the kiosk browser.
    /// Missing: only the public authorities are trusted.
    #[arg(long, env = "SLATE_SCHOOL_CA")]
    school_ca: Option<PathBuf>,
    /// The school network's browser settings (proxy, SSL-inspection CA), written by
    /// slate-network from slate-provision.conf. Missing: direct, public authorities only.
    #[arg(
        long,
        env = "SLATE_NETWORK_POLICY",
        default_value = "/var/lib/slate-system/network/chromium-policy.json"
    )]
    network_policy: PathBuf,
    /// Run full screen.
    #[arg(long)]
    fullscreen: bool,
    /// How often to ask slated for its state, in milliseconds.
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
}

fn main() -> anyhow::Result<()> {
    // `info` by default: why an app did not open must reach the journal without RUST_LOG. To
    // stderr, no colour codes: the journal is not a terminal.
    slate_ipc::logging::init("info", &[]);
    let args = Args::parse();

    // Prefer winit with the software renderer; nothing else is compiled in.
    let backend =
        slint::BackendSelector::new().backend_name("winit".into()).renderer_name("software".into());
    backend.select().context("no window system to draw on (is WAYLAND_DISPLAY or DISPLAY set?)")?;

    let source = match &args.policy_unsigned {
        Some(path) => {
            tracing::warn!(path = %path.display(), "using an unsigned policy (demo and tests only)");
            Source::Unsigned { path: path.clone() }
        }
        None => Source::signed(kiosk_bundle_path(&args.state_dir), args.public_key.as_deref()),
    };
    let mut policy_file = PolicyFile::new(source);
    let policy = policy_file.poll().expect("the first poll always reads");
    log_policy(&policy);

    // The labwc rule that keeps the kiosk on top matches this app_id.
    slint::set_xdg_app_id(slate_ipc::KIOSK_APP_ID).context("setting the app_id")?;
    let window = slate_ui::AppWindow::new().context("creating the window")?;
    window.window().set_fullscreen(args.fullscreen);
    let reporter_socket = args.socket.clone();
    let mut launch_config = LaunchConfig::new(args.runtime_dir.clone(), args.state_dir.clone());
    launch_config.trusted_certificates = school_ca(args.school_ca.as_deref());
    let (proxy, inspection_ca) = network_policy(&args.network_policy);
    launch_config.proxy_settings = proxy;
    launch_config.trusted_certificates.extend(inspection_ca);
    launch_config.keyboard_height = args.keyboard.then_some(LANDSCAPE_HEIGHT);
    // slated's sockets (control, DNS) and the school CA copy: never for an app.
    if let Some(sockets) = args.socket.parent() {
        launch_config.hidden.push(sockets.to_owned());
    }
    let mut launcher = ProcessLauncher::new(
        launch_config,
        Box::new(move || Box::new(SocketReporter { socket: reporter_socket.clone() })),
    );
    if args.keyboard {
        // The compositor slate-ui's own window is on.
        let wayland_display = std::env::var_os("WAYLAND_DISPLAY");
        let socket = compositor_socket(wayland_display.as_deref(), &args.runtime_dir);
        launcher.follow_native_focus(NativeFocus::start(socket.as_deref()));
    }
    let controller = Rc::new(RefCell::new(Controller::new(
        SocketLink { socket: args.socket.clone() },
        launcher,
        policy,
    )));
    controller.borrow_mut().set_config_error(slate_ui::config_error::read(&args.config_error));
    // "Read it to me" speaks with espeak-ng where it is installed (the kiosk image has it).
    let voice = slate_ui::speech::EspeakNg::default();
    if voice.program.exists() {
        controller.borrow_mut().set_speaker(Box::new(voice));
    }
    let class_net = args.class_net.clone();
    let online: slate_ui::ui::Online = Rc::new(move || link_up(&class_net));
    slate_ui::ui::connect(&window, controller.clone(), online.clone());

    let timer = slint::Timer::default();
    let weak = window.as_weak();
    let mut keyboard: Option<Wvkbd> = args.keyboard.then(Wvkbd::default);
    let config_error = args.config_error.clone();
    let mut shown = None;
    let mut last_size = None;
    // Out of the way of a running app unless a screen must cover it (`front`).
    let mut front =
        Front::new(SlintWindow { window: window.as_weak(), fullscreen: args.fullscreen }, None);
    timer.start(slint::TimerMode::Repeated, Duration::from_millis(args.poll_ms), move || {
        {
            let mut c = controller.borrow_mut();
            if let Some(read) = policy_file.poll() {
                log_policy(&read);
                c.set_policy(read);
            }
            c.set_config_error(slate_ui::config_error::read(&config_error));
        }
        if let Some(window) = weak.upgrade() {
            slate_ui::ui::poll(&window, &controller, online());
        }
        let view = controller.borrow().view();
        // The screen and the window's size were already these at the last poll, so they have
        // been drawn since (a window is shown at its own size first, then made full screen).
        let size = weak.upgrade().map(|w| w.window().size());
        let screen_drawn = shown == Some(view.screen) && last_size == Some(size);
        last_size = Some(size);
        // Which screen, never what is on it (no names): for IT reading the journal.
        if shown != Some(view.screen) {
            tracing::info!(screen = ?view.screen, "screen");
            shown = Some(view.screen);
        }
        front.apply(view.screen, controller.borrow().app_running());
        controller.borrow_mut().note_window(front.drawn() && screen_drawn);
        if let Some(keyboard) = keyboard.as_mut() {
            keyboard.set_visible(view.keyboard);
        }
    });
    window.show().context("showing the window")?;
    // Not `run`: hiding the only window (an app in front) must not end the event loop.
    slint::run_event_loop_until_quit().context("running the window")?;
    Ok(())
}

fn log_policy(read: &slate_ui::policy_file::Loaded) {
    match read {
        Ok(p) => tracing::info!(issued_at = ?p.issued_at, "kiosk policy read"),
        Err(why) => tracing::warn!(%why, "no valid kiosk policy: failing closed"),
    }
}

/// The school network's proxy and SSL-inspection CA for the browser. Missing: none; a file
/// that cannot be read or is refused is logged and adds nothing (direct connections).
fn network_policy(path: &std::path::Path) -> (Option<serde_json::Value>, Vec<String>) {
    let read = match std::fs::read(path) {
        Ok(json) => slate_ui::browser::network_policy(&json),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, Vec::new()),
        Err(e) => Err(e.to_string()),
    };
    match read {
        Ok((proxy, certificates)) => {
            tracing::info!(path = %path.display(), proxy = proxy.is_some(), certificates = certificates.len(), "the school network's browser settings");
            (proxy, certificates)
        }
        Err(why) => {
            tracing::error!(path = %path.display(), "the school network's browser settings are not used: {why}");
            (None, Vec::new())
        }
    }
}

/// The school CA's certificates for the browser. A file that is missing means none; one that
/// cannot be read or holds no certificate is logged and trusts nothing more (apps on public
/// certificates still open).
fn school_ca(path: Option<&std::path::Path>) -> Vec<String> {
    let Some(path) = path else { return Vec::new() };
    let read = match std::fs::read(path) {
        Ok(pem) => slate_ui::browser::trusted_certificates(&pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => Err(e.to_string()),
    };
    match read {
        Ok(certificates) => {
            tracing::info!(path = %path.display(), count = certificates.len(), "the browser trusts the school's certificate authority");
            certificates
        }
        Err(why) => {
            tracing::error!(path = %path.display(), "the school's certificate authority is not trusted: {why}");
            Vec::new()
        }
    }
}
