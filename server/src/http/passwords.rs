//! Password hashing and checking (argon2id: 19 MiB and a core for tens of milliseconds each,
//! on purpose) on a few threads of their own. However many sign-ins arrive, at most that many
//! hashes run at once, the rest wait in a queue holding no thread, and tokio's blocking pool,
//! where every database call runs (device ingest among them), is never taken by them. Their own
//! threads also bound memory: the allocator keeps a freed 19 MiB block for the thread that
//! used it, so hashes spread over the blocking pool's many threads would each leave one behind.

use crate::store::StoreError;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The password threads; they end when the last clone of this is dropped.
#[derive(Clone)]
pub(crate) struct PasswordWorkers {
    jobs: mpsc::Sender<Job>,
}

/// Half the cores, 1 to 4: the other half stays free for devices and pages.
fn worker_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).clamp(1, 4)
}

impl PasswordWorkers {
    pub(crate) fn start() -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..worker_count() {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("slate-passwords".into())
                .spawn(move || loop {
                    let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(job) = job else { return };
                    // A panicking job drops its reply (its caller gets an error); the thread stays.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                })
                .expect("the password threads start");
        }
        PasswordWorkers { jobs }
    }

    /// Runs `work` on a password thread when one is free.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        let failed = || StoreError::TaskFailed("password check did not finish".into());
        self.jobs.send(job).map_err(|_| failed())?;
        answer.await.map_err(|_| failed())
    }
}
