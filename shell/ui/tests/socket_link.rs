//! The real `SocketLink` against slated's own control-socket server (`slate_daemon::control`),
//! with a fake device answering behind it: proves the requests and replies on the wire, and that
//! the socket link and the fake tell the same story.

mod common;

use slate_ipc::control::{Pictures, Reply, Request};
use slate_protocol::kiosk::KeyStage;
use slate_protocol::{DeviceNumber, PupilId};
use slate_ui::link::{DeviceLink, FakeDevice, LinkError, SocketLink};
use slate_ui::screen::DeviceState;

/// Serves `control` requests from a `FakeDevice`, answering in slated's reply shape. Requests
/// that only record something (`aup_accepted`) are sent, as slated parsed them, on `seen`.
fn serve_fake(
    socket: &std::path::Path,
    pin: &str,
    seen: std::sync::mpsc::Sender<Request>,
) -> std::thread::JoinHandle<()> {
    let mut device = FakeDevice::new(12);
    device.pin = Some(pin.to_owned());
    device.picture_pins =
        vec![(PupilId::new("p-7f3a9c").unwrap(), vec!["sun".into(), "boat".into()])];
    common::serve_control_socket(socket, move |msg| {
        let _ = seen.send(msg.request.clone());
        let result = match &msg.request {
            Request::Status {} => {
                let state = match device.state {
                    DeviceState::Idle => "idle",
                    DeviceState::InSession => "in_session",
                    DeviceState::Held => "held",
                    DeviceState::Setup => "setup",
                    DeviceState::Unreachable => "?",
                };
                let _ = msg.reply.send(Reply {
                    device: Some(DeviceNumber::new(12).unwrap()),
                    state: Some(state.into()),
                    // The teacher's "eyes on me" is in force while a pupil is signed in.
                    screens_locked: Some(device.pupil.is_some()),
                    pupil: device.pupil.clone(),
                    ..Reply::ok()
                });
                return;
            }
            Request::SignIn { pupil, pictures } => {
                device.sign_in(pupil, pictures.as_ref().map(|p| p.0.as_slice()))
            }
            Request::CheckPictures { pupil, pictures } => {
                match device.check_pictures(pupil, &pictures.0) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(LinkError::Refused("wrong pictures: try again".into())),
                    Err(e) => Err(e),
                }
            }
            Request::SignOut {} => device.sign_out(),
            Request::Unlock { pin, .. } => {
                device.unlock(pin.as_ref().map(|p| p.0.as_str()).unwrap_or(""))
            }
            Request::Press {} => {
                device.press();
                Ok(())
            }
            Request::Activity {} => device.activity(),
            _ => Ok(()),
        };
        let _ = msg.reply.send(match result {
            Ok(()) => Reply::ok(),
            Err(e) => Reply::error(e.to_string().trim_start_matches("slated refused: ")),
        });
    })
}

#[test]
fn the_socket_link_speaks_slateds_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let _server = serve_fake(&socket, "2580", seen_tx);
    let mut link = SocketLink { socket: socket.clone() };

    let status = link.status().unwrap();
    assert_eq!((status.device, status.state), (Some(12), DeviceState::Idle));
    assert!(!status.screens_locked && status.pupil.is_none());
    match link.activity() {
        Err(LinkError::Refused(why)) => assert_eq!(why, "nobody is signed in"),
        other => panic!("{other:?}"),
    }
    let pupil = PupilId::new("p-7f3a9c").unwrap();
    let v = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(!link.check_pictures(&pupil, &v(&["boat", "sun"])).unwrap(), "wrong");
    assert!(link.check_pictures(&pupil, &v(&["sun", "boat"])).unwrap(), "right");
    assert!(matches!(link.sign_in(&pupil, None), Err(LinkError::Refused(_))));
    link.sign_in(&pupil, Some(&v(&["sun", "boat"]))).unwrap();
    let status = link.status().unwrap();
    assert_eq!(status.state, DeviceState::InSession);
    assert!(status.screens_locked);
    assert_eq!(status.pupil.unwrap().as_str(), "p-7f3a9c");
    link.activity().unwrap();
    let version = slate_ui::agreement::for_key_stage(KeyStage::Ks1).version;
    link.aup_accepted(KeyStage::Ks1, &version, Some(2)).unwrap();
    let parsed: Vec<Request> = seen.try_iter().collect();
    assert!(
        parsed.contains(&Request::AupAccepted {
            key_stage: "ks1".into(),
            text_version: version.clone(),
            school_version: Some(2),
        }),
        "slated's own parser read the request: {parsed:?}"
    );
    assert!(
        parsed.contains(&Request::SignIn {
            pupil: pupil.clone(),
            pictures: Some(Pictures(v(&["sun", "boat"])))
        }),
        "the sign-in carries the pictures: {parsed:?}"
    );
    slate_ipc::client::send(&socket, &Request::Press {}).unwrap();
    assert_eq!(link.status().unwrap().state, DeviceState::Held);
    match link.unlock("1111") {
        Err(LinkError::Refused(why)) => assert_eq!(why, "wrong staff PIN"),
        other => panic!("{other:?}"),
    }
    link.unlock("2580").unwrap();
    assert_eq!(link.status().unwrap().state, DeviceState::InSession);
    link.sign_out().unwrap();
    match link.sign_out() {
        Err(LinkError::Refused(why)) => assert_eq!(why, "nobody is signed in"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_slated_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let mut link = SocketLink { socket: dir.path().join("absent.sock") };
    assert!(matches!(link.status(), Err(LinkError::Ctl(_))));
}
