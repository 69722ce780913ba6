use super::*;
use crate::apps::{AppsCall, FakeApps};
use crate::core::SequentialIds;
use crate::display::{DisplayCall, FakeBlank, FakeDisplay};
use crate::staff::StaffPin;
use slate_ipc::control::{Pictures, Pin};
use slate_protocol::staff::StaffPins;
use slate_protocol::{PupilId, StaffId};

fn t(s: &str) -> DateTime<Utc> {
    format!("2026-11-17T{s}Z").parse().unwrap()
}

struct Harness {
    dir: tempfile::TempDir,
    spool: SharedSpool,
    display: FakeDisplay,
    apps: FakeApps,
    control: mpsc::Sender<ControlMsg>,
    presses: mpsc::Sender<ButtonEvent>,
    shutdown: Option<oneshot::Sender<()>>,
    driver: Option<JoinHandle<()>>,
    led: watch::Receiver<crate::led::LedPattern>,
}

type TestDriver = Driver<FakeDisplay, FakeApps, SequentialIds>;

impl Harness {
    /// With the test staff PIN ([`TEST_PIN`]) in force, as every real device needs.
    fn start(blank: FakeBlank) -> Self {
        Self::start_with(blank, rules_with_pin(), Some(test_pin())).0
    }

    /// With rules and a staff PIN; also gives the button-fault receiver.
    fn start_with(
        blank: FakeBlank,
        rules: crate::core::Rules,
        pin: Option<StaffPin>,
    ) -> (Self, watch::Receiver<Option<ButtonFault>>) {
        Self::start_with_dns(blank, rules, pin, DnsSocket::default())
    }

    fn start_with_dns(
        blank: FakeBlank,
        rules: crate::core::Rules,
        pin: Option<StaffPin>,
        dns: DnsSocket,
    ) -> (Self, watch::Receiver<Option<ButtonFault>>) {
        Self::start_custom(blank, rules, pin, tempfile::tempdir().unwrap(), |d| d.with_dns(dns))
    }

    /// The usual device (dark at 10:00, the test PIN) with the driver changed by `custom`.
    fn with_driver(
        custom: impl FnOnce(TestDriver) -> TestDriver,
    ) -> (Self, watch::Receiver<Option<ButtonFault>>) {
        Self::start_custom(
            FakeBlank::DarkAt(t("10:00:00")),
            rules_with_pin(),
            Some(test_pin()),
            tempfile::tempdir().unwrap(),
            custom,
        )
    }

    /// With the driver changed by `custom` before it runs, in `dir`.
    fn start_custom(
        blank: FakeBlank,
        rules: crate::core::Rules,
        pin: Option<StaffPin>,
        dir: tempfile::TempDir,
        custom: impl FnOnce(TestDriver) -> TestDriver,
    ) -> (Self, watch::Receiver<Option<ButtonFault>>) {
        let (spool, _) = Spool::open(&dir.path().join("spool")).unwrap();
        let spool = SharedSpool::new(spool);
        let display = FakeDisplay::new(blank);
        let apps = FakeApps::default();
        let driver = Driver::new(
            Core::with_rules(DeviceNumber::new(12).unwrap(), rules),
            SequentialIds::default(),
            display.clone(),
            apps.clone(),
            spool.clone(),
            Arc::new(Notify::new()),
            Arc::new(AtomicBool::new(false)),
        )
        .with_staff_pin(pin);
        // Sign-in needs the pupil on a roster: these tests' pupils are on this one.
        let mut driver = driver;
        driver.kiosk = Some(roster_policy(&["p-1", "p-2", "p-7f3a9c"]));
        let driver = custom(driver);
        let fault = driver.button_fault();
        let led = driver.led();
        let (control, control_rx) = mpsc::channel(4);
        let (presses, press_rx) = mpsc::channel(4);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let driver = tokio::spawn(driver.run(press_rx, control_rx, shutdown_rx));
        let harness = Harness {
            dir,
            spool,
            display,
            apps,
            control,
            presses,
            shutdown: Some(shutdown),
            driver: Some(driver),
            led,
        };
        (harness, fault)
    }

    async fn ask_at(&self, request: Request, received_at: DateTime<Utc>) -> Reply {
        let (tx, rx) = oneshot::channel();
        let msg = ControlMsg { request, from: Role::Root, app: None, received_at, reply: tx };
        self.control.send(msg).await.unwrap();
        rx.await.unwrap()
    }

    async fn ask_from(&self, request: Request, from: Role, app: Option<AppProcess>) -> Reply {
        let (tx, rx) = oneshot::channel();
        let msg = ControlMsg { request, from, app, received_at: Utc::now(), reply: tx };
        self.control.send(msg).await.unwrap();
        rx.await.unwrap()
    }

    async fn ask(&self, request: Request) -> Reply {
        self.ask_at(request, Utc::now()).await
    }

    fn spooled(&self) -> Vec<Event> {
        self.spool.oldest(usize::MAX)
    }

    async fn stop(&mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        self.driver.take().unwrap().await.unwrap();
    }
}

/// The staff PIN the harness's device has.
const TEST_PIN: &str = "4321";

/// [`TEST_PIN`]'s hash, made once (argon2 is slow on purpose).
fn test_pin() -> StaffPin {
    static PIN: std::sync::OnceLock<StaffPin> = std::sync::OnceLock::new();
    PIN.get_or_init(|| StaffPin::hash(TEST_PIN).unwrap()).clone()
}

fn rules_with_pin() -> crate::core::Rules {
    crate::core::Rules { pin_in_force: true, ..crate::core::Rules::default() }
}

/// The sample policy with these pupils added to its first class.
fn roster_policy(pupils: &[&str]) -> KioskPolicy {
    let mut policy =
        slate_protocol::kiosk::parse_policy(slate_protocol::kiosk::SAMPLE_POLICY).unwrap();
    let template = policy.classes[0].pupils[0].clone();
    for id in pupils {
        let mut pupil = template.clone();
        pupil.id = PupilId::new(*id).unwrap();
        pupil.picture_pin = None;
        policy.classes[0].pupils.push(pupil);
    }
    policy
}

/// A member of staff unlocks with the right PIN.
fn unlock() -> Request {
    Request::Unlock { pin: Some(Pin(TEST_PIN.into())), choice: None, staff: None }
}

fn sign_in(p: &str) -> Request {
    Request::SignIn { pupil: PupilId::new(p).unwrap(), pictures: None }
}

