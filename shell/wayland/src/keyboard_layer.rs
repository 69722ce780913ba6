//! The on-screen keyboard above the full-screen app: `slate-keyboard-layer` runs Debian's wvkbd
//! on a connection of its own to the compositor and moves the keyboard's surface from the
//! layer-shell *top* layer to the *overlay* layer on the way.
//!
//! Why: the kiosk's Chromium is always full screen (`--kiosk`; out of full screen it shows its
//! tab strip and address bar), labwc hides an output's top layer while a full-screen window is
//! topmost on it, and Debian's wvkbd (0.15, trixie to sid) maps its surface on the top layer
//! (upstream moved it to the overlay layer in 0.16). A pupil would tap a field and see no keys.
//! Debian has no newer wvkbd and no source package to patch here, so the one request that names
//! the layer is rewritten between wvkbd and labwc: `zwlr_layer_shell_v1.get_layer_surface` (and
//! `zwlr_layer_surface_v1.set_layer`) with layer `top` becomes `overlay`. Every other byte and
//! file descriptor passes unchanged, in order. When Debian ships wvkbd 0.16 or later this
//! program changes nothing (it only rewrites `top`) and can go.
//!
//! Functional core, imperative shell: [`complete_len`] frames the byte stream into messages and
//! [`Rewriter`] decides, per message, what to change; both are pure and table-tested here. The
//! binary does the sockets (`src/bin/slate-keyboard-layer.rs`).
//!
//! The wire (libwayland's): each message is a header of two native-endian 32-bit words, the
//! object id and `size << 16 | opcode` (size in bytes, header included), then its arguments,
//! each a 32-bit word or, for a string, its length (with the NUL) and its bytes padded to 4.
//! Which object is which is followed from the client's own requests: `wl_display.get_registry`
//! makes a registry, `wl_registry.bind` with interface `zwlr_layer_shell_v1` a layer shell, its
//! `get_layer_surface` a layer surface. Ids are forgotten when the compositor says
//! `wl_display.delete_id` (only then may the client reuse one).

use std::collections::HashSet;

/// `zwlr_layer_shell_v1.layer.top`.
pub const LAYER_TOP: u32 = 2;
/// `zwlr_layer_shell_v1.layer.overlay`.
pub const LAYER_OVERLAY: u32 = 3;

/// The display is always object 1.
const DISPLAY: u32 = 1;
const DISPLAY_GET_REGISTRY: u16 = 1;
const DISPLAY_DELETE_ID: u16 = 1;
const REGISTRY_BIND: u16 = 0;
const LAYER_SHELL_GET_LAYER_SURFACE: u16 = 0;
const LAYER_SURFACE_SET_LAYER: u16 = 8;
const LAYER_SHELL: &[u8] = b"zwlr_layer_shell_v1";
const HEADER: usize = 8;

/// The stream is not Wayland: the connection is closed rather than guessed at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a message of {0} bytes, shorter than its own header")]
    TooShort(usize),
    #[error("a message of {0} bytes, not a whole number of 32-bit words")]
    Unaligned(usize),
}

/// How many bytes at the start of `buf` are whole messages (0 when the first is not all there
/// yet). Pure.
pub fn complete_len(buf: &[u8]) -> Result<usize, FrameError> {
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let size = (word(buf, at + 4) >> 16) as usize;
        if size < HEADER {
            return Err(FrameError::TooShort(size));
        }
        if !size.is_multiple_of(4) {
            return Err(FrameError::Unaligned(size));
        }
        if buf.len() - at < size {
            break;
        }
        at += size;
    }
    Ok(at)
}

/// The messages in `buf`, which holds whole messages only ([`complete_len`]). Pure.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if buf.len() - at < HEADER {
            return None;
        }
        let size = ((word(buf, at + 4) >> 16) as usize).max(HEADER);
        let range = at..(at + size).min(buf.len());
        at = range.end;
        Some(range)
    })
}

fn word(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(buf[at..at + 4].try_into().expect("four bytes"))
}

fn set_word(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

/// A string argument at `at`: its bytes without the NUL and where the next argument starts.
fn string(msg: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let len = u32::from_ne_bytes(msg.get(at..at + 4)?.try_into().ok()?) as usize;
    let padded = len.div_ceil(4) * 4;
    let bytes = msg.get(at + 4..at + 4 + padded)?;
    let text = bytes.get(..len.saturating_sub(1))?;
    Some((text, at + 4 + padded))
}

/// What one message did to the layers, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Passed as it was.
    None,
    /// A top-layer surface asked for: asked for on the overlay layer instead.
    MovedToOverlay,
}

/// Follows the objects that matter and moves the keyboard's surface to the overlay layer.
#[derive(Debug, Default)]
pub struct Rewriter {
    registries: HashSet<u32>,
    layer_shells: HashSet<u32>,
    layer_surfaces: HashSet<u32>,
}

