//! The imperative shell of [`crate::setup`]: the device number kept in `state_dir`, the serial
//! read from the board, the server asked, and the setup screen served on the control socket
//! until IT has given the device its number. Holds no rule of its own.

use super::{
    classify_number, classify_setup_enroll, list_retry_after, Effect, Input, NumberAnswer, Setup,
    Step,
};
use crate::config::Config;
use crate::control::{self, ControlMsg, PeerUsers};
use crate::credential;
use crate::upload::{classify_enroll, EnrollOutcome, HttpTransport, Transport};
use slate_ipc::atomic;
use slate_ipc::control::{Reply, Request};
use slate_protocol::class_set::{normalise_serial, setup_code, NumberRequest};
use slate_protocol::{routes, DeviceNumber, EnrollRequest, PROTOCOL_VERSION};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The device number IT gave this device, on the data partition.
pub const NUMBER_FILE: &str = "device-number";
/// Wrong setup codes in a row, so a restart does not reset the throttle.
pub const WRONG_CODES_FILE: &str = "setup-wrong-codes";
/// A file holding the board's serial instead of the board's own (tests on a PC, which has none).
pub const SERIAL_FILE_ENV: &str = "SLATE_SERIAL_FILE";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{}: {reason}", path.display())]
    NumberFile { path: PathBuf, reason: String },
    #[error("no `device_number` in the configuration, none chosen on this device yet, and no `server.enrollment_token` to enroll with: add one of them")]
    NoToken,
    #[error("cannot reach the server: {0}")]
    Client(String),
    #[error(transparent)]
    Control(#[from] slate_ipc::listen::BindError),
}

/// The number kept in `state_dir`, if any. A file that is there but not a number is an error
/// (the card's data partition is damaged): slated does not guess.
pub fn stored_number(state_dir: &Path) -> Result<Option<DeviceNumber>, SetupError> {
    let path = state_dir.join(NUMBER_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SetupError::NumberFile { path, reason: e.to_string() }),
    };
    text.trim().parse::<u32>().ok().and_then(|n| DeviceNumber::new(n).ok()).map(Some).ok_or(
        SetupError::NumberFile { path, reason: "is not a device number from 1 to 9999".into() },
    )
}

/// Keeps the number (temporary file, fsync, rename, fsync of the directory).
pub fn store_number(state_dir: &Path, device: DeviceNumber) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let path = state_dir.join(NUMBER_FILE);
    let tmp = state_dir.join(format!("{NUMBER_FILE}.tmp"));
    atomic::replace_with(&path, &tmp, Some(0o644), |f| writeln!(f, "{device}"))
        .map_err(|e| std::io::Error::other(format!("{}: {}", e.path.display(), e.source)))
}

fn load_wrong_codes(state_dir: &Path) -> u32 {
    std::fs::read_to_string(state_dir.join(WRONG_CODES_FILE))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn save_wrong_codes(state_dir: &Path, wrong: u32) {
    let path = state_dir.join(WRONG_CODES_FILE);
    let tmp = state_dir.join(format!("{WRONG_CODES_FILE}.tmp"));
    if let Err(e) = atomic::replace_with(&path, &tmp, Some(0o600), |f| writeln!(f, "{wrong}")) {
        tracing::error!(error = %e.source, "cannot keep the count of wrong setup codes");
    }
}

/// The serial in `/proc/cpuinfo`'s `Serial` line, if any. Pure.
pub fn serial_from_cpuinfo(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "Serial").then(|| value.trim())
    })
}

/// The board's serial as IT's list writes it: `SLATE_SERIAL_FILE`'s, else the device tree's
/// `serial-number`, else `/proc/cpuinfo`'s; `None` on a board without one.
pub fn board_serial() -> Option<String> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let text = match std::env::var_os(SERIAL_FILE_ENV) {
        Some(path) => std::fs::read_to_string(path).ok(),
        None => read("/sys/firmware/devicetree/base/serial-number").or_else(|| {
            read("/proc/cpuinfo").and_then(|t| serial_from_cpuinfo(&t).map(str::to_owned))
        }),
    }?;
    normalise_serial(&text).ok().filter(|s| s != "0")
}

