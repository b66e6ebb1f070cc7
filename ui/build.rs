//! Compiles the shared `.slint` files once, with debug info so the UI
//! tests can find elements by id.

fn main() {
    let config = slint_build::CompilerConfiguration::new()
        .with_style("fluent".into())
        .with_debug_info(true);
    if let Err(e) = slint_build::compile_with_config("ui/app.slint", config) {
        println!("cargo:warning=slint: {e}");
        std::process::exit(1);
    }
}
