//! Staff pages in real Chromium: headless, driven through chromedriver, with a fresh profile and
//! nothing in the background reaching out (`--disable-background-networking` and friends).
//! Needs `chromium` and `chromedriver` on PATH (Debian: `apt-get install chromium
//! chromium-driver`). Everything stays on 127.0.0.1.

use crate::PATIENCE;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use thirtyfour::prelude::*;

/// How often a wait for something on the page looks again.
pub const POLL: Duration = Duration::from_millis(100);

/// Finds `name` on PATH, or fails the test saying how to install it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()).unwrap_or_else(
        || {
            panic!(
                "`{name}` is not installed (not found on PATH): this test needs real Chromium. \
             Install it with `sudo apt-get install {package}` (scripts/setup does this)."
            )
        },
    )
}

/// A chromedriver process on a free loopback port; killed when dropped.
pub struct ChromeDriver {
    child: Child,
    pub url: String,
}

impl ChromeDriver {
    pub fn start(dir: &Path) -> ChromeDriver {
        let binary = tool("chromedriver", "chromium-driver");
        tool("chromium", "chromium");
        let log = dir.join("chromedriver.log");
        // Port 0: chromedriver picks a free port and says which on stdout.
        let mut child = Command::new(&binary)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let port = loop {
            match rx.recv_timeout(PATIENCE) {
                Ok(line) => {
                    if let Some(rest) = line.split("started successfully on port ").nth(1) {
                        break rest.trim_end_matches('.').trim().to_string();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "chromedriver did not say it had started; its log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                }
            }
        };
        ChromeDriver { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// Headless Chromium with a fresh profile under `dir`, as a DSL's laptop at 1366x768.
    pub async fn browser(&self, dir: &Path) -> WebDriver {
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&tool("chromium", "chromium").display().to_string()).unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1366,768",
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.add_arg(&format!("--user-data-dir={}", dir.join("chromium-profile").display()))
            .unwrap();
        let driver = WebDriver::new(self.url.as_str(), caps)
            .await
            .unwrap_or_else(|e| panic!("start headless Chromium through chromedriver: {e}"));
        driver.set_page_load_timeout(PATIENCE).await.unwrap();
        driver
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TOTP code an authenticator app shows `steps_ahead` 30-second steps from now (RFC 6238:
/// SHA-1, 6 digits), computed independently of the server. A code works once: a second
/// sign-in within the same step takes the next step's code, which the server's skew allows.
pub fn totp_code(secret_base32: &str, steps_ahead: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).expect("base32 TOTP secret");
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .expect("TOTP");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    totp.generate(now + 30 * steps_ahead).to_string()
}

/// The value after `label` on a line of the CLI's output.
pub fn field(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` in:\n{output}"))
        .trim()
        .to_string()
}

/// Waits (as a hang guard only) for the first element matching `css`.
pub async fn element(driver: &WebDriver, css: &str) -> WebElement {
    driver
        .query(By::Css(css))
        .wait(PATIENCE, POLL)
        .first()
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
}

/// Waits until the page's path is `path`.
pub async fn wait_for_path(driver: &WebDriver, path: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let url = driver.current_url().await.expect("current URL");
        if url.path() == path {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "expected {path}, browser is at {url}");
        tokio::time::sleep(POLL).await;
    }
}

/// Signs in at `base/staff/login` with the password and TOTP `code`.
pub async fn sign_in(driver: &WebDriver, base: &str, username: &str, password: &str, code: &str) {
    driver.goto(format!("{base}/staff/login")).await.unwrap();
    element(driver, "#username").await.send_keys(username).await.unwrap();
    element(driver, "#password").await.send_keys(password).await.unwrap();
    element(driver, "#code").await.send_keys(code).await.unwrap();
    element(driver, "form[action='/staff/login'] button[type=submit]").await.click().await.unwrap();
}

/// The first sign-in of an account the CLI made: signs in with the one-time password, sets
/// `new_password`, and arrives on the page its role starts on: `lands_on` (the incident list
/// for the DSL, the fleet for IT).
pub async fn first_sign_in(
    driver: &WebDriver,
    base: &str,
    (username, lands_on): (&str, &str),
    one_time_password: &str,
    new_password: &str,
    code: &str,
) {
    sign_in(driver, base, username, one_time_password, code).await;
    wait_for_path(driver, "/staff/password").await;
    element(driver, "#current").await.send_keys(one_time_password).await.unwrap();
    element(driver, "#new").await.send_keys(new_password).await.unwrap();
    element(driver, "#confirm").await.send_keys(new_password).await.unwrap();
    element(driver, "form[action='/staff/password'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for_path(driver, lands_on).await;
}
