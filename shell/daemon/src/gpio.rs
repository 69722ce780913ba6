//! Direct GPIO for boards without the `gpio-key` overlay: the report button on a pin with the
//! internal pull-up and edge interrupts, and the status LED on another pin. Owns the two pins;
//! must not decide what an edge means (the core debounces and judges stuck buttons: edges pass
//! through as [`crate::button::ButtonEvent`]s) nor what the LED shows ([`crate::led`] does).
//!
//! The pure parts ([`gpio_edge`], [`wall_time`]) are always built and tested; the rppal adapter
//! (`hw::GpioButton`, `hw::run_led`) only with the cargo feature `gpio` (built for the Pi;
//! CI on x86_64 does not need it).
//!
//! Wiring: button between the pin and ground (active low, the pull-up holds it high), LED with
//! its resistor between the LED pin and ground.

use crate::button::Edge;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Which edge of the key a level change is: active low means falling is the key going down.
/// Pure.
pub fn gpio_edge(rising: bool, active_low: bool) -> Edge {
    if rising == active_low {
        Edge::Up
    } else {
        Edge::Down
    }
}

/// The wall-clock time of an interrupt stamped on the monotonic clock (what the kernel's GPIO
/// character device gives), from the two clocks read together now. An event "in the future"
/// (clock noise) is taken as now. Pure.
pub fn wall_time(
    now_wall: DateTime<Utc>,
    now_mono: Duration,
    event_mono: Duration,
) -> DateTime<Utc> {
    let ago = now_mono.saturating_sub(event_mono);
    now_wall - chrono::Duration::from_std(ago).unwrap_or(chrono::Duration::zero())
}

#[cfg(feature = "gpio")]
pub mod hw {
    //! The rppal adapter (feature `gpio`).

    use super::{gpio_edge, wall_time};
    use crate::button::{Button, ButtonEvent, Edge};
    use crate::led::{led_level, LedPattern};
    use chrono::Utc;
    use rppal::gpio::{Gpio, InputPin, Trigger};
    use std::time::Duration;
    use tokio::sync::{mpsc, watch};

    #[derive(Debug, thiserror::Error)]
    #[error("GPIO pin {pin}: {source}")]
    pub struct GpioError {
        pub pin: u8,
        #[source]
        pub source: rppal::gpio::Error,
    }

    fn monotonic_now() -> Duration {
        let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .expect("CLOCK_MONOTONIC is always there");
        Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32)
    }

    /// The report button on a GPIO pin with the internal pull-up, edges by interrupt.
    pub struct GpioButton {
        /// Kept so that the interrupt stays armed.
        _pin: InputPin,
        edges: mpsc::UnboundedReceiver<ButtonEvent>,
    }

    impl GpioButton {
        pub fn open(pin: u8, active_low: bool) -> Result<Self, GpioError> {
            let err = |source| GpioError { pin, source };
            let mut input = Gpio::new().map_err(err)?.get(pin).map_err(err)?.into_input_pullup();
            let (tx, edges) = mpsc::unbounded_channel();
            input
                .set_async_interrupt(Trigger::Both, None, move |event| {
                    let at = wall_time(Utc::now(), monotonic_now(), event.timestamp);
                    let rising = event.trigger == Trigger::RisingEdge;
                    let _ = tx.send(match gpio_edge(rising, active_low) {
                        Edge::Down => ButtonEvent::Down { at },
                        Edge::Up => ButtonEvent::Up { at },
                    });
                })
                .map_err(err)?;
            Ok(Self { _pin: input, edges })
        }
    }

    impl Button for GpioButton {
        async fn next_event(&mut self) -> Option<ButtonEvent> {
            self.edges.recv().await
        }
    }

    /// Drives the LED on `pin` from the pattern in `pattern` until the sender is gone.
    pub async fn run_led(
        pin: u8,
        mut pattern: watch::Receiver<LedPattern>,
    ) -> Result<(), GpioError> {
        let err = |source| GpioError { pin, source };
        let mut led = Gpio::new().map_err(err)?.get(pin).map_err(err)?.into_output_low();
        let mut started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(25));
        loop {
            tokio::select! {
                changed = pattern.changed() => {
                    if changed.is_err() {
                        led.set_low();
                        return Ok(());
                    }
                    started = tokio::time::Instant::now();
                }
                _ = tick.tick() => {}
            }
            if led_level(*pattern.borrow(), started.elapsed()) {
                led.set_high();
            } else {
                led.set_low();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falling_is_down_for_an_active_low_button() {
        let cases = [
            ((false, true), Edge::Down),
            ((true, true), Edge::Up),
            ((true, false), Edge::Down),
            ((false, false), Edge::Up),
        ];
        for ((rising, active_low), edge) in cases {
            assert_eq!(
                gpio_edge(rising, active_low),
                edge,
                "rising={rising} active_low={active_low}"
            );
        }
    }

    #[test]
    fn monotonic_interrupt_times_become_wall_times() {
        let now: DateTime<Utc> = "2026-11-17T10:00:00Z".parse().unwrap();
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let cases = [
            (s(1000), s(1000), "2026-11-17T10:00:00Z"),
            (s(1000), s(1000) - ms(40), "2026-11-17T09:59:59.960Z"),
            (s(1000), s(1001), "2026-11-17T10:00:00Z"),
            (s(5), s(0), "2026-11-17T09:59:55Z"),
        ];
        for (now_mono, event_mono, expected) in cases {
            let want: DateTime<Utc> = expected.parse().unwrap();
            assert_eq!(wall_time(now, now_mono, event_mono), want, "{event_mono:?}");
        }
    }
}
