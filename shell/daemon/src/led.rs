//! The status LED beside the report button: what it shows, as pure functions of the device's
//! state. Owns only the pattern; must not touch hardware (the GPIO adapter, behind the `gpio`
//! feature, drives a pin from [`led_level`]).
//!
//! | pattern | meaning |
//! |---|---|
//! | steady on | ready: the button works and nothing waits |
//! | fast blink (4 Hz) | a report is waiting to upload |
//! | slow blink (1 Hz) | held, and the report has reached the school server |
//! | off | fault: the button is missing or stuck (also in the heartbeat) |
//! | fast blink for 2 s | a press during the fleet's button test: the button works (no report) |

use std::time::Duration;

/// What the LED shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedPattern {
    Steady,
    FastBlink,
    SlowBlink,
    Off,
}

/// What the pattern is chosen from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedInputs {
    /// The report button is missing or stuck.
    pub button_fault: bool,
    /// The device is held for a member of staff.
    pub held: bool,
    /// A report is in the spool, not yet acknowledged by the server.
    pub report_waiting: bool,
    /// A press during the button test was seen a moment ago.
    pub button_tested: bool,
}

/// The pattern for a state. A fault wins (a dark LED says "this button cannot be trusted");
/// then a report waiting; then a held device whose report was delivered. Pure.
pub fn led_pattern(inputs: LedInputs) -> LedPattern {
    if inputs.button_fault {
        LedPattern::Off
    } else if inputs.report_waiting || inputs.button_tested {
        LedPattern::FastBlink
    } else if inputs.held {
        LedPattern::SlowBlink
    } else {
        LedPattern::Steady
    }
}

/// Half a period of each blink.
const FAST_HALF: Duration = Duration::from_millis(125);
const SLOW_HALF: Duration = Duration::from_millis(500);

/// Whether the LED is lit `since` after the pattern started (blinks start lit). Pure.
pub fn led_level(pattern: LedPattern, since: Duration) -> bool {
    let half = match pattern {
        LedPattern::Steady => return true,
        LedPattern::Off => return false,
        LedPattern::FastBlink => FAST_HALF,
        LedPattern::SlowBlink => SLOW_HALF,
    };
    (since.as_millis() / half.as_millis()) & 1 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_follows_the_device() {
        let i = |button_fault, held, report_waiting| LedInputs {
            button_fault,
            held,
            report_waiting,
            button_tested: false,
        };
        let cases = [
            (i(false, false, false), LedPattern::Steady),
            (i(false, true, true), LedPattern::FastBlink),
            (i(false, false, true), LedPattern::FastBlink),
            (i(false, true, false), LedPattern::SlowBlink),
            (i(true, false, false), LedPattern::Off),
            (i(true, true, true), LedPattern::Off),
            (i(true, true, false), LedPattern::Off),
        ];
        for (inputs, expected) in cases {
            assert_eq!(led_pattern(inputs), expected, "{inputs:?}");
        }
        let tested = LedInputs { button_tested: true, ..i(false, false, false) };
        assert_eq!(led_pattern(tested), LedPattern::FastBlink, "the LED answers a test press");
    }

    #[test]
    fn blinks_have_their_rates() {
        let ms = Duration::from_millis;
        let cases = [
            (LedPattern::Steady, 0, true),
            (LedPattern::Steady, 999_999, true),
            (LedPattern::Off, 0, false),
            (LedPattern::FastBlink, 0, true),
            (LedPattern::FastBlink, 124, true),
            (LedPattern::FastBlink, 125, false),
            (LedPattern::FastBlink, 250, true),
            (LedPattern::SlowBlink, 499, true),
            (LedPattern::SlowBlink, 500, false),
            (LedPattern::SlowBlink, 1000, true),
        ];
        for (pattern, at, lit) in cases {
            assert_eq!(led_level(pattern, ms(at)), lit, "{pattern:?} at {at} ms");
        }
    }
}
