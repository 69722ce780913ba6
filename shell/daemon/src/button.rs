//! Report-button adapters: turn edges on some input into [`ButtonEvent`]s with the time they
//! happened. Owns the input device; must not decide what a press means (that is the core's, as
//! are debouncing and the stuck-button rule: edges pass through untouched).
//!
//! Sources: [`EvdevButton`] (the GPIO button via the `gpio-key` overlay, or a USB button: a
//! kernel input device, found by path, name or vendor/product with [`select_device`], grabbed
//! exclusively, found again when plugged back in), [`StdinButton`] (each line on standard input:
//! the demo), [`ChannelButton`] (tests). Presses also arrive from the control socket
//! (`slatectl press`); those do not pass through here.
//!
//! Hot-plug without udev: while no device is open, the input directory is rescanned every
//! [`RESCAN`]; a device that fails to read is closed (and [`ButtonEvent::Present`]`(false)`
//! said once) and looked for again.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// How often a missing button device is looked for.
pub const RESCAN: Duration = Duration::from_secs(2);

/// What a button source saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonEvent {
    /// A momentary press from software (the stdin demo): no bounce, no key-up.
    Pressed { at: DateTime<Utc> },
    /// The physical key went down, at the kernel's time.
    Down { at: DateTime<Utc> },
    /// The physical key went up.
    Up { at: DateTime<Utc> },
    /// The device appeared (`true`) or vanished (`false`).
    Present(bool),
}

/// A source of button events.
pub trait Button: Send + 'static {
    /// Waits for the next event. `None` when the source has ended for good.
    fn next_event(&mut self) -> impl Future<Output = Option<ButtonEvent>> + Send;
}

/// Forwards events from `button` until it ends or the receiver is gone.
pub async fn forward<B: Button>(mut button: B, events: mpsc::Sender<ButtonEvent>) {
    while let Some(event) = button.next_event().await {
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// `EV_KEY`, from `linux/input-event-codes.h`.
const EV_KEY: u16 = 0x01;

/// An edge of the report key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Down,
    Up,
}

/// Which edge of the report key an input event is, if any. Auto-repeat (2) is neither. Pure.
pub fn key_edge(event_type: u16, code: u16, value: i32, key: u16) -> Option<Edge> {
    if event_type != EV_KEY || code != key {
        return None;
    }
    match value {
        1 => Some(Edge::Down),
        0 => Some(Edge::Up),
        _ => None,
    }
}

/// Which input device is the report button. Every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceMatch {
    /// An exact device path (`/dev/input/by-path/…-event`); trusted even if it does not
    /// advertise the key.
    pub path: Option<PathBuf>,
    /// The kernel's device name, e.g. `button@11` (gpio-key overlay) or a USB button's.
    pub name: Option<String>,
    pub vendor: Option<u16>,
    pub product: Option<u16>,
}

impl DeviceMatch {
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self { path: Some(path.into()), ..Self::default() }
    }
}

/// What is known of one input device, for choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `/dev/input/eventN`.
    pub path: PathBuf,
    /// Where `path` leads when resolved (by-path and by-id names are symlinks).
    pub real_path: PathBuf,
    pub name: Option<String>,
    pub vendor: u16,
    pub product: u16,
    /// Whether it can send the configured key.
    pub has_key: bool,
}

/// The device to use for the report button: the first (by path) that meets every criterion.
/// A device found by name or ids must be able to send the key; one named by path need not (the
/// adapter warns). Pure.
pub fn select_device<'a>(candidates: &'a [DeviceInfo], m: &DeviceMatch) -> Option<&'a DeviceInfo> {
    let by_identity = m.name.is_some() || m.vendor.is_some() || m.product.is_some();
    let mut fitting: Vec<&DeviceInfo> = candidates
        .iter()
        .filter(|d| {
            m.path.as_ref().is_none_or(|p| *p == d.path || *p == d.real_path)
                && m.name.as_ref().is_none_or(|n| d.name.as_deref() == Some(n.as_str()))
                && m.vendor.is_none_or(|v| v == d.vendor)
                && m.product.is_none_or(|p| p == d.product)
                && (d.has_key || !by_identity)
        })
        .collect();
    fitting.sort_by_key(|d| event_number(&d.path));
    fitting.first().copied()
}

/// `N` of `/dev/input/eventN`, so that event10 sorts after event9.
fn event_number(path: &Path) -> (u32, PathBuf) {
    let n = path
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.strip_prefix("event"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX);
    (n, path.to_owned())
}

