//! The screen adapter: darken it at once, show the reassurance, restore it. Owns only the
//! screen; must not decide when (that is the core's) nor write anything to disk.
//!
//! Real dark-screen adapters (DRM/KMS, the kiosk compositor) come later; [`LoggingDisplay`] stands
//! in for them and [`FakeDisplay`] is for tests.

use chrono::{DateTime, Utc};
use slate_protocol::EventId;
use std::future::Future;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayError {
    #[error("the screen could not be darkened: {0}")]
    Blank(String),
    #[error("the screen could not be restored: {0}")]
    Restore(String),
    #[error("the reassurance could not be shown: {0}")]
    Reassure(String),
}

/// The device's screen.
pub trait Display: Send + 'static {
    /// Darkens the screen for `report` and returns when the darkness is confirmed, with the time
    /// it was. The caller bounds how long it waits.
    fn blank(
        &mut self,
        report: EventId,
    ) -> impl Future<Output = Result<DateTime<Utc>, DisplayError>> + Send;
    /// Shows the "you did the right thing, a grown-up is coming" screen (dimly, screen held).
    fn show_reassurance(&mut self) -> impl Future<Output = Result<(), DisplayError>> + Send;
    /// Lights the screen again after a staff unlock.
    fn restore(&mut self) -> impl Future<Output = Result<(), DisplayError>> + Send;
}

/// Logs what a real screen would do and confirms darkness at once.
#[derive(Debug, Default)]
pub struct LoggingDisplay;

impl Display for LoggingDisplay {
    async fn blank(&mut self, report: EventId) -> Result<DateTime<Utc>, DisplayError> {
        tracing::info!(%report, "screen dark");
        Ok(Utc::now())
    }

    async fn show_reassurance(&mut self) -> Result<(), DisplayError> {
        tracing::info!("reassurance shown");
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), DisplayError> {
        tracing::info!("screen restored");
        Ok(())
    }
}

/// What a [`FakeDisplay`] was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplayCall {
    Blank(EventId),
    Reassure,
    Restore,
}

/// How a [`FakeDisplay`] answers `blank`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeBlank {
    /// Confirms darkness at this time.
    DarkAt(DateTime<Utc>),
    Fail,
    /// Never answers (to test the caller's timeout).
    Hang,
}

/// A screen for tests: records calls, answers as told.
#[derive(Debug, Clone)]
pub struct FakeDisplay {
    pub calls: Arc<Mutex<Vec<DisplayCall>>>,
    pub blank: FakeBlank,
}

impl FakeDisplay {
    pub fn new(blank: FakeBlank) -> Self {
        Self { calls: Arc::default(), blank }
    }

    pub fn calls(&self) -> Vec<DisplayCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, call: DisplayCall) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    }
}

impl Display for FakeDisplay {
    async fn blank(&mut self, report: EventId) -> Result<DateTime<Utc>, DisplayError> {
        self.record(DisplayCall::Blank(report));
        match &self.blank {
            FakeBlank::DarkAt(t) => Ok(*t),
            FakeBlank::Fail => Err(DisplayError::Blank("fake failure".into())),
            FakeBlank::Hang => std::future::pending().await,
        }
    }

    async fn show_reassurance(&mut self) -> Result<(), DisplayError> {
        self.record(DisplayCall::Reassure);
        Ok(())
    }

    async fn restore(&mut self) -> Result<(), DisplayError> {
        self.record(DisplayCall::Restore);
        Ok(())
    }
}
