//! The element under gst-check's Harness: what each src pad sees, in order, and flushes.

#[path = "common/gst_helpers.rs"]
mod helpers;

use gst::prelude::*;
use gst_check::Harness;
use helpers::{frame_duration, init, synthetic_video};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SIZE: usize = 64;
const FRAMES: usize = 8;

/// The element with harnesses on `sink` (and `src`), `mask`, `layer_1` and `background`.
struct Rig {
    element: gst::Element,
    video: Harness,
    mask: Harness,
    // Kept alive: they hold the downstream ends of the request pads.
    _outputs: Vec<Harness>,
    /// What each src pad sent downstream, in order: event names and "buffer".
    seen: Vec<(String, Arc<Mutex<Vec<String>>>)>,
}

fn rig() -> Rig {
    init();
    let element = gst::ElementFactory::make("omnimatte")
        .property("objects", 2u32)
        .property("working-height", 64u32)
        .property("working-width", 64u32)
        // Output from the look-ahead on: these tests wait for buffers mid-stream.
        .property("background-warm-up", 0u32)
        .build()
        .unwrap();
    let mut video = Harness::with_element(&element, Some("sink"), Some("src"));
    let mut mask = Harness::with_element(&element, Some("mask"), None);
    let outputs: Vec<Harness> = ["layer_1", "background"]
        .iter()
        .map(|pad| Harness::with_element(&element, None, Some(pad)))
        .collect();
    let seen = ["src", "layer_1", "background"]
        .iter()
        .map(|name| {
            let log = Arc::new(Mutex::new(Vec::new()));
            let pad = element.static_pad(name).expect("pad exists");
            let record = log.clone();
            pad.add_probe(
                gst::PadProbeType::DATA_DOWNSTREAM | gst::PadProbeType::EVENT_FLUSH,
                move |_, info| {
                    let what = match &info.data {
                        Some(gst::PadProbeData::Buffer(_)) => "buffer".to_string(),
                        Some(gst::PadProbeData::Event(e)) => e.type_().name().to_string(),
                        _ => "other".to_string(),
                    };
                    record.lock().unwrap().push(what);
                    gst::PadProbeReturn::Ok
                },
            );
            (name.to_string(), log)
        })
        .collect();
    let caps = |format: &str| {
        format!("video/x-raw,format={format},width={SIZE},height={SIZE},framerate=25/1")
    };
    video.set_src_caps_str(&caps("RGB"));
    mask.set_src_caps_str(&caps("GRAY8"));
    video.play();
    Rig {
        element,
        video,
        mask,
        _outputs: outputs,
        seen,
    }
}

impl Rig {
    fn push_frames(&mut self, first: usize, n: usize) {
        for (i, (rgb, labels)) in synthetic_video(n, SIZE, SIZE).into_iter().enumerate() {
            let pts = frame_duration() * (first + i) as u64;
            for (h, bytes) in [(&mut self.video, rgb), (&mut self.mask, labels)] {
                let mut buffer = gst::Buffer::from_mut_slice(bytes);
                let b = buffer.get_mut().unwrap();
                b.set_pts(pts);
                b.set_duration(frame_duration());
                assert_eq!(h.push(buffer), Ok(gst::FlowSuccess::Ok));
            }
        }
    }

