//! The kiosk's link to `slated`: a narrow trait with the real implementation over the control
//! socket ([`SocketLink`], with `slate_ipc`'s request and reply types and client) and a fake
//! ([`FakeDevice`]) for tests and for running the UI without a daemon. Owns nothing but the
//! translation; the device's rules live in slated.

use crate::screen::DeviceState;
use slate_ipc::control::{Pictures, Reply, Request, SetupView};
use slate_protocol::kiosk::KeyStage;
use slate_protocol::{DeviceNumber, PupilId};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Ctl(#[from] slate_ipc::client::ClientError),
    /// slated answered, and refused (its own words, safe to log).
    #[error("slated refused: {0}")]
    Refused(String),
}

/// What `status` tells the kiosk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStatus {
    /// The device's number, if it has one.
    pub device: Option<u16>,
    pub state: DeviceState,
    /// The teacher's "eyes on me" is in force.
    pub screens_locked: bool,
    /// The signed-in pupil (so a restarted kiosk finds its way back to the session's apps).
    pub pupil: Option<PupilId>,
    /// Whether a staff PIN has reached the device (without one a held device stays held).
    pub staff_pin: bool,
    /// Where IT's setup is, while the device has no number (`state` is `Setup`).
    pub setup: Option<SetupView>,
    /// A button test window is open: the next press of the report button is only a test.
    pub button_test: bool,
}

pub trait DeviceLink {
    fn status(&mut self) -> Result<DeviceStatus, LinkError>;
    /// Starts a session; `pictures`: the picture PIN slated said was right (slated checks it
    /// again).
    fn sign_in(&mut self, pupil: &PupilId, pictures: Option<&[String]>) -> Result<(), LinkError>;
    /// Whether these pictures are the pupil's picture PIN: slated decides (`Ok(false)`: wrong).
    fn check_pictures(&mut self, pupil: &PupilId, pictures: &[String]) -> Result<bool, LinkError>;
    fn sign_out(&mut self) -> Result<(), LinkError>;
    /// Releases a held device with a staff PIN; slated checks it (and locks out guessing).
    fn unlock(&mut self, pin: &str) -> Result<(), LinkError>;
    /// The sign-in screen's staff PIN pad: slated checks the PIN (wrong ones count towards the
    /// unlock's lockout); `start` opens the button test in that staff member's name.
    fn staff_button_test(&mut self, pin: &str, start: bool) -> Result<(), LinkError>;
    /// The pupil accepted the agreement: `text_version` is [`crate::agreement::Agreement::version`],
    /// `school_version` its [`crate::agreement::Agreement::school_version`].
    fn aup_accepted(
        &mut self,
        key_stage: KeyStage,
        text_version: &str,
        school_version: Option<u32>,
    ) -> Result<(), LinkError>;
    /// The pupil touched the screen (resets slated's idle timer).
    fn activity(&mut self) -> Result<(), LinkError>;
    /// The reassurance screen is in front of every app while held: slated may light the screen.
    fn reassurance_shown(&mut self) -> Result<(), LinkError>;
    /// IT's setup code, typed on the setup page (slated checks it and throttles wrong ones).
    fn setup_code(&mut self, code: &str) -> Result<(), LinkError>;
    /// The device number IT typed on the setup page.
    fn setup_number(&mut self, number: u32) -> Result<(), LinkError>;
    /// "This is device N": yes enrolls with it, no asks for the number again.
    fn setup_confirm(&mut self, yes: bool) -> Result<(), LinkError>;
}

fn key_stage_name(stage: KeyStage) -> &'static str {
    match stage {
        KeyStage::Ks1 => "ks1",
        KeyStage::Ks2 => "ks2",
    }
}

/// The real link: one request per call over slated's control socket.
#[derive(Debug, Clone)]
pub struct SocketLink {
    pub socket: PathBuf,
}

impl SocketLink {
    fn call(&self, request: &Request) -> Result<Reply, LinkError> {
        call(&self.socket, request)
    }
}

