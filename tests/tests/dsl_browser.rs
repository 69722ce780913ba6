//! The DSL's side in a real browser: headless Chromium, driven through chromedriver, signs in
//! with password and TOTP, changes the one-time password, watches the incident list while a real
//! `slated` files a report (it must appear without a reload), acknowledges it, records a false
//! alarm with a note, and downloads the incident's CSV. Then the register of numbered iPads: two
//! teachers' lines for one lesson are shown as a conflict naming both pupils, a refused line and
//! a refused form keep what was typed inside the signed-in frame, a refused sign-in says why an
//! account may not be known, and IT's first sign-in lands on the fleet.
//!
//! Needs `chromium` and `chromedriver` on PATH (Debian: `apt-get install chromium chromium-driver`).
//! Everything stays on 127.0.0.1.

use slate_e2e::chromium::{
    element, field, first_sign_in, sign_in, tool, totp_code, wait_for_path, ChromeDriver, POLL,
};
use slate_e2e::{wait_until, Device, DeviceSetup, Server, PATIENCE};
use std::path::Path;
use thirtyfour::prelude::*;

const USERNAME: &str = "dsl.jones";
const NEW_PASSWORD: &str = "kestrel-orchard-41-lantern";
const NOTE: &str = "Spoke to the pupil: pressed by mistake while tidying up.";
/// Headless Chromium with a fresh profile in `dir`, downloading into `downloads`.
fn capabilities(dir: &Path, downloads: &Path) -> WebDriverResult<thirtyfour::ChromeCapabilities> {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(&tool("chromium", "chromium").display().to_string())?;
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,2000",
    ] {
        caps.add_arg(arg)?;
    }
    caps.add_arg(&format!("--user-data-dir={}", dir.join("chromium-profile").display()))?;
    caps.add_experimental_option(
        "prefs",
        serde_json::json!({
            "download.default_directory": downloads.display().to_string(),
            "download.prompt_for_download": false,
        }),
    )?;
    Ok(caps)
}