    /// Waits until every src pad has seen `what` `count` times (or fails after 60 s).
    fn wait_for(&self, what: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for (name, log) in &self.seen {
            loop {
                let n = log.lock().unwrap().iter().filter(|w| *w == what).count();
                if n >= count {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name} saw {n} of {count} {what}: {:?}",
                    log.lock().unwrap()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn each_src_pad_sees_stream_start_caps_segment_buffers_then_eos() {
    let mut rig = rig();
    rig.push_frames(0, FRAMES);
    assert!(rig.video.push_event(gst::event::Eos::new()));
    assert!(rig.mask.push_event(gst::event::Eos::new()));
    rig.wait_for("eos", 1);
    for (name, log) in &rig.seen {
        let log = log.lock().unwrap().clone();
        let buffers = log.iter().filter(|w| *w == "buffer").count();
        assert_eq!(buffers, FRAMES, "{name}: {log:?}");
        let first = |what: &str| log.iter().position(|w| w == what);
        let (start, caps, segment) = (
            first("stream-start").unwrap_or_else(|| panic!("{name}: no stream-start: {log:?}")),
            first("caps").unwrap_or_else(|| panic!("{name}: no caps: {log:?}")),
            first("segment").unwrap_or_else(|| panic!("{name}: no segment: {log:?}")),
        );
        let first_buffer = first("buffer").unwrap();
        assert!(
            start < caps && caps < segment && segment < first_buffer,
            "{name}: {log:?}"
        );
        assert_eq!(
            log.last().map(String::as_str),
            Some("eos"),
            "{name}: {log:?}"
        );
    }
    rig.element.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_flush_on_the_sink_reaches_every_src_pad_and_streaming_resumes() {
    let mut rig = rig();
    rig.push_frames(0, FRAMES);
    rig.wait_for("buffer", 1);
    for h in [&mut rig.video, &mut rig.mask] {
        assert!(h.push_event(gst::event::FlushStart::new()));
        assert!(h.push_event(gst::event::FlushStop::new(true)));
    }
    rig.wait_for("flush-stop", 1);
    for (name, log) in &rig.seen {
        let log = log.lock().unwrap().clone();
        let start = log.iter().position(|w| w == "flush-start");
        let stop = log.iter().position(|w| w == "flush-stop");
        assert!(
            start.is_some() && start < stop,
            "{name} must see flush-start then flush-stop: {log:?}"
        );
    }
    // After the flush a new segment and frames stream again, and EOS ends every pad.
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(rig.video.push_event(gst::event::Segment::new(&segment)));
    assert!(rig.mask.push_event(gst::event::Segment::new(&segment)));
    rig.push_frames(0, FRAMES);
    assert!(rig.video.push_event(gst::event::Eos::new()));
    assert!(rig.mask.push_event(gst::event::Eos::new()));
    rig.wait_for("eos", 1);
    for (name, log) in &rig.seen {
        let log = log.lock().unwrap().clone();
        let stop = log.iter().position(|w| w == "flush-stop").unwrap();
        let after = log[stop..].iter().filter(|w| *w == "buffer").count();
        assert_eq!(
            after, FRAMES,
            "{name}: every frame after the flush: {log:?}"
        );
    }
    rig.element.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_layer_pad_requested_mid_stream_gets_stream_start_caps_and_segment_first() {
    let mut rig = rig();
    rig.push_frames(0, FRAMES);
    rig.wait_for("buffer", 2);
    let mut late = Harness::with_element(&rig.element, None, Some("layer_2"));
    rig.push_frames(FRAMES, FRAMES);
    assert!(rig.video.push_event(gst::event::Eos::new()));
    assert!(rig.mask.push_event(gst::event::Eos::new()));
    rig.wait_for("eos", 1);
    let mut kinds = Vec::new();
    while let Some(event) = late.try_pull_event() {
        kinds.push(event.type_());
    }
    assert!(
        kinds.len() >= 3
            && kinds[0] == gst::EventType::StreamStart
            && kinds[1] == gst::EventType::Caps
            && kinds[2] == gst::EventType::Segment,
        "events on the late pad: {kinds:?}"
    );
    assert!(late.buffers_received() > 0, "the late pad streams");
    rig.element.set_state(gst::State::Null).unwrap();
}

#[test]
fn refusing_a_layer_pad_beyond_the_objects_is_not_a_stream_error() {
    init();
    let element = gst::ElementFactory::make("omnimatte")
        .property("objects", 2u32)
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    assert!(element.request_pad_simple("layer_5").is_none());
    assert!(element.request_pad_simple("layer_0").is_none());
    assert!(element.request_pad_simple("layer_2").is_some());
    assert!(
        element.request_pad_simple("layer_2").is_none(),
        "each layer pad exists once"
    );
    while let Some(msg) = bus.pop() {
        assert_ne!(msg.type_(), gst::MessageType::Error, "{msg:?}");
    }
}
