//! Build script: plugin version metadata, and an rpath to libtorch so that
//! `libgstomnimatte.so` and the CLI load without LD_LIBRARY_PATH.
fn main() {
    gst_plugin_version_helper::info();

    // torch-sys (links = "tch") exports the libtorch lib dir to direct dependents.
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    }
    // The linker's --as-needed drops libtorch_cuda (no symbol is referenced directly),
    // and without it libtorch reports no CUDA device.
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    // meson passes the data directory it installs the bundled weights into.
    println!("cargo:rerun-if-env-changed=OMNIMATTE_INSTALL_DATADIR");
}
