//! The `slate-server` binary as IT runs it: start-up lines, the generated certificate reused
//! across restarts, SIGTERM, and the CLI commands (the recovery link among them).

use crate::common::PATIENCE;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_slate-server");

pub(crate) struct Running {
    child: Child,
    pub(crate) url: String,
    dsl: String,
    pub(crate) certificate: PathBuf,
    policy_key: String,
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a start-up line in time")
        .unwrap()
        .expect("the server printed its start-up lines before exiting")
}

pub(crate) async fn start(data_dir: &Path, listen: &str) -> Running {
    let mut child = Command::new(BINARY)
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", listen])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = next_line(&mut lines)
        .await
        .strip_prefix("slate-server listening on ")
        .expect("listening line")
        .to_owned();
    let dsl = next_line(&mut lines).await.strip_prefix("DSL page: ").expect("DSL line").to_owned();
    let certificate =
        next_line(&mut lines).await.strip_prefix("certificate: ").expect("certificate line").into();
    let policy_key =
        next_line(&mut lines).await.strip_prefix("policy key: ").expect("policy key line").into();
    Running { child, url, dsl, certificate, policy_key }
}

pub(crate) async fn terminate(mut running: Running) {
    let pid = running.child.id().unwrap().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(PATIENCE, running.child.wait())
        .await
        .expect("exits on SIGTERM")
        .unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit}");
}

pub(crate) fn client_trusting(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap()
}

#[tokio::test]
async fn serve_prints_its_address_reuses_its_certificate_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");

    let first = start(&data_dir, "127.0.0.1:0").await;
    assert!(first.url.starts_with("https://127.0.0.1:"), "{}", first.url);
    assert_eq!(first.dsl, format!("{}/staff/login", first.url), "no secret in the journal");
    assert_eq!(first.certificate, data_dir.join("tls/cert.pem"));
    let cert = std::fs::read(&first.certificate).unwrap();
    let health = client_trusting(&first.certificate)
        .get(format!("{}/healthz", first.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    let listen = first.url.strip_prefix("https://").unwrap().to_owned();
    let dsl = first.dsl.clone();
    let policy_key = first.policy_key.clone();
    terminate(first).await;

    // Same data directory, same port: the certificate devices trust and the sign-in page stay.
    let second = start(&data_dir, &listen).await;
    assert_eq!(std::fs::read(&second.certificate).unwrap(), cert, "the certificate is reused");
    assert_eq!(second.dsl, dsl);
    assert_eq!(second.policy_key, policy_key, "the policy key devices hold is reused");
    slate_protocol::bundle::verifying_key_from_base64(&policy_key).expect("a public key");
    let health = client_trusting(&second.certificate)
        .get(format!("{}/healthz", second.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    terminate(second).await;
}

async fn run(args: &[&str]) -> std::process::Output {
    tokio::time::timeout(PATIENCE, Command::new(BINARY).args(args).output()).await.unwrap().unwrap()
}

#[tokio::test]
async fn cli_commands_print_a_token_and_save_pupils() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let dir = dir.to_str().unwrap();

    let out = run(&["enrollment-token", "--data-dir", dir, "--device", "12"]).await;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim_end();
    assert_eq!(stdout, format!("{token}\n"), "the token alone");
    assert_eq!(token.len(), 43);

    let out = run(&[
        "pupil",
        "--data-dir",
        dir,
        "add",
        "--id",
        "p-7f3a9c",
        "--name",
        "Amira K.",
        "--class",
        "Year 2",
    ])
    .await;
    assert!(out.status.success(), "{out:?}");

    let bad = run(&[
        "pupil",
        "add",
        "--data-dir",
        dir,
        "--id",
        "p-1",
        "--name",
        &"x".repeat(41),
        "--class",
        "Y",
    ])
    .await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("name is 41 characters"), "{bad:?}");

    let bad = run(&["enrollment-token", "--data-dir", dir, "--device", "10000"]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("device"), "{bad:?}");
}

#[tokio::test]
async fn unloadable_certificate_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.pem");
    std::fs::write(&junk, "junk").unwrap();
    let dir = tmp.path().join("data");
    let out = run(&[
        "serve",
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        junk.to_str().unwrap(),
        "--tls-key",
        junk.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(78), "IT's certificate files are configuration: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.pem"), "{out:?}");
}

