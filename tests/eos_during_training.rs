//! End of stream while `before-output` training runs (what gst-launch-1.0 -e sends on Ctrl-C):
//! the stream must end, every pad with every frame that went in, then EOS (issue 14, item 1).
//!
//! Why it deadlocked before (from a backtrace of this test): the pipeline's send_event(EOS)
//! holds the pipeline's state lock while basesrc's send_event waits for its pad's STREAM_LOCK,
//! which the source's streaming thread held while it sat in our video chain, back-pressured by
//! the worker that trained. The sinks, still waiting for a first buffer to preroll, needed that
//! state lock to go to PLAYING once training ended, so the src pads' threads, the worker and
//! the chain all waited on them. Now the chains do not wait for the worker while it trains
//! (`streaming::TRAINING_QUEUE_BYTES`), so the EOS goes in at once and is taken after training.
//! An encoder sits on one pad, as in the README's pipelines: it holds serialized events such
//! as gaps until its first frame, so downstream of it nothing prerolls before training ends.

#[path = "common/gst_helpers.rs"]
mod helpers;

use gst::prelude::*;
use helpers::init;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts the buffers that pass `pad`, and whether EOS did.
fn count(pad: &gst::Pad) -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (buffers, eos) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (b, e) = (buffers.clone(), eos.clone());
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(_)) => {
                    b.fetch_add(1, Ordering::SeqCst);
                }
                Some(gst::PadProbeData::Event(ev)) if ev.type_() == gst::EventType::Eos => {
                    e.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    (buffers, eos)
}

#[test]
fn eos_sent_to_the_pipeline_during_training_ends_the_stream_with_every_frame() {
    init();
    let mask = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cup/mask/00000.png");
    // An encoder before one sink, and sync=true on it: it waits for the clock once PLAYING.
    // A long video that comes at about 25 frames a second (not live: the sinks must preroll),
    // so that the EOS cuts it while frames still come.
    let desc = format!("videotestsrc num-buffers=100000 pattern=ball ! video/x-raw,format=RGB,width=320,height=240,framerate=25/1 ! identity sleep-time=40000 ! om.sink \
        multifilesrc location={mask} loop=true num-buffers=100000 caps=image/png,framerate=25/1 ! pngdec ! om.mask \
        omnimatte name=om objects=1 working-height=64 working-width=64 ttt=before-output ttt-frames=20 ttt-steps=100 ! fakesink name=src sync=false \
        om.layer_1 ! pngenc ! fakesink sync=true \
        om.background ! fakesink sync=false");
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let om = p.by_name("om").unwrap();
    let (frames_in, _) = count(&om.static_pad("sink").unwrap());
    let outputs: Vec<_> = ["src", "layer_1", "background"]
        .iter()
        .map(|name| {
            let pad = om
                .static_pad(name)
                .unwrap_or_else(|| om.request_pad_simple(name).unwrap());
            (name, count(&pad))
        })
        .collect();
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    // Training has started: its first progress message.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let msg = bus
            .timed_pop(gst::ClockTime::from_mseconds(100))
            .map(|m| m.type_());
        if msg == Some(gst::MessageType::Element) || Instant::now() > deadline {
            break;
        }
    }
    // Long enough for more frames than the element lets wait to arrive (16 at 25 per second).
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    assert!(p.send_event(gst::event::Eos::new()));
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let waited = started.elapsed();
    p.set_state(gst::State::Null).unwrap();
    let msg = msg.expect("the stream never ended after EOS during training");
    assert_eq!(msg.type_(), gst::MessageType::Eos, "{msg:?}");
    eprintln!("EOS after {waited:?}");
    let n = frames_in.load(Ordering::SeqCst);
    assert!(
        (20..100_000).contains(&n),
        "{n} frames went in: the EOS should have cut the video short"
    );
    for (name, (buffers, eos)) in outputs {
        assert_eq!(buffers.load(Ordering::SeqCst), n, "frames out of {name}");
        assert_eq!(eos.load(Ordering::SeqCst), 1, "EOS on {name}");
    }
}
