//! A device with no number (a class set's one card image, issue 15): how it gets its number
//! before slated starts as usual. First IT's list of serials at the server
//! (`routes::ENROLL_NUMBER`, asked with the card's class-set token); else the setup screen:
//! IT's setup code (the class-set token's, `slate_protocol::class_set::setup_code`; wrong
//! ones throttled), the number typed on a number pad, "This is device N", then enrollment. The
//! number, once enrolled, is kept in `state_dir/device-number`, on the data partition: the card's
//! `slate.toml` stays the same for every device.
//!
//! This module is the pure core: the screen's steps ([`Setup::step`]), the throttle
//! ([`lockout`]) and what a server's answer means ([`classify_number`],
//! [`classify_setup_enroll`]). No I/O, no clock (the time since boot is passed in). The
//! imperative shell is [`run`].

pub mod run;

use slate_ipc::control::SetupView;
use slate_protocol::class_set::NumberReply;
use slate_protocol::DeviceNumber;
use std::time::Duration;

/// Wrong codes allowed in a row before codes are refused for a while.
pub const FREE_TRIES: u32 = 5;
/// The first pause after [`FREE_TRIES`] wrong codes; each further five double it.
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(60);
/// The longest pause.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(3600);

/// How long codes are refused after `wrong` wrong codes in a row: nothing for the first four,
/// then a minute after the fifth, doubling every five more, up to an hour. Pure.
pub fn lockout(wrong: u32) -> Option<Duration> {
    if wrong < FREE_TRIES || !wrong.is_multiple_of(FREE_TRIES) {
        return None;
    }
    let doublings = (wrong / FREE_TRIES - 1).min(16);
    Some(FIRST_LOCKOUT.saturating_mul(1 << doublings).min(MAX_LOCKOUT))
}

/// Whether `typed` is `expected`, comparing every byte whatever the first difference. Pure.
pub fn code_matches(expected: &str, typed: &str) -> bool {
    let (e, t) = (expected.as_bytes(), typed.as_bytes());
    let mut differ = u8::from(e.len() != t.len());
    for (i, b) in e.iter().enumerate() {
        differ |= b ^ t.get(i).copied().unwrap_or(0);
    }
    differ == 0
}

/// Where the setup screen is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Asking for IT's setup code.
    Code,
    /// Asking for the device number.
    Number,
    /// "This is device N": yes or no.
    Confirm(DeviceNumber),
    /// Enrolling as N with the server.
    Enrolling(DeviceNumber),
    /// Enrolled as N: slated starts as device N.
    Done(DeviceNumber),
}

/// What the screen is told or asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Code(String),
    Number(u32),
    Confirm(bool),
    /// IT's list at the server, asked again after boot, gives this number.
    Listed(DeviceNumber),
    /// The server's answer to enrolling as the number confirmed.
    Enrolled,
    Taken,
    /// Refused for another reason, or not reached (the reason for IT).
    Failed(String),
}

/// What the shell must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Keep the count of wrong codes in a row (so a restart does not reset the throttle).
    SaveWrongCodes(u32),
    /// Enroll with the server as this number.
    Enroll(DeviceNumber),
}

/// The setup screen's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    pub step: Step,
    /// Wrong codes in a row.
    pub wrong_codes: u32,
    /// Codes are refused until this time since boot.
    pub locked_until: Option<Duration>,
    /// What went wrong last, for the screen.
    pub notice: Option<String>,
}

impl Setup {
    /// A new setup at `now` (time since boot), `wrong_codes` wrong codes in a row kept from
    /// before a restart: a lockout they earned starts again in full.
    pub fn new(wrong_codes: u32, now: Duration) -> Self {
        let locked_until = lockout(wrong_codes).map(|pause| now + pause);
        Setup { step: Step::Code, wrong_codes, locked_until, notice: None }
    }

