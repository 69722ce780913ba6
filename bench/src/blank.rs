//! `blank`: report-button press → screen confirmed dark, timed per press, as each report's
//! `blank_latency_us` records it.
//!
//! Two paths, and the last line says which was measured:
//! - `evdev`: a key-down through a uinput device, read by the daemon's evdev adapter, timed from
//!   the kernel's input-event timestamp. Needs `/dev/uinput`; not implemented yet (QEMU boot
//!   test territory), so where it exists this bench says so and measures the other path.
//! - `injected`: a key-down injected at the button adapter's boundary (stamped with the wall
//!   clock at injection, as the kernel would stamp it), through the real core task (`Driver`)
//!   and the real sysfs backlight adapter writing a fake `/sys/class/backlight` in a temp dir,
//!   to darkness confirmed by reading it back. The report is fsync'd to a real spool, but after
//!   darkness, so the spool is not in the figure.
//! - `compositor`: the same injected key-down and core, with the real Wayland adapter: a black
//!   layer-shell overlay on a real headless compositor (sway, pixman renderer, private runtime
//!   dir) over a bright fullscreen window, to the compositor's frame callback for it. Measured
//!   after `injected` when sway, foot and grim are installed, and then it is the last line.

use anyhow::{bail, Context};
use chrono::Utc;
use slate_daemon::apps::FakeApps;
use slate_daemon::button::ButtonEvent;
use slate_daemon::config::BlankMethod;
use slate_daemon::control::ControlMsg;
use slate_daemon::core::{Core, Rules};
use slate_daemon::daemon::{ClockIds, Driver};
use slate_daemon::display::{Display, SysfsBacklight, WaylandDisplay};
use slate_daemon::spool::{SharedSpool, Spool};
use slate_daemon::staff::StaffPin;
use slate_ipc::control::{Pin, Reply, Request};
use slate_protocol::{DeviceNumber, EventBody};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