/// The boot-relative clock for the throttle (`CLOCK_BOOTTIME`: a wall clock set back does not
/// shorten a pause).
fn since_boot() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(Duration::from)
        .unwrap_or_default()
}

/// This device's number: the configuration's, the one kept from before, IT's list's, or, after
/// `on_setup_screen` (the control socket is serving the setup screen), what IT typed there.
/// Returns once the device is enrolled as it (its credential stored).
pub async fn device_number(
    config: &Config,
    on_setup_screen: impl FnOnce(),
) -> Result<DeviceNumber, SetupError> {
    if let Some(device) = config.device_number {
        return Ok(device);
    }
    if let Some(device) = stored_number(&config.state_dir)? {
        return Ok(device);
    }
    let token = config.server.enrollment_token.clone().ok_or(SetupError::NoToken)?;
    let token = token.expose().to_owned();
    let transport =
        HttpTransport::new(&config.server, None).map_err(|e| SetupError::Client(e.to_string()))?;
    let enroller = Enroller { transport: &transport, token: &token, config };

    let mut notice = None;
    let serial = board_serial();
    let mut list = None;
    match &serial {
        None => tracing::info!("no board serial number: asking IT on the setup screen"),
        Some(serial) => {
            let answer = enroller.number_for(serial.clone()).await;
            match &answer {
                NumberAnswer::Listed(device) => match enroller.enroll(*device).await {
                    None => return Ok(*device),
                    Some(Input::Taken) => {
                        tracing::warn!(%device, "IT's list gives a number already enrolled");
                        notice = Some(format!("IT's list says device {device}, which is already enrolled: choose a number"));
                    }
                    Some(other) => {
                        tracing::warn!(?other, "enrolling with the number from IT's list failed")
                    }
                },
                NumberAnswer::Unlisted(why) => {
                    tracing::info!(%why, "this serial is not on IT's list (or the server has none): asking IT on the setup screen, and the list again later")
                }
                NumberAnswer::Refused(why) | NumberAnswer::Unknown(why) => {
                    tracing::warn!(%why, "could not ask the server for this device's number: asking IT on the setup screen")
                }
            }
            list = Some(ListAsk { serial: serial.clone(), answer, asked: 1 });
        }
    }
    setup_screen(config, &enroller, &setup_code(&token), notice, list, on_setup_screen).await
}

/// The board's serial and what IT's list last said of it, for asking again from the setup
/// screen.
struct ListAsk {
    serial: String,
    answer: NumberAnswer,
    asked: u32,
}

/// The first wait before IT's list is asked again: [`super::LIST_RETRY_FIRST`], or, for tests
/// only, `SLATE_LIST_RETRY_MS` (a test cannot wait half a minute for each ask).
fn list_retry_first() -> Duration {
    std::env::var("SLATE_LIST_RETRY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(super::LIST_RETRY_FIRST)
}

struct Enroller<'a> {
    transport: &'a HttpTransport,
    token: &'a str,
    config: &'a Config,
}

