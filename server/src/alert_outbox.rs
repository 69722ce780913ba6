//! The alerts outbox's worker: sends the alerts the store queued with their reports (and the
//! alert rules' alerts and escalations, `alert_rules`), retrying
//! with backoff until each channel has taken it, across restarts (the queue is in the
//! database). The retry policy is pure ([`retry_delay`], [`after_try`]); sending is behind
//! [`AlertChannels`] ([`crate::notify::Notifier`] for real, fakes in tests).
//!
//! An alert is sent at least once per channel and, unless the server stops between a mail
//! server taking it and the outbox recording that, exactly once.

use crate::clock_guard::{ClockReading, ServerClock};
use crate::notify::Alert;
use crate::store::{OutboxAlert, Store};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How the worker paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxTiming {
    /// How often the outbox is looked at without being woken (due retries, a restart).
    pub poll: Duration,
    /// The wait after the first failed try; doubled each time after.
    pub first_retry: Duration,
    /// The longest wait between tries.
    pub max_retry: Duration,
}

impl Default for OutboxTiming {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(15),
            first_retry: Duration::from_secs(10),
            max_retry: Duration::from_secs(30 * 60),
        }
    }
}

/// The wait before the next try after `failures` failed tries (at least 1). Pure.
pub fn retry_delay(failures: u32, timing: &OutboxTiming) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    timing.first_retry.saturating_mul(1u32 << doublings).min(timing.max_retry)
}

/// Where an alert stands after a try: each channel done if it was done before, is not
/// configured (`None`), or took the alert now; and when to try again if one is left. Pure.
pub fn after_try(
    alert: &OutboxAlert,
    email: Option<&Result<(), String>>,
    webhook: Option<&Result<(), String>>,
    now: DateTime<Utc>,
    timing: &OutboxTiming,
) -> Tried {
    let done = |before: bool, result: Option<&Result<(), String>>| {
        before || result.is_none_or(|r| r.is_ok())
    };
    let email_done = done(alert.email_done, email);
    let webhook_done = done(alert.webhook_done, webhook);
    let errors: Vec<String> = [("email", email), ("webhook", webhook)]
        .into_iter()
        .filter_map(|(channel, result)| match result {
            Some(Err(e)) => Some(format!("{channel}: {e}")),
            _ => None,
        })
        .collect();
    let wait = retry_delay(alert.attempts.saturating_add(1), timing);
    Tried {
        email_done,
        webhook_done,
        next_attempt_at: now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}

/// The outcome of one try, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    pub email_done: bool,
    pub webhook_done: bool,
    pub next_attempt_at: DateTime<Utc>,
    pub error: Option<String>,
}

/// Where alerts go. `None`: the channel is not configured.
pub trait AlertChannels: Send + Sync + 'static {
    fn email(&self, alert: &Alert) -> impl Future<Output = Option<Result<(), String>>> + Send;
    fn webhook(&self, alert: &Alert) -> impl Future<Output = Option<Result<(), String>>> + Send;
}

/// Sends every alert due by `now`, each channel not yet done; returns how many were tried.
pub async fn deliver_due(
    store: &Store,
    channels: &impl AlertChannels,
    timing: &OutboxTiming,
    now: DateTime<Utc>,
) -> Result<usize, crate::store::StoreError> {
    let due = store.run(move |store| store.due_alerts(now, 50)).await?;
    for queued in &due {
        let alert = Alert {
            about: queued.about.clone(),
            incident: queued.incident,
            device: queued.device,
            pressed_at: queued.pressed_at,
            from_block_page: queued.from_block_page,
            recorded_by: queued.recorded_by.clone(),
            also_to: queued.also_to.clone(),
        };
        let email = match queued.email_done {
            true => None,
            false => channels.email(&alert).await,
        };
        let webhook = match queued.webhook_done {
            true => None,
            false => channels.webhook(&alert).await,
        };
        let tried = after_try(queued, email.as_ref(), webhook.as_ref(), Utc::now(), timing);
        match &tried.error {
            None => tracing::info!(alert = queued.id, incident = queued.incident, "alert sent"),
            Some(error) => tracing::warn!(
                alert = queued.id,
                incident = queued.incident,
                attempts = queued.attempts + 1,
                %error,
                next = %tried.next_attempt_at,
                "alert not sent yet; will try again"
            ),
        }
        let id = queued.id;
        store
            .run(move |store| {
                store.alert_tried(
                    id,
                    tried.email_done,
                    tried.webhook_done,
                    tried.next_attempt_at,
                    tried.error.as_deref(),
                )
            })
            .await?;
    }
    Ok(due.len())
}