#[tokio::test]
async fn staff_add_prints_a_one_time_password_the_totp_uri_and_its_qr_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let dir = dir.to_str().unwrap();
    let out =
        run(&["staff", "add", "--data-dir", dir, "--username", "a.dsl", "--role", "dsl"]).await;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} in {stdout}"))
            .to_owned()
    };
    assert_eq!(field("role"), "dsl");
    assert_eq!(field("one-time password").len(), 20);
    let secret = field("totp secret");
    assert!(
        field("totp uri").starts_with(&format!("otpauth://totp/Slate:a.dsl?secret={secret}&")),
        "{stdout}"
    );
    // The same URI as a QR code for the authenticator app: the auth tests read it back.
    let qr = slate_server::auth::terminal_qr(&field("totp uri")).unwrap();
    assert!(stdout.contains(&format!("(or type the secret above):\n{qr}\n")), "{stdout}");
    // The database keeps the seed sealed with the data directory's key, which is not in it.
    let database = std::path::Path::new(dir).join("slate.sqlite");
    let stored: String = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row("SELECT totp_secret FROM staff WHERE username = 'a.dsl'", [], |r| r.get(0))
        .unwrap();
    assert!(stored.starts_with("sealed1:") && !stored.contains(&secret), "{stored}");
    let key = std::fs::read_to_string(std::path::Path::new(dir).join("totp-key")).unwrap();
    let key_mode = std::fs::metadata(std::path::Path::new(dir).join("totp-key")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777, 0o600);
    let file = std::fs::read(&database).unwrap();
    for needle in [secret.as_bytes(), key.trim().as_bytes()] {
        assert!(
            !file.windows(needle.len()).any(|w| w == needle),
            "neither seed nor key in the file"
        );
    }

    let teacher =
        run(&["staff", "add", "--data-dir", dir, "--username", "t.jones", "--role", "teacher"])
            .await;
    let teacher = String::from_utf8(teacher.stdout).unwrap();
    assert!(teacher.contains("one-time password: ") && !teacher.contains("totp"), "{teacher}");

    let bad =
        run(&["staff", "add", "--data-dir", dir, "--username", "a.dsl", "--role", "head"]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a role"), "{bad:?}");

    let disabled = run(&["staff", "disable", "--data-dir", dir, "--username", "t.jones"]).await;
    assert!(disabled.status.success(), "{disabled:?}");
    assert_eq!(String::from_utf8(disabled.stdout).unwrap(), "disabled: t.jones\n");
    let again = run(&["staff", "disable", "--data-dir", dir, "--username", "t.jones"]).await;
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no enabled staff account"),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_bad_config_file_is_named_with_its_field() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("slate-server.toml");
    let text = "retention_days = 2\n[webhook]\nurl = \"ftp://x\"\n[retention]\nsessions = 0\n";
    std::fs::write(&config, text).unwrap();
    let dir = tmp.path().join("data");
    let out = run(&[
        "serve",
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG, which the unit does not restart: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "plain lines, no colour codes: {stderr}");
    let sessions = "`retention.sessions`: 0 days is shorter than the minimum, 30 days";
    for expected in ["slate-server.toml", "`retention_days`", "`webhook.url`", sessions] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

#[tokio::test]
async fn roster_import_takes_a_whole_file_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let csv = tmp.path().join("roster.csv");
    let (dir_s, csv_s) = (dir.to_str().unwrap(), csv.to_str().unwrap());

    std::fs::write(
        &csv,
        "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\nOak,Ben,,ks1\n",
    )
    .unwrap();
    let bad = run(&["roster", "import", "--data-dir", dir_s, csv_s]).await;
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("roster.csv") && stderr.contains("line 3, column last_name"),
        "{stderr}"
    );

    std::fs::write(
        &csv,
        "class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\nOak,Ben,Taylor,ks1\n",
    )
    .unwrap();
    let out = run(&["roster", "import", "--data-dir", dir_s, csv_s]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "2 pupils added, 0 already there, 1 class added\n",
        "the bad file added nothing"
    );
    let store = slate_server::Store::open(&dir.join("slate.sqlite")).unwrap();
    assert_eq!(store.classes().unwrap()[0].name, "Oak");
}

#[tokio::test]
async fn the_binary_keeps_records_in_postgres_when_told() {
    let cluster = crate::postgres::TestPostgres::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let pupil_add = ["pupil", "add", "--data-dir", dir.to_str().unwrap(), "--id", "p-7f3a9c"];
    let out = Command::new(BINARY)
        .args(pupil_add)
        .args(["--name", "Amira K.", "--class", "Year 2"])
        .env("SLATE_DATABASE_URL", &cluster.url)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!dir.join("slate.sqlite").exists(), "no SQLite file beside PostgreSQL");
    let pupil = slate_protocol::PupilId::new("p-7f3a9c").unwrap();
    assert!(cluster.store().pupil_known(&pupil).unwrap());

    // Pupil data never crosses a network unencrypted: a remote address is refused before any
    // connection is tried (192.0.2.1 is a documentation address).
    let out = run(&[
        "enrollment-token",
        "--data-dir",
        dir.to_str().unwrap(),
        "--device",
        "12",
        "--postgres",
        "postgresql://slate@192.0.2.1/slate",
    ])
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not on this machine"), "{stderr}");
}