impl Enroller<'_> {
    async fn number_for(&self, serial: String) -> NumberAnswer {
        let request = NumberRequest { v: PROTOCOL_VERSION, token: self.token.to_owned(), serial };
        let body = serde_json::to_vec(&request).expect("a number request serialises");
        let url = self.transport.endpoint(routes::ENROLL_NUMBER);
        match self.transport.send(self.transport.client().post(url), body).await {
            Ok(answer) => classify_number(answer.status, &answer.body),
            Err(e) => NumberAnswer::Unknown(e.to_string()),
        }
    }

    /// Enrolls as `device`: `None` when enrolled and kept (the number, then the credential, then
    /// the used token taken out of `slate.toml`), else what the screen is told.
    async fn enroll(&self, device: DeviceNumber) -> Option<Input> {
        let request = EnrollRequest {
            v: PROTOCOL_VERSION,
            device,
            token: self.token.to_owned(),
            software_version: crate::SOFTWARE_VERSION.to_owned(),
        };
        let answer = match self.transport.enroll(&request).await {
            Ok(answer) => answer,
            Err(e) => return Some(Input::Failed(format!("the server cannot be reached ({e})"))),
        };
        if let Some(input) = classify_setup_enroll(answer.status) {
            return Some(input);
        }
        let secret = match classify_enroll(answer.status, &answer.body, device) {
            EnrollOutcome::Enrolled(secret) => secret,
            EnrollOutcome::Refused(why) | EnrollOutcome::Retry(why) => {
                return Some(Input::Failed(why))
            }
        };
        let dir = self.config.state_dir.clone();
        let source = self.config.source.clone();
        let kept = tokio::task::spawn_blocking(move || {
            // The number first: with it kept and the credential lost, slated enrolls again as
            // that number with the token (a class-set token allows that while unheard).
            store_number(&dir, device).map_err(|e| e.to_string())?;
            credential::store(&dir, &secret).map_err(|e| e.to_string())?;
            if let Err(e) = crate::config::remove_enrollment_token(&source) {
                tracing::warn!(error = %e, "the used enrollment token could not be removed from the configuration");
            }
            Ok::<_, String>(())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match kept {
            Ok(()) => {
                tracing::info!(%device, "enrolled with the server; the number is kept on this device");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "enrolled, but the number or credential could not be kept");
                Some(Input::Failed(format!("this device's storage failed: {e}")))
            }
        }
    }
}

/// Serves the setup screen's requests on the control socket until IT has enrolled the device.
/// Enrolling runs beside the socket, so the screen is answered at once ("Enrolling as device
/// N…") and keeps being answered while the server is slow; IT's list is asked again meanwhile
/// while nobody has begun on the screen ([`list_retry_after`]).
async fn setup_screen(
    config: &Config,
    enroller: &Enroller<'_>,
    code: &str,
    notice: Option<String>,
    mut list: Option<ListAsk>,
    on_setup_screen: impl FnOnce(),
) -> Result<DeviceNumber, SetupError> {
    let group = config.control_group.as_deref().and_then(|name| {
        nix::unistd::Group::from_name(name).ok().flatten().map(|g| g.gid.as_raw())
    });
    let listener = slate_ipc::listen::bind(&config.control_socket, group, "slated")?;
    let (tx, mut rx) = mpsc::channel::<ControlMsg>(16);
    let users = PeerUsers::lookup(
        control::DEFAULT_KIOSK_USER,
        control::DEFAULT_DNS_USER,
        control::DEFAULT_REFUSED_USER,
    );
    let server = tokio::spawn(control::serve(listener, tx, users));
    let dir = config.state_dir.clone();
    let mut setup = Setup::new(load_wrong_codes(&dir), since_boot());
    setup.notice = notice;
    tracing::info!("no device number: showing IT's setup screen");
    on_setup_screen();
    let first_retry = list_retry_first();
    // The enrollment and the ask of IT's list in flight, and when the list is asked next.
    let mut enrolling: Option<Pin<Box<dyn Future<Output = Input> + '_>>> = None;
    let mut asking: Option<Pin<Box<dyn Future<Output = NumberAnswer> + '_>>> = None;
    let mut next_ask = list.as_ref().and_then(|l| {
        list_retry_after(&l.answer, l.asked, setup.step, first_retry).map(|d| Instant::now() + d)
    });
    let device = loop {
        let input = tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else {
                    return Err(SetupError::Client("the control socket stopped".into()));
                };
                let input = match msg.request {
                    Request::Status {} => None,
                    Request::SetupCode { code } => Some(Input::Code(code.0)),
                    Request::SetupNumber { number } => Some(Input::Number(number)),
                    Request::SetupConfirm { yes } => Some(Input::Confirm(yes)),
                    other => {
                        let _ = msg.reply.send(Reply {
                            state: Some("setup".into()),
                            setup: Some(setup.view(since_boot())),
                            ..Reply::error(format!(
                                "{}: this device has no number yet; IT is setting it up",
                                other.kind()
                            ))
                        });
                        continue;
                    }
                };
                let mut refused = None;
                if let Some(input) = input {
                    let was = setup.step;
                    let effects = setup.step(input, since_boot(), code);
                    apply(effects, &dir, enroller, &mut enrolling).await;
                    if setup.step == was && setup.notice.is_some() {
                        refused = setup.notice.clone();
                    }
                }
                let mut reply = match refused {
                    Some(why) => Reply::error(why),
                    None => Reply::ok(),
                };
                reply.state = Some("setup".into());
                reply.setup = Some(setup.view(since_boot()));
                let _ = msg.reply.send(reply);
                continue;
            }
            answer = async { enrolling.as_mut().expect("guarded").await }, if enrolling.is_some() => {
                enrolling = None;
                answer
            }
            () = sleep_until_ask(next_ask), if next_ask.is_some() && asking.is_none() => {
                next_ask = None;
                let serial = list.as_ref().expect("an ask is planned only with a serial").serial.clone();
                asking = Some(Box::pin(enroller.number_for(serial)));
                continue;
            }
            answer = async { asking.as_mut().expect("guarded").await }, if asking.is_some() => {
                asking = None;
                let ask = list.as_mut().expect("an ask is made only with a serial");
                ask.asked = ask.asked.saturating_add(1);
                tracing::info!(answer = ?answer, "asked IT's list again for this device's number");
                ask.answer = answer;
                match ask.answer {
                    // Only while nobody has begun on the screen: taken by the pure step.
                    NumberAnswer::Listed(device) => Input::Listed(device),
                    _ => {
                        next_ask = list_retry_after(&ask.answer, ask.asked, setup.step, first_retry)
                            .map(|d| Instant::now() + d);
                        continue;
                    }
                }
            }
        };
        let effects = setup.step(input, since_boot(), code);
        apply(effects, &dir, enroller, &mut enrolling).await;
        if let Step::Done(device) = setup.step {
            break device;
        }
        // Back at a step IT answers: the list is asked again only while nobody has begun.
        next_ask = list.as_ref().and_then(|l| {
            list_retry_after(&l.answer, l.asked, setup.step, first_retry)
                .map(|d| Instant::now() + d)
        });
    };
    server.abort();
    let _ = server.await;
    Ok(device)
}

