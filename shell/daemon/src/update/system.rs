//! The two things the update asks of the system, each a small trait: RAUC writing a bundle into
//! the other slot ([`Installer`]: [`Rauc`] over D-Bus, [`FakeInstaller`]) and the reboot
//! ([`Rebooter`]: [`Logind`], [`FakeRebooter`]). Only root may talk to RAUC
//! (`/etc/dbus-1/system.d/slate-rauc.conf`); slated runs as root.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest RAUC may take to write a slot (a 1.5 GiB slot on a slow card takes minutes).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Why a bundle was not installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// RAUC tried and said no (a signature from another CA, an incompatible bundle): that
    /// bundle is not tried again.
    #[error("{0}")]
    Refused(String),
    /// RAUC could not be asked, was busy, or did not finish: tried again later.
    #[error("{0}")]
    Unavailable(String),
}

/// Writes a bundle into the other slot (and has the next reboot try it).
pub trait Installer: Send + Sync + 'static {
    /// Resolves when RAUC has finished.
    fn install(&self, bundle: &Path) -> impl Future<Output = Result<(), InstallError>> + Send;
}

/// Reboots the device (the reboot parameter RAUC's backend set makes it a trial of the new slot).
pub trait Rebooter: Send + Sync + 'static {
    fn reboot(&self) -> impl Future<Output = Result<(), String>> + Send;
}

/// Which bus to use: the system bus, or (tests) a private one.
#[derive(Debug, Clone)]
enum Bus {
    System,
    Address(String),
}

impl Bus {
    async fn connect(&self) -> zbus::Result<zbus::Connection> {
        match self {
            Bus::System => zbus::Connection::system().await,
            Bus::Address(address) => {
                zbus::connection::Builder::address(address.as_str()).build().await
            }
        }
    }
}

#[zbus::proxy(
    interface = "de.pengutronix.rauc.Installer",
    default_service = "de.pengutronix.rauc",
    default_path = "/"
)]
trait RaucInstaller {
    fn install_bundle(
        &self,
        source: &str,
        args: HashMap<&str, zbus::Variant<'_>>,
    ) -> zbus::Result<()>;

    /// 0: installed; anything else: failed, `LastError` says why.
    #[zbus(signal)]
    fn completed(&self, result: i32) -> zbus::Result<()>;

    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;
}

/// RAUC's D-Bus service (`de.pengutronix.rauc` at `/`).
#[derive(Debug, Clone)]
pub struct Rauc {
    bus: Bus,
    timeout: Duration,
}

impl Rauc {
    pub fn system() -> Self {
        Self { bus: Bus::System, timeout: INSTALL_TIMEOUT }
    }

    /// RAUC on the bus at `address` (tests: a private `dbus-daemon`).
    pub fn at(address: &str) -> Self {
        Self { bus: Bus::Address(address.to_owned()), timeout: INSTALL_TIMEOUT }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn run(&self, bundle: &Path) -> zbus::Result<Result<(), InstallError>> {
        use futures_core::Stream;
        let connection = self.bus.connect().await?;
        // Read LastError when asked, not from a cache filled before the install.
        let proxy = RaucInstallerProxy::builder(&connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        // Listening before asking: a quick failure's signal is not missed.
        let mut completed = proxy.receive_completed().await?;
        let source = bundle
            .to_str()
            .ok_or_else(|| zbus::Error::Failure(format!("{} is not UTF-8", bundle.display())))?;
        proxy.install_bundle(source, HashMap::new()).await?;
        let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut completed).poll_next(cx));
        let signal = match tokio::time::timeout(self.timeout, next).await {
            Ok(Some(signal)) => signal,
            Ok(None) => {
                return Ok(Err(InstallError::Unavailable(
                    "RAUC went away during the install".to_owned(),
                )))
            }
            Err(_) => {
                let secs = self.timeout.as_secs();
                return Ok(Err(InstallError::Unavailable(format!(
                    "RAUC did not finish within {secs} s"
                ))));
            }
        };
        let result = signal.args()?.result;
        if result == 0 {
            return Ok(Ok(()));
        }
        let error = proxy.last_error().await.unwrap_or_default();
        Ok(Err(InstallError::Refused(if error.is_empty() {
            format!("RAUC failed ({result})")
        } else {
            format!("RAUC failed ({result}): {error}")
        })))
    }
}

impl Installer for Rauc {
    async fn install(&self, bundle: &Path) -> Result<(), InstallError> {
        // Not there, busy with another install, or the call itself failed: nothing was judged.
        self.run(bundle)
            .await
            .unwrap_or_else(|e| Err(InstallError::Unavailable(format!("RAUC over D-Bus: {e}"))))
    }
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait LoginManager {
    fn reboot(&self, interactive: bool) -> zbus::Result<()>;
}

/// logind's `Reboot(false)`: systemd's ordinary reboot, which takes the reboot parameter RAUC's
/// backend left in `/run/systemd/reboot-param`.
#[derive(Debug, Clone)]
pub struct Logind {
    bus: Bus,
}

impl Logind {
    pub fn system() -> Self {
        Self { bus: Bus::System }
    }

    pub fn at(address: &str) -> Self {
        Self { bus: Bus::Address(address.to_owned()) }
    }
}

impl Rebooter for Logind {
    async fn reboot(&self) -> Result<(), String> {
        let ask = async {
            let connection = self.bus.connect().await?;
            LoginManagerProxy::new(&connection).await?.reboot(false).await
        };
        ask.await.map_err(|e| format!("logind Reboot: {e}"))
    }
}

/// A fake RAUC: records the bundles it was asked to install and answers as told.
#[derive(Debug, Clone, Default)]
pub struct FakeInstaller {
    pub installed: Arc<Mutex<Vec<std::path::PathBuf>>>,
    /// `Some`: every install fails with this.
    pub fails: Arc<Mutex<Option<InstallError>>>,
}

impl Installer for FakeInstaller {
    async fn install(&self, bundle: &Path) -> Result<(), InstallError> {
        self.installed.lock().unwrap().push(bundle.to_owned());
        match self.fails.lock().unwrap().clone() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// A fake reboot: counts.
#[derive(Debug, Clone, Default)]
pub struct FakeRebooter {
    pub reboots: Arc<Mutex<u32>>,
}

impl Rebooter for FakeRebooter {
    async fn reboot(&self) -> Result<(), String> {
        *self.reboots.lock().unwrap() += 1;
        Ok(())
    }
}
