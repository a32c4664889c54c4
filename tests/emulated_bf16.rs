//! bf16 asked for on a CPU that only emulates it: the element keeps the user's choice, runs,
//! and says on the bus that it will be slow. Its own test binary: it changes the process
//! environment (the CPU is made to look as if it lacked AMX-BF16 and AVX512-BF16).

#[path = "common/gst_helpers.rs"]
mod helpers;

use gst::prelude::*;
use gstomnimatte::model::precision::CPU_BF16_ENV;
use helpers::*;
use std::time::Duration;

#[test]
fn explicit_bf16_on_a_cpu_without_it_runs_with_a_warning() {
    // The only test of this binary, and set before GStreamer or libtorch start any thread.
    std::env::set_var(CPU_BF16_ENV, "0");
    init();
    let (w, h, n) = (64, 64, 2);
    let video = synthetic_video(n, w, h);
    let caps = |format: &str| {
        format!("video/x-raw,format={format},width={w},height={h},framerate={FPS}/1")
    };
    let desc = format!(
        "appsrc name=video format=time caps=\"{}\" ! omnimatte name=om objects=2 precision=bf16 \
         mirror-average=false working-height=64 working-width=64 ! appsink name=src sync=false \
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
    let result = run(&p, Duration::from_secs(300), |p| {
        feed(&appsrc(p, "video"), &appsrc(p, "mask"), &frames, &masks)
    });
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(result.outputs["src"].len(), n, "every frame comes out");
    assert!(
        result.warnings.iter().any(|w| w.contains("emulates bf16")),
        "no emulation warning among {:?}",
        result.warnings
    );
}
