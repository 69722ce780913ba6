//! The on-screen keyboard of touch devices: Debian's `wvkbd` (`wvkbd-mobintl`), which the kiosk
//! session starts and which draws over every app through the layer-shell protocol. slate-ui only
//! shows and hides it, by signal as its manual says: SIGUSR2 shows it, SIGUSR1 hides it. Owns
//! finding it and signalling it; when it is wanted is [`crate::screen::keyboard_wanted`] (a text
//! field has the focus, see [`crate::text_focus`] and [`crate::native_focus`]).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;

/// The keyboard's height in pixels on the device's landscape screen (wvkbd's `-L`, given in
/// the kiosk's labwc autostart): at most about 40% of an 800x480 screen, so the page above it
/// keeps room for the field being typed in.
pub const LANDSCAPE_HEIGHT: u32 = 190;
// At most about 40% of an 800x480 screen, checked when it compiles.
const _: () = assert!(LANDSCAPE_HEIGHT * 100 <= 480 * 41);

/// wvkbd's arguments in the kiosk's labwc autostart: started hidden, [`LANDSCAPE_HEIGHT`] high
/// both as `-L` and as `-H`. wvkbd takes a screen for landscape only when the output reports a
/// physical size wider than high; one that reports none (some HDMI screens, the tests' headless
/// output) counts as portrait and would get `-H`'s height, 250 px by default.
pub fn wvkbd_args() -> Vec<String> {
    let height = LANDSCAPE_HEIGHT.to_string();
    ["--hidden", "-H", &height, "-L", &height].map(String::from).into()
}

/// Shows or hides an on-screen keyboard.
pub trait Keyboard {
    fn set_visible(&mut self, visible: bool);
}

/// The signal that asks wvkbd for `visible`.
pub fn signal_for(visible: bool) -> Signal {
    if visible {
        Signal::SIGUSR2
    } else {
        Signal::SIGUSR1
    }
}

/// Whether to signal: when the wish changed, or when the keyboard's processes changed (a
/// restarted wvkbd comes up in its own state and must be told again). Pure.
pub fn needs_signal(last: Option<&(Vec<i32>, bool)>, pids: &[i32], visible: bool) -> bool {
    !pids.is_empty() && last.is_none_or(|(was_pids, was)| *was != visible || was_pids != pids)
}

/// Whether a process whose `/proc/<pid>/status` is `status` handles SIGUSR1 and SIGUSR2: caught
/// (`SigCgt`, wvkbd 0.12) or blocked for a signalfd (`SigBlk`, wvkbd 0.15). Pure.
pub fn takes_show_and_hide(status: &str) -> bool {
    let mask = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let both = (1u64 << (Signal::SIGUSR1 as u32 - 1)) | (1u64 << (Signal::SIGUSR2 as u32 - 1));
    (mask("SigCgt:") | mask("SigBlk:")) & both == both
}

/// wvkbd found through `/proc` by its program name.
#[derive(Debug)]
pub struct Wvkbd {
    /// `/proc` (a temporary tree in tests).
    pub proc_root: PathBuf,
    /// The program name as in `/proc/<pid>/comm`.
    pub name: String,
    last: Option<(Vec<i32>, bool)>,
}

impl Default for Wvkbd {
    fn default() -> Self {
        Self { proc_root: "/proc".into(), name: "wvkbd-mobintl".into(), last: None }
    }
}

impl Wvkbd {
    pub fn new(proc_root: PathBuf, name: &str) -> Self {
        Self { proc_root, name: name.into(), last: None }
    }

    /// The processes whose program name is the keyboard's and that take its two signals, in
    /// pid order. One still starting is left out: until it handles them, SIGUSR1 and SIGUSR2
    /// would end it; once it does, the list changes and it is told (see [`needs_signal`]).
    pub fn pids(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir(&self.proc_root) else { return Vec::new() };
        let mut pids: Vec<i32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok().map(|pid| (pid, e.path())))
            .filter(|(_, dir)| {
                std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim_end() == self.name)
                    && std::fs::read_to_string(dir.join("status"))
                        .is_ok_and(|s| takes_show_and_hide(&s))
            })
            .map(|(pid, _)| pid)
            .collect();
        pids.sort_unstable();
        pids
    }
}

impl Keyboard for Wvkbd {
    fn set_visible(&mut self, visible: bool) {
        let pids = self.pids();
        if !needs_signal(self.last.as_ref(), &pids, visible) {
            return;
        }
        for &pid in &pids {
            // Not running as us, or gone since: nothing to do but say so.
            if let Err(e) = kill(Pid::from_raw(pid), signal_for(visible)) {
                tracing::warn!(pid, error = %e, "cannot signal the on-screen keyboard");
            }
        }
        self.last = Some((pids, visible));
    }
}