#[tokio::test]
async fn a_control_press_is_answered_after_the_report_is_on_disk() {
    let h = Harness::start(FakeBlank::DarkAt(t("10:14:03.161250")));
    let reply = h
        .ask(Request::Foreground {
            app: "browser".into(),
            url: Some("https://example.org/x".into()),
            title: Some("A page".into()),
            pid: None,
        })
        .await;
    assert!(reply.ok);
    let reply = h.ask_at(Request::Press {}, t("10:14:03.120")).await;
    assert!(reply.ok, "{reply:?}");
    let report = reply.report.expect("the report's id");
    assert_eq!(reply.already_held, None);

    // On disk, not just in memory: reopen the file.
    let (on_disk, _) = Spool::open(&h.dir.path().join("spool")).unwrap();
    let event =
        on_disk.pending().iter().find(|e| e.id == report).expect("the report is spooled").clone();
    assert_eq!(event.at, t("10:14:03.120"));
    assert_eq!(
        event.body,
        EventBody::ReportFiled {
            session: None,
            pupil: None,
            app: Some("browser".into()),
            url: Some("https://example.org/x".into()),
            page_title: Some("A page".into()),
            blank_latency_us: Some(41_250),
            recent_names: vec![],
            origin: slate_protocol::ReportOrigin::Button,
        }
    );
    assert_eq!(h.display.calls(), vec![DisplayCall::Blank(report), DisplayCall::Reassure]);
    assert_eq!(
        h.apps.calls(),
        vec![
            AppsCall::Foreground(None),
            AppsCall::Muted(true),
            AppsCall::Stop,
            AppsCall::Muted(false)
        ]
    );
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.state.as_deref(), Some("held"));
    assert_eq!(status.spool_pending, Some(1));
}

#[tokio::test]
async fn a_second_press_while_held_files_nothing_new() {
    let h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    let first = h.ask(Request::Press {}).await.report.unwrap();
    let again = h.ask(Request::Press {}).await;
    assert_eq!((again.ok, again.report, again.already_held), (true, Some(first), Some(true)));
    h.presses.send(ButtonEvent::Down { at: Utc::now() }).await.unwrap();
    let _ = h.ask(Request::Status {}).await; // the press above has been handled by now
    assert_eq!(h.spooled().len(), 1);
    assert_eq!(h.display.calls().len(), 2, "blank and reassure once");
}

#[tokio::test]
async fn the_physical_button_files_a_report_with_the_session() {
    let h = Harness::start(FakeBlank::DarkAt(t("09:30:00.020")));
    let session = h.ask(sign_in("p-7f3a9c")).await.session.unwrap();
    h.presses.send(ButtonEvent::Down { at: t("09:30:00") }).await.unwrap();
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.state.as_deref(), Some("held"));
    let events = h.spooled();
    assert_eq!(events.len(), 2);
    assert!(matches!(
        &events[1].body,
        EventBody::ReportFiled { session: Some(s), pupil: Some(p), blank_latency_us: Some(20_000), .. }
            if *s == session && p.as_str() == "p-7f3a9c"
    ));
}

#[tokio::test(start_paused = true)]
async fn a_display_that_never_answers_still_gets_the_report_filed() {
    let h = Harness::start(FakeBlank::Hang);
    let reply = h.ask(Request::Press {}).await;
    let report = reply.report.expect("filed after the timeout");
    let events = h.spooled();
    assert_eq!(events[0].id, report);
    assert!(matches!(events[0].body, EventBody::ReportFiled { blank_latency_us: None, .. }));
    // No reassurance over a screen that may not be dark? It is still shown: the message itself
    // covers the screen.
    assert_eq!(h.display.calls(), vec![DisplayCall::Blank(report), DisplayCall::Reassure]);
}

#[tokio::test]
async fn a_failed_blank_still_files() {
    let h = Harness::start(FakeBlank::Fail);
    let reply = h.ask(Request::Press {}).await;
    assert!(reply.ok);
    assert!(matches!(h.spooled()[0].body, EventBody::ReportFiled { blank_latency_us: None, .. }));
}

/// An app that could not be frozen might still play: the sound stays off through the hold, and
/// comes back on only when the staff close it.
#[tokio::test]
async fn a_stop_that_fails_keeps_the_sound_off_until_the_unlock() {
    let h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    h.apps.stop_fails.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(h.ask(Request::Press {}).await.ok);
    assert_eq!(h.apps.calls(), vec![AppsCall::Muted(true), AppsCall::Stop]);
    assert_eq!(h.ask(unlock()).await, Reply::ok());
    assert_eq!(
        h.apps.calls(),
        vec![AppsCall::Muted(true), AppsCall::Stop, AppsCall::Close, AppsCall::Muted(false)]
    );
}

#[tokio::test]
async fn held_refuses_sign_in_until_staff_unlock_then_the_session_resumes() {
    let h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    let session = h.ask(sign_in("p-1")).await.session.unwrap();
    h.ask(Request::Press {}).await;
    assert_eq!(
        h.ask(sign_in("p-2")).await,
        Reply::error("the device is held until a member of staff unlocks it")
    );
    assert_eq!(
        h.ask(Request::SignOut {}).await.error.as_deref(),
        Some("the device is held until a member of staff unlocks it")
    );
    assert_eq!(h.ask(unlock()).await, Reply::ok());
    assert_eq!(h.ask(unlock()).await, Reply::error("the device is not held"));
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.state.as_deref(), Some("in_session"));
    assert_eq!(h.display.calls().last(), Some(&DisplayCall::Restore));
    assert_eq!(
        h.apps.calls(),
        vec![
            AppsCall::Muted(true),
            AppsCall::Stop,
            AppsCall::Muted(false),
            AppsCall::Close,
            AppsCall::Muted(false)
        ]
    );
    assert_eq!(h.ask(Request::SignOut {}).await, Reply::ok());
    let kinds: Vec<&str> = h.spooled().iter().map(|e| e.body.kind()).collect();
    assert_eq!(kinds, ["session_started", "report_filed", "report_resolved", "session_ended"]);
    assert!(
        matches!(h.spooled()[3].body, EventBody::SessionEnded { session: s, .. } if s == session)
    );
}

#[tokio::test]
async fn the_foreground_is_forgotten_between_pupils() {
    let h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    h.ask(sign_in("p-1")).await;
    h.ask(Request::Foreground {
        app: "browser".into(),
        url: Some("https://a.example/".into()),
        title: None,
        pid: None,
    })
    .await;
    h.ask(Request::SignOut {}).await;
    h.ask(sign_in("p-2")).await;
    h.ask(Request::Press {}).await;
    let events = h.spooled();
    assert!(matches!(
        &events.last().unwrap().body,
        EventBody::ReportFiled { app: None, url: None, .. }
    ));
}

#[tokio::test]
async fn status_reports_the_device() {
    let h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    let status = h.ask(Request::Status {}).await;
    assert_eq!(
        status,
        Reply {
            ok: true,
            device: Some(DeviceNumber::new(12).unwrap()),
            state: Some("idle".into()),
            spool_pending: Some(0),
            enrolled: Some(false),
            screens_locked: Some(false),
            staff_pin: Some(true),
            button_test: Some(false),
            ..Reply::default()
        }
    );
}

