use super::*;

const CODE: &str = "12345678";

fn d(n: u32) -> DeviceNumber {
    DeviceNumber::new(n).unwrap()
}

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[test]
fn wrong_codes_are_throttled_more_and_more() {
    for (wrong, pause) in [
        (0, None),
        (4, None),
        (5, Some(60)),
        (6, None),
        (10, Some(120)),
        (15, Some(240)),
        (35, Some(3600)),
        (u32::MAX, Some(3600)), // a multiple of 5
    ] {
        assert_eq!(lockout(wrong), pause.map(s), "{wrong}");
    }
}

#[test]
fn codes_compare_whole() {
    for (typed, ok) in
        [(CODE, true), ("1234567", false), ("123456789", false), ("", false), ("12345670", false)]
    {
        assert_eq!(code_matches(CODE, typed), ok, "{typed}");
    }
}

/// Each row: inputs at times (seconds since boot), then the step, the notice's start, the
/// effects of the last input.
#[test]
fn the_screen_goes_code_number_confirm_enroll() {
    type Row = (&'static str, Vec<(u64, Input)>, Step, Option<&'static str>, Vec<Effect>);
    let code = |c: &str| Input::Code(c.into());
    let rows: Vec<Row> = vec![
        ("the right code", vec![(1, code(CODE))], Step::Number, None, vec![]),
        ("the right code with spaces", vec![(1, code(" 12345678 "))], Step::Number, None, vec![]),
        (
            "a wrong code",
            vec![(1, code("1"))],
            Step::Code,
            Some("That code is not right"),
            vec![Effect::SaveWrongCodes(1)],
        ),
        ("a number before the code", vec![(1, Input::Number(12))], Step::Code, None, vec![]),
        ("a confirm before the code", vec![(1, Input::Confirm(true))], Step::Code, None, vec![]),
        (
            "five wrong codes lock, even the right one",
            (1..=5).map(|t| (t, code("0"))).chain([(6, code(CODE))]).collect(),
            Step::Code,
            Some("Too many wrong codes"),
            vec![],
        ),
        (
            "after the pause the right code goes through and the count is reset",
            (1..=5).map(|t| (t, code("0"))).chain([(66, code(CODE))]).collect(),
            Step::Number,
            None,
            vec![Effect::SaveWrongCodes(0)],
        ),
        (
            "a number",
            vec![(1, code(CODE)), (2, Input::Number(12))],
            Step::Confirm(d(12)),
            None,
            vec![],
        ),
        (
            "number 0",
            vec![(1, code(CODE)), (2, Input::Number(0))],
            Step::Number,
            Some("Type a number from 1 to 9999"),
            vec![],
        ),
        (
            "number 10000",
            vec![(1, code(CODE)), (2, Input::Number(10_000))],
            Step::Number,
            Some("Type a number"),
            vec![],
        ),
        (
            "no: the number again",
            vec![(1, code(CODE)), (2, Input::Number(12)), (3, Input::Confirm(false))],
            Step::Number,
            None,
            vec![],
        ),
        (
            "yes: enroll",
            vec![(1, code(CODE)), (2, Input::Number(12)), (3, Input::Confirm(true))],
            Step::Enrolling(d(12)),
            None,
            vec![Effect::Enroll(d(12))],
        ),
        (
            "a second yes while enrolling does nothing",
            vec![
                (1, code(CODE)),
                (2, Input::Number(12)),
                (3, Input::Confirm(true)),
                (4, Input::Confirm(true)),
            ],
            Step::Enrolling(d(12)),
            None,
            vec![],
        ),
        (
            "enrolled",
            vec![
                (1, code(CODE)),
                (2, Input::Number(12)),
                (3, Input::Confirm(true)),
                (4, Input::Enrolled),
            ],
            Step::Done(d(12)),
            None,
            vec![],
        ),
        (
            "taken: asked again, saying so",
            vec![
                (1, code(CODE)),
                (2, Input::Number(12)),
                (3, Input::Confirm(true)),
                (4, Input::Taken),
            ],
            Step::Number,
            Some("Device 12 is already enrolled: choose another number"),
            vec![],
        ),
        (
            "failed: asked again with the reason",
            vec![
                (1, code(CODE)),
                (2, Input::Number(12)),
                (3, Input::Confirm(true)),
                (4, Input::Failed("x".into())),
            ],
            Step::Number,
            Some("Could not enroll: x"),
            vec![],
        ),
        (
            "IT's list answers a later ask: enrolled by it",
            vec![(1, Input::Listed(d(31)))],
            Step::Enrolling(d(31)),
            None,
            vec![Effect::Enroll(d(31))],
        ),
        (
            "IT's list answers once IT has begun on the screen: the screen goes on",
            vec![(1, code(CODE)), (2, Input::Listed(d(31)))],
            Step::Number,
            None,
            vec![],
        ),
        (
            "IT's list answers while enrolling: nothing changes",
            vec![
                (1, code(CODE)),
                (2, Input::Number(12)),
                (3, Input::Confirm(true)),
                (4, Input::Listed(d(31))),
            ],
            Step::Enrolling(d(12)),
            None,
            vec![],
        ),
        (
            "a listed number already taken: the screen asks, saying so",
            vec![(1, Input::Listed(d(31))), (2, Input::Taken)],
            Step::Number,
            Some("Device 31 is already enrolled"),
            vec![],
        ),
    ];
    for (name, inputs, step, notice, effects) in rows {
        let mut setup = Setup::new(0, s(0));
        let mut last = vec![];
        for (at, input) in inputs {
            last = setup.step(input, s(at), CODE);
        }
        assert_eq!(setup.step, step, "{name}");
        match notice {
            None => assert_eq!(setup.notice, None, "{name}"),
            Some(start) => assert!(
                setup.notice.as_deref().is_some_and(|n| n.starts_with(start)),
                "{name}: {:?}",
                setup.notice
            ),
        }
        assert_eq!(last, effects, "{name}");
    }
}

