//! A long stream keeps memory flat: the window and the background reservoir are bounded.

#[path = "common/gst_helpers.rs"]
mod helpers;

use gst::prelude::*;
use helpers::*;
use std::sync::{Arc, Mutex};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_thousand_frames_do_not_grow_memory_after_the_first_hundred() {
    init();
    let (w, h, n) = (64usize, 64usize, 1000usize);
    let desc = format!(
        "appsrc name=video format=time block=true max-buffers=2 caps=video/x-raw,format=RGB,width={w},height={h},framerate={FPS}/1 ! \
         omnimatte name=om objects=2 working-height=64 working-width=64 ! appsink name=src sync=false \
         appsrc name=mask format=time block=true max-buffers=2 caps=video/x-raw,format=GRAY8,width={w},height={h},framerate={FPS}/1 ! om.mask \
         om.layer_1 ! appsink name=layer_1 sync=false"
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let clip = synthetic_video(60, w, h);
    let samples: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let count = Arc::new(Mutex::new(0usize));
    {
        let (samples, count) = (samples.clone(), count.clone());
        let sink = p
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let _ = s.pull_sample();
                    let mut c = count.lock().unwrap();
                    *c += 1;
                    if *c % 100 == 0 {
                        samples.lock().unwrap().push((*c, rss_bytes()));
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    let layer = p
        .by_name("layer_1")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    layer.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(|s| {
                let _ = s.pull_sample();
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    p.set_state(gst::State::Playing).unwrap();
    let (video, mask) = (
        p.by_name("video")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap(),
        p.by_name("mask")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap(),
    );
    let feeder = std::thread::spawn(move || {
        for i in 0..n {
            let (rgb, labels) = &clip[i % clip.len()];
            for (src, bytes) in [(&video, rgb), (&mask, labels)] {
                let mut buffer = gst::Buffer::from_slice(bytes.clone());
                let b = buffer.get_mut().unwrap();
                b.set_pts(frame_duration() * i as u64);
                b.set_duration(frame_duration());
                src.push_buffer(buffer).unwrap();
            }
        }
        video.end_of_stream().unwrap();
        mask.end_of_stream().unwrap();
    });
    let bus = p.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(600),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the stream ends");
    assert_eq!(msg.type_(), gst::MessageType::Eos, "{msg:?}");
    feeder.join().unwrap();
    p.set_state(gst::State::Null).unwrap();

    assert_eq!(*count.lock().unwrap(), n);
    let samples = samples.lock().unwrap().clone();
    let at_100 = samples.iter().find(|s| s.0 == 100).unwrap().1;
    let peak_after = samples
        .iter()
        .filter(|s| s.0 > 100)
        .map(|s| s.1)
        .max()
        .unwrap();
    let growth = peak_after as i64 - at_100 as i64;
    eprintln!(
        "RSS at frame 100: {} MiB, peak after: {} MiB",
        at_100 >> 20,
        peak_after >> 20
    );
    assert!(
        growth < 16 << 20,
        "RSS grew by {} MiB after frame 100 ({samples:?})",
        growth >> 20
    );
}
