//! The adapter between the controller and the Slint screens: copies a [`View`] into the exported
//! globals and turns the globals' callbacks into [`UiEvent`]s. The only module that touches
//! Slint; it holds no rule.

use crate::app::{Controller, Launcher, Tile, View};
use crate::link::DeviceLink;
use crate::screen::{Screen, UiEvent};
use crate::setup::{Step, Tap as SetupTap};
use crate::{
    AgreementAdapter, AppWindow, AskTeacherAdapter, ButtonTestAdapter, ConfigErrorAdapter,
    HomeAdapter, Kiosk, OfflineAdapter, PicturePinAdapter, ReportedAdapter, SetupAdapter,
    SignInAdapter, TileData, UnlockAdapter, Words,
};
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};
use std::cell::RefCell;
use std::rc::Rc;

fn tiles(tiles: &[Tile], label: impl Fn(&str) -> SharedString) -> ModelRc<TileData> {
    ModelRc::new(VecModel::from(
        tiles
            .iter()
            .map(|t| TileData {
                caption: t.caption.as_str().into(),
                label: label(&t.label),
                symbol: t.symbol.as_str().into(),
                colour: i32::from(t.colour),
                enabled: t.enabled,
            })
            .collect::<Vec<_>>(),
    ))
}

fn strings(items: &[String]) -> ModelRc<SharedString> {
    ModelRc::new(VecModel::from(items.iter().map(SharedString::from).collect::<Vec<_>>()))
}

fn slint_screen(screen: Screen) -> crate::Screen {
    match screen {
        Screen::ChooseClass => crate::Screen::ChooseClass,
        Screen::ChoosePupil => crate::Screen::ChoosePupil,
        Screen::PicturePin => crate::Screen::PicturePin,
        Screen::Agreement => crate::Screen::Agreement,
        Screen::Home => crate::Screen::Home,
        Screen::Reported => crate::Screen::Reported,
        Screen::StaffUnlock => crate::Screen::StaffUnlock,
        Screen::AskTeacher(_) => crate::Screen::AskTeacher,
        Screen::Offline => crate::Screen::Offline,
        Screen::EyesOnTeacher => crate::Screen::EyesOnTeacher,
        Screen::ConfigError => crate::Screen::ConfigError,
        Screen::ItSetup => crate::Screen::ItSetup,
        // The held device's PIN pad, its button saying OK.
        Screen::StaffPin => crate::Screen::StaffUnlock,
        Screen::StaffMenu => crate::Screen::StaffMenu,
        Screen::ButtonTest => crate::Screen::ButtonTest,
    }
}

/// Indexes come from Slint's repeaters; a negative one cannot happen but must not wrap.
fn index(i: i32) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

/// Puts the screens in `language` when they are in another: Slint's bundled catalogue
/// (`lang/<language>/LC_MESSAGES/slate-ui.po`), English for a language without one.
fn select_language(kiosk: &Kiosk<'_>, language: &str) {
    if kiosk.get_language() == language {
        return;
    }
    if let Err(e) = slint::select_bundled_translation(language) {
        tracing::warn!(language, error = %e, "no screens in this language: English instead");
        let _ = slint::select_bundled_translation(slate_protocol::kiosk::DEFAULT_LANGUAGE);
    }
    kiosk.set_language(language.into());
}

/// Draws `view`.
pub fn show(window: &AppWindow, view: &View) {
    let kiosk = window.global::<Kiosk>();
    select_language(&kiosk, &view.language);
    kiosk.set_screen(slint_screen(view.screen));
    kiosk.set_device_number(view.device_number.as_str().into());
    kiosk.set_online(view.online);

    let words = window.global::<Words>();
    let sign_in = window.global::<SignInAdapter>();
    sign_in.set_classes(tiles(&view.classes, |name| words.invoke_class_label(name.into())));
    sign_in.set_class_name(view.class_name.as_str().into());
    sign_in.set_pupils(tiles(&view.pupils, |label| label.into()));

    let pin = window.global::<PicturePinAdapter>();
    pin.set_pupil(view.pupil.as_str().into());
    pin.set_length(view.picture_pin_length as i32);
    pin.set_entered(view.picture_pin_entered as i32);
    pin.set_wrong(view.picture_pin_wrong as i32);
    pin.set_try_again(view.picture_pin_try_again);
    pin.set_paused(view.picture_pin_paused);

    let agreement = window.global::<AgreementAdapter>();
    agreement.set_pupil(view.pupil.as_str().into());
    agreement.set_title(view.agreement.title.as_str().into());
    agreement.set_promises(strings(&view.agreement.promises));
    agreement.set_waiting(view.waiting);
    agreement.set_compact(view.agreement.compact());

    let home = window.global::<HomeAdapter>();
    home.set_pupil(view.pupil.as_str().into());
    home.set_apps(tiles(&view.apps, |label| label.into()));

    let unlock = window.global::<UnlockAdapter>();
    unlock.set_entered(view.pin_entered as i32);
    // One dot per digit typed, and never fewer than the shortest PIN.
    unlock.set_pin_length(view.pin_entered.max(crate::screen::PIN_MIN_LENGTH) as i32);
    unlock.set_min_length(crate::screen::PIN_MIN_LENGTH as i32);
    unlock.set_message(view.message.as_str().into());
    unlock.set_for_test(view.screen == Screen::StaffPin);

    window.global::<AskTeacherAdapter>().set_reason(view.ask_reason.as_str().into());
    window.global::<ConfigErrorAdapter>().set_message(view.config_error.as_str().into());

    let setup = window.global::<SetupAdapter>();
    let (step, device) = match view.setup_step {
        Some(Step::Code) | None => (0, 0),
        Some(Step::Number) => (1, 0),
        Some(Step::Confirm(d)) => (2, d),
        Some(Step::Enrolling(d)) => (3, d),
    };
    setup.set_step(step);
    setup.set_device(device.to_string().into());
    setup.set_entered(view.setup_digits.len() as i32);
    setup.set_digits(view.setup_digits.as_str().into());
    setup.set_code_length(slate_protocol::class_set::SETUP_CODE_DIGITS as i32);
    setup.set_complete(view.setup_complete);
    setup.set_notice_kind(view.setup_notice.kind());
    setup.set_notice_detail(view.setup_notice.detail().into());
    setup.set_pause_minutes(i32::try_from(view.setup_pause_minutes).unwrap_or(i32::MAX));
}

