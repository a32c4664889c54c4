//! Real GStreamer pipelines for the element tests: appsrc in, appsink out.
#![allow(dead_code)]

use gst::prelude::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gstomnimatte::plugin_register_static().unwrap();
    });
}

/// An RGB test video: a bright square moving over a gradient, its dark "shadow" beside it, and
/// a second static object. Returns per frame (RGB bytes, label bytes).
pub fn synthetic_video(n: usize, w: usize, h: usize) -> Vec<Frame> {
    (0..n)
        .map(|i| {
            let mut rgb = vec![0u8; w * h * 3];
            let mut labels = vec![0u8; w * h];
            let size = h / 4;
            let x0 = 2 + (2 * i) % (w - size - 8);
            let y0 = h / 4;
            for y in 0..h {
                for x in 0..w {
                    let p = (y * w + x) * 3;
                    let mut c = [(60 + 120 * x / w) as u8, (50 + 100 * y / h) as u8, 120u8];
                    let in_obj = (x0..x0 + size).contains(&x) && (y0..y0 + size).contains(&y);
                    let in_shadow = (x0 + 3..x0 + 3 + size).contains(&x)
                        && (y0 + 3..y0 + 3 + size).contains(&y);
                    let in_static = (h - 12..h - 4).contains(&y) && (w - 14..w - 4).contains(&x);
                    if in_shadow {
                        c = [c[0] / 2, c[1] / 2, c[2] / 2];
                    }
                    if in_obj {
                        c = [230, 60, 30];
                        labels[y * w + x] = 1;
                    }
                    if in_static {
                        c = [20, 200, 40];
                        labels[y * w + x] = 2;
                    }
                    rgb[p..p + 3].copy_from_slice(&c);
                }
            }
            (rgb, labels)
        })
        .collect()
}

pub const FPS: i32 = 25;

pub fn frame_duration() -> gst::ClockTime {
    gst::ClockTime::SECOND / FPS as u64
}

/// Pushes one buffer per item of `data` on `src`, with PTS i/25 s and a frame's duration.
pub fn push_timed(src: &gst_app::AppSrc, data: &[Vec<u8>]) {
    for (i, bytes) in data.iter().enumerate() {
        push_timed_one(src, bytes, i);
    }
}

/// Pushes frame `i` of a video on `src`, with PTS i/25 s and a frame's duration.
pub fn push_timed_one(src: &gst_app::AppSrc, bytes: &[u8], i: usize) {
    let mut buffer = gst::Buffer::from_slice(bytes.to_vec());
    let b = buffer.get_mut().unwrap();
    b.set_pts(frame_duration() * i as u64);
    b.set_duration(frame_duration());
    let _ = src.push_buffer(buffer);
}

/// Pushes `frames` on the video appsrc and `masks` on the mask appsrc, then ends both.
pub fn feed(
    video: &gst_app::AppSrc,
    mask: &gst_app::AppSrc,
    frames: &[Vec<u8>],
    masks: &[Vec<u8>],
) {
    push_timed(video, frames);
    push_timed(mask, masks);
    let _ = video.end_of_stream();
    let _ = mask.end_of_stream();
}

/// One buffer an appsink received.
pub struct OutBuffer {
    pub pts: Option<gst::ClockTime>,
    pub duration: Option<gst::ClockTime>,
    pub bytes: Vec<u8>,
}

/// An RGB frame (packed bytes) and its label map.
pub type Frame = (Vec<u8>, Vec<u8>);

/// What a pipeline run produced.
pub struct RunResult {
    /// Buffers per appsink name.
    pub outputs: BTreeMap<String, Vec<OutBuffer>>,
    /// The first error message, if any.
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub element_messages: Vec<gst::Structure>,
    /// The text of every progress message.
    pub progress: Vec<String>,
}

