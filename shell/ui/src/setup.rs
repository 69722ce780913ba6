//! IT's setup page for a device with no number (a class set's one card image, issue 15): what
//! slated's `SetupView` means for the page, and what a tap on its pads sends. Pure: slated
//! decides (it checks the code, throttles wrong ones, enrolls); the page only collects digits
//! and shows the step slated says it is at.
//!
//! ```text
//!   slated's step   the page                            a tap on "OK" / Yes / No sends
//!   code            8-digit pad, digits as dots          setup_code (all 8 digits)
//!   number          number pad, digits shown             setup_number (1..=9999)
//!   confirm         "This is device 12" Yes / No         setup_confirm yes / no
//!   enrolling       "Enrolling as device 12…"            nothing
//! ```

use slate_ipc::control::SetupView;
use slate_protocol::class_set::SETUP_CODE_DIGITS;
use slate_protocol::DeviceNumber;

/// The step slated says the setup is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Code,
    Number,
    Confirm(u16),
    Enrolling(u16),
}

impl Step {
    /// Reads slated's `SetupView`. A step this UI does not know, or a confirm without its number,
    /// is shown as waiting (nothing to tap): slated keeps the setup's rules either way.
    pub fn from_view(view: &SetupView) -> Self {
        let device = view.device.map(|d| d.get());
        match (view.step.as_str(), device) {
            ("code", _) => Self::Code,
            ("number", _) => Self::Number,
            ("confirm", Some(d)) => Self::Confirm(d),
            (_, d) => Self::Enrolling(d.unwrap_or(0)),
        }
    }

    /// How many digits its pad takes (0: no pad).
    pub fn max_digits(self) -> usize {
        match self {
            Self::Code => SETUP_CODE_DIGITS,
            // 9999: the highest device number.
            Self::Number => DeviceNumber::MAX.to_string().len(),
            Self::Confirm(_) | Self::Enrolling(_) => 0,
        }
    }
}

/// A tap on the setup page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tap {
    Digit(u8),
    /// Takes the last digit back.
    Delete,
    /// "OK" under a pad.
    Submit,
    /// "Yes" (true) or "No" on "This is device N".
    Confirm(bool),
}

/// What the page asks slated for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Send {
    Code(String),
    Number(u32),
    Confirm(bool),
}

/// The page's own state: the digits typed on the pad of the step shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pad {
    pub digits: String,
    /// The step the digits belong to: a new step starts an empty pad.
    step: Option<Step>,
}

impl Pad {
    /// Follows slated's step: the digits of another step are dropped.
    pub fn observe(&mut self, step: Option<Step>) {
        if self.step != step {
            self.digits.clear();
            self.step = step;
        }
    }

    /// Whether "OK" is offered: a whole code, or a number from 1.
    pub fn complete(&self, step: Step) -> bool {
        match step {
            Step::Code => self.digits.len() == SETUP_CODE_DIGITS,
            Step::Number => self.digits.parse::<u32>().is_ok_and(|n| n >= 1),
            Step::Confirm(_) | Step::Enrolling(_) => false,
        }
    }
}

/// Applies a tap on `step` (`paused`: slated refuses codes for now, so the pad takes none).
/// A tap that does not belong to the step shown changes nothing and sends nothing.
pub fn tap(step: Step, paused: bool, pad: &mut Pad, tap: Tap) -> Option<Send> {
    pad.observe(Some(step));
    if paused && step == Step::Code {
        return None;
    }
    match (step, tap) {
        (Step::Code | Step::Number, Tap::Digit(d)) if d <= 9 => {
            if pad.digits.len() < step.max_digits() {
                pad.digits.push(char::from(b'0' + d));
            }
            None
        }
        (Step::Code | Step::Number, Tap::Delete) => {
            pad.digits.pop();
            None
        }
        (Step::Code, Tap::Submit) if pad.complete(step) => {
            Some(Send::Code(std::mem::take(&mut pad.digits)))
        }
        (Step::Number, Tap::Submit) if pad.complete(step) => {
            let number = pad.digits.parse().ok()?;
            pad.digits.clear();
            Some(Send::Number(number))
        }
        (Step::Confirm(_), Tap::Confirm(yes)) => Some(Send::Confirm(yes)),
        _ => None,
    }
}

