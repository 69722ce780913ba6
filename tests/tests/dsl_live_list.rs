//! The DSL's live incident list in real Chromium is either live or says it is not: the page
//! stays open while the connection drops, then goes silent, the session expires and the server
//! is killed and started again; each time it shows a banner with the time of its last update at once, and
//! when it is back it fetches the reports it missed, all without a reload.
//!
//! The browser reaches the server through a loopback relay the test can cut (a dropped Wi-Fi
//! connection); the device reaches the server directly, so reports keep arriving while the page
//! is cut off. Needs `chromium` and `chromedriver` (see `slate_e2e::chromium`).

use slate_e2e::chromium::{element, field, first_sign_in, sign_in, totp_code, ChromeDriver, POLL};
use slate_e2e::proxy::Relay;
use slate_e2e::{wait_until, Device, Server, PATIENCE};
use std::path::Path;
use thirtyfour::prelude::*;

const USERNAME: &str = "dsl.jones";
const PASSWORD: &str = "kestrel-orchard-41-lantern";

/// Waits until the live status says `live` ("yes" or "no") and returns its words.
async fn live_status(driver: &WebDriver, live: &str) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = element(driver, "#live-status").await;
        if status.attr("data-live").await.unwrap().as_deref() == Some(live) {
            return status.text().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the live status never became {live:?}: {}",
            status.text().await.unwrap_or_default()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The incident numbers of the list's rows, top first.
async fn rows(driver: &WebDriver) -> Vec<i64> {
    let mut incidents = Vec::new();
    for row in driver.find_all(By::Css("#incidents tr[data-incident]")).await.unwrap() {
        let number = row.attr("data-incident").await.unwrap().expect("data-incident");
        incidents.push(number.parse().expect("incident number"));
    }
    incidents
}

/// Waits until the list shows `count` rows.
async fn wait_for_rows(driver: &WebDriver, count: usize) -> Vec<i64> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let shown = rows(driver).await;
        if shown.len() == count {
            return shown;
        }
        assert!(tokio::time::Instant::now() < deadline, "expected {count} rows, have {shown:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// The page was never reloaded: the mark the test left in its memory is still there.
async fn assert_not_reloaded(driver: &WebDriver) {
    let mark = driver.execute("return window.slateTestMark;", Vec::new()).await.unwrap();
    assert_eq!(mark.json(), &serde_json::json!("not reloaded"), "the page was reloaded");
}

async fn screenshot(driver: &WebDriver, dir: &Path, name: &str) {
    let png = driver.screenshot_as_png().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    std::fs::write(dir.join(name), &png).unwrap();
    std::fs::write(Path::new("/tmp").join(name), &png).unwrap();
}

/// A press on the device, filed on the server, and the device released for the next one.
fn report(device: &Device) {
    device.press();
    device.wait_until_drained();
    device.unlock();
}

/// Ages the DSL's session in the server's database as if they had been idle for 31 minutes
/// (the server allows 30).
fn idle_for_31_minutes(server: &Server) {
    let db = rusqlite::Connection::open(server.data_dir.join("slate.sqlite")).expect("database");
    db.busy_timeout(PATIENCE).unwrap();
    let idle = chrono::Utc::now() - chrono::Duration::minutes(31);
    let idle = idle.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let aged = db
        .execute(
            "UPDATE staff_sessions SET last_seen_at = ?1
             WHERE staff_id = (SELECT id FROM staff WHERE username = ?2)",
            [idle.as_str(), USERNAME],
        )
        .unwrap();
    assert_eq!(aged, 1, "the DSL's one session");
}

#[test]
fn the_live_list_says_when_it_is_down_and_catches_up_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("server"), false);
    let account = server.cli(&["staff", "add", "--username", USERNAME, "--role", "dsl", "--totp"]);
    let one_time_password = field(&account, "one-time password:");
    let totp_secret = field(&account, "totp secret:");
    let mut device = Device::following_policy(&dir.path().join("device"), &server, 12);
    device.start();
    wait_until("the device to enroll", || (device.status()["enrolled"] == true).then_some(()));

    let address = server.url.trim_start_matches("http://").parse().expect("server address");
    let relay = Relay::start(address);
    let chromedriver = ChromeDriver::start(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let driver = runtime.block_on(chromedriver.browser(dir.path()));

    runtime.block_on(async {
        let code = totp_code(&totp_secret, 0);
        let dsl = (USERNAME, "/reports");
        first_sign_in(&driver, &relay.url, dsl, &one_time_password, PASSWORD, &code).await;
        driver.execute("window.slateTestMark = 'not reloaded';", Vec::new()).await.unwrap();
        let live = live_status(&driver, "yes").await;
        assert!(live.starts_with("Live"), "{live}");
    });

    // A report arrives live, its time as the server's own page gives it.
    report(&device);
    let pressed = runtime.block_on(async {
        wait_for_rows(&driver, 1).await;
        let pressed = element(&driver, "#incidents tr.fresh td:nth-child(2)").await;
        pressed.text().await.unwrap()
    });
    assert!(pressed.ends_with(" GMT") || pressed.ends_with(" BST"), "{pressed}");
    let page = server.staff_page("/reports");
    assert!(page.contains(&pressed), "live row time {pressed:?} is not the page's:\n{page}");

    // The connection drops: the banner says so at once, with the last update's time.
    relay.cut();
    runtime.block_on(async {
        let down = live_status(&driver, "no").await;
        assert!(down.starts_with("Not live:") && down.contains("as it was at"), "{down}");
        assert!(down.contains(" GMT") || down.contains(" BST"), "{down}");
        assert_eq!(
            element(&driver, "#live-status").await.attr("role").await.unwrap().as_deref(),
            Some("alert")
        );
        screenshot(&driver, dir.path(), "live-list-connection-dropped.png").await;
    });
    report(&device);
    runtime.block_on(async {
        assert_eq!(rows(&driver).await.len(), 1, "a cut-off page cannot show the new report");
        relay.mend();
        live_status(&driver, "yes").await;
        let shown = wait_for_rows(&driver, 2).await;
        assert!(shown[0] > shown[1], "the missed report on top: {shown:?}");
        assert_not_reloaded(&driver).await;
    });

    // The connection goes quiet without a word (no reset, nothing): the page notices the
    // server's missing ticks, and catches up once the connection is back.
    relay.stall();
    runtime.block_on(async {
        let down = live_status(&driver, "no").await;
        assert!(down.contains("has not been heard from"), "{down}");
        screenshot(&driver, dir.path(), "live-list-connection-silent.png").await;
    });
    report(&device);
    runtime.block_on(async {
        relay.mend();
        live_status(&driver, "yes").await;
        wait_for_rows(&driver, 3).await;
        assert_not_reloaded(&driver).await;
    });

    // The session expires: the page says the DSL is signed out, and catches up once they sign
    // in again (in the tab its banner opens).
    idle_for_31_minutes(&server);
    runtime.block_on(async {
        let down = live_status(&driver, "no").await;
        assert!(down.contains("signed out"), "{down}");
        screenshot(&driver, dir.path(), "live-list-signed-out.png").await;
    });
    report(&device);
    runtime.block_on(async {
        let list = driver.window().await.unwrap();
        element(&driver, "#live-status a[href='/staff/login']").await.click().await.unwrap();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let tab = loop {
            let windows = driver.windows().await.unwrap();
            if let Some(tab) = windows.into_iter().find(|w| *w != list) {
                break tab;
            }
            assert!(tokio::time::Instant::now() < deadline, "the sign-in tab never opened");
            tokio::time::sleep(POLL).await;
        };
        driver.switch_to_window(tab).await.unwrap();
        // The first sign-in used this step's code, and each code works once.
        sign_in(&driver, &relay.url, USERNAME, PASSWORD, &totp_code(&totp_secret, 1)).await;
        slate_e2e::chromium::wait_for_path(&driver, "/reports").await;
        driver.close_window().await.unwrap();
        driver.switch_to_window(list).await.unwrap();
        live_status(&driver, "yes").await;
        wait_for_rows(&driver, 4).await;
        assert_not_reloaded(&driver).await;
    });

    // The server is killed; a press while it is down reaches the list once it is back.
    server.stop();
    runtime.block_on(async {
        let down = live_status(&driver, "no").await;
        assert!(down.contains("cannot be reached") || down.contains("dropped"), "{down}");
    });
    device.press();
    server.restart();
    device.wait_until_drained();
    device.unlock();
    runtime.block_on(async {
        live_status(&driver, "yes").await;
        wait_for_rows(&driver, 5).await;
        assert_not_reloaded(&driver).await;
        screenshot(&driver, dir.path(), "live-list-back.png").await;
    });

    runtime.block_on(driver.quit()).unwrap();
    drop(chromedriver);
}