#[tokio::test]
async fn shutting_down_puts_the_open_session_on_record() {
    let mut h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    h.ask(sign_in("p-1")).await;
    h.stop().await;
    let events = h.spooled();
    assert!(matches!(
        events.last().unwrap().body,
        EventBody::SessionEnded { reason: slate_protocol::SessionEndReason::DeviceRestarted, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn an_unwritable_spool_keeps_events_in_memory_and_retries_in_order() {
    let h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    let spool_dir = h.dir.path().join("spool");
    // The spool directory vanishes (think: a card remounted read-only and back).
    std::fs::remove_dir_all(&spool_dir).unwrap();
    let session = h.ask(sign_in("p-1")).await;
    assert!(session.ok, "the sign-in itself happened");
    let reply = h.ask(Request::Press {}).await;
    assert!(!reply.ok);
    assert!(reply.error.as_deref().unwrap().contains("kept in memory"), "{reply:?}");
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.spool_pending, Some(2));
    assert_eq!(status.storage_fault, Some(slate_protocol::StorageFault::Unwritable));
    let kinds: Vec<&str> = h.spooled().iter().map(|e| e.body.kind()).collect();
    assert_eq!(kinds, ["session_started", "report_filed"], "uploadable from memory");

    std::fs::create_dir_all(&spool_dir).unwrap();
    // Within the retry interval (virtual time), both are written, oldest first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while h.spool.with(|s| s.in_memory()).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "never retried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (on_disk, _) = Spool::open(&spool_dir).unwrap();
    let kinds: Vec<&str> = on_disk.pending().iter().map(|e| e.body.kind()).collect();
    assert_eq!(kinds, ["session_started", "report_filed"]);
    assert_eq!(h.ask(Request::Status {}).await.storage_fault, None);
}

#[tokio::test]
// The spool is held still on purpose while the driver works: the driver's write waits on the
// blocking pool, not on this task.
#[allow(clippy::await_holding_lock)]
async fn the_hold_is_recorded_with_its_report_before_the_report_is_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let held_file = dir.path().join(HELD_FILE);
    let path = held_file.clone();
    let (h, _) = Harness::start_custom(
        FakeBlank::DarkAt(t("10:00:00")),
        rules_with_pin(),
        Some(test_pin()),
        dir,
        |d| d.with_held_file(path, None),
    );
    let spool = h.spool.clone();
    let still = spool.hold_still();
    let control = h.control.clone();
    let press = tokio::spawn(async move {
        let (tx, rx) = oneshot::channel();
        let msg = ControlMsg {
            request: Request::Press {},
            from: Role::Root,
            app: None,
            received_at: Utc::now(),
            reply: tx,
        };
        control.send(msg).await.unwrap();
        rx.await.unwrap()
    });
    // The spool cannot be written yet: the hold must already be on record, with its report.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let recorded = loop {
        if let Some(report) = load_held_report(held_file.parent().unwrap()) {
            break report;
        }
        assert!(tokio::time::Instant::now() < deadline, "the hold waited for the spool");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(still.is_empty(), "nothing spooled yet");
    drop(still);
    let reply = press.await.unwrap();
    assert_eq!(reply.report, Some(recorded.id));
    assert_eq!(h.spooled(), vec![recorded], "the same report, as recorded");
}

#[tokio::test]
async fn a_hold_recorded_before_a_stop_files_its_report_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = Spool::open(&dir.path().join("spool")).unwrap();
    let report = Event::new(
        DeviceNumber::new(12).unwrap(),
        t("10:00:00"),
        EventBody::ReportFiled {
            session: None,
            pupil: None,
            app: None,
            url: None,
            page_title: None,
            blank_latency_us: Some(1000),
            recent_names: Vec::new(),
            origin: Default::default(),
        },
    );
    // Stopped after the hold was recorded, before the report was spooled.
    std::fs::write(dir.path().join(HELD_FILE), serde_json::to_vec(&report).unwrap()).unwrap();
    let held = load_held_report(dir.path()).expect("the whole report is on record");
    assert_eq!(load_held(dir.path()), Some(report.id));
    assert!(refile_held_report(&mut spool, &held).unwrap(), "filed from the record");
    assert!(!refile_held_report(&mut spool, &held).unwrap(), "only once");
    assert_eq!(spool.pending(), vec![report]);
    // An older version's record (the id alone) still restores the hold.
    std::fs::write(dir.path().join(HELD_FILE), format!("{}\n", held.id)).unwrap();
    assert_eq!(load_held(dir.path()), Some(held.id));
    assert_eq!(load_held_report(dir.path()), None);
}

fn unlock_with(pin: &str, choice: ResolutionChoice, staff: Option<&str>) -> Request {
    Request::Unlock {
        pin: Some(Pin(pin.into())),
        choice: Some(choice),
        staff: staff.map(|s| StaffId::new(s).unwrap()),
    }
}

fn pin_rules() -> crate::core::Rules {
    crate::core::Rules {
        pin_in_force: true,
        lockout: crate::core::Lockout {
            wrong_before_lockout: 2,
            first: Duration::from_secs(60),
            max: Duration::from_secs(600),
        },
        ..crate::core::Rules::default()
    }
}

#[tokio::test]
async fn the_staff_pin_unlocks_wrong_ones_lock_out_and_the_choice_is_filed() {
    let pin = StaffPin::hash("4321").unwrap();
    let (h, _) = Harness::start_with(FakeBlank::DarkAt(t("10:00:00")), pin_rules(), Some(pin));
    // Not held: refused before the PIN is looked at.
    assert_eq!(
        h.ask(unlock_with("0000", ResolutionChoice::CloseApp, None)).await.error.as_deref(),
        Some("the device is not held")
    );
    let report = h.ask(Request::Press {}).await.report.unwrap();
    let no_pin = Request::Unlock { pin: None, choice: None, staff: None };
    assert_eq!(h.ask(no_pin).await.error.as_deref(), Some("the staff PIN is required to unlock"));
    let wrong = h.ask(unlock_with("1111", ResolutionChoice::CloseApp, None)).await;
    assert!(wrong.error.as_deref().unwrap().starts_with("wrong staff PIN (1 more"), "{wrong:?}");
    let locked = h.ask(unlock_with("2222", ResolutionChoice::CloseApp, None)).await;
    assert!(!locked.ok);
    let until = locked.locked_until.expect("the lockout's end");
    assert!(until > Utc::now() + chrono::Duration::seconds(55), "{until}");
    // Locked: the right PIN does not help yet.
    let still = h.ask(unlock_with("4321", ResolutionChoice::FalseAlarm, None)).await;
    assert_eq!(still.locked_until, Some(until));
    let status = h.ask(Request::Status {}).await;
    assert_eq!((status.state.as_deref(), status.locked_until), (Some("held"), Some(until)));
    let kinds: Vec<&str> = h.spooled().iter().map(|e| e.body.kind()).collect();
    // A wrong PIN files nothing; the lockout, though refused, files its security breach.
    assert_eq!(kinds, ["report_filed", "security_breach"]);
    assert_eq!(h.apps.calls(), vec![AppsCall::Muted(true), AppsCall::Stop, AppsCall::Muted(false)]);
    let _ = report;
}

#[tokio::test]
async fn the_right_pin_files_the_staff_choice_and_resumes_on_a_false_alarm() {
    let pin = StaffPin::hash("4321").unwrap();
    let (h, _) = Harness::start_with(FakeBlank::DarkAt(t("10:00:00")), pin_rules(), Some(pin));
    let paint =
        || Request::Foreground { app: "paint".into(), url: None, title: None, pid: Some(4242) };
    // A pid whose cgroup the control socket did not check is never stopped.
    h.ask(paint()).await;
    assert_eq!(h.apps.calls(), vec![AppsCall::Foreground(None)]);
    h.apps.calls.lock().unwrap().clear();
    let app = AppProcess { pid: 4242, cgroup: "/s/slate-app-1-1".into() };
    h.ask_from(paint(), Role::Kiosk, Some(app)).await;
    let report = h.ask(Request::Press {}).await.report.unwrap();
    let wrong = h.ask(unlock_with("1111", ResolutionChoice::CloseApp, None)).await;
    assert!(!wrong.ok);
    // The client names someone; the unlock records whose PIN it was: IT's, from slate.toml.
    let reply = h.ask(unlock_with("4321", ResolutionChoice::FalseAlarm, Some("t-04"))).await;
    assert_eq!(reply, Reply::ok());
    let events = h.spooled();
    assert_eq!(
        events[1].body,
        EventBody::ReportResolved {
            report,
            choice: ResolutionChoice::FalseAlarm,
            staff: Some(StaffId::new(slate_protocol::staff::IT_STAFF_ID).unwrap()),
        }
    );
    assert_eq!(
        h.apps.calls(),
        vec![
            AppsCall::Foreground(Some(4242)),
            AppsCall::Muted(true),
            AppsCall::Stop,
            AppsCall::Muted(false),
            AppsCall::Resume,
            AppsCall::Muted(false)
        ]
    );
    assert_eq!(h.display.calls().last(), Some(&DisplayCall::Restore));
    assert_eq!(h.ask(Request::Status {}).await.state.as_deref(), Some("idle"));
}

#[tokio::test(start_paused = true)]
async fn a_button_held_down_too_long_is_a_fault_until_released() {
    let rules = crate::core::Rules { stuck_after: Duration::from_secs(10), ..pin_rules() };
    let (h, mut fault) = Harness::start_with(FakeBlank::DarkAt(t("10:00:00")), rules, None);
    h.presses.send(ButtonEvent::Down { at: Utc::now() }).await.unwrap();
    assert_eq!(h.ask(Request::Status {}).await.state.as_deref(), Some("held"));
    assert_eq!(*fault.borrow(), None);
    // The driver sleeps until the stuck deadline by the wall clock; paused tokio time advances
    // the sleep, so wait on the channel rather than on time.
    tokio::time::timeout(Duration::from_secs(30), fault.changed()).await.unwrap().unwrap();
    assert_eq!(*fault.borrow_and_update(), Some(ButtonFault::Stuck));
    assert_eq!(h.ask(Request::Status {}).await.button_fault, Some(ButtonFault::Stuck));
    h.presses.send(ButtonEvent::Up { at: Utc::now() }).await.unwrap();
    fault.changed().await.unwrap();
    assert_eq!(*fault.borrow(), None);
    h.presses.send(ButtonEvent::Present(false)).await.unwrap();
    fault.changed().await.unwrap();
    assert_eq!(*fault.borrow(), Some(ButtonFault::Missing));
    assert_eq!(h.spooled().len(), 1, "one report for one long press");
}

#[tokio::test]
async fn the_led_shows_ready_waiting_and_fault() {
    use crate::led::LedPattern;
    let (h, _) =
        Harness::start_with(FakeBlank::DarkAt(t("10:00:00")), rules_with_pin(), Some(test_pin()));
    let _ = h.ask(Request::Status {}).await;
    // The harness has no uploader: a filed report stays waiting.
    let led = h.led.clone();
    assert_eq!(*led.borrow(), LedPattern::Steady);
    h.ask(Request::Press {}).await;
    assert_eq!(*led.borrow(), LedPattern::FastBlink);
    // Delivered: the server acknowledged everything.
    let ids: Vec<_> = h.spooled().iter().map(|e| e.id).collect();
    h.spool.with(move |s| s.acknowledge(&ids)).await.unwrap();
    let _ = h.ask(Request::Status {}).await;
    assert_eq!(*led.borrow(), LedPattern::SlowBlink);
    h.presses.send(ButtonEvent::Present(false)).await.unwrap();
    let _ = h.ask(Request::Status {}).await;
    assert_eq!(*led.borrow(), LedPattern::Off);
    h.presses.send(ButtonEvent::Present(true)).await.unwrap();
    assert_eq!(h.ask(unlock()).await, Reply::ok());
    let ids: Vec<_> = h.spooled().iter().map(|e| e.id).collect();
    h.spool.with(move |s| s.acknowledge(&ids)).await.unwrap();
    let _ = h.ask(Request::Status {}).await;
    assert_eq!(*led.borrow(), LedPattern::Steady);
}

#[tokio::test]
async fn pupil_requests_are_filed_with_the_session_or_refused_without_one() {
    let h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    let app = || Request::AppOpened { app: "maths".into() };
    assert_eq!(h.ask(app()).await, Reply::error("nobody is signed in"));
    assert_eq!(h.ask(Request::Activity {}).await, Reply::error("nobody is signed in"));
    h.ask(sign_in("p-1")).await;
    assert_eq!(h.ask(app()).await, Reply::ok());
    let aup = Request::AupAccepted {
        key_stage: "ks2".into(),
        text_version: "ks2-0a1b2c3d".into(),
        school_version: None,
    };
    assert_eq!(h.ask(aup).await, Reply::ok());
    assert_eq!(h.ask(Request::Activity {}).await, Reply::ok());
    let blocked = Request::FilterBlocked {
        layer: slate_protocol::FilterLayer::Dns,
        target: "x.example".into(),
        rule: "exact:x.example".into(),
        list: "adult".into(),
    };
    assert_eq!(h.ask(blocked).await, Reply::ok());
    let usb = Request::DeviceRefused {
        kind: slate_protocol::RefusedDevice::UsbStorage,
        description: "0781:5567 SanDisk".into(),
    };
    assert_eq!(h.ask(usb).await, Reply::ok());
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.pupil, Some(PupilId::new("p-1").unwrap()));
    let kinds: Vec<_> = h.spooled().iter().map(|e| e.body.kind()).collect();
    assert_eq!(
        kinds,
        ["session_started", "app_opened", "aup_accepted", "filter_blocked", "device_refused"]
    );
    for e in h.spooled() {
        match &e.body {
            EventBody::AppOpened { pupil, .. } | EventBody::AupAccepted { pupil, .. } => {
                assert_eq!(pupil.as_str(), "p-1")
            }
            EventBody::FilterBlocked { pupil, .. } => {
                assert_eq!(pupil.as_ref().map(|p| p.as_str()), Some("p-1"))
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn reports_carry_the_names_slate_dns_saw_and_tell_teacher_holds_nothing() {
    let sock = tempfile::tempdir().unwrap();
    let path = sock.path().join("dns.sock");
    let _dns = crate::dns::fake::serve(
        &path,
        vec!["newest.example".into(), "older.example".into()],
        Duration::ZERO,
    );
    let (h, _) = Harness::start_with_dns(
        FakeBlank::DarkAt(t("10:00:00")),
        rules_with_pin(),
        Some(test_pin()),
        DnsSocket::new(Some(path)),
    );
    h.ask(sign_in("p-1")).await;
    let tell = Request::TellTeacher {
        url: "https://blocked.example/x".into(),
        app: Some("browser".into()),
    };
    let told = h.ask(tell).await;
    assert!(told.ok, "{told:?}");
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.state.as_deref(), Some("in_session"), "nothing is held");
    assert!(h.display.calls().is_empty(), "no darkness: {:?}", h.display.calls());
    let reply = h.ask(Request::Press {}).await;
    assert!(reply.ok);
    let reports: Vec<_> = h
        .spooled()
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::ReportFiled { origin, recent_names, url, .. } => {
                Some((e.id, origin, recent_names, url))
            }
            _ => None,
        })
        .collect();
    let names = vec!["newest.example".to_string(), "older.example".to_string()];
    assert_eq!(reports.len(), 2);
    assert_eq!(Some(reports[0].0), told.report);
    assert_eq!(Some(reports[1].0), reply.report);
    assert_eq!(reports[0].1, slate_protocol::ReportOrigin::BlockPage);
    assert_eq!(reports[0].2, names);
    assert_eq!(reports[0].3.as_deref(), Some("https://blocked.example/x"));
    assert_eq!(reports[1].1, slate_protocol::ReportOrigin::Button);
    assert_eq!(reports[1].2, names);
}

#[tokio::test]
async fn a_press_files_without_names_when_slate_dns_is_away() {
    let sock = tempfile::tempdir().unwrap();
    let (h, _) = Harness::start_with_dns(
        FakeBlank::DarkAt(t("10:00:00")),
        rules_with_pin(),
        Some(test_pin()),
        DnsSocket::new(Some(sock.path().join("absent.sock"))),
    );
    assert!(h.ask(Request::Press {}).await.ok);
    let EventBody::ReportFiled { recent_names, .. } = &h.spooled()[0].body else { panic!() };
    assert!(recent_names.is_empty());
}

/// A teacher's command as the poller hands it on: live for ten minutes from now.
fn teacher(action: CommandAction) -> Notice {
    let now = Utc::now();
    Notice::Teacher(DeviceCommand {
        id: 7,
        issued_at: now,
        expires_at: now + chrono::Duration::minutes(10),
        action,
        check_names: Vec::new(),
        ssh_access: None,
    })
}

#[tokio::test]
async fn the_button_test_answers_one_press_with_the_led_and_files_no_report() {
    use crate::led::LedPattern;
    let (tx, rx) = mpsc::channel(4);
    let (h, _) = Harness::with_driver(|d| d.with_notices(rx));
    // Nobody signed in: only an idle device is tested (a pupil's press is always a report).
    tx.send(teacher(CommandAction::TestButton)).await.unwrap();
    let _ = h.ask(Request::Status {}).await;
    h.presses.send(ButtonEvent::Down { at: Utc::now() }).await.unwrap();
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.state.as_deref(), Some("idle"), "nothing held");
    assert_eq!(*h.led.borrow(), LedPattern::FastBlink, "the LED answers the press");
    assert!(h.display.calls().is_empty(), "the screen stays as it was");
    let kinds: Vec<_> = h.spooled().iter().map(|e| e.body.kind()).collect();
    assert_eq!(kinds, ["button_tested"]);
    assert!(matches!(
        h.spooled()[0].body,
        EventBody::ButtonTested { command: Some(7), staff: None }
    ));
    // One press only: the next is a real report.
    h.presses.send(ButtonEvent::Up { at: Utc::now() }).await.unwrap();
    h.presses
        .send(ButtonEvent::Down { at: Utc::now() + chrono::Duration::seconds(1) })
        .await
        .unwrap();
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.state.as_deref(), Some("held"));
    assert_eq!(h.spooled().last().unwrap().body.kind(), "report_filed");
}

