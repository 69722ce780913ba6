//! `slate-bench idle-memory`: what the kiosk costs at rest, against the obvious alternative.
//!
//! Same run, same X server (Xvfb: `cage` refuses to run as root, and Xvfb needs no GPU), one
//! after the other: (1) `slated` + `slate-ui` (software renderer) with the sample policy and a
//! pupil signed in; (2) Chromium in kiosk mode showing an HTML launcher page with the same tiles.
//! After `--settle` seconds, the resident set of each whole process tree is summed from
//! `/proc/<pid>/status` (VmRSS; shared pages count once per process, as `ps` would) and
//! averaged over five samples a second apart.
//!
//! Needs `slated` and `slate-ui` next to this binary (`cargo build --release -p slate-daemon -p
//! slate-ui`), Xvfb (`apt-get install xvfb`) and Debian's chromium.

use anyhow::{bail, Context};
use slate_protocol::kiosk::{parse_policy, AppKind, SAMPLE_POLICY};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills a child (and waits for it) when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("bench binary has no directory")?.join(name);
    if !path.exists() {
        bail!("{} is missing: cargo build --release -p slate-daemon -p slate-ui", path.display());
    }
    Ok(path)
}

fn start_xvfb() -> anyhow::Result<(Reaped, String)> {
    // Xvfb picks a free display and writes its number on fd 1.
    let mut child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting Xvfb (apt-get install xvfb)")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("Xvfb stdout")?).read_line(&mut line)?;
    let number: u32 = line.trim().parse().context("Xvfb did not say its display")?;
    Ok((Reaped(child), format!(":{number}")))
}

/// Every process whose ancestry includes `root`, `root` included.
fn tree(root: u32) -> Vec<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The command name is in parentheses and may hold spaces: fields follow the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parent.insert(pid, ppid);
        }
    }
    let mut members: HashSet<u32> = HashSet::from([root]);
    loop {
        let before = members.len();
        for (pid, ppid) in &parent {
            if members.contains(ppid) {
                members.insert(*pid);
            }
        }
        if members.len() == before {
            break;
        }
    }
    members.into_iter().filter(|p| parent.contains_key(p)).collect()
}

/// A `kB` field of a /proc file (`VmRSS:` in status, `Pss:` in smaps_rollup).
fn proc_kb(pid: u32, file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Means over five samples of the summed RSS and PSS of the trees under `roots`, in MiB, and
/// how many processes there were.
fn measure(roots: &[u32]) -> (f64, f64, usize) {
    let (mut rss, mut pss) = (0u64, 0u64);
    let mut count = 0;
    for _ in 0..5 {
        let pids: Vec<u32> = roots.iter().flat_map(|r| tree(*r)).collect();
        count = pids.len();
        rss += pids.iter().map(|p| proc_kb(*p, "status", "VmRSS:")).sum::<u64>();
        pss += pids.iter().map(|p| proc_kb(*p, "smaps_rollup", "Pss:")).sum::<u64>();
        std::thread::sleep(Duration::from_secs(1));
    }
    (rss as f64 / 5.0 / 1024.0, pss as f64 / 5.0 / 1024.0, count)
}

fn still_running(child: &mut Reaped, what: &str) -> anyhow::Result<()> {
    if let Some(status) = child.0.try_wait()? {
        bail!("{what} exited ({status}) before it was measured");
    }
    Ok(())
}

fn control(socket: &Path, request: &str) -> anyhow::Result<String> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    writeln!(stream, "{request}")?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    Ok(reply.trim().to_owned())
}

