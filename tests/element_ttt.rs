//! The element's test-time training modes in real pipelines: `before-output` holds every
//! buffer until training is done, then outputs all frames; `background` streams every frame
//! while a training thread swaps new weights in, and stops cleanly mid-training; both
//! train with the interior-opacity term by default.

#[path = "common/gst_helpers.rs"]
mod helpers;

use gst::prelude::*;
use gstomnimatte::loss::MaskWeightSchedule;
use helpers::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const W: usize = 64;
const H: usize = 64;

/// The tests count the process's threads by name: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn pipeline(live: bool, props: &str) -> gst::Pipeline {
    let caps = |f: &str| format!("video/x-raw,format={f},width={W},height={H},framerate={FPS}/1");
    let desc = format!(
        "appsrc name=video format=time is-live={live} caps=\"{}\" ! omnimatte name=om objects=2 working-height=64 working-width=64 {props} ! appsink name=src sync=false \
         appsrc name=mask format=time is-live={live} caps=\"{}\" ! om.mask \
         om.layer_1 ! appsink name=layer_1 sync=false",
        caps("RGB"),
        caps("GRAY8")
    );
    gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

/// The element's threads still alive after it stopped, given up to 5 s to go: joining the
/// worker returns before the kernel has removed it from /proc, and libgomp's pool threads
/// (which take the name of the worker that started them) end detached, just after it.
/// A thread the element failed to stop is still there after that.
fn element_threads_left_after_stop() -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = thread_names()
            .into_iter()
            .filter(|t| t.starts_with("omnimatte"))
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn messages<'a>(result: &'a RunResult, name: &str) -> Vec<&'a gst::Structure> {
    result
        .element_messages
        .iter()
        .filter(|s| s.name() == name)
        .collect()
}

fn assert_every_frame(result: &RunResult, pad: &str, n: usize) {
    let out = &result.outputs[pad];
    assert_eq!(out.len(), n, "{pad}: frames out");
    for (i, b) in out.iter().enumerate() {
        assert_eq!(b.pts, Some(frame_duration() * i as u64), "{pad} frame {i}");
    }
}

#[test]
fn before_output_holds_every_buffer_until_training_is_done() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    init();
    let n = 24;
    let video = synthetic_video(n, W, H);
    let p = pipeline(
        false,
        "ttt=before-output ttt-frames=16 ttt-steps=6 ttt-mask-weight=0.5 ttt-interior-opacity=0.2 ttt-warmup-steps=3",
    );
    // The training's last message is posted (synchronously) before any buffer may leave.
    let trained = Arc::new(AtomicBool::new(false));
    let early = Arc::new(AtomicUsize::new(0));
    {
        let done = trained.clone();
        p.bus().unwrap().set_sync_handler(move |_, msg| {
            if let gst::MessageView::Element(e) = msg.view() {
                let s = e.structure().unwrap();
                if s.name() == "omnimatte-training" && s.get::<bool>("done").unwrap() {
                    done.store(true, Ordering::SeqCst);
                }
            }
            gst::BusSyncReply::Pass
        });
        let om = p.by_name("om").unwrap();
        for pad in ["src", "layer_1"] {
            let (trained, early) = (trained.clone(), early.clone());
            om.static_pad(pad)
                .or_else(|| om.pads().into_iter().find(|x| x.name() == pad))
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    if !trained.load(Ordering::SeqCst) {
                        early.fetch_add(1, Ordering::SeqCst);
                    }
                    gst::PadProbeReturn::Ok
                });
        }
    }
    let frames: Vec<Vec<u8>> = video.iter().map(|v| v.0.clone()).collect();
    let masks: Vec<Vec<u8>> = video.iter().map(|v| v.1.clone()).collect();
    let mut latency = None;
    let result = run(&p, Duration::from_secs(240), |p| {
        let mut q = gst::query::Latency::new();
        let om = p.by_name("om").unwrap();
        if om.static_pad("src").unwrap().query(&mut q) {
            latency = Some(q.result().1);
        }
        feed(&appsrc(p, "video"), &appsrc(p, "mask"), &frames, &masks)
    });
    assert!(result.error.is_none(), "{:?}", result.error);
    assert!(trained.load(Ordering::SeqCst), "training never finished");
    assert_eq!(
        early.load(Ordering::SeqCst),
        0,
        "buffers left before training ended"
    );
    assert_every_frame(&result, "src", n);
    assert_every_frame(&result, "layer_1", n);
    let steps: Vec<u64> = messages(&result, "omnimatte-training")
        .iter()
        .filter(|s| !s.get::<bool>("done").unwrap())
        .map(|s| s.get::<u64>("step").unwrap())
        .filter(|&s| s > 0)
        .collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>());
    // The property reached the schedule: lambda_m of the first step is 0.5's, not the default's.
    let first_weight = messages(&result, "omnimatte-training")
        .iter()
        .find(|s| s.get::<u64>("step").unwrap() == 1)
        .map(|s| s.get::<f64>("mask-weight").unwrap())
        .expect("a message for step 1");
    let schedule = |initial| MaskWeightSchedule::test_time(6, initial).at(0);
    assert_eq!(first_weight, schedule(0.5));
    assert_ne!(
        first_weight,
        schedule(gstomnimatte::defaults::TTT_MASK_WEIGHT)
    );
    assert!(
        result
            .progress
            .iter()
            .any(|t| t.contains("done after 6 steps")),
        "progress messages: {:?}",
        result.progress
    );
    // The latency query counts the 16 held frames.
    let latency = latency.expect("the latency query was answered");
    assert!(latency >= frame_duration() * 16, "latency {latency}");
}