impl Rewriter {
    /// One whole request from the client (wvkbd) to the compositor, changed in place when it
    /// asks for the top layer. A request too short for its own arguments is passed on as it is
    /// (the compositor refuses it and ends the client, as it would have without this).
    pub fn request(&mut self, msg: &mut [u8]) -> Change {
        if msg.len() < HEADER {
            return Change::None;
        }
        let object = word(msg, 0);
        let opcode = (word(msg, 4) & 0xffff) as u16;
        if object == DISPLAY && opcode == DISPLAY_GET_REGISTRY {
            if let Some(id) = msg.get(8..12) {
                self.registries.insert(u32::from_ne_bytes(id.try_into().unwrap()));
            }
        } else if self.registries.contains(&object) && opcode == REGISTRY_BIND {
            // bind(name, interface, version, id): the new id's interface travels with it.
            if let Some((interface, next)) = string(msg, 12) {
                if interface == LAYER_SHELL && msg.len() >= next + 8 {
                    self.layer_shells.insert(word(msg, next + 4));
                }
            }
        } else if self.layer_shells.contains(&object) && opcode == LAYER_SHELL_GET_LAYER_SURFACE {
            // get_layer_surface(id, surface, output, layer, namespace)
            if msg.len() >= 24 {
                self.layer_surfaces.insert(word(msg, 8));
                if word(msg, 20) == LAYER_TOP {
                    set_word(msg, 20, LAYER_OVERLAY);
                    return Change::MovedToOverlay;
                }
            }
        } else if self.layer_surfaces.contains(&object)
            && opcode == LAYER_SURFACE_SET_LAYER
            && msg.len() >= 12
            && word(msg, 8) == LAYER_TOP
        {
            set_word(msg, 8, LAYER_OVERLAY);
            return Change::MovedToOverlay;
        }
        Change::None
    }