/// Collects every appsink's buffers, runs to EOS or error (or `timeout`), and stops.
pub fn run(
    pipeline: &gst::Pipeline,
    timeout: Duration,
    before_play: impl FnOnce(&gst::Pipeline),
) -> RunResult {
    let outputs: Arc<Mutex<BTreeMap<String, Vec<OutBuffer>>>> = Arc::default();
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        if let Ok(sink) = element.clone().downcast::<gst_app::AppSink>() {
            let name = sink.name().to_string();
            outputs.lock().unwrap().insert(name.clone(), Vec::new());
            let outputs = outputs.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let buffer = sample.buffer().unwrap();
                        let bytes = buffer.map_readable().unwrap().to_vec();
                        outputs
                            .lock()
                            .unwrap()
                            .get_mut(&name)
                            .unwrap()
                            .push(OutBuffer {
                                pts: buffer.pts(),
                                duration: buffer.duration(),
                                bytes,
                            });
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
    }
    let bus = pipeline.bus().unwrap();
    let mut result = RunResult {
        outputs: BTreeMap::new(),
        error: None,
        warnings: Vec::new(),
        element_messages: Vec::new(),
        progress: Vec::new(),
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The error message on the bus says why.
    }
    before_play(pipeline);
    let deadline = std::time::Instant::now() + timeout;
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(
        deadline
            .saturating_duration_since(std::time::Instant::now())
            .as_millis() as u64,
    )) {
        use gst::MessageView;
        match msg.view() {
            MessageView::Eos(_) => break,
            MessageView::Error(e) => {
                result.error = Some(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
                break;
            }
            MessageView::Warning(w) => {
                result
                    .warnings
                    .push(format!("{} ({})", w.error(), w.debug().unwrap_or_default()))
            }
            MessageView::Progress(p) => result.progress.push(p.get().2.to_string()),
            MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    result.element_messages.push(s.to_owned());
                }
            }
            _ => {}
        }
        if std::time::Instant::now() >= deadline {
            break;
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    result.outputs = std::mem::take(&mut *outputs.lock().unwrap());
    result
}

pub fn appsrc(pipeline: &gst::Pipeline, name: &str) -> gst_app::AppSrc {
    pipeline
        .by_name(name)
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap()
}

pub fn psnr_rgb(rgba: &[u8], rgb: &[u8]) -> f64 {
    let n = rgb.len() / 3;
    let mut se = 0.0f64;
    for i in 0..n {
        for c in 0..3 {
            let d = rgba[i * 4 + c] as f64 - rgb[i * 3 + c] as f64;
            se += d * d;
        }
    }
    let mse = se / (3 * n) as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-10)).log10()
}

/// Runs `n` frames of [`synthetic_video`] (`w` x `h`, its label maps on the mask pad) through
/// `omnimatte objects=2 working-height=64 working-width=64 PROPERTIES`, into an appsink named
/// `src` on its reconstruction pad and one named after each of `output_pads` (`layer_1`,
/// `background`, ...) on that pad. Returns the video fed in and what came out.
pub fn run_synthetic(
    properties: &str,
    (w, h, n): (usize, usize, usize),
    output_pads: &[&str],
    timeout: Duration,
) -> (Vec<Frame>, RunResult) {
    let video = synthetic_video(n, w, h);
    let result = run_frames(properties, (w, h), &video, output_pads, timeout);
    (video, result)
}

/// Runs `video` (RGB frames and label maps of `w` x `h`) through an `omnimatte` element with
/// `properties`, two objects and a 64x64 working size; `output_pads` beside `src` each go to an
/// appsink of their name.
pub fn run_frames(
    properties: &str,
    (w, h): (usize, usize),
    video: &[Frame],
    output_pads: &[&str],
    timeout: Duration,
) -> RunResult {
    init();
    let caps = |format: &str| {
        format!("video/x-raw,format={format},width={w},height={h},framerate={FPS}/1")
    };
    let sinks: String = output_pads
        .iter()
        .map(|pad| format!(" om.{pad} ! appsink name={pad} sync=false"))
        .collect();
    let desc = format!(
        "appsrc name=video format=time caps=\"{}\" ! omnimatte name=om objects=2 working-height=64 working-width=64 {properties} ! appsink name=src sync=false \
         appsrc name=mask format=time caps=\"{}\" ! om.mask{sinks}",
        caps("RGB"),
        caps("GRAY8")
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let frames: Vec<Vec<u8>> = video.iter().map(|v| v.0.clone()).collect();
    let masks: Vec<Vec<u8>> = video.iter().map(|v| v.1.clone()).collect();
    run(&p, timeout, |p| {
        feed(&appsrc(p, "video"), &appsrc(p, "mask"), &frames, &masks)
    })
}
