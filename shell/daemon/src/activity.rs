//! The pupil's input anywhere (Chromium, a native app, the kiosk UI): read from the kernel's
//! input devices so that the idle timeout sees taps inside apps, not only the kiosk UI's
//! `activity` requests. Only "there was input" leaves this module: an event's code and value
//! (which key, where) are never passed on, logged or kept; [`counts_as_input`] sees only its
//! type. Devices are read, never grabbed: every program still gets every event.
//!
//! Which devices ([`ActivityDevices`], `[session] activity_devices`): `auto` watches every
//! touchscreen, keyboard and mouse ([`kind`]) except the report button's device; a list of
//! paths watches exactly those; `none` nothing. Hot-plug without udev, like the button: the
//! input directory is looked at every [`RESCAN`]; a device that fails to read is dropped and
//! found again when it is back.
//!
//! The idle timeout is minutes long, so [`forward`] passes on at most one input every
//! [`EVERY`] ([`RateLimit`]): the core task is not woken for each touch.

use crate::button::{select_device, DeviceInfo, DeviceMatch, RESCAN};
use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// At most one activity input this often.
pub const EVERY: Duration = Duration::from_secs(30);

/// From `linux/input-event-codes.h`.
const EV_KEY: u16 = 0x01;
const EV_REL: u16 = 0x02;
const EV_ABS: u16 = 0x03;
const KEY_Q: u16 = 16;
const KEY_A: u16 = 30;
const KEY_Z: u16 = 44;
const KEY_SPACE: u16 = 57;
const BTN_LEFT: u16 = 0x110;
const BTN_TOUCH: u16 = 0x14a;
const ABS_X: u16 = 0x00;
const ABS_Y: u16 = 0x01;
const ABS_MT_POSITION_X: u16 = 0x35;
const ABS_MT_POSITION_Y: u16 = 0x36;
const REL_X: u16 = 0x00;
const REL_Y: u16 = 0x01;

/// Which input devices show that the pupil is there (`[session] activity_devices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityDevices {
    /// Every touchscreen, keyboard and mouse, except the report button.
    Auto,
    /// Exactly these devices (paths, or by-path/by-id links), whatever they can send.
    Paths(Vec<PathBuf>),
    /// None: only the kiosk UI's `activity` requests reset the idle timer.
    None,
}

/// Whether an input event of this type is the pupil doing something: a key or button, a
/// movement, a touch. Synchronisation, LEDs, switches (a lid) and the like are not. Pure; the
/// event's code and value are deliberately not asked for.
pub fn counts_as_input(event_type: u16) -> bool {
    matches!(event_type, EV_KEY | EV_REL | EV_ABS)
}

/// What an input device can send (the codes that matter to [`kind`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    pub keys: Vec<u16>,
    pub abs: Vec<u16>,
    pub rel: Vec<u16>,
}

/// The kinds of device a pupil uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Touch,
    Keyboard,
    Pointer,
}

/// What kind of device these capabilities make, if one a pupil uses. A keyboard has letter
/// keys (an HDMI remote, a power button or a one-key report button does not); a touchscreen
/// has multi-touch positions, or positions and a touch; a pointer moves relatively, or has a
/// left button and positions (a tablet). Joysticks and accelerometers (positions only) are
/// none of these. Pure.
pub fn kind(caps: &Caps) -> Option<Kind> {
    let key = |k| caps.keys.contains(&k);
    let abs = |a| caps.abs.contains(&a);
    let rel = |r| caps.rel.contains(&r);
    if (abs(ABS_MT_POSITION_X) && abs(ABS_MT_POSITION_Y))
        || (abs(ABS_X) && abs(ABS_Y) && key(BTN_TOUCH))
    {
        Some(Kind::Touch)
    } else if (rel(REL_X) && rel(REL_Y)) || (key(BTN_LEFT) && abs(ABS_X) && abs(ABS_Y)) {
        Some(Kind::Pointer)
    } else if [KEY_Q, KEY_A, KEY_Z, KEY_SPACE].into_iter().all(key) {
        Some(Kind::Keyboard)
    } else {
        None
    }
}