/// The sign-in screen's staff PIN pad (the kiosk's `staff_button_test`): a wrong PIN opens
/// nothing and counts, a right one only checked opens nothing, "Test the report button" opens
/// the window in the staff member's name; the press files no report and its `button_tested`
/// names them (the staff id of the PIN that matched: `it` for slate.toml's own).
#[tokio::test]
async fn a_staff_pin_started_button_test_files_no_report_and_names_the_staff_member() {
    use crate::led::LedPattern;
    let h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    let test = |pin: &str, start: bool| Request::StaffButtonTest { pin: Pin(pin.into()), start };
    let wrong = h.ask_from(test("9999", true), Role::Kiosk, None).await;
    assert!(!wrong.ok);
    assert!(wrong.error.as_deref().unwrap_or("").contains("wrong staff PIN"), "{wrong:?}");
    let checked = h.ask_from(test(TEST_PIN, false), Role::Kiosk, None).await;
    assert!(checked.ok, "{checked:?}");
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.button_test, Some(false), "a PIN only checked opens no test");
    let started = h.ask_from(test(TEST_PIN, true), Role::Kiosk, None).await;
    assert!(started.ok, "{started:?}");
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.button_test, Some(true), "the screen says the next press is a test");

    h.presses.send(ButtonEvent::Down { at: Utc::now() }).await.unwrap();
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.state.as_deref(), Some("idle"), "nothing held");
    assert_eq!(status.button_test, Some(false), "one press closes the window");
    assert_eq!(*h.led.borrow(), LedPattern::FastBlink, "the LED answers the press");
    assert!(h.display.calls().is_empty(), "the screen stays as it was");
    let spooled = h.spooled();
    let kinds: Vec<_> = spooled.iter().map(|e| e.body.kind()).collect();
    assert_eq!(kinds, ["button_tested"], "no report, no incident");
    let it = StaffId::new(slate_protocol::staff::IT_STAFF_ID).unwrap();
    assert_eq!(spooled[0].body, EventBody::ButtonTested { command: None, staff: Some(it) });
}