/// A value between `before` and the next `"` in an HTML page.
fn value_after<'a>(html: &'a str, before: &str) -> &'a str {
    let start = html.find(before).unwrap_or_else(|| panic!("{before} in {html}")) + before.len();
    html[start..].split(['"', '<']).next().unwrap()
}

#[tokio::test]
async fn a_console_recovery_link_works_once_sets_up_totp_and_is_never_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let dir = data_dir.to_str().unwrap();
    let out =
        run(&["staff", "add", "--data-dir", dir, "--username", "a.dsl", "--role", "dsl"]).await;
    assert!(out.status.success(), "{out:?}");
    let log_path = tmp.path().join("server.log");
    let mut child = Command::new(BINARY)
        .args(["serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--plain-http"])
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = next_line(&mut lines)
        .await
        .strip_prefix("slate-server listening on ")
        .expect("listening line")
        .to_owned();

    let out =
        run(&["staff", "recover", "--data-dir", dir, "--username", "a.dsl", "--url", &url]).await;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let link = stdout.lines().find(|l| l.contains("/staff/recover?token=")).expect("a link");
    assert!(link.starts_with(&format!("{url}/staff/recover?token=")), "{stdout}");
    let token = link.rsplit('=').next().unwrap().to_owned();
    let nobody =
        run(&["staff", "recover", "--data-dir", dir, "--username", "nobody", "--url", &url]).await;
    assert!(!nobody.status.success(), "no such account: no link");

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let login_cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap();
    let login_cookie = login_cookie.to_owned();
    let html = page.text().await.unwrap();
    let secret = value_after(&html, r#"name="secret" value=""#).to_owned();
    let csrf = value_after(&html, r#"name="csrf" value=""#).to_owned();
    let post = |code: String| {
        let form = [
            ("token", token.clone()),
            ("secret", secret.clone()),
            ("code", code),
            ("new", "a brand new password".to_owned()),
            ("confirm", "a brand new password".to_owned()),
            ("csrf", csrf.clone()),
        ];
        client
            .post(format!("{url}/staff/recover"))
            .header("cookie", &login_cookie)
            .form(&form)
            .send()
    };
    let wrong = post("000000".into()).await.unwrap();
    assert_eq!(wrong.status(), 400, "a wrong code changes nothing");
    let code =
        slate_server::auth::totp_code(&secret, slate_server::auth::totp_step(chrono::Utc::now()))
            .unwrap();
    let recovered = post(code.clone()).await.unwrap();
    assert_eq!(recovered.status(), 303);
    assert_eq!(recovered.headers()["location"], "/reports");
    let session = recovered
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("slate_session="))
        .expect("a session (plain HTTP on loopback: no `__Host-` prefix)");
    let again = post(code).await.unwrap();
    assert_eq!(again.status(), 401, "the link works once");
    assert_eq!(client.get(link).send().await.unwrap().status(), 401);

    let audit = client.get(format!("{url}/audit")).header("cookie", &session).send().await;
    let audit = audit.unwrap().text().await.unwrap();
    assert!(audit.contains("made a recovery link") && audit.contains("console"), "{audit}");
    assert!(audit.contains("a.dsl") && audit.contains("recovered account"), "{audit}");

    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    tokio::time::timeout(PATIENCE, child.wait()).await.expect("exits on SIGTERM").unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("/staff/recover"), "requests are logged: {log}");
    assert!(!log.contains(&token), "the link is never logged");
    assert!(!log.contains(&secret), "nor the new TOTP secret");
}

