//! The element's GStreamer side: pads, properties, events, queries, state changes, and
//! starting and stopping the worker thread (`worker.rs`) that runs the decomposition and
//! queues one buffer per frame on every src pad.
//!
//! Chain functions only pair buffers and queue them; the network runs on the worker thread,
//! which holds no lock while it computes or pushes.

use super::convert::{sink_formats, tensors_to_rgba_buffers};
use super::output::{PadItem, PadQueue};
use super::pairing::{Pairing, Timed, VideoItem, Work};
use super::settings::{self, Settings, TttMode, WeightsSource};
use super::worker::Worker;
use crate::stream::{Decomposer, FrameLayers};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::VideoInfo;
use once_cell::sync::Lazy;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static CAT: Lazy<gst::DebugCategory> = Lazy::new(|| {
    gst::DebugCategory::new(
        "omnimatte",
        gst::DebugColorFlags::empty(),
        Some("Omnimatte object/effect layers"),
    )
});

/// Frames allowed to wait in the element before the chain functions block (back-pressure).
const MAX_QUEUED_FRAMES: usize = 16;

/// State shared by the streaming threads and the worker.
#[derive(Default)]
pub(super) struct Shared {
    pairing: Mutex<Pairing>,
    pub(super) changed: Condvar,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Pairing> {
        self.pairing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Per-stream facts the pads learn from events.
struct StreamInfo {
    video_info: Option<VideoInfo>,
    mask_info: Option<VideoInfo>,
    video_segment: gst::FormattedSegment<gst::ClockTime>,
    mask_segment: gst::FormattedSegment<gst::ClockTime>,
}

impl Default for StreamInfo {
    fn default() -> Self {
        Self {
            video_info: None,
            mask_info: None,
            video_segment: gst::FormattedSegment::new(),
            mask_segment: gst::FormattedSegment::new(),
        }
    }
}

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

/// The requested output pads besides `src`.
#[derive(Default)]
struct OutputPads {
    layers: BTreeMap<u32, OutPad>,
    background: Option<OutPad>,
}

pub struct Omnimatte {
    sinkpad: gst::Pad,
    maskpad: gst::Pad,
    srcpad: gst::Pad,
    src_out: OutPad,
    settings: Mutex<Settings>,
    streams: Mutex<StreamInfo>,
    outputs: Mutex<OutputPads>,
    combiner: Mutex<gst_base::UniqueFlowCombiner>,
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    last_seek: Mutex<Option<gst::Seqnum>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Omnimatte {
    // ----- sink side -------------------------------------------------------------------------

    fn running_time(
        segment: &gst::FormattedSegment<gst::ClockTime>,
        buffer: &gst::Buffer,
    ) -> Option<gst::ClockTime> {
        buffer.pts().and_then(|pts| segment.to_running_time(pts))
    }

    fn video_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (info, rt) = {
            let streams = lock(&self.streams);
            let Some(info) = streams.video_info.clone() else {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ["video buffer before caps on the sink pad"]
                );
                return Err(gst::FlowError::NotNegotiated);
            };
            (info, Self::running_time(&streams.video_segment, &buffer))
        };
        let mask_timeout = Duration::from_millis(lock(&self.settings).mask_timeout_ms as u64);
        let mut p = self.shared.lock();
        if p.video_flushing {
            return Err(gst::FlowError::Flushing);
        }
        p.video.push_back(VideoItem::Frame(Timed {
            buffer,
            running_time: rt,
            info,
        }));
        self.pair_locked(&mut p)?;
        // Back-pressure: wait while too many frames are queued (the worker or masks lag), but
        // not forever for masks that stopped coming.
        let waiting_since = Instant::now();
        while p.queued_frames() > MAX_QUEUED_FRAMES
            && !p.video_flushing
            && !p.shutdown
            && p.flow.is_none()
        {
            let waiting_for = p.frame_waiting_for_mask();
            if mask_timeout.is_zero() || waiting_for.is_none() {
                p = self
                    .shared
                    .changed
                    .wait(p)
                    .unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let stalled = p.last_mask.map_or(waiting_since, |t| t.max(waiting_since));
            let Some(left) = mask_timeout.checked_sub(stalled.elapsed()) else {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    [
                        "missing mask: no mask arrived for {} ms while {} frames wait for theirs (the first at running time {}); the mask stream stalled (property mask-timeout)",
                        mask_timeout.as_millis(),
                        p.queued_frames(),
                        waiting_for.flatten().map_or_else(|| "none".to_string(), |t| t.to_string())
                    ]
                );
                p.flow = Some(gst::FlowError::Error);
                self.shared.changed.notify_all();
                break;
            };
            p = self
                .shared
                .changed
                .wait_timeout(p, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match p.flow {
            Some(err) => Err(err),
            None if p.video_flushing => Err(gst::FlowError::Flushing),
            None => Ok(gst::FlowSuccess::Ok),
        }
    }

    fn mask_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (info, rt) = {
            let streams = lock(&self.streams);
            let Some(info) = streams.mask_info.clone() else {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ["mask buffer before caps on the mask pad"]
                );
                return Err(gst::FlowError::NotNegotiated);
            };
            (info, Self::running_time(&streams.mask_segment, &buffer))
        };
        let mut p = self.shared.lock();
        if p.mask_flushing {
            return Err(gst::FlowError::Flushing);
        }
        if p.video_done {
            // Every frame has its mask: tell a (possibly endless) mask source to stop.
            return Err(gst::FlowError::Eos);
        }
        p.last_mask = Some(Instant::now());
        p.masks.push_back(Timed {
            buffer,
            running_time: rt,
            info,
        });
        self.pair_locked(&mut p)?;
        while p.masks.len() > MAX_QUEUED_FRAMES
            && !p.mask_flushing
            && !p.shutdown
            && p.flow.is_none()
        {
            p = self
                .shared
                .changed
                .wait(p)
                .unwrap_or_else(|e| e.into_inner());
        }
        match p.flow {
            Some(err) => Err(err),
            None if p.mask_flushing => Err(gst::FlowError::Flushing),
            None => Ok(gst::FlowSuccess::Ok),
        }
    }

    /// Pairs what can be paired and wakes the worker; a pairing error is an element error.
    fn pair_locked(&self, p: &mut Pairing) -> Result<(), gst::FlowError> {
        let result = p.pair();
        self.shared.changed.notify_all();
        if let Err(msg) = result {
            gst::element_imp_error!(self, gst::StreamError::Format, ["{}", msg]);
            p.flow = Some(gst::FlowError::Error);
            return Err(gst::FlowError::Error);
        }
        Ok(())
    }

    /// Queues a video-side serialized item behind the frames waiting for masks.
    fn queue_video_item(&self, work: Work) -> bool {
        let mut p = self.shared.lock();
        p.video.push_back(VideoItem::Other(work));
        self.pair_locked(&mut p).is_ok()
    }

    fn video_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "video event {:?}", event.type_());
        match event.view() {
            EventView::StreamStart(_) => self.queue_video_item(Work::StreamStart(event)),
            EventView::Caps(c) => {
                let info = match VideoInfo::from_caps(c.caps()) {
                    Ok(info) => info,
                    Err(_) => {
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Negotiation,
                            ["invalid video caps {}", c.caps()]
                        );
                        return false;
                    }
                };
                if let Err(msg) = self.check_sizes(Some(&info), None) {
                    gst::element_imp_error!(self, gst::StreamError::Format, ["{}", msg]);
                    return false;
                }
                lock(&self.streams).video_info = Some(info.clone());
                self.queue_video_item(Work::Caps(info))
            }
            EventView::Segment(s) => {
                let Ok(segment) = s.segment().clone().downcast::<gst::ClockTime>() else {
                    gst::element_imp_error!(self, gst::StreamError::Format, ["video segment is not in TIME format ({:?}); omnimatte needs timestamps", s.segment().format()]);
                    return false;
                };
                lock(&self.streams).video_segment = segment;
                self.queue_video_item(Work::Event(event))
            }
            EventView::Eos(_) => self.queue_video_item(Work::Drain),
            EventView::FlushStart(_) => {
                {
                    let mut p = self.shared.lock();
                    p.video_flushing = true;
                    p.video.clear();
                    p.work.clear();
                    self.shared.changed.notify_all();
                }
                for out in self.outputs() {
                    out.queue.set_flushing(true);
                    out.pad.push_event(event.clone());
                    let _ = out.pad.pause_task();
                }
                true
            }
            EventView::FlushStop(_) => {
                {
                    let mut p = self.shared.lock();
                    // The worker may still be finishing a frame: wait so nothing stale follows.
                    while p.busy && !p.shutdown {
                        p = self
                            .shared
                            .changed
                            .wait(p)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                    p.video_flushing = false;
                    p.video_done = false;
                    p.flow = None;
                    p.work.push_back(Work::Reset);
                    self.shared.changed.notify_all();
                }
                lock(&self.combiner).reset();
                lock(&self.streams).video_segment = gst::FormattedSegment::new();
                for out in self.outputs() {
                    out.pad.push_event(event.clone());
                    self.start_pad_task(&out);
                }
                true
            }
            _ if event.is_serialized() => self.queue_video_item(Work::Event(event)),
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn mask_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "mask event {:?}", event.type_());
        match event.view() {
            EventView::Caps(c) => {
                let info = match VideoInfo::from_caps(c.caps()) {
                    Ok(info) => info,
                    Err(_) => {
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Negotiation,
                            ["invalid mask caps {}", c.caps()]
                        );
                        return false;
                    }
                };
                if let Err(msg) = self.check_sizes(None, Some(&info)) {
                    gst::element_imp_error!(self, gst::StreamError::Format, ["{}", msg]);
                    return false;
                }
                lock(&self.streams).mask_info = Some(info);
                true
            }
            EventView::Segment(s) => {
                let Ok(segment) = s.segment().clone().downcast::<gst::ClockTime>() else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        [
                            "mask segment is not in TIME format ({:?}); omnimatte needs timestamps",
                            s.segment().format()
                        ]
                    );
                    return false;
                };
                lock(&self.streams).mask_segment = segment;
                true
            }
            EventView::Eos(_) => {
                let mut p = self.shared.lock();
                p.mask_eos = true;
                self.pair_locked(&mut p).is_ok()
            }
            EventView::FlushStart(_) => {
                let mut p = self.shared.lock();
                p.mask_flushing = true;
                p.masks.clear();
                self.shared.changed.notify_all();
                true
            }
            EventView::FlushStop(_) => {
                let mut p = self.shared.lock();
                p.mask_flushing = false;
                p.mask_eos = false;
                p.mask_flush_pending = false;
                // Frames that arrived after the video flush may now pair.
                if self.pair_locked(&mut p).is_err() {
                    return false;
                }
                lock(&self.streams).mask_segment = gst::FormattedSegment::new();
                true
            }
            // Mask-side stream-start, tags and the like do not go downstream.
            _ if event.is_serialized() => true,
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    /// Mask and video must have the same size; checks whichever is new against the other.
    fn check_sizes(
        &self,
        video: Option<&VideoInfo>,
        mask: Option<&VideoInfo>,
    ) -> Result<(), String> {
        let streams = lock(&self.streams);
        let video = video.or(streams.video_info.as_ref());
        let mask = mask.or(streams.mask_info.as_ref());
        if let (Some(v), Some(m)) = (video, mask) {
            if (v.width(), v.height()) != (m.width(), m.height()) {
                return Err(format!(
                    "mask size {}x{} does not match the video size {}x{}",
                    m.width(),
                    m.height(),
                    v.width(),
                    v.height()
                ));
            }
        }
        Ok(())
    }

    // ----- src side --------------------------------------------------------------------------

    fn outputs(&self) -> Vec<OutPad> {
        let outputs = lock(&self.outputs);
        std::iter::once(self.src_out.clone())
            .chain(outputs.background.iter().cloned())
            .chain(outputs.layers.values().cloned())
            .collect()
    }

    /// Queues a serialized event behind the buffers on every src pad.
    pub(super) fn queue_event_on_src_pads(&self, event: &gst::Event) {
        for out in self.outputs() {
            out.queue.push(PadItem::Event(event.clone()));
        }
    }

    /// Starts the streaming thread of a src pad: it pushes what the worker queued.
    fn start_pad_task(&self, out: &OutPad) {
        out.queue.set_flushing(false);
        let element = self.obj().downgrade();
        let queue = out.queue.clone();
        let pad = out.pad.downgrade();
        let started = out.pad.start_task(move || {
            let Some(pad) = pad.upgrade() else { return };
            let Some(item) = queue.pop() else {
                let _ = pad.pause_task();
                return;
            };
            let Some(element) = element.upgrade() else {
                return;
            };
            match item {
                PadItem::Event(event) => {
                    pad.push_event(event);
                }
                PadItem::Buffer(buffer) => {
                    let res = pad.push(buffer);
                    element.imp().record_flow(&pad, res);
                }
            }
        });
        if let Err(e) = started {
            gst::element_imp_error!(
                self,
                gst::CoreError::Thread,
                ["cannot start the task of {}: {}", out.pad.name(), e]
            );
        }
    }

    /// Stops pushing on a src pad: drops its queue and waits for its thread.
    fn stop_pad_task(out: &OutPad) {
        out.queue.set_flushing(true);
        let _ = out.pad.stop_task();
    }

    /// Combines a pad's flow with the others'; errors reach the chain functions' return.
    fn record_flow(&self, pad: &gst::Pad, res: Result<gst::FlowSuccess, gst::FlowError>) {
        let combined = lock(&self.combiner).update_pad_flow(pad, res);
        if let Err(err) = combined {
            let mut p = self.shared.lock();
            if err == gst::FlowError::Flushing && p.video_flushing {
                return;
            }
            if matches!(err, gst::FlowError::NotNegotiated | gst::FlowError::Error)
                && p.flow.is_none()
            {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ["streaming stopped on {}: {:?}", pad.name(), err]
                );
            }
            p.flow = Some(err);
            self.shared.changed.notify_all();
        }
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        let gst::EventView::Seek(seek) = event.view() else {
            return gst::Pad::event_default(pad, Some(&*self.obj()), event);
        };
        {
            // Every downstream branch sends the same seek; forward it upstream once.
            let mut last = lock(&self.last_seek);
            if *last == Some(event.seqnum()) {
                return true;
            }
            *last = Some(event.seqnum());
        }
        // Both upstream branches will flush, in any order: hold the pairing until the mask
        // branch has flushed, so no frame meets a mask from before the seek.
        let flushing = seek.get().1.contains(gst::SeekFlags::FLUSH);
        if flushing {
            self.shared.lock().mask_flush_pending = true;
        }
        let ok = gst::Pad::event_default(pad, Some(&*self.obj()), event);
        if flushing && !ok {
            let mut p = self.shared.lock();
            p.mask_flush_pending = false;
            let _ = self.pair_locked(&mut p);
        }
        ok
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let mut upstream = gst::query::Latency::new();
            if !self.sinkpad.peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = self.own_latency();
            gst::debug!(
                CAT,
                obj = pad,
                "latency: upstream {min}..{max:?}, ours {ours}"
            );
            q.set(live, min + ours, max.map(|m| m + ours));
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    /// The window's look-ahead in frames times the frame duration, plus processing time. In
    /// `before-output` mode the first ttt-frames frames are held too (and the training time
    /// comes on top: that mode is for files, not live sources).
    fn own_latency(&self) -> gst::ClockTime {
        let settings = lock(&self.settings).clone();
        let mut look_ahead = settings.clip().map(|c| c.look_ahead() as u64).unwrap_or(0);
        if settings.ttt == TttMode::BeforeOutput {
            look_ahead = look_ahead.max(settings.ttt_frames as u64);
        }
        let frame = lock(&self.streams)
            .video_info
            .as_ref()
            .map(|i| i.fps())
            .filter(|f| f.numer() > 0)
            .map_or(gst::ClockTime::from_mseconds(33), |f| {
                gst::ClockTime::SECOND
                    .mul_div_floor(f.denom() as u64, f.numer() as u64)
                    .unwrap_or_default()
            });
        frame * look_ahead + gst::ClockTime::from_mseconds(settings.processing_latency_ms as u64)
    }

    // ----- the worker ------------------------------------------------------------------------

    fn start_worker(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let fail = |msg: String| gst::error_msg!(gst::LibraryError::Settings, ["{}", msg]);
        let device = settings.device().map_err(|e| fail(format!("{e:#}")))?;
        let config = settings
            .stream_config()
            .map_err(|e| fail(format!("{e:#}")))?;
        if let Some((&k, _)) = lock(&self.outputs)
            .layers
            .iter()
            .find(|(&k, _)| k > settings.objects)
        {
            return Err(fail(format!(
                "pad layer_{k} was requested but objects is {}",
                settings.objects
            )));
        }
        {
            let mut p = self.shared.lock();
            *p = Pairing::default();
        }
        // The model is built and loaded on the worker thread itself: libtorch's OpenMP team
        // belongs to the thread that first runs an operation, and a second, idle team (here,
        // the state-change thread's) makes libgomp stop spinning between operations, which
        // measured 25 000 context switches and 15% more time for 48 frames on 2 cores.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let element = self.obj().downgrade();
        let shared = self.shared.clone();
        let handle = std::thread::Builder::new()
            .name("omnimatte-worker".into())
            .spawn(move || {
                let loaded = Decomposer::new(config, device).and_then(|decomposer| {
                    settings
                        .load_model(device)
                        .map(|(vs, net, source)| (decomposer, vs, net, source))
                });
                let worker = loaded.and_then(|(decomposer, vs, net, source)| {
                    Worker::new(element, shared, settings, decomposer, vs, net)
                        .map(|worker| (worker, source))
                });
                match worker {
                    Ok((worker, source)) => {
                        let _ = ready_tx.send(Ok(source));
                        worker.run()
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| fail(format!("cannot start the worker thread: {e}")))?;
        let source = match ready_rx.recv() {
            Ok(Ok(source)) => source,
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(fail(format!("{e:#}")));
            }
            Err(_) => {
                let _ = handle.join();
                return Err(fail(
                    "the worker thread ended while loading the model".into(),
                ));
            }
        };
        gst::info!(CAT, imp = self, "running on {device:?}");
        match source {
            WeightsSource::File(path) => {
                gst::info!(CAT, imp = self, "weights from {}", path.display())
            }
            WeightsSource::RandomInit => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "NO PRETRAINED WEIGHTS FOUND: using a random initialisation"
                );
                gst::element_imp_warning!(
                    self,
                    gst::LibraryError::Settings,
                    ["No pretrained weights: the `weights` property is empty and no bundled weights exist at {}. The network is randomly initialised; layers will hold the masks' objects with detail transfer only, not their effects.", settings::default_weights_candidates().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ")]
                );
            }
        }
        *lock(&self.worker) = Some(handle);
        Ok(())
    }

    fn stop_worker(&self) {
        {
            let mut p = self.shared.lock();
            p.shutdown = true;
            p.video_flushing = true;
            p.mask_flushing = true;
            self.shared.changed.notify_all();
        }
        if let Some(handle) = lock(&self.worker).take() {
            let _ = handle.join();
        }
    }

    /// Queues one frame's outputs on every src pad, with the input frame's timestamps.
    /// Returns false when flushing.
    pub(super) fn push_frame(
        &self,
        out: &FrameLayers,
        pts: Option<gst::ClockTime>,
        duration: Option<gst::ClockTime>,
    ) -> bool {
        let (background, layers) = {
            let outputs = lock(&self.outputs);
            (outputs.background.clone(), outputs.layers.clone())
        };
        let mut targets = vec![self.src_out.clone()];
        let mut images = vec![out.reconstruction.shallow_clone()];
        if let Some(bg) = background {
            targets.push(bg);
            images.push(out.background.shallow_clone());
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

    /// Announces RGBA caps of the video's size and rate on every src pad.
    pub(super) fn push_caps(&self, info: &VideoInfo) {
        let caps = gst_video::VideoCapsBuilder::new()
            .format(gst_video::VideoFormat::Rgba)
            .width(info.width() as i32)
            .height(info.height() as i32)
            .framerate(info.fps())
            .pixel_aspect_ratio(info.par())
            .build();
        self.queue_event_on_src_pads(&gst::event::Caps::new(&caps));
    }

    pub(super) fn push_stream_start(&self, upstream: &gst::Event) {
        let gst::EventView::StreamStart(start) = upstream.view() else {
            return;
        };
        for out in self.outputs() {
            let pad = &out.pad;
            // One stream per output pad, derived from the video stream's id (with two sink
            // pads, gst_pad_create_stream_id does not apply).
            let id = format!("{}/{}", start.stream_id(), pad.name());
            let mut builder = gst::event::StreamStart::builder(&id);
            if let Some(g) = start.group_id() {
                builder = builder.group_id(g);
            }
            out.queue.push(PadItem::Event(builder.build()));
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for Omnimatte {
    const NAME: &'static str = "GstOmnimatte";
    type Type = super::Omnimatte;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|_, parent, buffer| {
                Omnimatte::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.video_chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                Omnimatte::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.video_event(pad, event),
                )
            })
            .build();
        let maskpad = gst::Pad::builder_from_template(&klass.pad_template("mask").unwrap())
            .chain_function(|_, parent, buffer| {
                Omnimatte::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.mask_chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                Omnimatte::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.mask_event(pad, event),
                )
            })
            .build();
        let srcpad = src_pad_builder(&klass.pad_template("src").unwrap(), None).build();
        let mut combiner = gst_base::UniqueFlowCombiner::new();
        combiner.add_pad(&srcpad);
        Self {
            sinkpad,
            maskpad,
            src_out: OutPad::new(srcpad.clone()),
            srcpad,
            settings: Mutex::new(Settings::default()),
            streams: Mutex::new(StreamInfo::default()),
            outputs: Mutex::new(OutputPads::default()),
            combiner: Mutex::new(combiner),
            shared: Arc::new(Shared::default()),
            worker: Mutex::new(None),
            last_seek: Mutex::new(None),
        }
    }
}

fn src_pad_builder(templ: &gst::PadTemplate, name: Option<&str>) -> gst::PadBuilder<gst::Pad> {
    let builder = gst::Pad::builder_from_template(templ)
        .event_function(|pad, parent, event| {
            Omnimatte::catch_panic_pad_function(parent, || false, |this| this.src_event(pad, event))
        })
        .query_function(|pad, parent, query| {
            Omnimatte::catch_panic_pad_function(parent, || false, |this| this.src_query(pad, query))
        });
    match name {
        Some(n) => builder.name(n),
        None => builder,
    }
}

impl ObjectImpl for Omnimatte {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: Lazy<Vec<glib::ParamSpec>> = Lazy::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecString::builder("weights")
                    .nick("Weights")
                    .blurb("Pretrained network weights (safetensors). Empty: the bundled weights; if they are missing, a random initialisation with a loud warning")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("device")
                    .nick("Device")
                    .blurb("Where the network runs: auto (CUDA if available, else CPU), cpu, cuda or cuda:N")
                    .default_value(Some(settings::DEFAULT_DEVICE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("objects")
                    .nick("Objects")
                    .blurb("Number of objects in the mask: label k (1..objects) is object k, 0 is background; object 1 is the back-most layer")
                    .minimum(1)
                    .maximum(254)
                    .default_value(d.objects)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("working-height")
                    .nick("Working height")
                    .blurb("Height the network runs at (a multiple of 16); layers come back at the input size")
                    .minimum(16)
                    .maximum(2048)
                    .default_value(d.working_height)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("working-width")
                    .nick("Working width")
                    .blurb("Width the network runs at (a multiple of 16)")
                    .minimum(16)
                    .maximum(4096)
                    .default_value(d.working_width)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("clip-length")
                    .nick("Clip length")
                    .blurb("Frames per clip the network sees together (at most 10)")
                    .minimum(3)
                    .maximum(10)
                    .default_value(d.clip_length)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("clip-gap")
                    .nick("Clip gap")
                    .blurb("Source frames between consecutive clip frames; the look-ahead is (clip-length - 3) * clip-gap frames")
                    .minimum(1)
                    .maximum(30)
                    .default_value(d.clip_gap)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("background-frames")
                    .nick("Background frames")
                    .blurb("Recent frames kept for the masked temporal median background")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(d.background_frames)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("background-plate")
                    .nick("Background plate")
                    .blurb("A clean plate: PNG of the empty scene at the frames' size, used as the background (and by test-time training) instead of the masked temporal median, which keeps the shadow of an object that stays in one place")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("processing-latency")
                    .nick("Processing latency")
                    .blurb("Processing time per frame in milliseconds, added to the reported latency")
                    .maximum(60_000)
                    .default_value(d.processing_latency_ms)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("mask-timeout")
                    .nick("Mask timeout")
                    .blurb("Milliseconds the video side waits for masks that do not come (queued frames, no mask arriving, no end of the mask stream) before it stops with an error; 0 waits forever")
                    .default_value(d.mask_timeout_ms)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("ttt", d.ttt)
                    .nick("Test-time training")
                    .blurb("Fine-tune the network on the video itself: off (zero-shot), before-output (hold the first ttt-frames frames, train ttt-steps steps on them, then output everything; for files) or background (train on recent frames while streaming with the current weights; for live). Progress: element messages `omnimatte-training` and progress messages")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("ttt-frames")
                    .nick("Test-time training frames")
                    .blurb("Frames trained on: the first ones (before-output) or the most recent ones (background)")
                    .minimum(1)
                    .maximum(100_000)
                    .default_value(d.ttt_frames)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("ttt-steps")
                    .nick("Test-time training steps")
                    .blurb("Training steps N in before-output mode; in background mode the length of the loss schedule (the mask weight decays at 0.1 N and 0.2 N), training then goes on until stopped")
                    .minimum(1)
                    .maximum(1_000_000)
                    .default_value(d.ttt_steps)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("ttt-swap-steps")
                    .nick("Weight swap interval")
                    .blurb("Background mode: training steps between two hand-overs of the new weights to inference (message `omnimatte-weights-swapped`)")
                    .minimum(1)
                    .maximum(1_000_000)
                    .default_value(d.ttt_swap_steps)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("ttt-batch")
                    .nick("Test-time training batch")
                    .blurb("Clips per training step")
                    .minimum(1)
                    .maximum(256)
                    .default_value(d.ttt_batch)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("ttt-learning-rate")
                    .nick("Test-time training learning rate")
                    .blurb("AdamW learning rate of test-time training (the paper's 5e-4)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.ttt_learning_rate)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "weights" => s.weights = value.get::<Option<String>>().unwrap().unwrap_or_default(),
            "device" => {
                s.device = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| settings::DEFAULT_DEVICE.into())
            }
            "objects" => s.objects = value.get().unwrap(),
            "working-height" => s.working_height = value.get().unwrap(),
            "working-width" => s.working_width = value.get().unwrap(),
            "clip-length" => s.clip_length = value.get().unwrap(),
            "clip-gap" => s.clip_gap = value.get().unwrap(),
            "background-frames" => s.background_frames = value.get().unwrap(),
            "background-plate" => {
                s.background_plate = value.get::<Option<String>>().unwrap().unwrap_or_default()
            }
            "mask-timeout" => s.mask_timeout_ms = value.get().unwrap(),
            "ttt" => s.ttt = value.get().unwrap(),
            "ttt-frames" => s.ttt_frames = value.get().unwrap(),
            "ttt-steps" => s.ttt_steps = value.get().unwrap(),
            "ttt-swap-steps" => s.ttt_swap_steps = value.get().unwrap(),
            "ttt-batch" => s.ttt_batch = value.get().unwrap(),
            "ttt-learning-rate" => s.ttt_learning_rate = value.get().unwrap(),
            "processing-latency" => {
                s.processing_latency_ms = value.get().unwrap();
                drop(s);
                let _ = self
                    .obj()
                    .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
            }
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "weights" => s.weights.to_value(),
            "device" => s.device.to_value(),
            "objects" => s.objects.to_value(),
            "working-height" => s.working_height.to_value(),
            "working-width" => s.working_width.to_value(),
            "clip-length" => s.clip_length.to_value(),
            "clip-gap" => s.clip_gap.to_value(),
            "background-frames" => s.background_frames.to_value(),
            "background-plate" => s.background_plate.to_value(),
            "processing-latency" => s.processing_latency_ms.to_value(),
            "mask-timeout" => s.mask_timeout_ms.to_value(),
            "ttt" => s.ttt.to_value(),
            "ttt-frames" => s.ttt_frames.to_value(),
            "ttt-steps" => s.ttt_steps.to_value(),
            "ttt-swap-steps" => s.ttt_swap_steps.to_value(),
            "ttt-batch" => s.ttt_batch.to_value(),
            "ttt-learning-rate" => s.ttt_learning_rate.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).unwrap();
        obj.add_pad(&self.maskpad).unwrap();
        obj.add_pad(&self.srcpad).unwrap();
    }
}

impl GstObjectImpl for Omnimatte {}

impl ElementImpl for Omnimatte {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: Lazy<gst::subclass::ElementMetadata> = Lazy::new(|| {
            gst::subclass::ElementMetadata::new(
                "Omnimatte",
                "Filter/Effect/Video",
                "Splits video into one RGBA layer per object together with its effects (shadows, reflections), \
                 a background and the reconstruction, from a GRAY8 label mask (Omnimatte by coordination games, NeurIPS 2022)",
                "gst-omnimatte developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: Lazy<Vec<gst::PadTemplate>> = Lazy::new(|| {
            let video = gst_video::VideoCapsBuilder::new()
                .format_list(sink_formats())
                .build();
            let mask = gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Gray8)
                .build();
            let rgba = gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Rgba)
                .build();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &video,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "mask",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &mask,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &rgba,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "layer_%u",
                    gst::PadDirection::Src,
                    gst::PadPresence::Request,
                    &rgba,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "background",
                    gst::PadDirection::Src,
                    gst::PadPresence::Request,
                    &rgba,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let mut outputs = lock(&self.outputs);
        let pad_name = match templ.name_template().to_string().as_str() {
            "background" => {
                if outputs.background.is_some() {
                    gst::warning!(CAT, imp = self, "the background pad exists already");
                    return None;
                }
                "background".to_string()
            }
            "layer_%u" => {
                let objects = lock(&self.settings).objects;
                let index = match name.and_then(|n| n.strip_prefix("layer_")) {
                    Some(n) => match n.parse::<u32>() {
                        Ok(k) => k,
                        Err(_) => {
                            gst::warning!(CAT, imp = self, "pad name {n} is not layer_N");
                            return None;
                        }
                    },
                    None => (1..=objects).find(|k| !outputs.layers.contains_key(k))?,
                };
                if index == 0 || index > objects || outputs.layers.contains_key(&index) {
                    gst::element_imp_error!(
                        self,
                        gst::CoreError::Pad,
                        ["cannot make pad layer_{index}: layers are numbered 1..={objects} (set objects first) and each exists once"]
                    );
                    return None;
                }
                format!("layer_{index}")
            }
            other => {
                gst::warning!(CAT, imp = self, "no request pad template {other}");
                return None;
            }
        };
        let pad = src_pad_builder(templ, Some(&pad_name)).build();
        let out = OutPad::new(pad.clone());
        let running = self.obj().current_state() > gst::State::Ready;
        if running {
            let _ = pad.set_active(true);
        }
        // A pad requested mid-stream gets the stream's caps and segment.
        self.srcpad.sticky_events_foreach(|event| {
            if event.type_() != gst::EventType::StreamStart {
                let _ = pad.store_sticky_event(event);
            }
            std::ops::ControlFlow::Continue(gst::EventForeachAction::Keep)
        });
        self.obj().add_pad(&pad).ok()?;
        lock(&self.combiner).add_pad(&pad);
        if running {
            self.start_pad_task(&out);
        }
        if pad_name == "background" {
            outputs.background = Some(out);
        } else {
            let k = pad_name["layer_".len()..].parse().expect("made above");
            outputs.layers.insert(k, out);
        }
        Some(pad)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let released = {
            let mut outputs = lock(&self.outputs);
            let mut released = Vec::new();
            if outputs.background.as_ref().is_some_and(|o| &o.pad == pad) {
                released.extend(outputs.background.take());
            }
            outputs.layers.retain(|_, o| {
                if &o.pad == pad {
                    released.push(o.clone());
                }
                &o.pad != pad
            });
            released
        };
        released.iter().for_each(Self::stop_pad_task);
        lock(&self.combiner).remove_pad(pad);
        let _ = pad.set_active(false);
        let _ = self.obj().remove_pad(pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        gst::debug!(CAT, imp = self, "state change {transition:?}");
        match transition {
            gst::StateChange::ReadyToPaused => {
                *lock(&self.streams) = StreamInfo::default();
                *lock(&self.last_seek) = None;
                lock(&self.combiner).reset();
                if let Err(msg) = self.start_worker() {
                    self.post_error_message(msg);
                    return Err(gst::StateChangeError);
                }
            }
            gst::StateChange::PausedToReady => {
                self.stop_worker();
                self.outputs().iter().for_each(Self::stop_pad_task);
            }
            _ => {}
        }
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::ReadyToPaused {
            if result.is_err() {
                self.stop_worker();
            } else {
                self.outputs().iter().for_each(|o| self.start_pad_task(o));
            }
        }
        result
    }
}
