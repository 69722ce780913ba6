//! Report-button adapters: turn a key-down on some input into a [`Press`] with the time it
//! happened. Owns the input device; must not decide what a press means (that is the core's).
//!
//! Sources: [`EvdevButton`] (the GPIO or USB button, a kernel input device), [`StdinButton`]
//! (each line on standard input: the demo), [`ChannelButton`] (tests). Presses also arrive from
//! the control socket (`slatectl press`); those do not pass through here.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// One press of the report button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Press {
    /// When the key went down: the kernel's timestamp for evdev, else when it was read.
    pub pressed_at: DateTime<Utc>,
}

/// A source of presses.
pub trait Button: Send + 'static {
    /// Waits for the next press. `None` when the source has ended for good.
    fn next_press(&mut self) -> impl Future<Output = Option<Press>> + Send;
}

/// Forwards presses from `button` until it ends or the receiver is gone.
pub async fn forward<B: Button>(mut button: B, presses: mpsc::Sender<Press>) {
    while let Some(press) = button.next_press().await {
        if presses.send(press).await.is_err() {
            return;
        }
    }
}

/// `EV_KEY`, from `linux/input-event-codes.h`.
const EV_KEY: u16 = 0x01;

/// Whether an input event is the report key going down. Key-up (0) and auto-repeat (2) are not
/// presses. Pure; the place where debouncing will go.
pub fn is_report_key(event_type: u16, code: u16, value: i32, key: u16) -> bool {
    event_type == EV_KEY && code == key && value == 1
}

/// The report button as a kernel input device, grabbed exclusively so that no other program sees
/// its key. Reopens the device if it vanishes (a USB button pulled out, a driver reload).
pub struct EvdevButton {
    path: PathBuf,
    key: u16,
    stream: Option<evdev::EventStream>,
    /// How long to wait before trying to open the device again.
    retry: Duration,
    /// Whether the current outage has been logged (log once, not every retry).
    outage_logged: bool,
}

impl EvdevButton {
    pub fn new(path: impl Into<PathBuf>, key: u16) -> Self {
        Self {
            path: path.into(),
            key,
            stream: None,
            retry: Duration::from_secs(2),
            outage_logged: false,
        }
    }

    fn open(path: &Path, key: u16) -> std::io::Result<evdev::EventStream> {
        let mut device = evdev::Device::open(path)?;
        let has_key =
            device.supported_keys().is_some_and(|keys| keys.contains(evdev::KeyCode::new(key)));
        if !has_key {
            tracing::warn!(device = %path.display(), key, "the button device does not report the configured key");
        }
        device.grab()?;
        device.into_event_stream()
    }
}

impl Button for EvdevButton {
    async fn next_press(&mut self) -> Option<Press> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                match Self::open(&self.path, self.key) {
                    Ok(stream) => {
                        tracing::info!(device = %self.path.display(), key = self.key, "report button ready");
                        self.outage_logged = false;
                        self.stream = Some(stream);
                    }
                    Err(e) => {
                        if !self.outage_logged {
                            tracing::warn!(device = %self.path.display(), error = %e,
                                "report button unavailable; retrying until it appears");
                            self.outage_logged = true;
                        }
                        tokio::time::sleep(self.retry).await;
                    }
                }
                continue;
            };
            match stream.next_event().await {
                Ok(event) => {
                    if is_report_key(event.event_type().0, event.code(), event.value(), self.key) {
                        return Some(Press { pressed_at: event.timestamp().into() });
                    }
                }
                Err(e) => {
                    tracing::warn!(device = %self.path.display(), error = %e,
                        "report button device vanished; reopening");
                    self.stream = None;
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
    async fn next_press(&mut self) -> Option<Press> {
        match self.lines.next_line().await {
            Ok(Some(_)) => Some(Press { pressed_at: Utc::now() }),
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
pub struct ChannelButton(pub mpsc::Receiver<Press>);

impl Button for ChannelButton {
    async fn next_press(&mut self) -> Option<Press> {
        self.0.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_key_going_down_is_a_press() {
        let f12 = 88;
        let cases = [
            ((EV_KEY, 88, 1), true),
            ((EV_KEY, 88, 0), false), // key up
            ((EV_KEY, 88, 2), false), // auto-repeat
            ((EV_KEY, 87, 1), false), // another key
            ((0x00, 88, 1), false),   // EV_SYN
            ((0x04, 88, 1), false),   // EV_MSC
        ];
        for ((t, code, value), expected) in cases {
            assert_eq!(is_report_key(t, code, value, f12), expected, "{t} {code} {value}");
        }
    }

    #[tokio::test]
    async fn forward_passes_presses_on_in_order() {
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let task = tokio::spawn(forward(ChannelButton(in_rx), out_tx));
        let a = Press { pressed_at: "2026-11-17T10:00:00Z".parse().unwrap() };
        let b = Press { pressed_at: "2026-11-17T10:00:01Z".parse().unwrap() };
        in_tx.send(a).await.unwrap();
        in_tx.send(b).await.unwrap();
        drop(in_tx);
        assert_eq!(out_rx.recv().await, Some(a));
        assert_eq!(out_rx.recv().await, Some(b));
        assert_eq!(out_rx.recv().await, None);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_evdev_device_is_retried_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut button = EvdevButton::new(dir.path().join("no-such-event-device"), 88);
        // With time paused, ten minutes of retries pass at once; no press, no panic.
        let waited = tokio::time::timeout(Duration::from_secs(600), button.next_press()).await;
        assert!(waited.is_err());
        assert!(button.outage_logged);
    }
}