/// Runs the worker until the task is aborted: at start (what a restart left), when `wake` is
/// notified (a report was stored), and every `timing.poll`.
pub fn spawn_worker(
    store: Store,
    channels: Arc<impl AlertChannels>,
    wake: Arc<Notify>,
    timing: OutboxTiming,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match deliver_due(&store, channels.as_ref(), &timing, Utc::now()).await {
                // A full page: more may be due straight away.
                Ok(50) => continue,
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "the alerts outbox cannot be read"),
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(timing.poll) => {}
            }
        }
    })
}

/// How often the monitoring job looks for silent devices and unacknowledged incidents.
pub const MONITOR_EVERY: Duration = Duration::from_secs(60);

/// Checks once, at the `clock`'s reading: queues the silent devices' alerts (none while the
/// clock is suspect, `clock_guard`) and the escalations due (`alert_rules` decides; the store
/// queues them in this outbox). Returns how many.
pub fn monitor_once(
    store: &Store,
    clock: &ClockReading,
) -> Result<usize, crate::store::StoreError> {
    Ok(store.check_silent_devices(clock)? + store.escalate_unacknowledged(clock.wall)?)
}

/// Runs [`monitor_once`] with the `clock`'s reading every `every`, the first one `every` after
/// start, until the task is aborted, waking the worker when it queued an alert.
pub fn spawn_monitor_job(
    store: Store,
    clock: Arc<dyn ServerClock>,
    wake: Arc<Notify>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The first check one interval after start, not at once: a silence is days and an
        // escalation minutes, and a check at start would hold the writing connection while the
        // server is still starting (a test that locks a table just after start waited on it
        // forever, behind a check stuck on that lock).
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let reading = clock.read();
            match store.run(move |store| monitor_once(store, &reading)).await {
                Ok(0) => {}
                Ok(queued) => {
                    tracing::info!(queued, "monitoring alerts queued");
                    wake.notify_one();
                }
                Err(error) => {
                    tracing::error!(%error, "the monitoring check failed; will try again")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> OutboxTiming {
        OutboxTiming {
            poll: Duration::from_secs(15),
            first_retry: Duration::from_secs(10),
            max_retry: Duration::from_secs(600),
        }
    }

    #[test]
    fn retries_double_from_the_first_wait_up_to_the_longest() {
        let cases = [(0, 10), (1, 10), (2, 20), (3, 40), (6, 320), (7, 600), (40, 600)];
        for (failures, secs) in cases {
            assert_eq!(retry_delay(failures, &timing()), Duration::from_secs(secs), "{failures}");
        }
    }

    fn queued(email_done: bool, webhook_done: bool, attempts: u32) -> OutboxAlert {
        OutboxAlert {
            id: 1,
            about: crate::notify::AlertAbout::Report,
            incident: Some(7),
            device: Some(12),
            pressed_at: "2026-11-17T10:00:00Z".parse().unwrap(),
            from_block_page: false,
            recorded_by: None,
            also_to: vec![],
            email_done,
            webhook_done,
            attempts,
        }
    }

    #[test]
    #[allow(clippy::type_complexity)] // one row of the table per case
    fn each_channel_is_done_once_it_took_the_alert_or_is_not_configured() {
        let now: DateTime<Utc> = "2026-11-17T10:00:00Z".parse().unwrap();
        let ok = Ok(());
        let down = Err("connection refused".to_owned());
        // (before, email, webhook) -> (email_done, webhook_done, error)
        type Sent<'a> = Option<&'a Result<(), String>>;
        let cases: [(OutboxAlert, Sent, Sent, bool, bool, Option<&str>); 5] = [
            (queued(false, false, 0), Some(&ok), Some(&ok), true, true, None),
            (queued(false, false, 0), None, None, true, true, None),
            (
                queued(false, false, 0),
                Some(&down),
                Some(&ok),
                false,
                true,
                Some("email: connection refused"),
            ),
            (
                queued(false, true, 2),
                Some(&down),
                None,
                false,
                true,
                Some("email: connection refused"),
            ),
            (
                queued(true, false, 1),
                None,
                Some(&down),
                true,
                false,
                Some("webhook: connection refused"),
            ),
        ];
        for (alert, email, webhook, email_done, webhook_done, error) in cases {
            let tried = after_try(&alert, email, webhook, now, &timing());
            assert_eq!(
                (tried.email_done, tried.webhook_done, tried.error.as_deref()),
                (email_done, webhook_done, error),
                "{alert:?}"
            );
            let wait = retry_delay(alert.attempts + 1, &timing());
            assert_eq!(tried.next_attempt_at, now + chrono::Duration::from_std(wait).unwrap());
        }
    }
}
