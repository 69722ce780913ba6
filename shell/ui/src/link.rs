//! The kiosk's link to `slated`: a narrow trait with the real implementation over the control
//! socket ([`SocketLink`], reusing `slate_shell`'s request and reply types and client) and a fake
//! ([`FakeDevice`]) for tests and for running the UI without a daemon. Owns nothing but the
//! translation; the device's rules live in slated.

use crate::screen::DeviceState;
use slate_protocol::PupilId;
use slate_shell::control::{Reply, Request};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Ctl(#[from] slate_shell::ctl::CtlError),
    /// slated answered, and refused (its own words, safe to log).
    #[error("slated refused: {0}")]
    Refused(String),
}

/// What `status` tells the kiosk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceStatus {
    /// The device's number, if it has one.
    pub device: Option<u16>,
    pub state: DeviceState,
}

pub trait DeviceLink {
    fn status(&mut self) -> Result<DeviceStatus, LinkError>;
    fn sign_in(&mut self, pupil: &PupilId) -> Result<(), LinkError>;
    fn sign_out(&mut self) -> Result<(), LinkError>;
    /// Releases a held device with a staff PIN; slated checks it (and locks out guessing).
    fn unlock(&mut self, pin: &str) -> Result<(), LinkError>;
}

/// The real link: one request per call over slated's control socket.
#[derive(Debug, Clone)]
pub struct SocketLink {
    pub socket: PathBuf,
}

impl SocketLink {
    fn call(&self, request: &Request) -> Result<Reply, LinkError> {
        let reply = slate_shell::ctl::send(&self.socket, request)?;
        if reply.ok {
            Ok(reply)
        } else {
            Err(LinkError::Refused(reply.error.unwrap_or_else(|| "no reason given".into())))
        }
    }
}

impl DeviceLink for SocketLink {
    fn status(&mut self) -> Result<DeviceStatus, LinkError> {
        let reply = self.call(&Request::Status {})?;
        Ok(DeviceStatus {
            device: reply.device.and_then(|d| d.to_string().parse().ok()),
            state: DeviceState::from_status(reply.state.as_deref()),
        })
    }

    fn sign_in(&mut self, pupil: &PupilId) -> Result<(), LinkError> {
        self.call(&Request::SignIn { pupil: pupil.clone() }).map(drop)
    }

    fn sign_out(&mut self) -> Result<(), LinkError> {
        self.call(&Request::SignOut {}).map(drop)
    }

    fn unlock(&mut self, pin: &str) -> Result<(), LinkError> {
        let pin = Some(slate_shell::control::Pin(pin.to_owned()));
        self.call(&Request::Unlock { pin, choice: None, staff: None }).map(drop)
    }
}

/// A device in memory that follows slated's rules for these requests (and answers with its
/// words), plus [`FakeDevice::press`] for the report button. `reachable = false` makes every call
/// fail as if slated were not running.
#[derive(Debug, Clone)]
pub struct FakeDevice {
    pub device: u16,
    pub state: DeviceState,
    pub pupil: Option<PupilId>,
    pub reachable: bool,
    /// The staff PIN the fake accepts (`None`: any).
    pub pin: Option<String>,
    /// Every request made, in order, for assertions (never the PIN).
    pub log: Vec<String>,
}

impl FakeDevice {
    pub fn new(device: u16) -> Self {
        Self { device, state: DeviceState::Idle, pupil: None, reachable: true, pin: None, log: Vec::new() }
    }

    /// The report button.
    pub fn press(&mut self) {
        self.state = DeviceState::Held;
    }

    fn check(&mut self, what: String) -> Result<(), LinkError> {
        self.log.push(what);
        if self.reachable {
            Ok(())
        } else {
            Err(LinkError::Ctl(slate_shell::ctl::CtlError::NoReply {
                socket: PathBuf::from("fake"),
            }))
        }
    }
}

impl DeviceLink for FakeDevice {
    fn status(&mut self) -> Result<DeviceStatus, LinkError> {
        self.check("status".into())?;
        Ok(DeviceStatus { device: Some(self.device), state: self.state })
    }

    fn sign_in(&mut self, pupil: &PupilId) -> Result<(), LinkError> {
        self.check(format!("sign_in {}", pupil.as_str()))?;
        match self.state {
            DeviceState::Held => Err(LinkError::Refused("the device is held".into())),
            _ => {
                self.state = DeviceState::InSession;
                self.pupil = Some(pupil.clone());
                Ok(())
            }
        }
    }

    fn sign_out(&mut self) -> Result<(), LinkError> {
        self.check("sign_out".into())?;
        match self.state {
            DeviceState::InSession => {
                self.state = DeviceState::Idle;
                self.pupil = None;
                Ok(())
            }
            _ => Err(LinkError::Refused("nobody is signed in".into())),
        }
    }

    fn unlock(&mut self, pin: &str) -> Result<(), LinkError> {
        self.check("unlock".into())?;
        if self.state == DeviceState::Held && self.pin.as_deref().is_some_and(|p| p != pin) {
            return Err(LinkError::Refused("wrong staff PIN".into()));
        }
        match self.state {
            DeviceState::Held => {
                self.state =
                    if self.pupil.is_some() { DeviceState::InSession } else { DeviceState::Idle };
                Ok(())
            }
            _ => Err(LinkError::Refused("the device is not held".into())),
        }
    }
}