/// A sign-in during a staff-started window closes it (only a device nobody is using is
/// tested), and the pad is refused while a pupil is signed in.
#[tokio::test]
async fn a_sign_in_closes_a_staff_started_button_test() {
    let h = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    let test = Request::StaffButtonTest { pin: Pin(TEST_PIN.into()), start: true };
    assert!(h.ask_from(test.clone(), Role::Kiosk, None).await.ok);
    assert!(h.ask(sign_in("p-1")).await.ok);
    assert_eq!(h.ask(Request::Status {}).await.button_test, Some(false));
    let refused = h.ask_from(test, Role::Kiosk, None).await;
    assert!(refused.error.as_deref().unwrap_or("").contains("a pupil is signed in"), "{refused:?}");
    h.presses.send(ButtonEvent::Down { at: Utc::now() }).await.unwrap();
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.state.as_deref(), Some("held"), "the pupil's press is a report");
}

#[tokio::test]
async fn teacher_commands_lock_screens_and_sign_everyone_out() {
    let (tx, rx) = mpsc::channel(4);
    let (h, _) = Harness::with_driver(|d| d.with_notices(rx));
    h.ask(sign_in("p-1")).await;
    tx.send(teacher(CommandAction::LockScreens)).await.unwrap();
    // The control channel is served after the notice: status sees it.
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.screens_locked, Some(true));
    // A report still works under "eyes on me".
    assert!(h.ask(Request::Press {}).await.ok);
    assert!(h.ask(unlock()).await.ok);
    tx.send(teacher(CommandAction::UnlockScreens)).await.unwrap();
    tx.send(teacher(CommandAction::SignOutAll)).await.unwrap();
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.screens_locked, Some(false));
    assert_eq!(status.state.as_deref(), Some("idle"));
    let ended = h
        .spooled()
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::SessionEnded { reason, .. } => Some(reason),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(ended, [slate_protocol::SessionEndReason::SignedOutByStaff]);
}

