//! The element's output side: its src pads (`src`, the requested `layer_N` and `background`),
//! one queue and one streaming thread (pad task) per pad, and the flow combiner. The worker is
//! handed this type and queues frames, caps, stream-start and events on it; it never calls
//! back into the element.
//!
//! Why a thread per pad: a single thread pushing on every pad in turn deadlocks at preroll,
//! when the first sink blocks waiting for PLAYING while the others still wait for their first
//! buffer; per-pad threads are what tee + queue would give.

use super::convert::tensors_to_rgba_buffers;
use super::pad_queue::{PadItem, PadQueue};
use super::settings::BackgroundMode;
use super::streaming::Streaming;
use crate::stream::FrameLayers;
use gst::prelude::*;
use gst_video::VideoInfo;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A src pad and the queue its streaming thread pushes from.
#[derive(Clone)]
struct OutPad {
    pad: gst::Pad,
    queue: Arc<PadQueue>,
}

impl OutPad {
    fn new(pad: gst::Pad) -> Self {
        Self {
            pad,
            queue: Arc::new(PadQueue::default()),
        }
    }
}

/// Which output a requested pad is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Background,
    /// Object k's layer, k >= 1.
    Layer(u32),
}

#[derive(Default)]
struct Requested {
    layers: BTreeMap<u32, OutPad>,
    background: Option<OutPad>,
}

/// Combines each pad's downstream flow with the others'; failures go to the streaming state
/// (the chain functions return them) and, for real errors, to the bus.
#[derive(Clone)]
struct FlowRecorder {
    combiner: Arc<Mutex<gst_base::UniqueFlowCombiner>>,
    streaming: Arc<Streaming>,
}

impl FlowRecorder {
    fn record(&self, pad: &gst::Pad, res: Result<gst::FlowSuccess, gst::FlowError>) {
        let combined = lock(&self.combiner).update_pad_flow(pad, res);
        let Err(err) = combined else { return };
        let first = self.streaming.fail(err);
        if first && matches!(err, gst::FlowError::NotNegotiated | gst::FlowError::Error) {
            if let Some(element) = pad.parent_element() {
                gst::element_error!(
                    element,
                    gst::StreamError::Failed,
                    ["streaming stopped on {}: {:?}", pad.name(), err]
                );
            }
        }
    }
}