/// One input device found, for choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// As the button adapter sees it (`has_key`: it can send the report button's key).
    pub info: DeviceInfo,
    pub kind: Option<Kind>,
}

/// Whether `device` is watched. The report button's device never is (by the button's own
/// criteria, so a second device just like it is left alone too); a listed path is watched
/// whatever it can send. `listed` paths and `button.path` are compared resolved. Pure.
pub fn watched(device: &Candidate, wanted: &ActivityDevices, button: Option<&DeviceMatch>) -> bool {
    if button.is_some_and(|b| select_device(std::slice::from_ref(&device.info), b).is_some()) {
        return false;
    }
    match wanted {
        ActivityDevices::None => false,
        ActivityDevices::Auto => device.kind.is_some(),
        ActivityDevices::Paths(paths) => {
            paths.iter().any(|p| *p == device.info.path || *p == device.info.real_path)
        }
    }
}

/// Lets one input through every `every` (measured on the monotonic clock). Pure.
#[derive(Debug, Clone)]
pub struct RateLimit {
    every: Duration,
    last: Option<Instant>,
}

impl RateLimit {
    pub fn new(every: Duration) -> Self {
        Self { every, last: None }
    }

    /// Whether input seen at `now` is passed on.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// A source of "there was input".
pub trait ActivitySource: Send + 'static {
    /// Waits for the next input. `None` when the source has ended for good.
    fn next_input(&mut self) -> impl Future<Output = Option<()>> + Send;
}

/// Passes inputs from `source` on to `out`, at most one per `limit`, until either ends.
pub async fn forward<S: ActivitySource>(
    mut source: S,
    mut limit: RateLimit,
    out: mpsc::Sender<()>,
) {
    while source.next_input().await.is_some() {
        if limit.allow(Instant::now()) && out.send(()).await.is_err() {
            return;
        }
    }
}

/// Inputs fed by a channel, for tests.
pub struct ChannelSource(pub mpsc::Receiver<()>);

impl ActivitySource for ChannelSource {
    async fn next_input(&mut self) -> Option<()> {
        self.0.recv().await
    }
}

/// A device node looked at: which file it was (a re-plugged device gets a new node under the
/// same name) and its reader, if it is watched.
struct Known {
    inode: u64,
    reader: Option<JoinHandle<()>>,
}

/// The kernel's input devices, read without a grab.
pub struct EvdevActivity {
    wanted: ActivityDevices,
    /// The report button's criteria and key, to leave its device alone.
    button: Option<(DeviceMatch, u16)>,
    /// Where to look for devices (`/dev/input`).
    dir: PathBuf,
    known: HashMap<PathBuf, Known>,
    seen_tx: mpsc::Sender<()>,
    seen_rx: mpsc::Receiver<()>,
    rescan: Duration,
    next_scan: Instant,
}

impl EvdevActivity {
    pub fn new(wanted: ActivityDevices, button: Option<(DeviceMatch, u16)>) -> Self {
        Self::in_dir(wanted, button, PathBuf::from("/dev/input"))
    }

    fn in_dir(wanted: ActivityDevices, button: Option<(DeviceMatch, u16)>, dir: PathBuf) -> Self {
        // One waiting input is as good as many.
        let (seen_tx, seen_rx) = mpsc::channel(1);
        Self {
            wanted,
            button,
            dir,
            known: HashMap::new(),
            seen_tx,
            seen_rx,
            rescan: RESCAN,
            next_scan: Instant::now(),
        }
    }

    /// The paths watched now (for tests and logs).
    pub fn watching(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self
            .known
            .iter()
            .filter(|(_, k)| k.reader.as_ref().is_some_and(|r| !r.is_finished()))
            .map(|(p, _)| p.clone())
            .collect();
        paths.sort();
        paths
    }

