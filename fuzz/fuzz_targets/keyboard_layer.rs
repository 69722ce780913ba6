//! slate-keyboard-layer's reading of the on-screen keyboard's Wayland stream
//! (`shell/wayland/src/keyboard_layer.rs`): the framing, then each whole message read both as a
//! request (which may be rewritten) and as an event.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slate_wayland::keyboard_layer::{complete_len, messages, Rewriter};

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    let Ok(whole) = complete_len(&buf) else { return };
    let mut rewriter = Rewriter::default();
    for range in messages(&buf[..whole]).collect::<Vec<_>>() {
        let len = range.len();
        rewriter.request(&mut buf[range.clone()]);
        assert_eq!(buf[range.clone()].len(), len);
        rewriter.event(&buf[range]);
    }
});