/// See the module documentation.
pub struct Outputs {
    src: OutPad,
    requested: Mutex<Requested>,
    flows: FlowRecorder,
    /// The video stream's id and group, for pads requested after its start: each src pad's
    /// stream is derived from it.
    upstream_start: Mutex<Option<VideoStream>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outputs {
    /// The output side of an element whose always pad is `src`; downstream failures are
    /// reported to `streaming`.
    pub fn new(src: gst::Pad, streaming: Arc<Streaming>) -> Self {
        let mut combiner = gst_base::UniqueFlowCombiner::new();
        combiner.add_pad(&src);
        Self {
            src: OutPad::new(src),
            requested: Mutex::new(Requested::default()),
            upstream_start: Mutex::new(None),
            flows: FlowRecorder {
                combiner: Arc::new(Mutex::new(combiner)),
                streaming,
            },
        }
    }

    fn all(&self) -> Vec<OutPad> {
        let requested = lock(&self.requested);
        std::iter::once(self.src.clone())
            .chain(requested.background.iter().cloned())
            .chain(requested.layers.values().cloned())
            .collect()
    }

    /// Whether `output` has a pad already.
    pub fn has(&self, output: Output) -> bool {
        let requested = lock(&self.requested);
        match output {
            Output::Background => requested.background.is_some(),
            Output::Layer(k) => requested.layers.contains_key(&k),
        }
    }

    /// The layer pads' object numbers, in order.
    pub fn layer_numbers(&self) -> Vec<u32> {
        lock(&self.requested).layers.keys().copied().collect()
    }

    /// Adds a requested pad (already added to the element); `running`: start its thread now.
    /// A pad added mid-stream gets its own stream-start, then the stream's caps and segment,
    /// before any buffer.
    pub fn add(&self, output: Output, pad: gst::Pad, running: bool) {
        let out = OutPad::new(pad.clone());
        if running {
            let _ = pad.set_active(true);
            if let Some(upstream) = lock(&self.upstream_start).as_ref() {
                let _ = pad.store_sticky_event(&stream_start(upstream, &pad));
            }
            self.src.pad.sticky_events_foreach(|event| {
                if event.type_() != gst::EventType::StreamStart {
                    let _ = pad.store_sticky_event(event);
                }
                std::ops::ControlFlow::Continue(gst::EventForeachAction::Keep)
            });
        }
        lock(&self.flows.combiner).add_pad(&pad);
        if running {
            self.start_task(&out);
        }
        let mut requested = lock(&self.requested);
        match output {
            Output::Background => requested.background = Some(out),
            Output::Layer(k) => {
                requested.layers.insert(k, out);
            }
        }
    }

    /// Removes a requested pad: stops its thread and forgets it.
    pub fn release(&self, pad: &gst::Pad) {
        let released = {
            let mut requested = lock(&self.requested);
            let mut released = Vec::new();
            if requested.background.as_ref().is_some_and(|o| &o.pad == pad) {
                released.extend(requested.background.take());
            }
            requested.layers.retain(|_, o| {
                if &o.pad == pad {
                    released.push(o.clone());
                }
                &o.pad != pad
            });
            released
        };
        released.iter().for_each(stop_task);
        lock(&self.flows.combiner).remove_pad(pad);
    }

    // ----- threads -----------------------------------------------------------------------------

    /// Starts every pad's streaming thread (PAUSED).
    pub fn start(&self) {
        lock(&self.flows.combiner).reset();
        for out in self.all() {
            self.start_task(&out);
        }
    }

    /// Stops every pad's streaming thread and forgets the stream (READY).
    pub fn stop(&self) {
        *lock(&self.upstream_start) = None;
        self.all().iter().for_each(stop_task);
    }

    /// Starts the streaming thread of a src pad: it pushes what the worker queued.
    fn start_task(&self, out: &OutPad) {
        out.queue.set_flushing(false);
        let queue = out.queue.clone();
        let pad = out.pad.downgrade();
        let flows = self.flows.clone();
        let started = out.pad.start_task(move || {
            let Some(pad) = pad.upgrade() else { return };
            let Some(item) = queue.pop() else {
                let _ = pad.pause_task();
                return;
            };
            match item {
                PadItem::Event(event) => {
                    pad.push_event(event);
                }
                PadItem::Buffer(buffer) => {
                    let res = pad.push(buffer);
                    flows.record(&pad, res);
                }
            }
        });
        if let Err(e) = started {
            if let Some(element) = out.pad.parent_element() {
                gst::element_error!(
                    element,
                    gst::CoreError::Thread,
                    ["cannot start the task of {}: {}", out.pad.name(), e]
                );
            }
        }
    }

    // ----- flushing ----------------------------------------------------------------------------

    /// FLUSH_START: drops what is queued, forwards the event, pauses the threads.
    pub fn flush_start(&self, event: &gst::Event) {
        for out in self.all() {
            out.queue.set_flushing(true);
            out.pad.push_event(event.clone());
            let _ = out.pad.pause_task();
        }
    }

    /// FLUSH_STOP: forwards the event and restarts the threads.
    pub fn flush_stop(&self, event: &gst::Event) {
        lock(&self.flows.combiner).reset();
        for out in self.all() {
            out.pad.push_event(event.clone());
            self.start_task(&out);
        }
    }

    // ----- what the worker queues --------------------------------------------------------------

    /// Queues a serialized event behind the buffers on every src pad.
    pub fn queue_event(&self, event: &gst::Event) {
        for out in self.all() {
            out.queue.push(PadItem::Event(event.clone()));
        }
    }

    /// One stream per src pad, derived from the video stream's start.
    pub fn queue_stream_start(&self, upstream: &gst::Event) {
        let gst::EventView::StreamStart(start) = upstream.view() else {
            return;
        };
        let video = VideoStream {
            id: start.stream_id().to_string(),
            group: start.group_id(),
        };
        for out in self.all() {
            out.queue
                .push(PadItem::Event(stream_start(&video, &out.pad)));
        }
        *lock(&self.upstream_start) = Some(video);
    }

    /// RGBA caps of the video's size and rate on every src pad.
    pub fn queue_caps(&self, info: &VideoInfo) {
        let caps = gst_video::VideoCapsBuilder::new()
            .format(gst_video::VideoFormat::Rgba)
            .width(info.width() as i32)
            .height(info.height() as i32)
            .framerate(info.fps())
            .pixel_aspect_ratio(info.par())
            .build();
        self.queue_event(&gst::event::Caps::new(&caps));
    }

    /// One frame's outputs on every src pad, with the input frame's timestamps. Returns false
    /// when flushing.
    pub fn queue_frame(
        &self,
        out: &FrameLayers,
        background_mode: BackgroundMode,
        pts: Option<gst::ClockTime>,
        duration: Option<gst::ClockTime>,
    ) -> bool {
        let (background, layers) = {
            let requested = lock(&self.requested);
            (requested.background.clone(), requested.layers.clone())
        };
        let mut targets = vec![self.src.clone()];
        let mut images = vec![out.reconstruction.shallow_clone()];
        if let Some(bg) = background {
            targets.push(bg);
            images.push(match background_mode {
                BackgroundMode::Clean => out.background_estimate.shallow_clone(),
                BackgroundMode::Residual => out.background.shallow_clone(),
            });
        }
        for (k, layer) in layers {
            targets.push(layer);
            images.push(out.layers.get(k as i64 - 1));
        }
        let mut queued = true;
        for (target, mut buffer) in targets.into_iter().zip(tensors_to_rgba_buffers(&images)) {
            let b = buffer.get_mut().expect("new buffer is writable");
            b.set_pts(pts);
            b.set_duration(duration);
            queued &= target.queue.push(PadItem::Buffer(buffer));
        }
        queued
    }
}

/// Stops pushing on a src pad: drops its queue and waits for its thread.
fn stop_task(out: &OutPad) {
    out.queue.set_flushing(true);
    let _ = out.pad.stop_task();
}

/// The video stream a src pad's stream derives from.
struct VideoStream {
    id: String,
    group: Option<gst::GroupId>,
}

/// The stream-start of one src pad: the video stream's id with the pad's name (with two sink
/// pads, gst_pad_create_stream_id does not apply), in the video's group.
fn stream_start(video: &VideoStream, pad: &gst::Pad) -> gst::Event {
    let id = format!("{}/{}", video.id, pad.name());
    let mut builder = gst::event::StreamStart::builder(&id);
    if let Some(g) = video.group {
        builder = builder.group_id(g);
    }
    builder.build()
}