    /// One input at `now`, with the code IT's card gives. Pure.
    pub fn step(&mut self, input: Input, now: Duration, expected_code: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        match (self.step, input) {
            (Step::Code, Input::Code(typed)) => {
                if self.locked_for(now).is_some() {
                    self.notice = Some("Too many wrong codes: wait, then try again".into());
                } else if code_matches(expected_code, typed.trim()) {
                    self.step = Step::Number;
                    self.notice = None;
                    if self.wrong_codes != 0 {
                        self.wrong_codes = 0;
                        effects.push(Effect::SaveWrongCodes(0));
                    }
                } else {
                    self.wrong_codes = self.wrong_codes.saturating_add(1);
                    self.locked_until = lockout(self.wrong_codes).map(|pause| now + pause);
                    self.notice = Some(match self.locked_until {
                        Some(_) => "Too many wrong codes: wait, then try again".into(),
                        None => "That code is not right".into(),
                    });
                    effects.push(Effect::SaveWrongCodes(self.wrong_codes));
                }
            }
            (Step::Number, Input::Number(n)) => match DeviceNumber::new(n) {
                Ok(device) => {
                    self.step = Step::Confirm(device);
                    self.notice = None;
                }
                Err(_) => {
                    self.notice = Some(format!("Type a number from 1 to {}", DeviceNumber::MAX));
                }
            },
            (Step::Confirm(device), Input::Confirm(true)) => {
                self.step = Step::Enrolling(device);
                self.notice = None;
                effects.push(Effect::Enroll(device));
            }
            // IT's list answered a later ask: enroll by it, unless IT has begun typing on the
            // screen (the person at the device decides then).
            (Step::Code, Input::Listed(device)) => {
                self.step = Step::Enrolling(device);
                self.notice = None;
                effects.push(Effect::Enroll(device));
            }
            (Step::Confirm(_), Input::Confirm(false)) => {
                self.step = Step::Number;
                self.notice = None;
            }
            (Step::Enrolling(device), Input::Enrolled) => self.step = Step::Done(device),
            (Step::Enrolling(device), Input::Taken) => {
                self.step = Step::Number;
                self.notice =
                    Some(format!("Device {device} is already enrolled: choose another number"));
            }
            (Step::Enrolling(_), Input::Failed(reason)) => {
                self.step = Step::Number;
                self.notice = Some(format!("Could not enroll: {reason}"));
            }
            // Anything else is out of turn (a second tap, a stale screen): nothing changes.
            _ => {}
        }
        effects
    }

    /// How much longer codes are refused, if they are.
    pub fn locked_for(&self, now: Duration) -> Option<Duration> {
        self.locked_until.filter(|until| *until > now).map(|until| until - now)
    }

    /// What the setup screen shows.
    pub fn view(&self, now: Duration) -> SetupView {
        let (step, device) = match self.step {
            Step::Code => ("code", None),
            Step::Number => ("number", None),
            Step::Confirm(d) => ("confirm", Some(d)),
            Step::Enrolling(d) | Step::Done(d) => ("enrolling", Some(d)),
        };
        let locked_for_s = match self.step {
            Step::Code => self.locked_for(now).map(|d| d.as_secs().max(1)),
            _ => None,
        };
        SetupView { step: step.into(), device, notice: self.notice.clone(), locked_for_s }
    }
}

/// What an answer to `POST /api/v1/enroll/number` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberAnswer {
    Listed(DeviceNumber),
    /// Not on IT's list, or a server without the list (older than it): ask on the screen.
    Unlisted(String),
    /// The token was refused: the screen cannot help either, but IT may still type a number
    /// (enrolling will say why it fails).
    Refused(String),
    /// Not reached or an answer it cannot read: ask on the screen (the list is a convenience).
    Unknown(String),
}

/// Says what an answer to asking for the number means. Pure.
pub fn classify_number(status: u16, body: &[u8]) -> NumberAnswer {
    match status {
        200 => match serde_json::from_slice::<NumberReply>(body) {
            Ok(reply) => NumberAnswer::Listed(reply.device),
            Err(_) => NumberAnswer::Unknown("HTTP 200 with an unreadable answer".into()),
        },
        404 | 405 => NumberAnswer::Unlisted(format!("HTTP {status}")),
        400 | 401 | 403 => NumberAnswer::Refused(format!("HTTP {status}")),
        _ => NumberAnswer::Unknown(format!("HTTP {status}")),
    }
}

/// The first wait before IT's list is asked again, after an answer that may change (the
/// server not reached, or this serial not listed yet: IT may upload the list after the cards
/// boot).
pub const LIST_RETRY_FIRST: Duration = Duration::from_secs(30);
/// The longest wait between asks.
pub const LIST_RETRY_MAX: Duration = Duration::from_secs(600);

/// How long to wait before asking IT's list again, after `asked` asks answered `answer`, while
/// the screen is at `step`: `None` when asking again cannot help (a number was given, the
/// token was refused) or IT has begun on the screen. Doubles from `first` up to
/// [`LIST_RETRY_MAX`]. Pure.
pub fn list_retry_after(
    answer: &NumberAnswer,
    asked: u32,
    step: Step,
    first: Duration,
) -> Option<Duration> {
    if step != Step::Code {
        return None;
    }
    match answer {
        NumberAnswer::Unlisted(_) | NumberAnswer::Unknown(_) => {
            let doublings = asked.saturating_sub(1).min(16);
            Some(first.saturating_mul(1 << doublings).min(LIST_RETRY_MAX.max(first)))
        }
        NumberAnswer::Listed(_) | NumberAnswer::Refused(_) => None,
    }
}

/// What an answer to enrolling as the number confirmed means for the screen. Pure.
pub fn classify_setup_enroll(status: u16) -> Option<Input> {
    match status {
        200..=299 => None,
        409 => Some(Input::Taken),
        400 => Some(Input::Failed(
            "the server refused the request (is it older than this device?)".into(),
        )),
        401 | 403 => {
            Some(Input::Failed("the enrollment token was refused (expired or used up?)".into()))
        }
        _ => Some(Input::Failed(format!("the server answered HTTP {status}; try again"))),
    }
}

#[cfg(test)]
mod tests;
