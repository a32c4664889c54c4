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

#[test]
fn test_time_training_keeps_objects_opaque_by_default_in_the_element_and_the_library() {
    use gst::prelude::*;
    gst::init().unwrap();
    gstomnimatte::plugin_register_static().unwrap();
    let element = gst::ElementFactory::make("omnimatte").build().unwrap();
    let weight: f64 = element.property("ttt-interior-opacity");
    // The element, the CLI (clap reads the same constant) and the library's fine-tuning share
    // one default, and since session 21 it is on (docs/measurements.md).
    assert_eq!(weight, gstomnimatte::defaults::TTT_INTERIOR_OPACITY);
    assert!(weight > 0.0, "ttt-interior-opacity defaults to {weight}");
    assert_eq!(
        gstomnimatte::ttt::FineTuneConfig::new(1).interior_opacity,
        weight
    );
}
