//! Where typing goes in the app in front, so that the on-screen keyboard is up only while a text
//! field has the focus.
//!
//! A web app's page tells: [`FOCUS_SCRIPT`], installed in every document of the app's page
//! (`Page.addScriptToEvaluateOnNewDocument`, which covers the page's same-process frames), calls
//! the CDP binding [`BINDING`] (`Runtime.addBinding`) with `in` when an editable element (a text
//! input, a textarea, a contenteditable element, inside shadow roots too) takes the focus and
//! `out` when the focus leaves for anything else. The binding hands Chromium a string and
//! nothing else: no page content reaches slate-ui. While a field has the focus the page is
//! resized to the part of the screen the keyboard leaves free ([`viewport_request`]), and the
//! script scrolls the field into that part.
//!
//! A native app's focus comes from the compositor instead ([`crate::native_focus`]); where that
//! cannot be told its focus is [`TextFocus::Unknown`] and the keyboard stays up over it.
//!
//! Pure: [`FocusTracker`] (CDP events in, "a field has the focus" out) and the request builders.
//! [`SharedFocus`] carries the answer from the browser's guard thread to the UI's loop.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The binding's name on the page's global object.
pub const BINDING: &str = "slateTextFocus";

/// Reports focus changes of editable elements through [`BINDING`], once per change. A focus
/// that moves from one field to another says nothing (no flicker). When the page is resized
/// (the keyboard came up) the focused field is scrolled into what is left.
pub const FOCUS_SCRIPT: &str = r#"(() => {
  const send = globalThis.slateTextFocus;
  if (typeof send !== 'function') return;
  const TEXT = new Set(['text', 'search', 'email', 'url', 'tel', 'password', 'number']);
  const editable = (el) => !!el && (el.isContentEditable ||
    ((el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' && TEXT.has(el.type))) &&
     !el.readOnly && !el.disabled));
  const deepActive = () => {
    let el = document.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    return el;
  };
  let last = false;
  const report = (focused) => {
    if (focused === last) return;
    last = focused;
    try { send(focused ? 'in' : 'out'); } catch (_) {}
  };
  addEventListener('focusin', (e) => report(editable(e.composedPath()[0])), true);
  addEventListener('focusout', (e) => { if (!editable(e.relatedTarget)) report(false); }, true);
  addEventListener('resize', () => {
    const el = deepActive();
    if (editable(el)) el.scrollIntoView({block: 'nearest', inline: 'nearest'});
  });
})();"#;

/// Where typing goes in the app in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextFocus {
    /// Not known (a native app when the compositor's input method cannot tell): the keyboard
    /// stays up over it.
    #[default]
    Unknown,
    /// A text field has the focus.
    Field,
    /// Something that takes no typing has the focus.
    Elsewhere,
}

/// The focus as last reported, shared between the browser's guard thread and the UI's loop.
#[derive(Debug, Clone, Default)]
pub struct SharedFocus(Arc<Mutex<TextFocus>>);

impl SharedFocus {
    pub fn get(&self) -> TextFocus {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn set(&self, focus: TextFocus) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = focus;
    }
}

/// The requests that make the page of `session` report its text focus: the binding first, so
/// that it is on the global object before the script runs in each new document. Sent while the
/// page is still paused (before `Runtime.runIfWaitingForDebugger`), so the first document has
/// them too.
pub fn page_requests() -> Vec<(&'static str, Value)> {
    vec![
        // Chromium installs bindings only where the Runtime domain is enabled. The guard ignores
        // the events that brings (contexts made, console messages).
        ("Runtime.enable", json!({})),
        ("Runtime.addBinding", json!({"name": BINDING})),
        ("Page.addScriptToEvaluateOnNewDocument", json!({"source": FOCUS_SCRIPT})),
    ]
}

/// Follows the reports of the app's page. Each document (execution context) reports for itself,
/// so the focus moving from a frame to another may arrive as "in" there before "out" here: a
/// field has the focus while any context says so.
#[derive(Debug, Default)]
pub struct FocusTracker {
    focused: BTreeSet<(String, i64)>,
}

impl FocusTracker {
    /// Whether a text field has the focus now.
    pub fn field_focused(&self) -> bool {
        !self.focused.is_empty()
    }

    /// Takes one CDP event; `main_session` is the app page's session (reports of any other are
    /// ignored). Returns the new answer when it changed. Pure.
    pub fn on_event(&mut self, msg: &Value, main_session: Option<&str>) -> Option<bool> {
        let before = self.field_focused();
        let session = msg["sessionId"].as_str();
        let params = &msg["params"];
        let from_main = session.is_some() && session == main_session;
        match msg["method"].as_str().unwrap_or_default() {
            "Runtime.bindingCalled" if from_main && params["name"] == BINDING => {
                let context = params["executionContextId"].as_i64()?;
                let key = (session.unwrap_or_default().to_owned(), context);
                match params["payload"].as_str() {
                    Some("in") => {
                        self.focused.insert(key);
                    }
                    Some("out") => {
                        self.focused.remove(&key);
                    }
                    // Anything else is not ours (the page can call the binding too): ignored.
                    _ => {}
                }
            }
            // A new top-level document: every earlier document's focus went with it.
            "Page.frameNavigated" if from_main && params["frame"]["parentId"].is_null() => {
                self.focused.clear();
            }
            "Inspector.targetCrashed" if from_main => self.focused.clear(),
            "Target.detachedFromTarget" => {
                let gone = params["sessionId"].as_str();
                self.focused.retain(|(s, _)| Some(s.as_str()) != gone);
            }
            _ => {}
        }
        let after = self.field_focused();
        (after != before).then_some(after)
    }
}