fn sample_policy() -> KioskPolicy {
    let mut policy =
        slate_protocol::kiosk::parse_policy(slate_protocol::kiosk::SAMPLE_POLICY).unwrap();
    policy.issued_at = Some(t("08:00:00"));
    policy
}

/// A staff document with these members' PINs (cheaply hashed).
fn staff_pins(at: &str, members: &[(&str, &str)]) -> StaffPins {
    StaffPins {
        v: 1,
        issued_at: t(at),
        staff: members
            .iter()
            .map(|(id, pin)| slate_protocol::staff::StaffPinEntry {
                id: StaffId::new(*id).unwrap(),
                pin_hash: StaffPin::hash_cheap(pin).phc().to_owned(),
            })
            .collect(),
        picture_pins: Vec::new(),
    }
}

/// The staff id the last `report_resolved` in the spool names.
fn resolved_by(h: &Harness) -> Option<String> {
    h.spooled().iter().rev().find_map(|e| match &e.body {
        EventBody::ReportResolved { staff, .. } => Some(staff.as_ref()?.as_str().to_owned()),
        _ => None,
    })
}

#[tokio::test]
async fn a_policy_brings_the_pupils_filter_profile() {
    let (tx, rx) = mpsc::channel(4);
    let mut profile = None;
    let (h, _) = Harness::with_driver(|d| {
        profile = Some(d.profile());
        d.with_notices(rx)
    });
    let mut profile = profile.unwrap();
    let policy = sample_policy();
    let oak_pupil = policy.classes[0].pupils[0].id.clone();
    tx.send(Notice::Policy(Box::new(policy))).await.unwrap();
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.policy_issued_at, Some(t("08:00:00")));

    h.ask(Request::SignIn { pupil: oak_pupil, pictures: None }).await;
    assert_eq!(*profile.borrow_and_update(), Some("oak".to_string()));
    h.ask(Request::SignOut {}).await;
    assert_eq!(*profile.borrow_and_update(), None);
}

#[tokio::test]
async fn each_member_of_staff_unlocks_with_their_own_pin_and_the_unlock_records_who() {
    let (tx, rx) = mpsc::channel(4);
    // No PIN in slate.toml: nobody can unlock until the staff document arrives.
    let (h, _) = Harness::start_custom(
        FakeBlank::DarkAt(t("10:00:00")),
        crate::core::Rules::default(),
        None,
        tempfile::tempdir().unwrap(),
        |d| d.with_notices(rx),
    );
    assert_eq!(h.ask(Request::Status {}).await.staff_pin, Some(false));
    assert!(h.ask(Request::Press {}).await.ok);
    let refused = h.ask(unlock_with("482916", ResolutionChoice::CloseApp, None)).await;
    assert!(refused.error.as_deref().unwrap().starts_with("no staff PIN"), "{refused:?}");

    let doc = staff_pins("08:00:00", &[("s-jones", "482916"), ("s-patel", "730418")]);
    tx.send(Notice::StaffPins(Box::new(doc))).await.unwrap();
    assert_eq!(h.ask(Request::Status {}).await.staff_pin, Some(true));
    let wrong = h.ask(unlock_with("111111", ResolutionChoice::CloseApp, None)).await;
    assert!(wrong.error.as_deref().unwrap().starts_with("wrong staff PIN"), "{wrong:?}");
    // Mr Patel's PIN, with the client claiming Mrs Jones: the record says Patel.
    let patel = h.ask(unlock_with("730418", ResolutionChoice::CloseApp, Some("s-jones"))).await;
    assert_eq!(patel, Reply::ok());
    assert_eq!(resolved_by(&h).as_deref(), Some("s-patel"));

    // Mr Patel's account is disabled: the next document leaves him out, and his PIN is wrong.
    let doc = staff_pins("09:00:00", &[("s-jones", "482916")]);
    tx.send(Notice::StaffPins(Box::new(doc))).await.unwrap();
    assert!(h.ask(Request::Press {}).await.ok);
    let gone = h.ask(unlock_with("730418", ResolutionChoice::CloseApp, None)).await;
    assert!(gone.error.as_deref().unwrap().starts_with("wrong staff PIN"), "{gone:?}");
    let jones = h.ask(unlock_with("482916", ResolutionChoice::FalseAlarm, None)).await;
    assert_eq!(jones, Reply::ok());
    assert_eq!(resolved_by(&h).as_deref(), Some("s-jones"));
    let resolutions = h.spooled().iter().filter(|e| e.body.kind() == "report_resolved").count();
    assert_eq!(resolutions, 2, "refused unlocks file nothing");
}