/// Carries out a step's effects: the count of wrong codes kept, an enrollment started (it runs
/// beside the control socket, polled by [`setup_screen`]).
async fn apply<'a>(
    effects: Vec<Effect>,
    dir: &Path,
    enroller: &'a Enroller<'a>,
    enrolling: &mut Option<Pin<Box<dyn Future<Output = Input> + 'a>>>,
) {
    for effect in effects {
        match effect {
            Effect::SaveWrongCodes(n) => {
                let dir = dir.to_owned();
                let _ = tokio::task::spawn_blocking(move || save_wrong_codes(&dir, n)).await;
            }
            Effect::Enroll(device) => {
                tracing::info!(%device, "enrolling with the server as the number IT gave");
                *enrolling = Some(Box::pin(async move {
                    enroller.enroll(device).await.unwrap_or(Input::Enrolled)
                }));
            }
        }
    }
}

async fn sleep_until_ask(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_is_kept_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stored_number(dir.path()).unwrap(), None);
        let twelve = DeviceNumber::new(12).unwrap();
        store_number(dir.path(), twelve).unwrap();
        assert_eq!(stored_number(dir.path()).unwrap(), Some(twelve));
        for bad in ["", "0", "twelve", "10000"] {
            std::fs::write(dir.path().join(NUMBER_FILE), bad).unwrap();
            assert!(stored_number(dir.path()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_serial_is_read_from_cpuinfo() {
        let pi = "processor\t: 0\nHardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 10000000abcdef01\nModel\t\t: Raspberry Pi 4\n";
        assert_eq!(serial_from_cpuinfo(pi), Some("10000000abcdef01"));
        assert_eq!(serial_from_cpuinfo("processor\t: 0\nmodel name\t: x86\n"), None);
    }
}