/// Records the wishes (tests, and devices without a touchscreen).
#[derive(Debug, Default)]
pub struct RecordingKeyboard {
    pub shown: Vec<bool>,
}

impl Keyboard for RecordingKeyboard {
    fn set_visible(&mut self, visible: bool) {
        if self.shown.last() != Some(&visible) {
            self.shown.push(visible);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn when_to_signal() {
        type Told = (Vec<i32>, bool);
        let shown: Told = (vec![40], true);
        #[rustfmt::skip]
        let table: Vec<(Option<&Told>, Vec<i32>, bool, bool)> = vec![
            (None, vec![40], true, true),
            (None, vec![40], false, true),
            (None, vec![], true, false),            // no keyboard running: nothing to tell
            (Some(&shown), vec![40], true, false),  // already told
            (Some(&shown), vec![40], false, true),
            (Some(&shown), vec![41], true, true),   // restarted: tell it again
            (Some(&shown), vec![], false, false),
        ];
        for (last, pids, visible, expected) in table {
            assert_eq!(needs_signal(last, &pids, visible), expected, "{last:?} {pids:?} {visible}");
        }
        assert_eq!(signal_for(true), Signal::SIGUSR2);
        assert_eq!(signal_for(false), Signal::SIGUSR1);
    }

    #[test]
    fn which_processes_take_the_signals() {
        let table = [
            ("SigBlk:\t0000000000000000\nSigCgt:\t0000000000000a00\n", true), // handlers
            ("SigBlk:\t0000000200001a00\nSigCgt:\t0000000000014002\n", true), // signalfd
            ("SigBlk:\t0000000000000200\nSigCgt:\t0000000000000000\n", false), // USR1 only
            ("SigBlk:\t0000000000000000\nSigCgt:\t0000000000014002\n", false), // starting
            ("SigCgt:\tnot hex\n", false),
            ("", false),
        ];
        for (status, expected) in table {
            assert_eq!(takes_show_and_hide(status), expected, "{status:?}");
        }
    }

    /// The kiosk's autostart starts wvkbd at the height slate-ui fits pages above.
    #[test]
    fn the_autostart_gives_wvkbd_the_height_pages_are_fitted_to() {
        let autostart = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../images/rootfs/usr/share/slate/labwc/autostart"
        ))
        .unwrap();
        let line = autostart.lines().find(|l| l.contains("wvkbd-mobintl")).unwrap();
        assert!(line.contains(&format!("wvkbd-mobintl {};", wvkbd_args().join(" "))), "{line}");
    }

    fn wait_for(path: &std::path::Path, want: &str) -> String {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text == want || start.elapsed() > Duration::from_secs(20) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A stand-in keyboard process (a shell trapping the two signals) found through a fake
    /// `/proc` entry with wvkbd's name, signalled for real.
    #[test]
    fn the_keyboard_process_is_signalled_on_changes_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let ready = dir.path().join("ready");
        let script = format!(
            "trap 'echo show >> {log}' USR2; trap 'echo hide >> {log}' USR1; : > {ready}; \
             while :; do sleep 0.05; done",
            log = log.display(),
            ready = ready.display()
        );
        let mut child = std::process::Command::new("sh").arg("-c").arg(script).spawn().unwrap();
        let start = Instant::now();
        while !ready.exists() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let proc_root = dir.path().join("proc");
        let entry = proc_root.join(child.id().to_string());
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(entry.join("comm"), "wvkbd-mobintl\n").unwrap();
        std::fs::create_dir_all(proc_root.join("1")).unwrap();
        std::fs::write(proc_root.join("1/comm"), "systemd\n").unwrap();
        // Not yet taking the signals (still starting): left alone.
        std::fs::write(entry.join("status"), "SigBlk:\t0000000000000000\n").unwrap();
        assert_eq!(Wvkbd::new(proc_root.clone(), "wvkbd-mobintl").pids(), Vec::<i32>::new());
        // The real one's, which traps both.
        let status = format!("/proc/{}/status", child.id());
        std::fs::write(entry.join("status"), std::fs::read_to_string(status).unwrap()).unwrap();

        let mut keyboard = Wvkbd::new(proc_root, "wvkbd-mobintl");
        assert_eq!(keyboard.pids(), vec![child.id() as i32]);
        keyboard.set_visible(true);
        assert_eq!(wait_for(&log, "show\n"), "show\n");
        keyboard.set_visible(true); // no change: no signal
        keyboard.set_visible(false);
        assert_eq!(wait_for(&log, "show\nhide\n"), "show\nhide\n");

        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
        child.wait().unwrap();
    }
}