#[tokio::test]
async fn the_held_report_is_recorded_until_unlocked_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let held_file = dir.path().join(HELD_FILE);
    let path = held_file.clone();
    let (mut h, _) = Harness::start_custom(
        FakeBlank::DarkAt(t("10:00:00")),
        rules_with_pin(),
        Some(test_pin()),
        dir,
        |d| d.with_held_file(path, None),
    );
    assert!(!held_file.exists());
    let report = h.ask(Request::Press {}).await.report.unwrap();
    assert_eq!(load_held(held_file.parent().unwrap()), Some(report), "recorded when answered");
    // A stop while held keeps the record: the next start is held again.
    h.stop().await;
    assert_eq!(load_held(held_file.parent().unwrap()), Some(report));

    let dir3 = tempfile::tempdir().unwrap();
    let held3 = dir3.path().join(HELD_FILE);
    std::fs::write(&held3, format!("{report}\n")).unwrap();
    assert_eq!(load_held(dir3.path()), Some(report));
    let display = FakeDisplay::new(FakeBlank::DarkAt(t("10:00:00")));
    let (spool, _) = Spool::open(&dir3.path().join("spool")).unwrap();
    let mut driver = Driver::new(
        Core::with_rules(DeviceNumber::new(12).unwrap(), rules_with_pin()),
        SequentialIds::default(),
        display.clone(),
        FakeApps::default(),
        SharedSpool::new(spool),
        Arc::new(Notify::new()),
        Arc::new(AtomicBool::new(false)),
    )
    .with_staff_pin(Some(test_pin()))
    .with_held_file(held3.clone(), Some(report));
    driver.restore_held(report).await;
    assert_eq!(driver.core.held_report(), Some(report));
    assert!(
        display.calls().iter().any(|c| matches!(c, DisplayCall::Blank(r) if *r == report)),
        "{:?}",
        display.calls()
    );
    assert_eq!(load_held(dir3.path()), Some(report));
    assert_eq!(driver.core.session(), None, "the session before the restart is not restored");
    let (ctx, crx) = mpsc::channel(1);
    let (_ptx, prx) = mpsc::channel(1);
    let (stx, srx) = oneshot::channel();
    let task = tokio::spawn(driver.run(prx, crx, srx));
    let (rtx, rrx) = oneshot::channel();
    ctx.send(ControlMsg {
        request: unlock(),
        from: Role::Root,
        app: None,
        received_at: Utc::now(),
        reply: rtx,
    })
    .await
    .unwrap();
    assert!(rrx.await.unwrap().ok);
    assert!(!held3.exists(), "unlocked: nothing held any more");
    stx.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_pings_only_while_the_core_answers() {
    let pings = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = pings.clone();
    let (tx, mut rx) = mpsc::channel::<ControlMsg>(4);
    let answering = Arc::new(AtomicBool::new(true));
    let answer = answering.clone();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if answer.load(Ordering::Relaxed) {
                let _ = msg.reply.send(Reply::ok());
            } else {
                // Wedged: holds the request and never answers.
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
    });
    let dog = tokio::spawn(watchdog(tx, Duration::from_secs(10), move || {
        count.fetch_add(1, Ordering::Relaxed);
    }));
    tokio::time::sleep(Duration::from_secs(35)).await;
    let answered = pings.load(Ordering::Relaxed);
    assert!((3..=4).contains(&answered), "{answered} pings in 35 s at 10 s");
    answering.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let at_wedge = pings.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(pings.load(Ordering::Relaxed), at_wedge, "no pings while the core is wedged");
    dog.abort();
}

#[tokio::test]
async fn input_device_activity_keeps_the_session_past_the_idle_timeout() {
    let (activity, activity_rx) = mpsc::channel(1);
    let (h, _) = Harness::with_driver(|mut d| {
        d.core.set_session_rules(crate::core::SessionRules {
            idle_timeout: Some(Duration::from_secs(3)),
            ..Default::default()
        });
        d.with_activity(activity_rx)
    });
    h.ask(sign_in("p-1")).await;
    let signed_in = std::time::Instant::now();
    // Taps inside an app (the kiosk UI sends nothing) for longer than the idle timeout.
    while signed_in.elapsed() < Duration::from_secs(4) {
        activity.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let status = h.ask(Request::Status {}).await;
    assert_eq!(status.state.as_deref(), Some("in_session"), "{status:?}");
    // No more input: the idle timeout ends the session.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while h.ask(Request::Status {}).await.state.as_deref() != Some("idle") {
        assert!(std::time::Instant::now() < deadline, "the idle timeout did not end the session");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ended: Vec<_> = h
        .spooled()
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::SessionEnded { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [slate_protocol::SessionEndReason::IdleTimeout]);
    // Input with nobody signed in changes nothing and the driver carries on.
    activity.send(()).await.unwrap();
    assert_eq!(h.ask(Request::Status {}).await.state.as_deref(), Some("idle"));
}

#[test]
fn the_heartbeat_says_when_a_press_would_not_darken_the_screen() {
    use slate_protocol::DisplayFault::*;
    let cases = [
        (false, true, None),
        (false, false, Some(CannotDarken)),
        (true, true, Some(LastPressNotDark)),
        (true, false, Some(LastPressNotDark)),
    ];
    for (last_press_not_dark, can_darken, want) in cases {
        assert_eq!(display_fault(last_press_not_dark, can_darken), want, "{cases:?}");
    }
}

#[tokio::test]
async fn a_press_that_leaves_the_screen_lit_is_reported_as_such() {
    let h = Harness::start(FakeBlank::Fail);
    let faults = |r: Reply| r.display_fault;
    // The fake that fails to blank also says it cannot darken.
    assert_eq!(
        faults(h.ask(Request::Status {}).await),
        Some(slate_protocol::DisplayFault::CannotDarken)
    );
    assert!(h.ask(Request::Press {}).await.ok, "the report is filed all the same");
    assert_eq!(
        faults(h.ask(Request::Status {}).await),
        Some(slate_protocol::DisplayFault::LastPressNotDark)
    );
    let EventBody::ReportFiled { blank_latency_us, .. } = &h.spooled()[0].body else {
        panic!("{:?}", h.spooled())
    };
    assert_eq!(*blank_latency_us, None, "no darkness claimed");

    let dark = Harness::start(FakeBlank::DarkAt(t("10:00:00")));
    assert_eq!(faults(dark.ask(Request::Status {}).await), None);
}

#[tokio::test]
async fn slated_checks_the_roster_and_the_picture_pin_at_sign_in() {
    let (h, _) = Harness::with_driver(|mut d| {
        let mut policy = roster_policy(&["p-1"]);
        let pinned = policy.classes[0].pupils.last_mut().unwrap();
        pinned.picture_pin = Some(vec!["sun".into(), "boat".into()]);
        d.kiosk = Some(policy);
        d
    });
    let v = |p: &[&str]| Some(Pictures(p.iter().map(|s| s.to_string()).collect()));
    let sign_in = |pictures| Request::SignIn { pupil: PupilId::new("p-1").unwrap(), pictures };
    let kiosk = |r| h.ask_from(r, Role::Kiosk, None);
    let error = |r: Reply| r.error.unwrap_or_default();
    assert!(error(kiosk(sign_in(None)).await).contains("picture PIN is needed"));
    assert!(error(kiosk(sign_in(v(&["boat", "sun"]))).await).contains("wrong pictures"));
    let check = |pictures| Request::CheckPictures {
        pupil: PupilId::new("p-1").unwrap(),
        pictures: v(pictures).unwrap(),
    };
    assert!(error(kiosk(check(&["boat", "sun"])).await).contains("wrong pictures"));
    assert_eq!(kiosk(check(&["sun", "boat"])).await, Reply::ok());
    assert_eq!(h.ask(Request::Status {}).await.state.as_deref(), Some("idle"), "nothing changed");
    let stranger = Request::SignIn { pupil: PupilId::new("p-404").unwrap(), pictures: None };
    assert!(error(h.ask(stranger).await).contains("not on the device's roster"), "root too");
    assert!(kiosk(sign_in(v(&["sun", "boat"]))).await.ok);
    h.ask(Request::SignOut {}).await;
    // IT's slatectl (root) needs the roster, not the pictures.
    assert!(h.ask(sign_in(None)).await.ok);
}

#[tokio::test]
async fn with_no_kiosk_policy_nobody_signs_in() {
    let (h, _) = Harness::with_driver(|mut d| {
        d.kiosk = None;
        d
    });
    let reply = h.ask(sign_in("p-1")).await;
    assert!(reply.error.unwrap().contains("ask your teacher"));
    assert_eq!(h.ask(Request::Status {}).await.state.as_deref(), Some("idle"));
}

#[tokio::test]
async fn a_press_and_a_lockout_while_the_wall_clock_jumps_back_and_forth() {
    use crate::clock::{ClockWatch, FakeClock, LAST_GOOD_FILE};
    let boot = slate_protocol::BootId::parse("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b0f").unwrap();
    let fake = Arc::new(FakeClock::new(boot, true));
    fake.pass(Duration::ZERO, t("10:00:00"));
    // A time server set the clock; 10:00 is the last good time seen.
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join(LAST_GOOD_FILE), "2026-11-17T10:00:00Z\n").unwrap();
    let clock =
        Arc::new(ClockWatch::open(Box::new(fake.clone()), Some(state.path()), t("10:00:00")));
    let pin = StaffPin::hash("4321").unwrap();
    let (h, _) = Harness::start_custom(
        FakeBlank::DarkAt(t("10:00:00")),
        pin_rules(),
        Some(pin),
        tempfile::tempdir().unwrap(),
        |d| d.with_clock(clock),
    );
    let secs = Duration::from_secs;
    // The wall clock is stepped back an hour as the button is pressed.
    fake.pass(secs(1), t("09:00:01"));
    let report = h.ask_at(Request::Press {}, t("09:00:01")).await.report.unwrap();
    // Pressed again once it is stepped forward two hours: the same report, held.
    fake.pass(secs(1), t("11:00:02"));
    let again = h.ask_at(Request::Press {}, t("11:00:02")).await;
    assert_eq!((again.report, again.already_held), (Some(report), Some(true)));

    // Two wrong PINs lock unlocking out for 60 s since boot.
    h.ask(unlock_with("1111", ResolutionChoice::CloseApp, None)).await;
    let locked = h.ask(unlock_with("2222", ResolutionChoice::CloseApp, None)).await;
    assert_eq!(locked.locked_until, Some(t("11:01:02")));
    // Stepped back three hours 30 s later: locked for the 30 s left, not for three hours more.
    fake.pass(secs(30), t("08:00:32"));
    let still = h.ask(unlock_with("4321", ResolutionChoice::FalseAlarm, None)).await;
    assert_eq!(still.locked_until, Some(t("08:01:02")), "{still:?}");
    // Forward again as the 60 s since boot end: the right PIN unlocks.
    fake.pass(secs(30), t("10:30:00"));
    assert_eq!(h.ask(unlock_with("4321", ResolutionChoice::FalseAlarm, None)).await, Reply::ok());

    let events = h.spooled();
    let reports: Vec<&Event> = events.iter().filter(|e| e.body.kind() == "report_filed").collect();
    assert_eq!(reports.len(), 1, "one press, one report: {events:?}");
    let filed = reports[0];
    assert_eq!((filed.id, filed.at), (report, t("09:00:01")), "the wall time at the press");
    let evidence = filed.clock.expect("clock evidence");
    assert!(!evidence.synchronised, "behind the last good time: flagged as not trusted");
    let EventBody::ReportFiled { blank_latency_us, .. } = &filed.body else { unreachable!() };
    assert_eq!(*blank_latency_us, Some(0), "not the hour the wall clock moved");
}