/// The request that fits the app's page to the screen: while a field has the focus, the
/// window's height less the keyboard's (the page is laid out again there, and the script scrolls
/// the field into it); otherwise the whole window. `window` is the browser window's (width,
/// height). Pure.
pub fn viewport_request(
    focused: bool,
    window: (u32, u32),
    keyboard_height: u32,
) -> (String, Value) {
    let (width, height) = window;
    if focused && height > keyboard_height {
        (
            "Emulation.setDeviceMetricsOverride".into(),
            json!({"width": width, "height": height - keyboard_height,
                   "deviceScaleFactor": 0, "mobile": false}),
        )
    } else {
        ("Emulation.clearDeviceMetricsOverride".into(), json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn called(session: &str, context: i64, payload: &str) -> Value {
        json!({"method": "Runtime.bindingCalled", "sessionId": session,
               "params": {"name": BINDING, "payload": payload, "executionContextId": context}})
    }

    fn navigated(session: &str, parent: Option<&str>) -> Value {
        json!({"method": "Page.frameNavigated", "sessionId": session,
               "params": {"frame": {"id": "F", "parentId": parent, "url": "https://a.example/"}}})
    }

    #[test]
    fn the_keyboard_follows_the_focus_reports() {
        let other_binding = json!({"method": "Runtime.bindingCalled", "sessionId": "S1",
                                   "params": {"name": "other", "payload": "in", "executionContextId": 1}});
        let detached =
            json!({"method": "Target.detachedFromTarget", "params": {"sessionId": "S1"}});
        let crashed = json!({"method": "Inspector.targetCrashed", "sessionId": "S1", "params": {}});
        // (event, field focused afterwards, changed)
        #[rustfmt::skip]
        let table: Vec<(Value, bool, bool)> = vec![
            (called("S1", 1, "out"), false, false),    // nothing was focused
            (called("S1", 1, "in"), true, true),       // a field in the page
            (called("S1", 1, "in"), true, false),      // said again
            (called("S1", 2, "in"), true, false),      // a frame's field, before the page's "out"
            (called("S1", 1, "out"), true, false),     // the page's field let go: the frame's holds
            (called("S1", 2, "out"), false, true),     // nothing typed into any more
            (called("S9", 1, "in"), false, false),     // another page (being closed): not ours
            (other_binding, false, false),             // another binding
            (called("S1", 1, "open sesame"), false, false), // the page calling it: not a report
            (called("S1", 1, "in"), true, true),
            (navigated("S1", Some("T1")), true, false), // a frame navigating leaves the page's
            (navigated("S9", None), true, false),       // another page navigating
            (navigated("S1", None), false, true),       // a new page: its old focus went with it
            (called("S1", 3, "in"), true, true),
            (crashed, false, true),
            (called("S1", 4, "in"), true, true),
            (detached, false, true),
        ];
        let mut tracker = FocusTracker::default();
        for (i, (event, focused, changed)) in table.into_iter().enumerate() {
            let got = tracker.on_event(&event, Some("S1"));
            assert_eq!(tracker.field_focused(), focused, "row {i}: {event}");
            assert_eq!(got, changed.then_some(focused), "row {i}: {event}");
        }
        // Before the page is attached nothing is anyone's.
        let mut tracker = FocusTracker::default();
        assert_eq!(tracker.on_event(&called("S1", 1, "in"), None), None);
    }

    #[test]
    fn the_page_gets_the_screen_above_the_keyboard() {
        #[rustfmt::skip]
        let table = [
            (true, (800, 480), 190, "Emulation.setDeviceMetricsOverride", Some((800, 290))),
            (false, (800, 480), 190, "Emulation.clearDeviceMetricsOverride", None),
            // A window no taller than the keyboard is left alone rather than squashed to nothing.
            (true, (800, 150), 190, "Emulation.clearDeviceMetricsOverride", None),
        ];
        for (focused, window, keyboard, method, size) in table {
            let (m, params) = viewport_request(focused, window, keyboard);
            assert_eq!(m, method, "{focused} {window:?}");
            if let Some((w, h)) = size {
                assert_eq!(
                    (params["width"].as_u64(), params["height"].as_u64()),
                    (Some(w), Some(h))
                );
                assert_eq!(params["mobile"], false);
            }
        }
    }

    #[test]
    fn the_binding_is_there_before_the_script() {
        let requests = page_requests();
        assert_eq!(requests[0].0, "Runtime.enable");
        assert_eq!(requests[1].0, "Runtime.addBinding");
        assert_eq!(requests[1].1["name"], BINDING);
        assert_eq!(requests[2].1["source"], FOCUS_SCRIPT);
        assert!(FOCUS_SCRIPT.contains(&format!("globalThis.{BINDING}")));
    }
}
