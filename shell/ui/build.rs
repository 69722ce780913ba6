//! Compiles the Slint screens in `ui/` into Rust at build time, with the translations in
//! `lang/<language>/LC_MESSAGES/slate-ui.po` bundled in (no gettext at run time; the device
//! switches language with `slint::select_bundled_translation`). Debug info is kept so that the
//! tests can find controls by accessible label (Slint's `ElementHandle` needs it).

fn main() {
    // Read when the script runs, not baked in when it is compiled: a build script compiled in
    // another clone sharing the target dir would otherwise look for that clone's catalogues.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let config = slint_build::CompilerConfiguration::new()
        .with_debug_info(true)
        .with_bundled_translations(format!("{manifest_dir}/lang"))
        // A msgid is the English text alone, the same on every screen (the catalogue has no
        // msgctxt), so one word is translated once.
        .with_default_translation_context(slint_build::DefaultTranslationContext::None);
    slint_build::compile_with_config("ui/app.slint", config).expect("the Slint screens compile");
}