#[tokio::test]
async fn every_filed_event_carries_the_clock_evidence() {
    use crate::clock::{ClockWatch, FakeClock};
    let boot = slate_protocol::BootId::parse("4b1c2a9e-6c1e-4f1a-8c53-9d558e2f3b0f").unwrap();
    // A time server never answered this boot: every event must say so.
    let clock = Arc::new(ClockWatch::open(Box::new(FakeClock::new(boot, false)), None, Utc::now()));
    let (mut h, _) = Harness::with_driver(|d| d.with_clock(clock));
    h.ask(sign_in("p-1")).await;
    assert!(h.ask(Request::Press {}).await.ok);
    h.stop().await;
    let events = h.spooled();
    assert!(events.len() >= 3, "{events:?}");
    for event in &events {
        let clock = event.clock.unwrap_or_else(|| panic!("no clock on {}", event.body.kind()));
        assert_eq!(clock.boot_id, boot);
        assert_eq!(clock.boottime_ms, 30_000);
        assert!(!clock.synchronised, "{}", event.body.kind());
    }
}

#[tokio::test]
async fn an_update_installs_only_after_sign_out_and_reboots_only_when_idle_and_uploaded() {
    use crate::update::decide::Phase;
    use crate::update::tests::UpdateRig;
    use slate_protocol::update::UpdateState;
    let idle = Duration::from_millis(200);
    let rig = UpdateRig::new(idle);
    let mut presence = None;
    let (h, _) = Harness::with_driver(|d| {
        presence = Some(d.presence());
        d
    });
    assert!(h.ask(sign_in("p-1")).await.ok);

    // Offered while a pupil is signed in: downloaded in the background, not installed.
    rig.offer("2.0", (0..50_000).map(|i| i as u8).collect());
    let task = rig.start(h.spool.clone(), presence.unwrap());
    let downloaded = |r: &UpdateRig| {
        r.state().pending.is_some_and(|p| p.phase == Phase::Downloaded)
            && r.last_check().is_some_and(|c| c.state == UpdateState::Downloaded)
    };
    rig.until("downloaded while signed in", downloaded).await;
    let checks = rig.server.checks.lock().unwrap().len();
    rig.until("a few more checks", |r| r.server.checks.lock().unwrap().len() > checks + 3).await;
    assert_eq!(rig.installs(), 0, "nothing installed while a pupil is signed in");

    // Signed out: installed at once; the session's events are not uploaded yet: no reboot.
    assert!(h.ask(Request::SignOut {}).await.ok);
    let signed_out = Instant::now();
    rig.until("installed after sign-out", |r| r.installs() == 1).await;
    let said_installing =
        rig.server.checks.lock().unwrap().iter().any(|c| c.state == UpdateState::Installing);
    assert!(said_installing, "the server heard of the install as it began");
    rig.until("told waiting to reboot", |r| {
        r.last_check().is_some_and(|c| c.state == UpdateState::WaitingToReboot)
    })
    .await;
    let checks = rig.server.checks.lock().unwrap().len();
    rig.until("a few more checks", |r| r.server.checks.lock().unwrap().len() > checks + 3).await;
    assert_eq!(rig.reboots(), 0, "no reboot with events not uploaded");

    // The uploader's part: the server has them.
    h.spool
        .with(|s| {
            let ids: Vec<EventId> = s.pending().iter().map(|e| e.id).collect();
            s.acknowledge(&ids)
        })
        .await
        .unwrap();
    rig.until("rebooted", |r| r.reboots() == 1).await;
    assert!(signed_out.elapsed() >= idle, "not before the device was idle long enough");
    task.abort();
    assert_eq!(rig.installs(), 1);
    assert!(rig
        .state()
        .pending
        .is_some_and(|p| p.phase == Phase::Rebooting { boot: "boot-1".into() }));
}