/// The launcher page Chromium shows: the sample policy's apps as the same coloured tiles.
fn launcher_page() -> anyhow::Result<String> {
    let policy = parse_policy(SAMPLE_POLICY).map_err(|e| anyhow::anyhow!("sample policy: {e}"))?;
    const COLOURS: [&str; 8] =
        ["#e4572e", "#f3a712", "#29335c", "#669bbc", "#4caf50", "#8e44ad", "#16a085", "#c0392b"];
    let tiles: String = policy
        .apps
        .iter()
        .map(|a| {
            let kind = match a.kind {
                AppKind::Web { .. } => "web",
                AppKind::Native { .. } => "native",
            };
            format!(
                "<button class=tile style=\"background:{}\" data-kind={kind}><span class=sym>{}</span><span>{}</span></button>",
                COLOURS[a.colour as usize % COLOURS.len()],
                a.symbol,
                a.title
            )
        })
        .collect();
    Ok(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Home</title><style>\
         body{{margin:0;font-family:sans-serif;background:#f4f1ea}}header{{display:flex;justify-content:space-between;padding:16px 24px;font-size:24px}}\
         main{{display:grid;grid-template-columns:repeat(4,1fr);gap:24px;padding:24px}}\
         .tile{{height:200px;border:0;border-radius:24px;color:#fff;font-size:28px;display:flex;flex-direction:column;align-items:center;justify-content:center}}\
         .sym{{font-size:64px}}.report{{background:#d62828;color:#fff;border-radius:40px;padding:12px 24px}}\
         </style></head><body><header><span>Hello</span><span class=report>Report</span></header><main>{tiles}</main></body></html>"
    ))
}

pub fn run(settle_s: u64) -> anyhow::Result<()> {
    let slated = sibling("slated")?;
    let slate_ui = sibling("slate-ui")?;
    let dir = tempfile::tempdir()?;
    let (_xvfb, display) = start_xvfb()?;
    println!("display: Xvfb {display} 1280x800 (slate-ui: winit X11, software renderer)");

    // 1. slated + slate-ui with the sample policy and a pupil signed in.
    let socket = dir.path().join("control.sock");
    let config = dir.path().join("slate.toml");
    // The sample policy, signed with a throwaway key, in force on the device: slated signs in
    // only pupils on the roster of the policy in force.
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let bundle = slate_protocol::bundle::SignedBundle::sign_as(
        slate_protocol::bundle::BundleKind::KioskPolicy,
        SAMPLE_POLICY.to_owned(),
        "bench",
        &key,
    );
    let policy_dir = dir.path().join("state/policy");
    std::fs::create_dir_all(&policy_dir)?;
    std::fs::write(policy_dir.join("kiosk.json"), serde_json::to_vec(&bundle)?)?;
    std::fs::write(
        &config,
        format!(
            "device_number = 12\nschool = \"Bench Primary\"\nstate_dir = {:?}\ncontrol_socket = {:?}\n\n\
             [server]\nurl = \"https://127.0.0.1:9\"\npublic_key = {:?}\n\n[upload]\nheartbeat_s = 3600\n\n[button]\nsource = \"none\"\n",
            dir.path().join("state"),
            socket,
            slate_protocol::bundle::verifying_key_to_base64(&key.verifying_key()),
        ),
    )?;
    let policy_file = dir.path().join("policy.json");
    std::fs::write(&policy_file, SAMPLE_POLICY)?;
    let daemon = Reaped(
        Command::new(&slated)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting slated")?,
    );
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ui = Reaped(
        Command::new(&slate_ui)
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--policy-unsigned")
            .arg(&policy_file)
            .arg("--fullscreen")
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting slate-ui")?,
    );
    let policy = parse_policy(SAMPLE_POLICY).map_err(|e| anyhow::anyhow!("sample policy: {e}"))?;
    let pupil = policy
        .classes
        .first()
        .and_then(|c| c.pupils.first())
        .context("sample policy has a pupil")?;
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "sign_in: {}",
        control(&socket, &format!("{{\"cmd\":\"sign_in\",\"pupil\":\"{}\"}}", pupil.id.as_str()))?
    );
    println!("status: {}", control(&socket, "{\"cmd\":\"status\"}")?);
    std::thread::sleep(Duration::from_secs(settle_s));
    let (mut daemon, mut ui) = (daemon, ui);
    still_running(&mut daemon, "slated")?;
    still_running(&mut ui, "slate-ui")?;
    let (slate_mb, slate_pss, slate_n) = measure(&[daemon.0.id(), ui.0.id()]);
    let (ui_mb, _, _) = measure(&[ui.0.id()]);
    still_running(&mut ui, "slate-ui")?;
    println!(
        "slate: slated + slate-ui at the home screen, {slate_n} processes, {slate_mb:.1} MiB RSS \
         (slate-ui {ui_mb:.1}), {slate_pss:.1} MiB PSS"
    );
    drop(ui);
    drop(daemon);

    // 2. Chromium in kiosk mode showing the same tiles.
    let page = dir.path().join("launcher.html");
    std::fs::write(&page, launcher_page()?)?;
    let mut args: Vec<String> = vec![
        "--kiosk".into(),
        "--ozone-platform=x11".into(),
        format!("--user-data-dir={}", dir.path().join("chromium").display()),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--noerrdialogs".into(),
    ];
    if is_root() {
        args.push("--no-sandbox".into());
    }
    args.push(format!("file://{}", page.display()));
    let chromium = Reaped(
        Command::new("/usr/lib/chromium/chromium")
            .args(&args)
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromium")?,
    );
    std::thread::sleep(Duration::from_secs(settle_s));
    let mut chromium = chromium;
    still_running(&mut chromium, "chromium")?;
    let (chromium_mb, chromium_pss, chromium_n) = measure(&[chromium.0.id()]);
    println!(
        "chromium launcher page: {chromium_n} processes, {chromium_mb:.1} MiB RSS, {chromium_pss:.1} MiB PSS"
    );
    drop(chromium);

    println!(
        "idle_rss_mb slate={slate_mb:.1} chromium_launcher={chromium_mb:.1} ratio={:.3}",
        slate_mb / chromium_mb
    );
    Ok(())
}

fn is_root() -> bool {
    // Chromium refuses to run as root without --no-sandbox; the uid is in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}