/// Reads what is needed to choose among the input devices in `dir` (`/dev/input`). Devices that
/// cannot be opened are skipped.
pub fn scan_devices(dir: &Path, key: u16, wanted: &DeviceMatch) -> Vec<DeviceInfo> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().and_then(|f| f.to_str()).is_some_and(|f| f.starts_with("event"))
                })
                .collect()
        })
        .unwrap_or_default();
    // A configured path outside the directory (a by-path symlink) is a candidate too.
    if let Some(p) = &wanted.path {
        paths.push(p.clone());
    }
    paths
        .into_iter()
        .filter_map(|path| {
            let device = evdev::Device::open(&path).ok()?;
            let id = device.input_id();
            Some(DeviceInfo {
                real_path: std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone()),
                name: device.name().map(str::to_owned),
                vendor: id.vendor(),
                product: id.product(),
                has_key: device
                    .supported_keys()
                    .is_some_and(|keys| keys.contains(evdev::KeyCode::new(key))),
                path,
            })
        })
        .collect()
}

/// The report button as a kernel input device, grabbed exclusively so that no other program sees
/// its key. Found again if it vanishes (a USB button pulled out, a driver reload).
pub struct EvdevButton {
    wanted: DeviceMatch,
    key: u16,
    /// Where to look for devices (`/dev/input`).
    dir: PathBuf,
    stream: Option<evdev::EventStream>,
    /// How long to wait before looking for the device again.
    retry: Duration,
    /// Whether the current outage has been said (once, not every retry).
    outage_logged: bool,
    /// Whether the device was there when last said (`None`: nothing said yet).
    present: Option<bool>,
}

impl EvdevButton {
    pub fn new(wanted: DeviceMatch, key: u16) -> Self {
        Self {
            wanted,
            key,
            dir: PathBuf::from("/dev/input"),
            stream: None,
            retry: RESCAN,
            outage_logged: false,
            present: None,
        }
    }

    fn open(&self) -> std::io::Result<(PathBuf, evdev::EventStream)> {
        let candidates = scan_devices(&self.dir, self.key, &self.wanted);
        let chosen = select_device(&candidates, &self.wanted).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no input device matches")
        })?;
        if !chosen.has_key {
            tracing::warn!(device = %chosen.path.display(), key = self.key,
                "the button device does not report the configured key");
        }
        let mut device = evdev::Device::open(&chosen.path)?;
        device.grab()?;
        Ok((chosen.path.clone(), device.into_event_stream()?))
    }

    /// Says a change of presence once.
    fn presence(&mut self, present: bool) -> Option<ButtonEvent> {
        if self.present == Some(present) {
            return None;
        }
        self.present = Some(present);
        Some(ButtonEvent::Present(present))
    }
}

impl Button for EvdevButton {
    async fn next_event(&mut self) -> Option<ButtonEvent> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                match self.open() {
                    Ok((path, stream)) => {
                        tracing::info!(device = %path.display(), key = self.key, "report button ready");
                        self.outage_logged = false;
                        self.stream = Some(stream);
                        if let Some(event) = self.presence(true) {
                            return Some(event);
                        }
                    }
                    Err(e) => {
                        if !self.outage_logged {
                            tracing::warn!(wanted = ?self.wanted, error = %e,
                                "report button unavailable; looking for it until it appears");
                            self.outage_logged = true;
                        }
                        if let Some(event) = self.presence(false) {
                            return Some(event);
                        }
                        tokio::time::sleep(self.retry).await;
                    }
                }
                continue;
            };
            match stream.next_event().await {
                Ok(event) => {
                    let at: DateTime<Utc> = event.timestamp().into();
                    match key_edge(event.event_type().0, event.code(), event.value(), self.key) {
                        Some(Edge::Down) => return Some(ButtonEvent::Down { at }),
                        Some(Edge::Up) => return Some(ButtonEvent::Up { at }),
                        None => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "report button device vanished; looking for it again");
                    self.stream = None;
                    if let Some(event) = self.presence(false) {
                        return Some(event);
                    }
                }
            }
        }
    }
}

/// The demo button: every line on standard input is a press ("press Enter to report").
pub struct StdinButton {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>,
}

impl StdinButton {
    pub fn new() -> Self {
        Self { lines: tokio::io::BufReader::new(tokio::io::stdin()).lines() }
    }
}

impl Default for StdinButton {
    fn default() -> Self {
        Self::new()
    }
}

impl Button for StdinButton {
    async fn next_event(&mut self) -> Option<ButtonEvent> {
        match self.lines.next_line().await {
            Ok(Some(_)) => Some(ButtonEvent::Pressed { at: Utc::now() }),
            Ok(None) => {
                tracing::info!("standard input closed; the stdin button is gone");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "standard input failed; the stdin button is gone");
                None
            }
        }
    }
}

/// A button fed by a channel, for tests.
pub struct ChannelButton(pub mpsc::Receiver<ButtonEvent>);

