//! The plugin registers with GStreamer under its name.

#[test]
fn plugin_registers_as_omnimatte() {
    gst::init().unwrap();
    gstomnimatte::plugin_register_static().unwrap();
    let plugin = gst::Registry::get()
        .find_plugin("omnimatte")
        .expect("plugin is registered");
    assert_eq!(plugin.plugin_name(), "omnimatte");
    assert_eq!(plugin.license(), "Apache-2.0");
}