#[test]
fn background_training_streams_every_frame_and_swaps_weights_in() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    init();
    let n = 200;
    let video = synthetic_video(n, W, H);
    let p = pipeline(
        true,
        "ttt=background ttt-frames=30 ttt-first-swap-steps=2 ttt-swap-steps=2",
    );
    let frames: Vec<Vec<u8>> = video.iter().map(|v| v.0.clone()).collect();
    let masks: Vec<Vec<u8>> = video.iter().map(|v| v.1.clone()).collect();
    let result = run(&p, Duration::from_secs(300), |p| {
        // Frames arrive at up to 50 per second while the element decomposes and trains.
        let (video, mask) = (appsrc(p, "video"), appsrc(p, "mask"));
        std::thread::spawn(move || {
            for i in 0..n {
                push_timed_one(&video, &frames[i], i);
                push_timed_one(&mask, &masks[i], i);
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = video.end_of_stream();
            let _ = mask.end_of_stream();
        });
    });
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_every_frame(&result, "src", n);
    assert_every_frame(&result, "layer_1", n);
    let trained = messages(&result, "omnimatte-training");
    assert!(!trained.is_empty(), "no training progress was posted");
    assert!(trained
        .iter()
        .all(|s| s.get::<&str>("mode").unwrap() == "background"));
    let swaps = messages(&result, "omnimatte-weights-swapped");
    assert!(!swaps.is_empty(), "no weights were swapped in");
    eprintln!(
        "{} training steps, {} swaps while streaming {n} frames",
        trained.len(),
        swaps.len()
    );
    let left = element_threads_left_after_stop();
    assert!(left.is_empty(), "threads left running: {left:?}");
}

#[test]
fn stopping_mid_training_shuts_the_workers_down() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    init();
    let video = synthetic_video(40, W, H);
    let p = pipeline(true, "ttt=background ttt-frames=20");
    p.set_state(gst::State::Playing).unwrap();
    let (vsrc, msrc) = (appsrc(&p, "video"), appsrc(&p, "mask"));
    for (i, (frame, mask)) in video.iter().enumerate() {
        push_timed_one(&vsrc, frame, i);
        push_timed_one(&msrc, mask, i);
    }
    // Wait until training runs, then stop the pipeline under it.
    let bus = p.bus().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let msg = bus
            .timed_pop(gst::ClockTime::from_mseconds(500))
            .map(|m| m.structure().map(|s| s.name().to_string()));
        if msg.flatten().as_deref() == Some("omnimatte-training") {
            break;
        }
        assert!(Instant::now() < deadline, "training never started");
    }
    assert!(thread_names().iter().any(|t| t == "omnimatte-ttt"));
    let stopping = Instant::now();
    p.set_state(gst::State::Null).unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        stopping.elapsed()
    );
    let left = element_threads_left_after_stop();
    assert!(left.is_empty(), "threads left running: {left:?}");
    drop((vsrc, msrc, bus));
    assert_eq!(p.ref_count(), 1, "the pipeline is not leaked");
}

#[test]
fn test_time_training_keeps_objects_opaque_by_default_in_the_element_and_the_library() {
    init();
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