impl Button for ChannelButton {
    async fn next_event(&mut self) -> Option<ButtonEvent> {
        self.0.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_key_makes_edges() {
        let f12 = 88;
        let cases = [
            ((EV_KEY, 88, 1), Some(Edge::Down)),
            ((EV_KEY, 88, 0), Some(Edge::Up)),
            ((EV_KEY, 88, 2), None), // auto-repeat
            ((EV_KEY, 87, 1), None), // another key
            ((0x00, 88, 1), None),   // EV_SYN
            ((0x04, 88, 1), None),   // EV_MSC
        ];
        for ((t, code, value), expected) in cases {
            assert_eq!(key_edge(t, code, value, f12), expected, "{t} {code} {value}");
        }
    }

    fn dev(n: u32, name: &str, vendor: u16, product: u16, has_key: bool) -> DeviceInfo {
        let path = PathBuf::from(format!("/dev/input/event{n}"));
        DeviceInfo {
            real_path: path.clone(),
            path,
            name: Some(name.into()),
            vendor,
            product,
            has_key,
        }
    }

    #[test]
    fn the_button_is_chosen_by_path_name_or_ids() {
        let mut by_path_link = dev(3, "button@11", 0, 0, true);
        by_path_link.real_path = "/dev/input/event3".into();
        let devices = vec![
            dev(0, "vc4-hdmi", 0, 0, false),
            dev(10, "Big Red Button", 0x1d34, 0x000d, true),
            dev(2, "ft5x06 touchscreen", 0, 0, false),
            by_path_link,
            dev(9, "Big Red Button", 0x1d34, 0x000d, true),
            dev(4, "USB Keyboard", 0x046d, 0xc31c, true),
        ];
        let m = |path: Option<&str>, name: Option<&str>, vendor, product| DeviceMatch {
            path: path.map(PathBuf::from),
            name: name.map(str::to_owned),
            vendor,
            product,
        };
        let cases: Vec<(&str, DeviceMatch, Option<u32>)> = vec![
            ("exact path", m(Some("/dev/input/event2"), None, None, None), Some(2)),
            (
                "a path need not have the key",
                m(Some("/dev/input/event0"), None, None, None),
                Some(0),
            ),
            ("path that is not there", m(Some("/dev/input/event7"), None, None, None), None),
            ("gpio-key overlay by name", m(None, Some("button@11"), None, None), Some(3)),
            (
                "two alike: the lowest event number",
                m(None, Some("Big Red Button"), None, None),
                Some(9),
            ),
            ("by vendor and product", m(None, None, Some(0x1d34), Some(0x000d)), Some(9)),
            ("vendor only", m(None, None, Some(0x046d), None), Some(4)),
            ("ids that do not match", m(None, None, Some(0x1d34), Some(0x0001)), None),
            (
                "name and ids must both hold",
                m(None, Some("USB Keyboard"), Some(0x1d34), None),
                None,
            ),
            ("a named device without the key", m(None, Some("vc4-hdmi"), None, None), None),
            (
                "path and name",
                m(Some("/dev/input/event4"), Some("USB Keyboard"), None, None),
                Some(4),
            ),
        ];
        for (what, wanted, expected) in cases {
            let got = select_device(&devices, &wanted).map(|d| event_number(&d.path).0);
            assert_eq!(got, expected, "{what}");
        }
        assert_eq!(select_device(&[], &DeviceMatch::path("/dev/input/event0")), None);
    }

    #[test]
    fn a_symlinked_path_matches_the_device_it_leads_to() {
        let mut d = dev(5, "button@11", 0, 0, true);
        d.real_path = "/dev/input/event5".into();
        d.path = "/dev/input/event5".into();
        let by_path = DeviceMatch::path("/dev/input/event5");
        assert!(select_device(std::slice::from_ref(&d), &by_path).is_some());
        let mut linked = d.clone();
        linked.path = "/dev/input/by-path/platform-button@11-event".into();
        let wanted = DeviceMatch::path("/dev/input/event5");
        assert!(select_device(&[linked], &wanted).is_some());
    }

    #[test]
    fn scanning_a_directory_without_devices_finds_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("event0"), b"not a device").unwrap();
        std::fs::write(dir.path().join("mice"), b"").unwrap();
        assert!(scan_devices(dir.path(), 88, &DeviceMatch::default()).is_empty());
    }

    #[tokio::test]
    async fn forward_passes_events_on_in_order() {
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let task = tokio::spawn(forward(ChannelButton(in_rx), out_tx));
        let a = ButtonEvent::Down { at: "2026-11-17T10:00:00Z".parse().unwrap() };
        let b = ButtonEvent::Up { at: "2026-11-17T10:00:01Z".parse().unwrap() };
        in_tx.send(a).await.unwrap();
        in_tx.send(b).await.unwrap();
        drop(in_tx);
        assert_eq!(out_rx.recv().await, Some(a));
        assert_eq!(out_rx.recv().await, Some(b));
        assert_eq!(out_rx.recv().await, None);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_evdev_device_is_said_once_and_looked_for_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut button =
            EvdevButton::new(DeviceMatch::path(dir.path().join("no-such-event-device")), 88);
        button.dir = dir.path().to_owned();
        assert_eq!(button.next_event().await, Some(ButtonEvent::Present(false)));
        // With time paused, ten minutes of rescans pass at once; nothing more is said.
        let waited = tokio::time::timeout(Duration::from_secs(600), button.next_event()).await;
        assert!(waited.is_err());
        assert!(button.outage_logged);
    }
}