#[test]
fn a_restart_after_five_wrong_codes_is_locked_again_in_full() {
    let setup = Setup::new(5, s(1000));
    assert_eq!(setup.locked_for(s(1000)), Some(s(60)));
    assert_eq!(setup.view(s(1030)).locked_for_s, Some(30));
    assert_eq!(Setup::new(4, s(0)).locked_for(s(0)), None);
}

#[test]
fn the_view_says_the_step_and_number() {
    let mut setup = Setup::new(0, s(0));
    assert_eq!(setup.view(s(0)).step, "code");
    setup.step(Input::Code(CODE.into()), s(1), CODE);
    setup.step(Input::Number(7), s(2), CODE);
    let view = setup.view(s(2));
    assert_eq!((view.step.as_str(), view.device), ("confirm", Some(d(7))));
}

#[test]
fn answers_about_the_number_and_the_enrollment() {
    assert_eq!(classify_number(200, br#"{"device":12}"#), NumberAnswer::Listed(d(12)));
    assert!(matches!(classify_number(200, b"{}"), NumberAnswer::Unknown(_)));
    assert!(matches!(classify_number(200, br#"{"device":0}"#), NumberAnswer::Unknown(_)));
    // An older server has no such route: 404, as for a serial not listed.
    assert!(matches!(classify_number(404, b""), NumberAnswer::Unlisted(_)));
    assert!(matches!(classify_number(401, b""), NumberAnswer::Refused(_)));
    assert!(matches!(classify_number(503, b""), NumberAnswer::Unknown(_)));
    assert_eq!(classify_setup_enroll(200), None);
    assert_eq!(classify_setup_enroll(409), Some(Input::Taken));
    for status in [400, 401, 500] {
        assert!(matches!(classify_setup_enroll(status), Some(Input::Failed(_))), "{status}");
    }
}

#[test]
fn the_list_is_asked_again_while_it_may_help_and_nobody_has_begun() {
    let unknown = NumberAnswer::Unknown("not reached".into());
    let unlisted = NumberAnswer::Unlisted("HTTP 404".into());
    let first = s(30);
    type Row = (&'static str, NumberAnswer, u32, Step, Option<u64>);
    let rows: Vec<Row> = vec![
        ("not reached, asked once", unknown.clone(), 1, Step::Code, Some(30)),
        ("not listed, asked once", unlisted.clone(), 1, Step::Code, Some(30)),
        ("asked twice: twice as long", unlisted.clone(), 2, Step::Code, Some(60)),
        ("asked five times", unknown.clone(), 5, Step::Code, Some(480)),
        ("asked six times: ten minutes at most", unknown.clone(), 6, Step::Code, Some(600)),
        ("asked very often: still ten minutes", unknown.clone(), u32::MAX, Step::Code, Some(600)),
        ("IT typed the code", unknown.clone(), 1, Step::Number, None),
        ("IT is confirming", unlisted.clone(), 1, Step::Confirm(d(3)), None),
        ("enrolling", unlisted, 1, Step::Enrolling(d(3)), None),
        ("listed: nothing to ask", NumberAnswer::Listed(d(3)), 1, Step::Code, None),
        (
            "the token refused: asking cannot help",
            NumberAnswer::Refused("HTTP 401".into()),
            1,
            Step::Code,
            None,
        ),
    ];
    for (name, answer, asked, step, wait) in rows {
        assert_eq!(list_retry_after(&answer, asked, step, first), wait.map(s), "{name}");
    }
    // A test's short first wait still doubles.
    assert_eq!(
        list_retry_after(&unknown, 3, Step::Code, Duration::from_millis(200)),
        Some(Duration::from_millis(800))
    );
}