/// Sends `request` to slated and returns its reply, refusals as errors.
pub fn call(socket: &std::path::Path, request: &Request) -> Result<Reply, LinkError> {
    let reply = slate_ipc::client::send(socket, request)?;
    if reply.ok {
        Ok(reply)
    } else {
        Err(LinkError::Refused(reply.error.unwrap_or_else(|| "no reason given".into())))
    }
}

impl DeviceLink for SocketLink {
    fn status(&mut self) -> Result<DeviceStatus, LinkError> {
        let reply = self.call(&Request::Status {})?;
        Ok(DeviceStatus {
            device: reply.device.and_then(|d| d.to_string().parse().ok()),
            state: DeviceState::from_status(reply.state.as_deref()),
            screens_locked: reply.screens_locked.unwrap_or(false),
            pupil: reply.pupil,
            // An older slated that does not say: assume it has one (it unlocked without).
            staff_pin: reply.staff_pin.unwrap_or(true),
            setup: reply.setup,
            // An older slated has no button test to show.
            button_test: reply.button_test.unwrap_or(false),
        })
    }

    fn sign_in(&mut self, pupil: &PupilId, pictures: Option<&[String]>) -> Result<(), LinkError> {
        let pictures = pictures.map(|p| Pictures(p.to_vec()));
        self.call(&Request::SignIn { pupil: pupil.clone(), pictures }).map(drop)
    }