/// Waits until the `h1` says `text` (the page after a form's redirect has loaded).
async fn wait_for_heading(driver: &WebDriver, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(h1) = driver.find(By::Tag("h1")).await {
            if let Ok(heading) = h1.text().await {
                if heading.contains(text) {
                    return heading;
                }
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the heading never said {text:?}");
        tokio::time::sleep(POLL).await;
    }
}

#[test]
fn a_dsl_signs_in_sees_a_report_arrive_live_and_closes_it_as_a_false_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    // Fail early, and clearly, before anything else starts.
    tool("chromium", "chromium");
    tool("chromedriver", "chromium-driver");

    // The school: a server, a DSL account, a pupil and an enrolled device.
    let server = Server::start(&dir.path().join("server"), false);
    let account = server.cli(&["staff", "add", "--username", USERNAME, "--role", "dsl", "--totp"]);
    let one_time_password = field(&account, "one-time password:");
    let totp_secret = field(&account, "totp secret:");
    assert!(field(&account, "totp uri:").contains(&format!("secret={totp_secret}")), "{account}");
    server.import_pupil("Year 2", "Amira", "Khan", "ks1");
    let token = server.enrollment_token(12);
    let mut device = Device::configure(
        &dir.path().join("device"),
        &DeviceSetup {
            number: 12,
            server_url: &server.url,
            certificate: None,
            enrollment_token: Some(&token),
        },
    );
    // Sign-in needs the pupil on the roster of the policy in force: follow the server's.
    let key = server.policy_key.clone().expect("the server prints its policy key");
    device.add_setting(Some("server"), &format!("public_key = {key:?}\npolicy_refresh_s = 10"));
    device.start();
    wait_until("the device to enroll and follow the policy", || {
        let status = device.status();
        (status["enrolled"] == true && status.get("policy_issued_at").is_some()).then_some(())
    });
    let pupil = device.pupil_id("Amira");
    device.ctl(&["sign-in", &pupil]);
    device.ctl(&[
        "foreground",
        "--app",
        "browser",
        "--url",
        "https://example.org/upsetting",
        "--title",
        "A page",
    ]);

    let chromedriver = ChromeDriver::start(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let caps = capabilities(dir.path(), &downloads).unwrap();
    let driver = runtime
        .block_on(WebDriver::new(chromedriver.url.as_str(), caps))
        .unwrap_or_else(|e| panic!("start headless Chromium through chromedriver: {e}"));

    // Sign in, change the one-time password, and open the incident list.
    runtime.block_on(async {
        driver.set_page_load_timeout(PATIENCE).await.unwrap();
        driver.goto(format!("{}/staff/login", server.url)).await.unwrap();
        element(&driver, "#username").await.send_keys(USERNAME).await.unwrap();
        element(&driver, "#password").await.send_keys(&one_time_password).await.unwrap();
        element(&driver, "#code").await.send_keys(totp_code(&totp_secret, 0)).await.unwrap();
        element(&driver, "form[action='/staff/login'] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();

        wait_for_path(&driver, "/staff/password").await;
        element(&driver, "#current").await.send_keys(&one_time_password).await.unwrap();
        element(&driver, "#new").await.send_keys(NEW_PASSWORD).await.unwrap();
        element(&driver, "#confirm").await.send_keys(NEW_PASSWORD).await.unwrap();
        element(&driver, "form[action='/staff/password'] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();

        wait_for_path(&driver, "/reports").await;
        element(&driver, "#no-incidents").await;
        // A mark in this page's memory: still there later means the page was never reloaded.
        driver.execute("window.slateTestMark = 'not reloaded';", Vec::new()).await.unwrap();
    });

    // The list's live feed is open once the server has logged it; then the pupil presses.
    wait_until("the open list to subscribe to live reports", || {
        let audit = server.staff_page("/audit");
        (audit.contains(USERNAME) && audit.contains("opened live incident list")).then_some(())
    });
    let report_id = device.press();

    let incident = runtime.block_on(async {
        let row = element(&driver, "#incidents tr.fresh").await;
        let link = row.find(By::Css("a[href^='/incidents/']")).await.unwrap();
        let href = link.attr("href").await.unwrap().expect("incident link");
        let row_text = row.text().await.unwrap();
        assert!(row_text.contains("Device 12") && row_text.contains("New"), "{row_text}");
        let mark = driver.execute("return window.slateTestMark;", Vec::new()).await.unwrap();
        assert_eq!(mark.json(), &serde_json::json!("not reloaded"), "the row arrived by reloading");
        assert!(!element(&driver, "#live-banner").await.text().await.unwrap().is_empty());
        assert!(
            !element(&driver, "#no-incidents").await.is_displayed().await.unwrap(),
            "the 'no reports yet' line is hidden once one arrives"
        );
        link.click().await.unwrap();
        href.trim_start_matches("/incidents/").to_string()
    });
    let reports = server.reports();
    assert!(reports.iter().any(|r| r["id"] == report_id.as_str()), "{reports:?}");

    let screenshot = runtime.block_on(async {
        wait_for_path(&driver, &format!("/incidents/{incident}")).await;
        let heading = wait_for_heading(&driver, "New").await;
        assert!(heading.contains(&format!("Incident {incident}")), "{heading}");
        let details = element(&driver, "dl").await.text().await.unwrap();
        assert!(
            details.contains("Amira K.") && details.contains("https://example.org/upsetting"),
            "{details}"
        );

        element(&driver, "#ack-note").await.send_keys("On my way to Year 2.").await.unwrap();
        element(&driver, "form[action$='/acknowledge'] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        wait_for_heading(&driver, "Acknowledged").await;

        // The list starts on the next natural step, never on the one that closes the incident.
        let selected = element(&driver, "#action option:checked").await;
        assert_eq!(selected.value().await.unwrap().as_deref(), Some("app_closed"));
        element(&driver, "#action option[value='false_alarm']").await.click().await.unwrap();
        element(&driver, "#action-note").await.send_keys(NOTE).await.unwrap();
        element(&driver, "#confirm-close").await.click().await.unwrap();
        element(&driver, "form[action$='/action'] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        wait_for_heading(&driver, "False alarm").await;
        let page = driver.source().await.unwrap();
        assert!(page.contains("Recorded as a false alarm."), "{page}");
        assert!(
            page.contains(NOTE) && page.contains("On my way to Year 2."),
            "notes in the history: {page}"
        );

        let png = driver.screenshot_as_png().await.unwrap();
        // The CSV, downloaded as the DSL would: by clicking the link.
        element(&driver, &format!("a[href='/incidents/{incident}/export.csv']"))
            .await
            .click()
            .await
            .unwrap();
        png
    });
    assert!(screenshot.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    std::fs::write(dir.path().join("dsl-incident.png"), &screenshot).unwrap();
    std::fs::write("/tmp/dsl-incident.png", &screenshot).unwrap();

    let csv_path = downloads.join(format!("incident-{incident}.csv"));
    let csv = wait_until("the CSV download to finish", || std::fs::read_to_string(&csv_path).ok());
    for expected in [
        format!("Incident,{incident}"),
        "Status,False alarm".to_string(),
        "Device,12".to_string(),
        pupil.clone(),
        "https://example.org/upsetting".to_string(),
        USERNAME.to_string(),
        NOTE.to_string(),
    ] {
        assert!(csv.contains(&expected), "CSV has {expected:?}:\n{csv}");
    }

    // The list searched as a DSL would: the class and state chosen, then Search.
    let list = runtime.block_on(async {
        driver.goto(format!("{}/reports", server.url)).await.unwrap();
        element(&driver, "#class option[value='Year 2']").await.click().await.unwrap();
        element(&driver, "#state option[value='false_alarm']").await.click().await.unwrap();
        element(&driver, "#search button[type=submit]").await.click().await.unwrap();
        let status = element(&driver, "#search-status").await.text().await.unwrap();
        assert!(status.contains("not added to a search"), "{status}");
        let url = driver.current_url().await.unwrap();
        assert!(
            url.as_str().contains("class=Year+2") && url.as_str().contains("state=false_alarm")
        );
        let row = element(&driver, &format!("#incidents tr[data-incident='{incident}']")).await;
        assert!(row.text().await.unwrap().contains("False alarm"));
        let chosen = element(&driver, "#class option:checked").await.value().await.unwrap();
        assert_eq!(chosen.as_deref(), Some("Year 2"), "the form keeps the search");
        element(&driver, "#state option[value='new']").await.click().await.unwrap();
        element(&driver, "#search button[type=submit]").await.click().await.unwrap();
        element(&driver, "#no-incidents").await;
        driver.screenshot_as_png().await.unwrap()
    });
    std::fs::write("/tmp/dsl-search.png", &list).unwrap();

    runtime.block_on(driver.quit()).unwrap();
    drop(chromedriver);
}

/// Sets a `datetime-local` field as a browser's picker would (typing into one depends on the
/// locale's date order).
async fn set_time(driver: &WebDriver, css: &str, value: &str) {
    let field = element(driver, css).await;
    driver
        .execute("arguments[0].value = arguments[1];", vec![field.to_json().unwrap(), value.into()])
        .await
        .unwrap();
}

/// Records `pupil` (picked by name under `class`) on device 30 from 10:00 to `to`, as a teacher
/// does on the who-had page.
async fn record_ipad_lesson(driver: &WebDriver, base: &str, class: &str, pupil: &str, to: &str) {
    driver.goto(format!("{base}/who-had")).await.unwrap();
    element(driver, "#reg-device").await.send_keys("30").await.unwrap();
    let option = format!("#reg-pupil optgroup[label='{class}'] option");
    let mut picked = false;
    for choice in driver.find_all(By::Css(&option)).await.unwrap() {
        if choice.text().await.unwrap() == pupil {
            choice.click().await.unwrap();
            picked = true;
        }
    }
    assert!(picked, "{pupil} is listed under {class}");
    set_time(driver, "#reg-from", "2026-11-17T10:00").await;
    set_time(driver, "#reg-to", to).await;
    element(driver, "form[action^='/register'] button[type=submit]").await.click().await.unwrap();
}

async fn screenshot(driver: &WebDriver, dir: &Path, name: &str) {
    let png = driver.screenshot_as_png().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    std::fs::write(dir.join(name), &png).unwrap();
    std::fs::write(Path::new("/tmp").join(name), &png).unwrap();
}

#[test]
fn conflicting_ipad_register_lines_show_both_names_and_refused_forms_keep_what_was_typed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"), false);
    let dsl = server.cli(&["staff", "add", "--username", USERNAME, "--role", "dsl", "--totp"]);
    let it =
        server.cli(&["staff", "add", "--username", "it.patel", "--role", "it_admin", "--totp"]);
    server.import_pupil("Year 2", "Amira", "Khan", "ks1");
    server.import_pupil("Year 2", "Ben", "Taylor", "ks1");
    let chromedriver = ChromeDriver::start(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    let driver = runtime.block_on(chromedriver.browser(&dir.path().join("dsl")));
    runtime.block_on(async {
        let (password, code) = (field(&dsl, "one-time password:"), field(&dsl, "totp secret:"));
        let code = totp_code(&code, 0);
        first_sign_in(&driver, &server.url, (USERNAME, "/reports"), &password, NEW_PASSWORD, &code)
            .await;

        // Two lines for iPad 30 and one lesson, each pupil picked by class and name.
        record_ipad_lesson(&driver, &server.url, "Year 2", "Ben T.", "2026-11-17T11:00").await;
        wait_for_path(&driver, "/devices/30").await;
        record_ipad_lesson(&driver, &server.url, "Year 2", "Amira K.", "2026-11-17T11:00").await;
        wait_for_path(&driver, "/devices/30").await;

        driver.goto(format!("{}/who-had", server.url)).await.unwrap();
        element(&driver, "#device").await.send_keys("30").await.unwrap();
        set_time(&driver, "#at", "2026-11-17T10:45").await;
        element(&driver, "form[action='/who-had'] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        let conflict = element(&driver, ".conflict").await.text().await.unwrap();
        assert!(conflict.contains("The records disagree"), "{conflict}");
        assert!(conflict.contains("Amira K.") && conflict.contains("Ben T."), "{conflict}");
        screenshot(&driver, dir.path(), "who-had-conflict.png").await;

        // A line the server refuses comes back with what was typed and why, signed in.
        record_ipad_lesson(&driver, &server.url, "Year 2", "Ben T.", "2026-11-17T09:00").await;
        let error = element(&driver, "p.error").await.text().await.unwrap();
        assert_eq!(error, "To must be after From.");
        assert_eq!(element(&driver, "#reg-device").await.value().await.unwrap().unwrap(), "30");
        let chosen = element(&driver, "#reg-pupil option:checked").await.text().await.unwrap();
        assert_eq!(chosen, "Ben T.");
        let from = element(&driver, "#reg-from").await.value().await.unwrap().unwrap();
        assert_eq!(from, "2026-11-17T10:00");
        assert!(driver.source().await.unwrap().contains("Sign out"));
        screenshot(&driver, dir.path(), "register-refused.png").await;

        // Any other refused form: an error page in the signed-in frame whose way back keeps
        // what was typed.
        driver.goto(format!("{}/commands", server.url)).await.unwrap();
        let devices = element(&driver, "input[name=devices]").await;
        devices.clear().await.unwrap();
        devices.send_keys("12, twelve").await.unwrap();
        element(&driver, "form[action='/commands'] button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        let heading = wait_for_heading(&driver, "Please check the form").await;
        assert_eq!(heading, "Please check the form");
        let page = driver.source().await.unwrap();
        assert!(page.contains("twelve") && page.contains("Sign out"), "{page}");
        assert!(!page.contains(">Sign in<"), "{page}");
        screenshot(&driver, dir.path(), "error-page.png").await;
        element(&driver, "#go-back").await.click().await.unwrap();
        wait_for_path(&driver, "/commands").await;
        let typed = element(&driver, "input[name=devices]").await.value().await.unwrap();
        assert_eq!(typed.as_deref(), Some("12, twelve"), "the browser kept what was typed");
    });
    runtime.block_on(driver.quit()).unwrap();

    // A wrong password is told more than "not right" where that is safe: the usual reason a
    // new account is not known. Then IT's first sign-in ends on a page IT can use, never "Not
    // for your role".
    let driver = runtime.block_on(chromedriver.browser(&dir.path().join("it")));
    runtime.block_on(async {
        let (password, code) = (field(&it, "one-time password:"), field(&it, "totp secret:"));
        sign_in(&driver, &server.url, "it.patel", "not-the-password", "000000").await;
        let refused = element(&driver, "p.error").await.text().await.unwrap();
        assert!(refused.contains("not right") && refused.contains("another data directory"));
        assert_eq!(element(&driver, "#username").await.value().await.unwrap().unwrap(), "it.patel");
        screenshot(&driver, dir.path(), "sign-in-refused.png").await;
        let code = totp_code(&code, 0);
        first_sign_in(&driver, &server.url, ("it.patel", "/fleet"), &password, NEW_PASSWORD, &code)
            .await;
        assert_eq!(wait_for_heading(&driver, "Fleet").await, "Fleet");
    });
    runtime.block_on(driver.quit()).unwrap();
    drop(chromedriver);
}