/// Something that says whether the device is online (the binary reads sysfs; tests decide).
pub type Online = Rc<dyn Fn() -> bool>;

/// Wires the screens' callbacks to the controller and draws its first view.
pub fn connect<L, A>(window: &AppWindow, controller: Rc<RefCell<Controller<L, A>>>, online: Online)
where
    L: DeviceLink + 'static,
    A: Launcher + 'static,
{
    let dispatch = {
        let weak = window.as_weak();
        let controller = controller.clone();
        let online = online.clone();
        Rc::new(move |event: UiEvent| {
            let mut c = controller.borrow_mut();
            c.handle(event, online());
            if let Some(window) = weak.upgrade() {
                show(&window, &c.view());
            }
        })
    };
    let on = |f: fn(i32) -> UiEvent| -> Box<dyn Fn(i32)> {
        let dispatch = dispatch.clone();
        Box::new(move |i: i32| dispatch(f(i)))
    };
    let tap = |event: UiEvent| {
        let dispatch = dispatch.clone();
        move || dispatch(event)
    };

    let sign_in = window.global::<SignInAdapter>();
    sign_in.on_choose_class(on(|i| UiEvent::ChooseClass(index(i))));
    sign_in.on_choose_pupil(on(|i| UiEvent::ChoosePupil(index(i))));
    sign_in.on_back(tap(UiEvent::Back));
    sign_in.on_staff(tap(UiEvent::Staff));
    let read = |controller: Rc<RefCell<Controller<L, A>>>| {
        move |heading: SharedString| controller.borrow_mut().read_screen(&heading)
    };
    sign_in.on_read_aloud(read(controller.clone()));
    window.global::<ReportedAdapter>().on_read_aloud(read(controller.clone()));

    let pin = window.global::<PicturePinAdapter>();
    let names: Vec<String> = crate::screen::PICTURES.iter().map(|p| p.to_string()).collect();
    pin.set_pictures(strings(&names));
    pin.on_picture(on(|i| UiEvent::PinPicture(index(i))));
    pin.on_back(tap(UiEvent::Back));

    let agreement = window.global::<AgreementAdapter>();
    agreement.on_agree(tap(UiEvent::Agree));
    agreement.on_back(tap(UiEvent::Back));
    agreement.on_read_aloud(tap(UiEvent::ReadAloud));

    let home = window.global::<HomeAdapter>();
    home.on_open_app(on(|i| UiEvent::OpenApp(index(i))));
    home.on_sign_out(tap(UiEvent::SignOut));

    window.global::<ReportedAdapter>().on_staff(tap(UiEvent::Staff));

    let unlock = window.global::<UnlockAdapter>();
    unlock.on_digit(on(|d| UiEvent::PinDigit(u8::try_from(d).unwrap_or(u8::MAX))));
    unlock.on_clear(tap(UiEvent::PinClear));
    unlock.on_cancel(tap(UiEvent::PinCancel));
    unlock.on_unlock(tap(UiEvent::PinUnlock));

    let button_test = window.global::<ButtonTestAdapter>();
    button_test.on_test(tap(UiEvent::TestButton));
    button_test.on_cancel(tap(UiEvent::PinCancel));

    window.global::<OfflineAdapter>().on_ok(tap(UiEvent::OfflineOk));
    window.global::<AskTeacherAdapter>().on_ok(tap(UiEvent::AskTeacherOk));

    let setup = window.global::<SetupAdapter>();
    setup.on_digit(on(|d| UiEvent::Setup(SetupTap::Digit(u8::try_from(d).unwrap_or(u8::MAX)))));
    setup.on_delete(tap(UiEvent::Setup(SetupTap::Delete)));
    setup.on_submit(tap(UiEvent::Setup(SetupTap::Submit)));
    let dispatch_confirm = dispatch.clone();
    setup.on_confirm(move |yes| dispatch_confirm(UiEvent::Setup(SetupTap::Confirm(yes))));

    let mut c = controller.borrow_mut();
    c.refresh(online());
    show(window, &c.view());
}

/// Polls slated and the network, and redraws: what the binary's timer calls.
pub fn poll<L: DeviceLink, A: Launcher>(
    window: &AppWindow,
    controller: &RefCell<Controller<L, A>>,
    online: bool,
) {
    let mut c = controller.borrow_mut();
    c.refresh(online);
    show(window, &c.view());
}
