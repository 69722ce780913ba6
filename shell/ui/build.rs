//! Compiles the Slint screens in `ui/` into Rust at build time. Debug info is kept so that the
//! tests can find controls by accessible label (Slint's `ElementHandle` needs it).

fn main() {
    let config = slint_build::CompilerConfiguration::new().with_debug_info(true);
    slint_build::compile_with_config("ui/app.slint", config).expect("the Slint screens compile");
}
