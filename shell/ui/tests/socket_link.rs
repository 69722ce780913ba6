//! The real `SocketLink` against slated's own control-socket server (`slate_shell::control`),
//! with a fake device answering behind it: proves the requests and replies on the wire, and that
//! the socket link and the fake tell the same story.

use slate_protocol::{DeviceNumber, PupilId};
use slate_shell::control::{self, Reply, Request};
use slate_ui::link::{DeviceLink, FakeDevice, LinkError, SocketLink};
use slate_ui::screen::DeviceState;

/// Serves `control` requests from a `FakeDevice`, answering in slated's reply shape.
fn serve_fake(socket: &std::path::Path, pin: &str) -> std::thread::JoinHandle<()> {
    let socket = socket.to_owned();
    let pin = pin.to_owned();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = control::bind(&socket).unwrap();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<control::ControlMsg>(4);
            tokio::spawn(control::serve(listener, tx));
            ready_tx.send(()).unwrap();
            let mut device = FakeDevice::new(12);
            device.pin = Some(pin);
            while let Some(msg) = rx.recv().await {
                let result = match &msg.request {
                    Request::Status {} => {
                        let state = match device.state {
                            DeviceState::Idle => "idle",
                            DeviceState::InSession => "in_session",
                            DeviceState::Held => "held",
                            DeviceState::Unreachable => "?",
                        };
                        let _ = msg.reply.send(Reply {
                            device: Some(DeviceNumber::new(12).unwrap()),
                            state: Some(state.into()),
                            ..Reply::ok()
                        });
                        continue;
                    }
                    Request::SignIn { pupil } => device.sign_in(pupil),
                    Request::SignOut {} => device.sign_out(),
                    Request::Unlock { pin, .. } => {
                        device.unlock(pin.as_ref().map(|p| p.0.as_str()).unwrap_or(""))
                    }
                    Request::Press {} => {
                        device.press();
                        Ok(())
                    }
                    _ => Ok(()),
                };
                let _ = msg.reply.send(match result {
                    Ok(()) => Reply::ok(),
                    Err(e) => Reply::error(e.to_string().trim_start_matches("slated refused: ")),
                });
            }
        });
    });
    ready_rx.recv().unwrap();
    handle
}

#[test]
fn the_socket_link_speaks_slateds_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let _server = serve_fake(&socket, "2580");
    let mut link = SocketLink { socket: socket.clone() };

    let status = link.status().unwrap();
    assert_eq!((status.device, status.state), (Some(12), DeviceState::Idle));
    link.sign_in(&PupilId::new("p-7f3a9c").unwrap()).unwrap();
    assert_eq!(link.status().unwrap().state, DeviceState::InSession);
    slate_shell::ctl::send(&socket, &Request::Press {}).unwrap();
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