    /// One whole event from the compositor to the client: an id the compositor deleted is
    /// forgotten, for the client may now use it for anything.
    pub fn event(&mut self, msg: &[u8]) {
        if msg.len() >= 12
            && word(msg, 0) == DISPLAY
            && (word(msg, 4) & 0xffff) as u16 == DISPLAY_DELETE_ID
        {
            let id = word(msg, 8);
            self.registries.remove(&id);
            self.layer_shells.remove(&id);
            self.layer_surfaces.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as libwayland writes it: object, opcode, then the argument words.
    fn message(object: u32, opcode: u16, args: &[u32]) -> Vec<u8> {
        let size = (HEADER + 4 * args.len()) as u32;
        let mut out = Vec::new();
        out.extend(object.to_ne_bytes());
        out.extend((size << 16 | u32::from(opcode)).to_ne_bytes());
        for a in args {
            out.extend(a.to_ne_bytes());
        }
        out
    }

    /// A string argument's words: length with the NUL, bytes padded to 4.
    fn string_words(s: &str) -> Vec<u32> {
        let mut bytes = s.as_bytes().to_vec();
        bytes.push(0);
        let len = bytes.len() as u32;
        while !bytes.len().is_multiple_of(4) {
            bytes.push(0);
        }
        let mut words = vec![len];
        words.extend(bytes.chunks(4).map(|c| u32::from_ne_bytes(c.try_into().unwrap())));
        words
    }

    fn bind(registry: u32, name: u32, interface: &str, version: u32, id: u32) -> Vec<u8> {
        let mut args = vec![name];
        args.extend(string_words(interface));
        args.extend([version, id]);
        message(registry, REGISTRY_BIND, &args)
    }

    fn get_layer_surface(shell: u32, id: u32, layer: u32) -> Vec<u8> {
        let mut args = vec![id, 10, 0, layer];
        args.extend(string_words("wlroots"));
        message(shell, LAYER_SHELL_GET_LAYER_SURFACE, &args)
    }

    fn layer_asked(msg: &[u8]) -> u32 {
        word(msg, 20)
    }

    /// wvkbd's own order: registry, binds, then its surface.
    fn rewriter_with_shell(shell: u32) -> Rewriter {
        let mut r = Rewriter::default();
        assert_eq!(r.request(&mut message(DISPLAY, DISPLAY_GET_REGISTRY, &[2])), Change::None);
        assert_eq!(r.request(&mut bind(2, 1, "wl_compositor", 4, 3)), Change::None);
        assert_eq!(r.request(&mut bind(2, 7, "zwlr_layer_shell_v1", 4, shell)), Change::None);
        r
    }

    #[test]
    fn the_top_layer_becomes_the_overlay_layer_and_nothing_else_changes() {
        type Case = (&'static str, u32, u32, u32, Change);
        // (what, object the request goes to, layer asked, layer sent, change)
        let table: [Case; 5] = [
            ("top on the bound shell", 4, LAYER_TOP, LAYER_OVERLAY, Change::MovedToOverlay),
            ("overlay stays", 4, LAYER_OVERLAY, LAYER_OVERLAY, Change::None),
            ("bottom stays", 4, 1, 1, Change::None),
            ("background stays", 4, 0, 0, Change::None),
            ("not the layer shell", 3, LAYER_TOP, LAYER_TOP, Change::None),
        ];
        for (what, object, asked, sent, change) in table {
            let mut r = rewriter_with_shell(4);
            let mut msg = get_layer_surface(object, 9, asked);
            let before = msg.clone();
            assert_eq!(r.request(&mut msg), change, "{what}");
            assert_eq!(layer_asked(&msg), sent, "{what}");
            // Only the layer word may differ.
            let mut expected = before;
            set_word(&mut expected, 20, sent);
            assert_eq!(msg, expected, "{what}");
        }
    }

    #[test]
    fn a_later_set_layer_to_top_is_moved_too() {
        let mut r = rewriter_with_shell(4);
        r.request(&mut get_layer_surface(4, 9, LAYER_OVERLAY));
        let mut set_top = message(9, LAYER_SURFACE_SET_LAYER, &[LAYER_TOP]);
        assert_eq!(r.request(&mut set_top), Change::MovedToOverlay);
        assert_eq!(word(&set_top, 8), LAYER_OVERLAY);
        // The same opcode on another object (a wl_surface's request 8) is not touched.
        let mut other = message(3, LAYER_SURFACE_SET_LAYER, &[LAYER_TOP]);
        assert_eq!(r.request(&mut other), Change::None);
        assert_eq!(word(&other, 8), LAYER_TOP);
    }

    #[test]
    fn a_deleted_id_is_forgotten_before_the_client_reuses_it() {
        let mut r = rewriter_with_shell(4);
        r.request(&mut get_layer_surface(4, 9, LAYER_TOP));
        // The layer shell destroyed and its id 4 reused for, say, a wl_surface, whose request 0
        // (destroy) must not be read as get_layer_surface.
        r.event(&message(DISPLAY, DISPLAY_DELETE_ID, &[4]));
        r.event(&message(DISPLAY, DISPLAY_DELETE_ID, &[9]));
        let mut reused = get_layer_surface(4, 11, LAYER_TOP);
        assert_eq!(r.request(&mut reused), Change::None);
        let mut reused_surface = message(9, LAYER_SURFACE_SET_LAYER, &[LAYER_TOP]);
        assert_eq!(r.request(&mut reused_surface), Change::None);
        // Another event of the display (error) forgets nothing.
        let mut r = rewriter_with_shell(4);
        r.event(&message(DISPLAY, 0, &[4, 1, 0]));
        assert_eq!(r.request(&mut get_layer_surface(4, 9, LAYER_TOP)), Change::MovedToOverlay);
    }

    #[test]
    fn a_bind_of_another_interface_or_a_short_message_is_passed_on() {
        let mut r = Rewriter::default();
        r.request(&mut message(DISPLAY, DISPLAY_GET_REGISTRY, &[2]));
        // A name that only starts like the layer shell's.
        r.request(&mut bind(2, 7, "zwlr_layer_shell_v1_extra", 1, 4));
        assert_eq!(r.request(&mut get_layer_surface(4, 9, LAYER_TOP)), Change::None);
        // Truncated requests: nothing read past their end, nothing changed.
        for cut in [0, 4, 8, 12, 16, 20] {
            let mut r = rewriter_with_shell(4);
            let mut msg = get_layer_surface(4, 9, LAYER_TOP);
            msg.truncate(cut);
            let before = msg.clone();
            assert_eq!(r.request(&mut msg), Change::None, "cut at {cut}");
            assert_eq!(msg, before);
            let mut bind_cut = bind(2, 7, "zwlr_layer_shell_v1", 4, 5);
            bind_cut.truncate(cut);
            r.request(&mut bind_cut);
            r.event(&bind_cut);
        }
    }

    #[test]
    fn the_stream_is_framed_into_whole_messages() {
        let a = message(1, 1, &[2]);
        let b = get_layer_surface(4, 9, LAYER_TOP);
        let mut both = a.clone();
        both.extend(&b);
        type Case<'a> = (&'a str, &'a [u8], Result<usize, FrameError>);
        let table: [Case; 6] = [
            ("nothing", &[], Ok(0)),
            ("half a header", &both[..4], Ok(0)),
            ("one whole, one begun", &both[..a.len() + 10], Ok(a.len())),
            ("two whole", &both, Ok(both.len())),
            ("a size under the header", &[1, 0, 0, 0, 0, 0, 4, 0], Err(FrameError::TooShort(4))),
            ("an odd size", &[1, 0, 0, 0, 0, 0, 9, 0], Err(FrameError::Unaligned(9))),
        ];
        for (what, buf, expected) in table {
            // The header's size is native-endian: the byte cases are written for little-endian.
            if cfg!(target_endian = "big") && what.contains("size") {
                continue;
            }
            assert_eq!(complete_len(buf), expected, "{what}");
        }
        let ranges: Vec<_> = messages(&both).collect();
        assert_eq!(ranges, vec![0..a.len(), a.len()..both.len()]);
    }
}
