//! Without any bundled weights the element still runs, on a seeded random initialisation, and
//! says so loudly on the bus. Its own test binary: it changes the process environment.

#[path = "common/gst_helpers.rs"]
mod helpers;

use gst::prelude::*;
use helpers::*;
use std::time::Duration;

#[test]
fn missing_bundled_weights_fall_back_to_random_init_with_a_warning() {
    let empty = tempfile::tempdir().unwrap();
    // The only test of this binary, and set before GStreamer or libtorch start any thread.
    std::env::set_var("GST_OMNIMATTE_DATADIR", empty.path());
    init();
    let (w, h, n) = (64, 64, 3);
    let video = synthetic_video(n, w, h);
    let caps = |format: &str| {
        format!("video/x-raw,format={format},width={w},height={h},framerate={FPS}/1")
    };
    let desc = format!(
        "appsrc name=video format=time caps=\"{}\" ! omnimatte name=om objects=2 working-height=64 working-width=64 ! appsink name=src sync=false \
         appsrc name=mask format=time caps=\"{}\" ! om.mask",
        caps("RGB"),
        caps("GRAY8")
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let frames: Vec<Vec<u8>> = video.iter().map(|v| v.0.clone()).collect();
    let masks: Vec<Vec<u8>> = video.iter().map(|v| v.1.clone()).collect();
    let result = run(&p, Duration::from_secs(60), |p| {
        feed(&appsrc(p, "video"), &appsrc(p, "mask"), &frames, &masks)
    });
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(
        result.outputs["src"].len(),
        n,
        "every frame still comes out"
    );
    let expected = empty.path().join("omnimatte.safetensors");
    let warning = result
        .warnings
        .iter()
        .find(|w| w.contains("No pretrained weights"))
        .unwrap_or_else(|| panic!("no random-init warning among {:?}", result.warnings));
    assert!(
        warning.contains(&expected.display().to_string()),
        "the warning names where it looked: {warning}"
    );
}