/// Admin commands as root act as the data directory's owner and leave only files it owns;
/// anyone else is refused, told whom to run them as. Needs root (CI runs as root).
#[tokio::test]
async fn admin_commands_run_as_the_data_directory_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: needs root to run as another user");
        return;
    }
    let (owner, other) = (65534, 65533); // nobody, and a uid with no name
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    nix::unistd::chown(&dir, Some(owner.into()), Some(owner.into())).unwrap();
    // Root's own roster file, readable by root alone: read before the switch.
    let roster = tmp.path().join("roster.csv");
    std::fs::write(&roster, "class,first_name,last_name,key_stage\nYear 2,Amira,Khan,KS1\n")
        .unwrap();
    std::fs::set_permissions(&roster, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir_arg = dir.to_str().unwrap();

    let out = run(&["enrollment-token", "--data-dir", dir_arg, "--device", "12"]).await;
    assert!(out.status.success(), "{out:?}");
    let out = run(&["roster", "import", "--data-dir", dir_arg, roster.to_str().unwrap()]).await;
    assert!(out.status.success(), "{out:?}");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let meta = entry.as_ref().unwrap().metadata().unwrap();
        assert_eq!((meta.uid(), meta.gid()), (owner, owner), "{entry:?}");
    }

    // A copy the other user may run (the target directory may be under root's private home).
    let binary = tmp.path().join("slate-server");
    std::fs::copy(BINARY, &binary).unwrap();
    let refused = tokio::time::timeout(
        PATIENCE,
        Command::new(&binary)
            .args(["enrollment-token", "--data-dir", dir_arg, "--device", "13"])
            .uid(other)
            .gid(other)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(&format!("{dir_arg} belongs to the user nobody"))
            && said.contains("not as uid 65533"),
        "{said}"
    );
}

#[tokio::test]
async fn an_admin_command_on_another_data_directory_than_the_running_servers_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("demo-data");
    let other = tmp.path().join("elsewhere");
    let running = start(&served, "127.0.0.1:0").await;
    let served = std::fs::canonicalize(&served).unwrap();

    let add = |dir: &Path| {
        let dir = dir.to_str().unwrap().to_owned();
        async move {
            run(&["staff", "add", "--data-dir", &dir, "--username", "head", "--role", "teacher"])
                .await
        }
    };
    let elsewhere = add(&other).await;
    assert!(elsewhere.status.success(), "{elsewhere:?}");
    let said = String::from_utf8_lossy(&elsewhere.stderr);
    let other = std::fs::canonicalize(&other).unwrap();
    assert!(
        said.contains(&format!(
            "no running slate-server uses the data directory {}",
            other.display()
        )),
        "{said}"
    );
    let pid = running.child.id().unwrap();
    assert!(
        said.contains(&format!("slate-server (pid {pid}) uses {}", served.display()))
            && said.contains(&format!("--data-dir {}", served.display())),
        "names the running server's directory: {said}"
    );

    let here = add(&served).await;
    assert!(here.status.success(), "{here:?}");
    let said = String::from_utf8_lossy(&here.stderr);
    assert!(!said.contains("no running slate-server uses"), "the running server's own: {said}");
    terminate(running).await;
}

/// `slate-server init` as IT runs it once: the school's CA, a server certificate for the names
/// devices use, the policy key and the first DSL. The served certificate then checks against the
/// CA alone, by the name given and not by another; a second run keeps the CA; a server whose
/// devices trust its first certificate is not given a new CA.
#[tokio::test]
async fn init_makes_the_school_ca_and_a_certificate_devices_reach_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let dir = data_dir.to_str().unwrap();
    let init = |extra: &'static [&'static str]| {
        let mut args = vec!["init", "--data-dir", dir, "--school", "Oakfield Primary"];
        args.extend_from_slice(&["--host", "slate.oakfield.test", "--host", "10.20.0.5"]);
        args.extend_from_slice(extra);
        async move { run(&args).await }
    };
    let first = init(&["--dsl", "head"]).await;
    assert!(first.status.success(), "{first:?}");
    let said = String::from_utf8(first.stdout).unwrap();
    assert!(said.contains("(made now)") && said.contains("server-ca.pem"), "{said}");
    assert!(
        said.contains("server certificate for: slate.oakfield.test, 10.20.0.5, localhost"),
        "{said}"
    );
    assert!(said.contains("totp secret: ") && said.contains("policy key: "), "{said}");
    let ca = std::fs::read(data_dir.join("tls/ca.pem")).unwrap();
    let again = init(&["--dsl", "head"]).await;
    let said = String::from_utf8(again.stdout).unwrap();
    assert!(said.contains("(kept from before)") && said.contains("exists already"), "{said}");
    assert_eq!(
        std::fs::read(data_dir.join("tls/ca.pem")).unwrap(),
        ca,
        "the CA every card trusts stays"
    );

    let running = start(&data_dir, "127.0.0.1:0").await;
    assert_eq!(
        running.certificate,
        data_dir.join("tls/ca.pem"),
        "devices are told to trust the CA"
    );
    let port = running.url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let client = |name: &str| {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(PATIENCE)
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .resolve(name, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .build()
            .unwrap()
    };
    let by_name =
        client("slate.oakfield.test").get(format!("https://slate.oakfield.test:{port}/healthz"));
    assert_eq!(by_name.send().await.expect("trusted by the school CA").status(), 200);
    let other =
        client("other.oakfield.test").get(format!("https://other.oakfield.test:{port}/healthz"));
    assert!(other.send().await.is_err(), "a name the certificate does not cover is refused");
    terminate(running).await;

    // A server devices already trust by its first (self-signed) certificate: no new CA.
    let old = tmp.path().join("old");
    let old_dir = old.to_str().unwrap();
    let made = run(&["enrollment-token", "--data-dir", old_dir, "--device", "2"]).await;
    assert!(made.status.success(), "{made:?}");
    let store = slate_server::Store::open(&old.join("slate.sqlite")).unwrap();
    let token = store
        .issue_enrollment_token(
            slate_protocol::DeviceNumber::new(1).unwrap(),
            chrono::Duration::hours(1),
            chrono::Utc::now(),
        )
        .unwrap();
    let credential = slate_server::secrets::Secret::generate();
    store
        .enroll(
            &token.hash(),
            slate_protocol::DeviceNumber::new(1).unwrap(),
            &credential.hash(),
            "0.1.0",
            chrono::Utc::now(),
        )
        .unwrap();
    drop(store);
    let refused = run(&["init", "--data-dir", old_dir, "--school", "X", "--host", "a.test"]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("would cut them off"), "{refused:?}");
}

