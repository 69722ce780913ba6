//! The foreground-app adapter: stop and mute the app on a report, resume it on unlock. Owns only
//! the app's run state; must not decide when (that is the core's).
//!
//! The kiosk browser and its control channel come later; [`LoggingApps`] stands in for them and
//! [`FakeApps`] is for tests.

use std::future::Future;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppsError {
    #[error("the foreground app could not be stopped: {0}")]
    Stop(String),
    #[error("the foreground app could not be resumed: {0}")]
    Resume(String),
}

/// The app on screen.
pub trait Apps: Send + 'static {
    /// Stops and mutes the foreground app (no sound, no more page loads).
    fn stop_foreground(&mut self) -> impl Future<Output = Result<(), AppsError>> + Send;
    /// Lets it run again.
    fn resume_foreground(&mut self) -> impl Future<Output = Result<(), AppsError>> + Send;
}

/// Logs what a real app adapter would do.
#[derive(Debug, Default)]
pub struct LoggingApps;

impl Apps for LoggingApps {
    async fn stop_foreground(&mut self) -> Result<(), AppsError> {
        tracing::info!("foreground app stopped");
        Ok(())
    }

    async fn resume_foreground(&mut self) -> Result<(), AppsError> {
        tracing::info!("foreground app resumed");
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppsCall {
    Stop,
    Resume,
}

/// Records calls, for tests.
#[derive(Debug, Clone, Default)]
pub struct FakeApps {
    pub calls: Arc<Mutex<Vec<AppsCall>>>,
}

impl FakeApps {
    pub fn calls(&self) -> Vec<AppsCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Apps for FakeApps {
    async fn stop_foreground(&mut self) -> Result<(), AppsError> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(AppsCall::Stop);
        Ok(())
    }

    async fn resume_foreground(&mut self) -> Result<(), AppsError> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(AppsCall::Resume);
        Ok(())
    }
}