/// slated's notice, in a form the page can word in its language. slated words its notices in
/// English (they are also what `slatectl` prints); the page knows these and translates them,
/// and shows any other as slated worded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    None,
    WrongCode,
    /// Too many wrong codes (the page says for how long, from `locked_for_s`).
    TooManyCodes,
    /// The number is not a device number.
    NumberRange,
    /// The server says this number is enrolled already: choose another.
    Taken(u16),
    /// Enrolling failed; the reason (slated's, for IT) follows the translated words.
    CouldNotEnroll(String),
    Other(String),
}

impl Notice {
    /// Classifies slated's notice (the words of `slate_daemon::setup::Setup::step`).
    pub fn from_slated(notice: Option<&str>) -> Self {
        let Some(text) = notice.map(str::trim).filter(|t| !t.is_empty()) else {
            return Self::None;
        };
        if text == "That code is not right" {
            return Self::WrongCode;
        }
        if text.starts_with("Too many wrong codes") {
            return Self::TooManyCodes;
        }
        if text.starts_with("Type a number from 1 to") {
            return Self::NumberRange;
        }
        if let Some(rest) = text.strip_prefix("Device ") {
            if let Some((n, _)) = rest.split_once(" is already enrolled") {
                if let Ok(n) = n.parse() {
                    return Self::Taken(n);
                }
            }
        }
        if let Some(reason) = text.strip_prefix("Could not enroll: ") {
            return Self::CouldNotEnroll(reason.to_owned());
        }
        Self::Other(text.to_owned())
    }

    /// The number the page's Slint adapter uses for it (`SetupAdapter.notice-kind`).
    pub fn kind(&self) -> i32 {
        match self {
            Self::None => 0,
            Self::WrongCode => 1,
            Self::TooManyCodes => 2,
            Self::NumberRange => 3,
            Self::Taken(_) => 4,
            Self::CouldNotEnroll(_) => 5,
            Self::Other(_) => 6,
        }
    }

    /// What the page shows after the translated words (a reason for IT, or slated's own words).
    pub fn detail(&self) -> String {
        match self {
            Self::Taken(n) => n.to_string(),
            Self::CouldNotEnroll(s) | Self::Other(s) => s.clone(),
            _ => String::new(),
        }
    }
}