/// `provision sign` as IT runs it: nothing before `init` made the policy key, a bad line signs
/// nothing (and leaves `--out` as it was), a good file becomes a provisioning bundle the
/// school's key opens and no other does, private to IT, and the signing is audited.
#[tokio::test]
async fn provision_sign_signs_a_checked_file_with_the_policy_key() {
    use slate_protocol::bundle::{verifying_key_from_base64, BundleKind, SignedBundle};
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let dir = data_dir.to_str().unwrap();
    let conf = tmp.path().join("slate-provision.conf");
    let out = tmp.path().join("slate-provision.signed");
    let (conf_arg, out_arg) = (conf.to_str().unwrap(), out.to_str().unwrap());
    let sign_args = ["provision", "sign", "--data-dir", dir, "--file", conf_arg, "--out", out_arg];
    let sign = || run(&sign_args);
    let text = "wifi_ssid = \"School-Devices\"\nwifi_psk = \"correct horse battery staple\"\n\
                ssh_authorized_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBseSv9dWqz1f0IbmPlxR8Cz0nTutw3XoB7A2cqbbeB7 it@school\"]\n";
    std::fs::write(&conf, text).unwrap();

    let early = sign().await;
    assert!(!early.status.success(), "{early:?}");
    assert!(String::from_utf8_lossy(&early.stderr).contains("run `slate-server init` first"));
    assert!(!data_dir.join("policy-key").exists(), "no key is made that no device trusts");

    let init =
        run(&["init", "--data-dir", dir, "--school", "Oakfield", "--host", "slate.test"]).await;
    assert!(init.status.success(), "{init:?}");
    let said = String::from_utf8(init.stdout).unwrap();
    let key = said.split("policy key: ").nth(1).unwrap().split(' ').next().unwrap();
    let key = verifying_key_from_base64(key).unwrap();

    std::fs::write(&out, "the last good one").unwrap();
    std::fs::write(&conf, format!("{text}camera = \"on\"\n")).unwrap();
    let bad = sign().await;
    assert!(!bad.status.success(), "{bad:?}");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("refused, nothing signed") && err.contains("line 4: field `camera`"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "the last good one");

    std::fs::write(&conf, text).unwrap();
    let good = sign().await;
    assert!(good.status.success(), "{good:?}");
    let said = String::from_utf8_lossy(&good.stdout);
    assert!(said.contains("slate-provision.signed") && said.contains("1 ssh key(s)"), "{said}");
    assert!(!said.contains("correct horse"), "{said}");
    let signed = std::fs::read(&out).unwrap();
    assert_eq!(SignedBundle::open_as(BundleKind::Provisioning, &signed, &key).unwrap(), text);
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
    assert!(SignedBundle::open_as(BundleKind::Provisioning, &signed, &other).is_err());
    assert!(SignedBundle::open_as(BundleKind::KioskPolicy, &signed, &key).is_err());
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "it holds the Wi-Fi password");

    let store = slate_server::Store::open(&data_dir.join("slate.sqlite")).unwrap();
    let audit = store.audit_log(10).unwrap();
    let entry = audit.iter().find(|e| e.action == "signed a provisioning file").expect("audited");
    assert_eq!(entry.actor, "console");
    assert!(!format!("{entry:?}").contains("correct horse"), "{entry:?}");
}