    fn check_pictures(&mut self, pupil: &PupilId, pictures: &[String]) -> Result<bool, LinkError> {
        let request =
            Request::CheckPictures { pupil: pupil.clone(), pictures: Pictures(pictures.to_vec()) };
        match self.call(&request) {
            Ok(_) => Ok(true),
            Err(LinkError::Refused(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn sign_out(&mut self) -> Result<(), LinkError> {
        self.call(&Request::SignOut {}).map(drop)
    }

    fn unlock(&mut self, pin: &str) -> Result<(), LinkError> {
        let pin = Some(slate_ipc::control::Pin(pin.to_owned()));
        self.call(&Request::Unlock { pin, choice: None, staff: None }).map(drop)
    }

    fn staff_button_test(&mut self, pin: &str, start: bool) -> Result<(), LinkError> {
        let pin = slate_ipc::control::Pin(pin.to_owned());
        self.call(&Request::StaffButtonTest { pin, start }).map(drop)
    }

    fn aup_accepted(
        &mut self,
        key_stage: KeyStage,
        text_version: &str,
        school_version: Option<u32>,
    ) -> Result<(), LinkError> {
        let key_stage = key_stage_name(key_stage).to_owned();
        let text_version = text_version.to_owned();
        self.call(&Request::AupAccepted { key_stage, text_version, school_version }).map(drop)
    }

    fn activity(&mut self) -> Result<(), LinkError> {
        self.call(&Request::Activity {}).map(drop)
    }

    fn reassurance_shown(&mut self) -> Result<(), LinkError> {
        self.call(&Request::ReassuranceShown {}).map(drop)
    }

    fn setup_code(&mut self, code: &str) -> Result<(), LinkError> {
        let code = slate_ipc::control::Pin(code.to_owned());
        self.call(&Request::SetupCode { code }).map(drop)
    }

    fn setup_number(&mut self, number: u32) -> Result<(), LinkError> {
        self.call(&Request::SetupNumber { number }).map(drop)
    }

    fn setup_confirm(&mut self, yes: bool) -> Result<(), LinkError> {
        self.call(&Request::SetupConfirm { yes }).map(drop)
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
    pub screens_locked: bool,
    /// The staff PIN the fake accepts (`None`: any).
    pub pin: Option<String>,
    /// What `status` says of the staff PIN.
    pub staff_pin: bool,
    /// Pupils' picture PINs, as slated knows them from the policy (others have none).
    pub picture_pins: Vec<(PupilId, Vec<String>)>,
    /// IT's setup while the device has no number (`state` is `Setup`): the step slated shows.
    pub setup: Option<SetupView>,
    /// The setup code the fake accepts.
    pub setup_code: String,
    /// Numbers the server has enrolled already (enrolling as one is refused, as slated says).
    pub taken: Vec<u16>,
    /// A button test window is open (the next press is a test).
    pub button_test: bool,
    /// Every request made, in order, for assertions (never a PIN or a code).
    pub log: Vec<String>,
}

impl FakeDevice {
    pub fn new(device: u16) -> Self {
        Self {
            device,
            state: DeviceState::Idle,
            pupil: None,
            reachable: true,
            screens_locked: false,
            pin: None,
            staff_pin: true,
            picture_pins: Vec::new(),
            setup: None,
            setup_code: "12345678".into(),
            taken: Vec::new(),
            button_test: false,
            log: Vec::new(),
        }
    }

    /// A device with no number yet, waiting for IT's setup code.
    pub fn in_setup() -> Self {
        Self {
            state: DeviceState::Setup,
            setup: Some(SetupView {
                step: "code".into(),
                device: None,
                notice: None,
                locked_for_s: None,
            }),
            ..Self::new(0)
        }
    }

    /// slated's setup rules in short (`slate_daemon::setup::Setup::step` has them in full):
    /// moves the step on, or sets the notice slated would and refuses.
    fn setup_step(
        &mut self,
        next: impl FnOnce(&SetupView, &Self) -> Result<SetupView, String>,
    ) -> Result<(), LinkError> {
        let Some(view) = self.setup.clone() else {
            return Err(LinkError::Refused("this device is set up already".into()));
        };
        match next(&view, self) {
            Ok(mut next) => {
                if next.step == "enrolling" {
                    let device = next.device.map(|d| d.get()).unwrap_or_default();
                    if self.taken.contains(&device) {
                        next = SetupView {
                            step: "number".into(),
                            device: None,
                            notice: Some(format!(
                                "Device {device} is already enrolled: choose another number"
                            )),
                            locked_for_s: None,
                        };
                    } else {
                        // Enrolled: slated starts as this device.
                        self.setup = None;
                        self.device = device;
                        self.state = DeviceState::Idle;
                        return Ok(());
                    }
                }
                self.setup = Some(next);
                Ok(())
            }
            Err(notice) => {
                self.setup = Some(SetupView { notice: Some(notice.clone()), ..view });
                Err(LinkError::Refused(notice))
            }
        }
    }

    /// The report button: a test while a button test window is open, else a report.
    pub fn press(&mut self) {
        if std::mem::take(&mut self.button_test) {
            return;
        }
        self.state = DeviceState::Held;
    }

    /// slated ends the session by itself (idle timeout, end of lesson, signed out by staff).
    pub fn end_session(&mut self) {
        if self.state == DeviceState::InSession {
            self.state = DeviceState::Idle;
            self.pupil = None;
        }
    }

    fn check(&mut self, what: String) -> Result<(), LinkError> {
        self.log.push(what);
        if self.reachable {
            Ok(())
        } else {
            Err(LinkError::Ctl(slate_ipc::client::ClientError::NoReply {
                socket: PathBuf::from("fake"),
            }))
        }
    }
}

impl DeviceLink for FakeDevice {
    fn status(&mut self) -> Result<DeviceStatus, LinkError> {
        self.check("status".into())?;
        Ok(DeviceStatus {
            device: self.setup.is_none().then_some(self.device),
            state: self.state,
            screens_locked: self.screens_locked,
            pupil: self.pupil.clone(),
            staff_pin: self.staff_pin,
            setup: self.setup.clone(),
            button_test: self.button_test,
        })
    }

    fn sign_in(&mut self, pupil: &PupilId, pictures: Option<&[String]>) -> Result<(), LinkError> {
        self.check(format!("sign_in {}", pupil.as_str()))?;
        let expected = self.picture_pins.iter().find(|(p, _)| p == pupil).map(|(_, pin)| pin);
        if expected.is_some_and(|want| Some(want.as_slice()) != pictures) {
            return Err(LinkError::Refused("wrong pictures: try again".into()));
        }
        match self.state {
            DeviceState::Held => Err(LinkError::Refused("the device is held".into())),
            _ => {
                self.state = DeviceState::InSession;
                self.pupil = Some(pupil.clone());
                // A sign-in closes a button test window.
                self.button_test = false;
                Ok(())
            }
        }
    }

    fn check_pictures(&mut self, pupil: &PupilId, pictures: &[String]) -> Result<bool, LinkError> {
        self.check(format!("check_pictures {}", pupil.as_str()))?;
        let expected = self.picture_pins.iter().find(|(p, _)| p == pupil).map(|(_, pin)| pin);
        Ok(expected.is_some_and(|want| want.as_slice() == pictures))
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

    fn staff_button_test(&mut self, pin: &str, start: bool) -> Result<(), LinkError> {
        self.check(format!("staff_button_test start={start}"))?;
        match self.state {
            DeviceState::Idle => {}
            DeviceState::Held => return Err(LinkError::Refused("the device is held".into())),
            _ => return Err(LinkError::Refused("a pupil is signed in".into())),
        }
        if self.pin.as_deref().is_some_and(|p| p != pin) {
            return Err(LinkError::Refused("wrong staff PIN".into()));
        }
        self.button_test |= start;
        Ok(())
    }

    fn aup_accepted(
        &mut self,
        key_stage: KeyStage,
        text_version: &str,
        school_version: Option<u32>,
    ) -> Result<(), LinkError> {
        let school = school_version.map(|n| format!(" school {n}")).unwrap_or_default();
        self.check(format!("aup_accepted {} {text_version}{school}", key_stage_name(key_stage)))
    }

    fn activity(&mut self) -> Result<(), LinkError> {
        self.check("activity".into())?;
        match self.state {
            DeviceState::InSession => Ok(()),
            _ => Err(LinkError::Refused("nobody is signed in".into())),
        }
    }

    fn reassurance_shown(&mut self) -> Result<(), LinkError> {
        self.check("reassurance_shown".into())?;
        match self.state {
            DeviceState::Held => Ok(()),
            _ => Err(LinkError::Refused("the device is not held".into())),
        }
    }

    fn setup_code(&mut self, code: &str) -> Result<(), LinkError> {
        self.check("setup_code".into())?;
        self.setup_step(|view, fake| match view.step.as_str() {
            "code" if code == fake.setup_code => {
                Ok(SetupView { step: "number".into(), notice: None, ..view.clone() })
            }
            "code" => Err("That code is not right".into()),
            _ => Ok(view.clone()),
        })
    }

    fn setup_number(&mut self, number: u32) -> Result<(), LinkError> {
        self.check(format!("setup_number {number}"))?;
        self.setup_step(|view, _| match (view.step.as_str(), DeviceNumber::new(number)) {
            ("number", Ok(device)) => Ok(SetupView {
                step: "confirm".into(),
                device: Some(device),
                notice: None,
                locked_for_s: None,
            }),
            ("number", Err(_)) => Err(format!("Type a number from 1 to {}", DeviceNumber::MAX)),
            _ => Ok(view.clone()),
        })
    }

    fn setup_confirm(&mut self, yes: bool) -> Result<(), LinkError> {
        self.check(format!("setup_confirm {}", if yes { "yes" } else { "no" }))?;
        self.setup_step(|view, _| match view.step.as_str() {
            "confirm" if yes => Ok(SetupView { step: "enrolling".into(), ..view.clone() }),
            "confirm" => Ok(SetupView {
                step: "number".into(),
                device: None,
                notice: None,
                locked_for_s: None,
            }),
            _ => Ok(view.clone()),
        })
    }
}