/// Minutes to wait, rounded up, for the pause message (at least 1 while paused).
pub fn pause_minutes(locked_for_s: Option<u64>) -> u64 {
    locked_for_s.filter(|s| *s > 0).map_or(0, |s| s.div_ceil(60).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(step: &str, device: Option<u32>) -> SetupView {
        SetupView {
            step: step.into(),
            device: device.map(|d| DeviceNumber::new(d).unwrap()),
            notice: None,
            locked_for_s: None,
        }
    }

    #[test]
    fn slated_steps_become_the_pages_steps() {
        let cases = [
            ("code", None, Step::Code),
            ("number", None, Step::Number),
            ("number", Some(3), Step::Number),
            ("confirm", Some(12), Step::Confirm(12)),
            ("enrolling", Some(12), Step::Enrolling(12)),
            // Unknown or incomplete: wait, offer nothing.
            ("confirm", None, Step::Enrolling(0)),
            ("something-new", None, Step::Enrolling(0)),
        ];
        for (step, device, want) in cases {
            assert_eq!(Step::from_view(&view(step, device)), want, "{step} {device:?}");
        }
    }

    fn typed(step: Step, paused: bool, taps: &[Tap]) -> (String, Vec<Send>) {
        let mut pad = Pad::default();
        let sent = taps.iter().filter_map(|t| tap(step, paused, &mut pad, *t)).collect();
        (pad.digits, sent)
    }

    #[test]
    fn what_the_pads_send() {
        use Tap::*;
        let code: Vec<Tap> = [1, 2, 3, 4, 5, 6, 7, 8].map(Digit).to_vec();
        let with = |mut taps: Vec<Tap>, more: &[Tap]| {
            taps.extend_from_slice(more);
            taps
        };
        // The step, paused or not, the taps; the digits left on the pad, what was sent.
        type Case = (Step, bool, Vec<Tap>, &'static str, Vec<Send>);
        let cases: Vec<Case> = vec![
            // Eight digits, then OK: the code goes to slated and the pad empties.
            (
                Step::Code,
                false,
                with(code.clone(), &[Submit]),
                "",
                vec![Send::Code("12345678".into())],
            ),
            // Seven digits: OK sends nothing.
            (Step::Code, false, with(code[..7].to_vec(), &[Submit]), "1234567", vec![]),
            // A ninth digit is not taken.
            (Step::Code, false, with(code.clone(), &[Digit(9)]), "12345678", vec![]),
            // Delete takes the last digit back.
            (
                Step::Code,
                false,
                with(code.clone(), &[Delete, Digit(0), Submit]),
                "",
                vec![Send::Code("12345670".into())],
            ),
            // Paused: the pad takes nothing.
            (Step::Code, true, with(code.clone(), &[Submit]), "", vec![]),
            // The number pad: up to four digits.
            (Step::Number, false, vec![Digit(1), Digit(2), Submit], "", vec![Send::Number(12)]),
            (
                Step::Number,
                false,
                vec![Digit(9), Digit(9), Digit(9), Digit(9), Digit(9)],
                "9999",
                vec![],
            ),
            (Step::Number, false, vec![Digit(0), Submit], "0", vec![]),
            (Step::Number, false, vec![Digit(0), Digit(7), Submit], "", vec![Send::Number(7)]),
            (Step::Number, true, vec![Digit(4), Submit], "", vec![Send::Number(4)]),
            (Step::Number, false, vec![Digit(10), Submit], "", vec![]),
            // Yes and No only on "This is device N".
            (Step::Confirm(12), false, vec![Confirm(true)], "", vec![Send::Confirm(true)]),
            (Step::Confirm(12), false, vec![Confirm(false)], "", vec![Send::Confirm(false)]),
            (Step::Confirm(12), false, vec![Digit(1), Submit], "", vec![]),
            (Step::Number, false, vec![Confirm(true)], "", vec![]),
            (Step::Enrolling(12), false, vec![Confirm(true), Digit(1), Submit], "", vec![]),
        ];
        for (step, paused, taps, digits, sent) in cases {
            assert_eq!(typed(step, paused, &taps), (digits.to_owned(), sent), "{step:?} {taps:?}");
        }
    }

    #[test]
    fn a_new_step_starts_an_empty_pad() {
        let mut pad = Pad::default();
        tap(Step::Number, false, &mut pad, Tap::Digit(4));
        pad.observe(Some(Step::Number));
        assert_eq!(pad.digits, "4");
        pad.observe(Some(Step::Code));
        assert_eq!(pad.digits, "");
    }

    #[test]
    fn slateds_notices_are_known_and_others_kept() {
        let cases = [
            (None, Notice::None),
            (Some(""), Notice::None),
            (Some("That code is not right"), Notice::WrongCode),
            (Some("Too many wrong codes: wait, then try again"), Notice::TooManyCodes),
            (Some("Type a number from 1 to 9999"), Notice::NumberRange),
            (Some("Device 12 is already enrolled: choose another number"), Notice::Taken(12)),
            (
                Some("Could not enroll: the server answered HTTP 503; try again"),
                Notice::CouldNotEnroll("the server answered HTTP 503; try again".into()),
            ),
            (
                Some("Device x is already enrolled"),
                Notice::Other("Device x is already enrolled".into()),
            ),
            (Some("Something new"), Notice::Other("Something new".into())),
        ];
        for (text, want) in cases {
            assert_eq!(Notice::from_slated(text), want, "{text:?}");
        }
    }

    #[test]
    fn pauses_are_shown_in_whole_minutes() {
        let cases =
            [(None, 0), (Some(0), 0), (Some(1), 1), (Some(60), 1), (Some(61), 2), (Some(3600), 60)];
        for (secs, minutes) in cases {
            assert_eq!(pause_minutes(secs), minutes, "{secs:?}");
        }
    }
}