    /// Device nodes to look at: the input directory's `eventN`, or the listed paths.
    fn nodes(&self) -> Vec<PathBuf> {
        match &self.wanted {
            ActivityDevices::None => Vec::new(),
            ActivityDevices::Paths(paths) => paths.clone(),
            ActivityDevices::Auto => std::fs::read_dir(&self.dir)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.file_name()
                                .and_then(|f| f.to_str())
                                .is_some_and(|f| f.starts_with("event"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Forgets devices that went (or were replaced) and starts reading new ones.
    fn scan(&mut self) {
        let present: HashMap<PathBuf, u64> = self
            .nodes()
            .into_iter()
            .filter_map(|p| std::fs::metadata(&p).ok().map(|m| (p, m.ino())))
            .collect();
        self.known.retain(|path, known| {
            let keep = present.get(path) == Some(&known.inode)
                && known.reader.as_ref().is_none_or(|r| !r.is_finished());
            if !keep {
                if let Some(reader) = known.reader.take() {
                    reader.abort();
                    tracing::info!(device = %path.display(), "input device gone from the activity watch");
                }
            }
            keep
        });
        // Compared resolved, as the candidates' real paths are.
        let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
        let button = self.button.as_ref().map(|(m, key)| {
            (DeviceMatch { path: m.path.as_deref().map(resolve), ..m.clone() }, *key)
        });
        let wanted = match &self.wanted {
            ActivityDevices::Paths(paths) => {
                ActivityDevices::Paths(paths.iter().map(|p| resolve(p)).collect())
            }
            other => other.clone(),
        };
        for (path, inode) in present {
            if self.known.contains_key(&path) {
                continue;
            }
            // Not openable (yet, or not by us): looked at again next time.
            let Ok(device) = evdev::Device::open(&path) else { continue };
            let candidate = candidate(&path, &device, button.as_ref().map_or(0, |(_, k)| *k));
            let reader = if watched(&candidate, &wanted, button.as_ref().map(|(m, _)| m)) {
                match device.into_event_stream() {
                    Ok(stream) => {
                        tracing::info!(device = %path.display(), name = ?candidate.info.name,
                            kind = ?candidate.kind, "input device watched for activity");
                        Some(tokio::spawn(read(stream, self.seen_tx.clone())))
                    }
                    Err(e) => {
                        tracing::warn!(device = %path.display(), error = %e, "input device not watched");
                        continue;
                    }
                }
            } else {
                None
            };
            self.known.insert(path, Known { inode, reader });
        }
    }
}

impl Drop for EvdevActivity {
    fn drop(&mut self) {
        for known in self.known.values() {
            if let Some(reader) = &known.reader {
                reader.abort();
            }
        }
    }
}

/// What is known of an open device.
fn candidate(path: &Path, device: &evdev::Device, button_key: u16) -> Candidate {
    let id = device.input_id();
    let keys: Vec<u16> =
        device.supported_keys().map(|k| k.iter().map(|k| k.code()).collect()).unwrap_or_default();
    let abs = device
        .supported_absolute_axes()
        .map(|a| a.iter().map(|a| a.0).collect())
        .unwrap_or_default();
    let rel = device
        .supported_relative_axes()
        .map(|r| r.iter().map(|r| r.0).collect())
        .unwrap_or_default();
    let has_key = keys.contains(&button_key);
    let caps = Caps { keys, abs, rel };
    Candidate {
        info: DeviceInfo {
            path: path.to_owned(),
            real_path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()),
            name: device.name().map(str::to_owned),
            vendor: id.vendor(),
            product: id.product(),
            has_key,
        },
        kind: kind(&caps),
    }
}

/// Reads one device until it fails (unplugged), saying only that there was input.
async fn read(mut stream: evdev::EventStream, seen: mpsc::Sender<()>) {
    while let Ok(event) = stream.next_event().await {
        if counts_as_input(event.event_type().0) {
            // Full: an input is already waiting, which says the same.
            let _ = seen.try_send(());
        }
    }
}

impl ActivitySource for EvdevActivity {
    async fn next_input(&mut self) -> Option<()> {
        if self.wanted == ActivityDevices::None {
            return None;
        }
        loop {
            tokio::select! {
                Some(()) = self.seen_rx.recv() => return Some(()),
                _ = tokio::time::sleep_until(self.next_scan) => {
                    self.scan();
                    self.next_scan = Instant::now() + self.rescan;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_movements_and_touches_count() {
        let cases = [
            (0x00, false, "EV_SYN"),
            (EV_KEY, true, "EV_KEY"),
            (EV_REL, true, "EV_REL"),
            (EV_ABS, true, "EV_ABS"),
            (0x04, false, "EV_MSC"),
            (0x05, false, "EV_SW (a lid)"),
            (0x11, false, "EV_LED"),
            (0x12, false, "EV_SND"),
            (0x14, false, "EV_REP"),
            (0x15, false, "EV_FF"),
        ];
        for (t, want, what) in cases {
            assert_eq!(counts_as_input(t), want, "{what}");
        }
    }

    fn caps(keys: &[u16], abs: &[u16], rel: &[u16]) -> Caps {
        Caps { keys: keys.to_vec(), abs: abs.to_vec(), rel: rel.to_vec() }
    }

    #[test]
    fn touchscreens_keyboards_and_mice_are_told_from_other_devices() {
        let letters = [KEY_Q, KEY_A, KEY_Z, KEY_SPACE, 28];
        let cases = [
            (
                "ft5x06 multi-touch",
                caps(&[BTN_TOUCH], &[0, 1, 0x35, 0x36, 0x39], &[]),
                Some(Kind::Touch),
            ),
            ("single-touch panel", caps(&[BTN_TOUCH], &[ABS_X, ABS_Y], &[]), Some(Kind::Touch)),
            ("USB mouse", caps(&[BTN_LEFT, 0x111], &[], &[REL_X, REL_Y, 8]), Some(Kind::Pointer)),
            ("VM tablet", caps(&[BTN_LEFT], &[ABS_X, ABS_Y], &[]), Some(Kind::Pointer)),
            ("USB keyboard", caps(&letters, &[], &[]), Some(Kind::Keyboard)),
            ("power button", caps(&[116], &[], &[]), None),
            ("report button (F12)", caps(&[88], &[], &[]), None),
            ("HDMI CEC remote", caps(&[103, 108, 352, 2, 3], &[], &[]), None),
            ("accelerometer", caps(&[], &[ABS_X, ABS_Y, 2], &[]), None),
            ("scroll wheel only", caps(&[], &[], &[8]), None),
            ("nothing", caps(&[], &[], &[]), None),
        ];
        for (what, c, want) in cases {
            assert_eq!(kind(&c), want, "{what}");
        }
    }

    fn dev(n: u32, name: &str, kind: Option<Kind>, has_key: bool) -> Candidate {
        let path = PathBuf::from(format!("/dev/input/event{n}"));
        Candidate {
            info: DeviceInfo {
                real_path: path.clone(),
                path,
                name: Some(name.into()),
                vendor: 0x1d34,
                product: n as u16,
                has_key,
            },
            kind,
        }
    }

    #[test]
    fn every_pupil_device_but_the_report_button_is_watched() {
        let touch = dev(1, "ft5x06", Some(Kind::Touch), false);
        let keyboard = dev(2, "USB Keyboard", Some(Kind::Keyboard), true);
        let button = dev(3, "button@11", None, true);
        let cec = dev(4, "vc4-hdmi", None, false);
        let by_name = DeviceMatch { name: Some("button@11".into()), ..DeviceMatch::default() };
        let by_path = DeviceMatch::path("/dev/input/event2");
        let listed = ActivityDevices::Paths(vec!["/dev/input/event4".into()]);
        let auto = ActivityDevices::Auto;
        let cases: Vec<(&str, &Candidate, &ActivityDevices, Option<&DeviceMatch>, bool)> = vec![
            ("auto: a touchscreen", &touch, &auto, Some(&by_name), true),
            ("auto: a keyboard", &keyboard, &auto, Some(&by_name), true),
            ("auto: the gpio-key button", &button, &auto, Some(&by_name), false),
            ("auto: not a pupil's device", &cec, &auto, Some(&by_name), false),
            ("auto: a keyboard that is the button", &keyboard, &auto, Some(&by_path), false),
            ("auto: no evdev button", &keyboard, &auto, None, true),
            ("listed, whatever it sends", &cec, &listed, Some(&by_name), true),
            ("not listed", &touch, &listed, Some(&by_name), false),
            ("none", &touch, &ActivityDevices::None, None, false),
        ];
        for (what, device, wanted, b, want) in cases {
            assert_eq!(watched(device, wanted, b), want, "{what}");
        }
        // A listed by-path link matches the node it leads to.
        let mut linked = cec.clone();
        linked.info.path = "/dev/input/by-path/platform-hdmi-event".into();
        assert!(watched(&linked, &listed, None));
    }

    #[test]
    fn one_input_is_let_through_every_thirty_seconds() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut limit = RateLimit::new(EVERY);
        let cases = [
            (0, true, "the first"),
            (0, false, "the same moment"),
            (1, false, "a second later"),
            (29, false, "just inside"),
            (30, true, "thirty seconds on"),
            (45, false, "counted from the last let through"),
            (59, false, "still inside"),
            (61, true, "after a pause"),
            (500, true, "long after"),
        ];
        for (s, want, what) in cases {
            assert_eq!(limit.allow(at(s)), want, "{what} ({s} s)");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn forward_passes_on_at_most_one_input_per_period() {
        let (in_tx, in_rx) = mpsc::channel(64);
        let (out_tx, mut out_rx) = mpsc::channel(64);
        let task = tokio::spawn(forward(ChannelSource(in_rx), RateLimit::new(EVERY), out_tx));
        // A burst of touches: one input.
        for _ in 0..20 {
            in_tx.send(()).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        in_tx.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(21)).await;
        // 31 s after the first: through again.
        in_tx.send(()).await.unwrap();
        drop(in_tx);
        task.await.unwrap();
        let mut got = 0;
        while out_rx.recv().await.is_some() {
            got += 1;
        }
        assert_eq!(got, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn forward_stops_when_the_core_is_gone() {
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, out_rx) = mpsc::channel(4);
        drop(out_rx);
        let task = tokio::spawn(forward(ChannelSource(in_rx), RateLimit::new(EVERY), out_tx));
        in_tx.send(()).await.unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn none_watches_nothing_and_a_directory_without_devices_waits() {
        let mut off = EvdevActivity::new(ActivityDevices::None, None);
        assert_eq!(off.next_input().await, None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("event0"), b"not a device").unwrap();
        let mut auto = EvdevActivity::in_dir(ActivityDevices::Auto, None, dir.path().to_owned());
        // Ten minutes of rescans pass at once with time paused; no input, nothing watched.
        let waited = tokio::time::timeout(Duration::from_secs(600), auto.next_input()).await;
        assert!(waited.is_err());
        assert!(auto.watching().is_empty());
    }

    /// A virtual keyboard through /dev/uinput, where the kernel has it (not on every test
    /// machine: then there is nothing to read and the test says so).
    #[tokio::test]
    async fn a_virtual_keyboard_is_found_and_its_keys_are_input() {
        use evdev::{uinput::VirtualDevice, AttributeSet, EventType, InputEvent, KeyCode};
        let Ok(builder) = VirtualDevice::builder() else {
            eprintln!("no /dev/uinput here: the evdev reader is covered by the fake source only");
            return;
        };
        let mut keys = AttributeSet::<KeyCode>::new();
        for k in [KEY_Q, KEY_A, KEY_Z, KEY_SPACE] {
            keys.insert(KeyCode::new(k));
        }
        let mut keyboard =
            builder.name("slate activity test").with_keys(&keys).unwrap().build().unwrap();
        let node = keyboard.enumerate_dev_nodes_blocking().unwrap().next().unwrap().unwrap();
        let mut watch = EvdevActivity::new(ActivityDevices::Paths(vec![node.clone()]), None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !watch.watching().contains(&node) {
            watch.scan();
            assert!(Instant::now() < deadline, "the virtual keyboard was not watched");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let press = [
            InputEvent::new(EventType::KEY.0, KEY_A, 1),
            InputEvent::new(EventType::KEY.0, KEY_A, 0),
        ];
        keyboard.emit(&press).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), watch.next_input()).await;
        assert_eq!(got, Ok(Some(())));
    }
}
