//! A real `slate-server` in this process, on a free 127.0.0.1 port over plain HTTP, for the
//! benchmarks that drive it; stopped gracefully by [`LocalServer::stop`].

use slate_server::secrets::Secret;
use slate_server::store::Store;
use slate_server::{serve, AppState};

pub struct LocalServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), slate_server::ServeError>>,
}

impl LocalServer {
    pub fn start(store: &Store) -> anyhow::Result<Self> {
        let listener = slate_server::listen::bind("127.0.0.1:0".parse()?)?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(serve(
            listener,
            AppState::new(store.clone(), Secret::generate()),
            None,
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Self { url, stop, serving })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.serving.await??;
        Ok(())
    }
}