pub fn run(presses: usize) -> anyhow::Result<()> {
    if presses == 0 {
        bail!("--presses must be at least 1");
    }
    let dir = tempfile::tempdir()?;
    if Path::new("/dev/uinput").exists() {
        println!("/dev/uinput exists, but the evdev path of this bench is not built yet; measuring the injected path");
    } else {
        println!("no /dev/uinput on this machine: measuring the injected path (adapter boundary)");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let samples = runtime.block_on(bench(dir.path(), presses))?;
    let ms: Vec<f64> = samples.iter().map(|us| *us as f64 / 1000.0).collect();
    println!(
        "{} presses: injected key-down -> core -> sysfs backlight (temp dir) -> read back dark",
        ms.len()
    );
    println!(
        "blank_latency_ms p50={:.3} p99={:.3} n={} path=injected",
        crate::quantile(&ms, 0.5),
        crate::quantile(&ms, 0.99),
        ms.len()
    );
    compositor(&runtime, dir.path(), presses)
}

/// The `compositor` path, when a headless compositor can be started here.
fn compositor(runtime: &tokio::runtime::Runtime, dir: &Path, presses: usize) -> anyhow::Result<()> {
    use slate_daemon::display::wayland::headless::Headless;
    let mut headless = match Headless::start() {
        Ok(h) => h,
        Err(e) => {
            println!("no headless compositor ({e}): the compositor path is not measured");
            return Ok(());
        }
    };
    headless.bright_window("sleep 3600").map_err(anyhow::Error::msg)?;
    let display = WaylandDisplay::spawn(headless.socket().to_owned(), false)?;
    if !display.wait_ready(Duration::from_secs(10)) {
        bail!("the overlay never got ready: {}", headless.log());
    }
    let spool = dir.join("compositor");
    std::fs::create_dir_all(&spool)?;
    let samples = runtime.block_on(bench_with(&spool, presses, display))?;
    let ms: Vec<f64> = samples.iter().map(|us| *us as f64 / 1000.0).collect();
    println!(
        "{} presses: injected key-down -> core -> layer-shell overlay on headless sway (pixman) -> frame callback",
        ms.len()
    );
    println!(
        "blank_latency_ms p50={:.3} p99={:.3} n={} path=compositor",
        crate::quantile(&ms, 0.5),
        crate::quantile(&ms, 0.99),
        ms.len()
    );
    Ok(())
}

async fn ask(control: &mpsc::Sender<ControlMsg>, request: Request) -> anyhow::Result<Reply> {
    let (tx, rx) = oneshot::channel();
    control
        .send(ControlMsg {
            request,
            from: slate_daemon::control::Role::Root,
            app: None,
            received_at: Utc::now(),
            reply: tx,
        })
        .await
        .context("the core task stopped")?;
    rx.await.context("the core task stopped")
}

/// The staff PIN that releases the bench's device after each press.
const BENCH_PIN: &str = "2468";

async fn bench(dir: &Path, presses: usize) -> anyhow::Result<Vec<u64>> {
    let backlight = dir.join("sys/class/backlight/10-0045");
    std::fs::create_dir_all(&backlight)?;
    std::fs::write(backlight.join("bl_power"), "0\n")?;
    std::fs::write(backlight.join("brightness"), "180\n")?;
    bench_with(dir, presses, SysfsBacklight::new(&backlight, BlankMethod::BlPower)).await
}

/// Presses through the real core task with `display`; each report's `blank_latency_us`.
async fn bench_with(dir: &Path, presses: usize, display: impl Display) -> anyhow::Result<Vec<u64>> {
    let (spool, _) = Spool::open(&dir.join("spool")).context("open the spool")?;
    let spool = SharedSpool::new(spool);
    // No debounce: the presses are injected, not bouncing; each must count.
    let rules = Rules { debounce: Duration::ZERO, pin_in_force: true, ..Rules::default() };
    let driver = Driver::new(
        Core::with_rules(DeviceNumber::new(12)?, rules),
        ClockIds,
        display,
        FakeApps::default(),
        spool.clone(),
        Arc::new(Notify::new()),
        Arc::new(AtomicBool::new(false)),
    )
    // A held device is released only with a staff PIN (not part of what is timed).
    .with_staff_pin(Some(StaffPin::hash(BENCH_PIN)?));
    let (control, control_rx) = mpsc::channel(4);
    let (button, button_rx) = mpsc::channel(4);
    let (shutdown, shutdown_rx) = oneshot::channel();
    let task = tokio::spawn(driver.run(button_rx, control_rx, shutdown_rx));

    let mut samples = Vec::with_capacity(presses);
    for i in 0..presses {
        button.send(ButtonEvent::Down { at: Utc::now() }).await?;
        button.send(ButtonEvent::Up { at: Utc::now() }).await?;
        // The button and the control socket are separate channels, so a status request may
        // overtake the key-down: ask until the press has been handled (bounded).
        let mut tries = 0;
        loop {
            let status = ask(&control, Request::Status {}).await?;
            if status.state.as_deref() == Some("held") {
                break;
            }
            tries += 1;
            if tries > 1000 {
                bail!("press {i}: the device is not held ({status:?})");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let pin = Some(Pin(BENCH_PIN.into()));
        let reply = ask(&control, Request::Unlock { pin, choice: None, staff: None }).await?;
        if !reply.ok {
            bail!("press {i}: unlock refused: {:?}", reply.error);
        }
    }
    let _ = shutdown.send(());
    task.await?;

    for event in spool.oldest(usize::MAX) {
        if let EventBody::ReportFiled { blank_latency_us, .. } = event.body {
            samples.push(blank_latency_us.context("a press whose darkness was not confirmed")?);
        }
    }
    if samples.len() != presses {
        bail!("{} reports for {presses} presses", samples.len());
    }
    Ok(samples)
}
