//! The element's GStreamer side: pads, properties, events, queries and state changes. It is a
//! thin adapter: the pairing of frames with masks and the flush, shutdown and failure rules
//! live in [`Streaming`], the src pads with their queues and threads in [`Outputs`], and the
//! network runs on the worker thread (`worker.rs`), which is handed both and holds no lock
//! while it computes or pushes. Chain functions only pair buffers and queue them.
//!
//! Locks, as in gst-plugins-rs elements: `settings` (the properties) and `state` (what the
//! pads learnt from events, the worker thread); `Streaming` and `Outputs` lock inside.

use super::convert::sink_formats;
use super::debug_category::CAT;
use super::output::{Output, Outputs};
use super::pairing::{Timed, Work};
use super::settings::{Settings, TttMode};
use super::streaming::{Failure, Streaming};
use super::worker::Worker;
use crate::model::loading::{default_weights_candidates, WeightsSource};
use crate::stream::Decomposer;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_video::VideoInfo;
use once_cell::sync::Lazy;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the element learnt from events, and its worker thread.
struct State {
    video_info: Option<VideoInfo>,
    mask_info: Option<VideoInfo>,
    video_segment: gst::FormattedSegment<gst::ClockTime>,
    mask_segment: gst::FormattedSegment<gst::ClockTime>,
    /// Every downstream branch sends the same seek: it goes upstream once.
    last_seek: Option<gst::Seqnum>,
    worker: Option<JoinHandle<()>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            video_info: None,
            mask_info: None,
            video_segment: gst::FormattedSegment::new(),
            mask_segment: gst::FormattedSegment::new(),
            last_seek: None,
            worker: None,
        }
    }
}

pub struct Omnimatte {
    sinkpad: gst::Pad,
    maskpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    streaming: Arc<Streaming>,
    outputs: Arc<Outputs>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Omnimatte {
    /// Posts a refusal's error, if it has one, and returns its flow.
    fn refused(&self, failure: Failure) -> gst::FlowError {
        if let Some((kind, message)) = failure.error {
            gst::element_imp_error!(self, kind, ["{}", message]);
        }
        failure.flow
    }

    fn flow(
        &self,
        result: Result<gst::FlowSuccess, Failure>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        result.map_err(|f| self.refused(f))
    }

    /// For event handlers: true when accepted.
    fn accepted(&self, result: Result<(), Failure>) -> bool {
        result.map_err(|f| self.refused(f)).is_ok()
    }

    // ----- sink side -------------------------------------------------------------------------

    /// The buffer with its caps and running time; an error before caps.
    fn timed(&self, buffer: gst::Buffer, video: bool) -> Result<Timed, gst::FlowError> {
        let state = lock(&self.state);
        let (info, segment, pad) = if video {
            (&state.video_info, &state.video_segment, "sink")
        } else {
            (&state.mask_info, &state.mask_segment, "mask")
        };
        let Some(info) = info.clone() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ["buffer before caps on the {pad} pad"]
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let running_time = buffer.pts().and_then(|pts| segment.to_running_time(pts));
        Ok(Timed {
            buffer,
            running_time,
            info,
        })
    }

    fn video_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let frame = self.timed(buffer, true)?;
        let mask_timeout = Duration::from_millis(lock(&self.settings).mask_timeout_ms as u64);
        self.flow(self.streaming.push_video_frame(frame, mask_timeout))
    }

    fn mask_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mask = self.timed(buffer, false)?;
        self.flow(self.streaming.push_mask(mask))
    }

    /// Caps of either sink pad: valid video caps.
    fn sink_caps(&self, caps: &gst::CapsRef, video: bool) -> Option<VideoInfo> {
        let what = if video { "video" } else { "mask" };
        let Ok(info) = VideoInfo::from_caps(caps) else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ["invalid {what} caps {caps}"]
            );
            return None;
        };
        // Sizes are matched per frame, where a frame meets its mask (pairing.rs): a resolution
        // change reaches the two pads one after the other.
        Some(info)
    }

    /// A TIME segment, or an error naming the pad.
    fn time_segment(
        &self,
        segment: &gst::Segment,
        what: &str,
    ) -> Option<gst::FormattedSegment<gst::ClockTime>> {
        let time = segment.clone().downcast::<gst::ClockTime>().ok();
        if time.is_none() {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                [
                    "{what} segment is not in TIME format ({:?}); omnimatte needs timestamps",
                    segment.format()
                ]
            );
        }
        time
    }

    fn video_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "video event {:?}", event.type_());
        match event.view() {
            EventView::StreamStart(_) => {
                self.accepted(self.streaming.push_video_item(Work::StreamStart(event)))
            }
            EventView::Caps(c) => {
                let Some(info) = self.sink_caps(c.caps(), true) else {
                    return false;
                };
                lock(&self.state).video_info = Some(info.clone());
                self.accepted(self.streaming.push_video_item(Work::Caps(info)))
            }
            EventView::Segment(s) => {
                let Some(segment) = self.time_segment(s.segment(), "video") else {
                    return false;
                };
                lock(&self.state).video_segment = segment;
                self.accepted(self.streaming.push_video_item(Work::Event(event)))
            }
            EventView::Eos(_) => {
                let mask_timeout =
                    Duration::from_millis(lock(&self.settings).mask_timeout_ms as u64);
                self.accepted(self.streaming.push_video_item(Work::Drain))
                    && self.accepted(self.streaming.wait_for_last_masks(mask_timeout))
            }
            EventView::FlushStart(_) => {
                self.streaming.video_flush_start();
                self.outputs.flush_start(&event);
                true
            }
            EventView::FlushStop(_) => {
                self.streaming.video_flush_stop();
                lock(&self.state).video_segment = gst::FormattedSegment::new();
                self.outputs.flush_stop(&event);
                true
            }
            _ if event.is_serialized() => {
                self.accepted(self.streaming.push_video_item(Work::Event(event)))
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn mask_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "mask event {:?}", event.type_());
        match event.view() {
            EventView::Caps(c) => {
                let Some(info) = self.sink_caps(c.caps(), false) else {
                    return false;
                };
                lock(&self.state).mask_info = Some(info);
                true
            }
            EventView::Segment(s) => {
                let Some(segment) = self.time_segment(s.segment(), "mask") else {
                    return false;
                };
                lock(&self.state).mask_segment = segment;
                true
            }
            EventView::Eos(_) => self.accepted(self.streaming.mask_eos()),
            EventView::FlushStart(_) => {
                self.streaming.mask_flush_start();
                true
            }
            EventView::FlushStop(_) => {
                let ok = self.accepted(self.streaming.mask_flush_stop());
                lock(&self.state).mask_segment = gst::FormattedSegment::new();
                ok
            }
            // Mask-side stream-start, tags and the like do not go downstream.
            _ if event.is_serialized() => true,
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    // ----- src side --------------------------------------------------------------------------

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        let gst::EventView::Seek(seek) = event.view() else {
            return gst::Pad::event_default(pad, Some(&*self.obj()), event);
        };
        {
            let mut state = lock(&self.state);
            if state.last_seek == Some(event.seqnum()) {
                return true;
            }
            state.last_seek = Some(event.seqnum());
        }
        let flushing = seek.get().1.contains(gst::SeekFlags::FLUSH);
        if flushing {
            self.streaming.flushing_seek_sent();
        }
        let ok = gst::Pad::event_default(pad, Some(&*self.obj()), event);
        if flushing && !ok {
            let _ = self.accepted(self.streaming.flushing_seek_failed());
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

    /// The window's look-ahead in frames times the frame duration, plus processing time. The
    /// background's warm-up holds the first frames longer (the first until the last held
    /// frame comes). In `before-output` mode the first ttt-frames frames are held too (and the
    /// training time comes on top: that mode is for files, not live sources).
    fn own_latency(&self) -> gst::ClockTime {
        let settings = lock(&self.settings).clone();
        let mut look_ahead = settings.clip().map(|c| c.look_ahead() as u64).unwrap_or(0);
        if let Ok(config) = settings.stream_config() {
            if settings.background_plate.is_empty() {
                look_ahead = look_ahead.max(config.warm_up_held().saturating_sub(1) as u64);
            }
        }
        if settings.ttt == TttMode::BeforeOutput {
            look_ahead = look_ahead.max(settings.ttt_frames as u64);
        }
        let frame = lock(&self.state)
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
        let asked = settings.precision;
        let fail = |msg: String| gst::error_msg!(gst::LibraryError::Settings, ["{}", msg]);
        let device = settings.device().map_err(|e| fail(format!("{e:#}")))?;
        let config = settings
            .stream_config()
            .map_err(|e| fail(format!("{e:#}")))?;
        if let Some(k) = self
            .outputs
            .layer_numbers()
            .into_iter()
            .find(|&k| k > settings.objects)
        {
            return Err(fail(format!(
                "pad layer_{k} was requested but objects is {}",
                settings.objects
            )));
        }
        self.streaming.start();
        // The model is built and loaded on the worker thread itself: libtorch's OpenMP team
        // belongs to the thread that first runs an operation, and a second, idle team (here,
        // the state-change thread's) makes libgomp stop spinning between operations, which
        // measured 25 000 context switches and 15% more time for 48 frames on 2 cores.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let element = self.obj().upcast_ref::<gst::Element>().downgrade();
        let (streaming, outputs) = (self.streaming.clone(), self.outputs.clone());
        let handle = std::thread::Builder::new()
            .name("omnimatte-worker".into())
            .spawn(move || {
                let loaded = Decomposer::new(config, device).and_then(|decomposer| {
                    settings.load_model(device).map(|model| (decomposer, model))
                });
                let worker = loaded.and_then(|(decomposer, model)| {
                    let (source, precision) = (model.source, model.precision);
                    Worker::new(
                        element, streaming, outputs, settings, decomposer, model.vs, model.net,
                    )
                    .map(|worker| (worker, source, precision))
                });
                match worker {
                    Ok((worker, source, precision)) => {
                        let _ = ready_tx.send(Ok((source, precision)));
                        worker.run()
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| fail(format!("cannot start the worker thread: {e}")))?;
        let (source, precision) = match ready_rx.recv() {
            Ok(Ok(loaded)) => loaded,
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
        gst::info!(
            CAT,
            imp = self,
            "running on {device:?}, computing in {} (precision {asked:?})",
            precision.name()
        );
        if let Some(warning) = precision.emulation_warning(device) {
            gst::warning!(CAT, imp = self, "{warning}");
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ["{}", warning]);
        }
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
                    ["No pretrained weights: the `weights` property is empty and no bundled weights exist at {}. The network is randomly initialised; layers will hold the masks' objects with detail transfer only, not their effects.", default_weights_candidates().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ")]
                );
            }
        }
        lock(&self.state).worker = Some(handle);
        Ok(())
    }

    fn stop_worker(&self) {
        self.streaming.shut_down();
        let handle = lock(&self.state).worker.take();
        if let Some(handle) = handle {
            let _ = handle.join();
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
        let streaming = Arc::new(Streaming::default());
        Self {
            sinkpad,
            maskpad,
            outputs: Arc::new(Outputs::new(srcpad.clone(), streaming.clone())),
            srcpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
            streaming,
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
                    .default_value(Some(crate::defaults::DEVICE))
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
                    .blurb("Recent frames kept for the masked temporal median background (where none of them shows a pixel free, the last values seen free there before are used)")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(d.background_frames)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("background-warm-up")
                    .nick("Background warm-up")
                    .blurb("Frames held at the start (and after a flush or new caps) before the first output, at most background-frames: each is decomposed once first, so that the first frames' background is the median of this many frames without their objects' effects (measured: +0.008 to +0.009 effect IoU on three validation sets, +0.003 and +0.011 on the two test sets, ghosts a fifth lower); the held frames then go out at once, and the latency reported grows to this many frames less one. 0: output from the look-ahead on (live pipelines that want the least latency). No effect with background-plate or background-median=masks")
                    .maximum(1000)
                    .default_value(d.background_warm_up)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("background-quantile")
                    .nick("Background quantile")
                    .blurb("Which quantile of the values a pixel shows free of the masks is its background (also in test-time training): 0.5 is the paper's median; higher prefers the brighter values, which leaves out shadows that lie on a pixel in most frames (slow objects) but measured lower layer precision while streaming")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.background_quantile)
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
                glib::ParamSpecEnum::builder_with_default("alpha-mode", d.alpha_mode)
                    .nick("Alpha mode")
                    .blurb("How a layer's alpha is made: mask-guided (each object opaque inside its input mask, with the mask's edge; the network's alpha adds the effects outside it) or network (the network's alpha alone, the paper's behaviour)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("background-mode", d.background_mode)
                    .nick("Background mode")
                    .blurb("What the background pad carries: clean (the frame's background estimate, the masked median or the clean plate, with nothing of any object or its effects) or residual (the estimate plus what the layers do not explain: with the layers it reproduces the frame exactly). The src pad is the exact reconstruction in both modes")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("background-median", d.background_median)
                    .nick("Background median")
                    .blurb("What the background estimate's masked temporal median leaves out: masks (the pixels the input masks cover, the paper's) or layers (those and the effects the layers found, once each frame's layers are made, and in the frames after it not decomposed yet where its effects were, so that shadows slow objects leave on a pixel stay out of the background)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("mirror-average")
                    .nick("Mirror average")
                    .blurb("Also run the network on each clip's mirror image (left and right swapped) and average the two sets of layers: better layers (+0.006 effect IoU on the validation set, precision and recall both up) for twice the network's work; false for speed. Not after test-time training (ttt=before-output, ttt=background from its first swap of tuned weights on, or weights fine-tuned before by decompose --save-weights): it fits the network to the video, not to its mirror image, and the average is then worse than the tuned layers alone")
                    .default_value(d.mirror_average)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("exposure-match")
                    .nick("Exposure match")
                    .blurb("Bring the background estimate to each frame's exposure before the network sees the frame's difference to it and before the background, removal and reconstruction are made from it (and test-time training's background to each frame it trains on): per colour channel, the median ratio of the frame to the estimate over the pixels no mask covers (between 0.8 and 1.25; outside that it is taken for a change of scene, not of exposure). Cameras hunt for exposure, and a median over many frames shows the scene at their typical exposure: on the real clip the clean background's error away from the objects 6.8 -> 3.2 of 255 (docs/measurements.md, session 35)")
                    .default_value(d.exposure_match)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("residual-shadows")
                    .nick("Residual shadows")
                    .blurb("Give each object the darkening outside every mask that joins its mask through darkened pixels (more than 10 of 255 from the background estimate, within 3/8 of the working height; a pixel two objects reach goes to the one it lies from in the frame's shadow direction, or to the nearer where the frame shows too little shadow to tell), as a black layer of the alpha that explains it, where that alpha is more than every layer's there: long shadows cast away from where the training scenes put them, which the network leaves in the background. A rule, not the paper's. On the validation sets +0.019 and +0.016 effect IoU while streaming, on the test sets +0.008 and +0.009 (recall beyond the masks +0.02 to +0.06, precision -0.002 to -0.011, removals +0.2 to +0.45 dB; docs/measurements.md, session 39). It takes any darkening near an object for its shadow: false where other things darken next to the objects")
                    .default_value(d.residual_shadows)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("residual-reflections")
                    .nick("Residual reflections")
                    .blurb("Give each object the brighter residual outside every mask that joins its mask through residual pixels (more than 10 of 255 from the background estimate, within 3/8 of the working height; a pixel two objects reach goes to the one it lies from in the frame's shadow direction, or to the nearer where the frame shows too little shadow to tell) and points from the estimate towards the object's mean colour (cosine above 0.97), as a layer of that colour with the alpha that explains it, where that alpha is more than every layer's there: the reflection of a bright object, which the network leaves in the background. A rule, not the paper's. On three validation sets, streaming, +0.003, +0.005 and +0.003 effect IoU (36 of 48 videos better on the third, chosen on the first two; recall beyond the masks +0.012 to +0.020, precision -0.002 to -0.003, removals +0.07 to +0.18 dB; docs/measurements.md, session 41). It takes any brightening of an object's colour near it for its reflection: false where the objects light up the ground beside them in other ways")
                    .default_value(d.residual_reflections)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("stabilise")
                    .nick("Stabilise")
                    .blurb("Follow a camera that shakes (on a hand, in the wind), pans or drifts: each frame's translation, turn and zoom against the stream's first frame are found over the pixels no mask covers, the network and the background median see the frame moved onto one view, and its layers and background are moved back before they are made at full resolution, so every output stays where the frame shows it. The view is the first frame's until the camera has moved beyond 6% of the shorter side against it in the output frame and in the latest; then the output frame's (a pan is followed one stretch at a time; measured up to 1.6% of the shorter side a frame, and not where the ground is a blurred photograph). A frame is moved only while at least a quarter of the frames so far moved by 1/4 pixel or more, and only where the first frame's ground has texture: a static camera's frames are left as they came. The first frame moved is logged at INFO (GST_DEBUG=omnimatte:4), every one at DEBUG. About 0.1 s a 1080p frame on two cores")
                    .default_value(d.stabilise)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("clear-still-ground")
                    .nick("Clear still ground")
                    .blurb("Clear every layer's alpha outside the masks where the frame shows the background estimate (its differences summed over the colour channels within 10 of 255) and at least half of the frames the median holds show it too: ground nothing crossed, where the network puts soft alpha that no object casts. The median's covers are taken from the layers before they are cleared; the background pad shows the frame there, so the layers over it still reproduce the frame. A rule, not the paper's. On a fresh validation set +0.014 effect IoU (39 of 48 videos better), on the test sets +0.005 and +0.023 (precision +0.025 and +0.035, recall beyond the masks -0.040 and -0.017; docs/measurements.md, session 57). Only while the median makes the background (not over background-plate). About 0.1 s a 1080p frame on two cores: false for speed, or where faint effects on a still background matter more than clean layers")
                    .default_value(d.clear_still_ground)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("upsampling", d.upsampling)
                    .nick("Upsampling")
                    .blurb("How layers reach the input size from the working size: guided (alpha follows the frame's edges by a guided filter) or bilinear (a plain resize)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("output-frame", d.output_frame)
                    .nick("Output frame")
                    .blurb("Whether the network sees the frame it decomposes: visible (the frame's own image helps place its effects: +0.02 effect IoU on the validation set, docs/measurements.md), hidden (predicted from the other frames' images and the masks, the paper's inference) or auto (visible; hidden with ttt=before-output or weights fine-tuned before, whose training teaches hidden frames only; ttt=background keeps it visible until its first swap of tuned weights and hides it from then on: +0.07 to +0.15 effect IoU in the later quarters of 96-frame videos at one step a frame, docs/measurements.md, sessions 33-34)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("precision", d.precision)
                    .nick("Precision")
                    .blurb("What the network computes in: auto (bf16 where the CPU has AMX-BF16 or AVX512-BF16; fp32 otherwise and on a GPU, where bf16 measured no faster; the choice is logged), fp32 or bf16 (kept where the CPU only emulates it, many times slower: a warning on the bus says so). Convolutions, matmuls and attention run in it; normalisation, compositing and the outputs stay 32-bit")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("ttt", d.ttt)
                    .nick("Test-time training")
                    .blurb("Fine-tune the network on the video itself: off (zero-shot), before-output (hold the first ttt-frames frames, train ttt-steps steps on them, then output everything; for files) or background (train on recent frames while streaming with the current weights; for live; its training background leaves out what a frozen copy of the loaded network finds in each frame, which costs the training thread about one inference per frame). Progress: element messages `omnimatte-training` and progress messages")
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
                    .blurb("Background mode: training steps between two hand-overs of the new weights to inference after the first (message `omnimatte-weights-swapped`)")
                    .minimum(1)
                    .maximum(1_000_000)
                    .default_value(d.ttt_swap_steps)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("ttt-first-swap-steps")
                    .nick("First weight swap")
                    .blurb("Background mode: training steps before the first hand-over of weights to inference, which runs the weights as loaded until then (then one every ttt-swap-steps). The first steps move the network away from what it knew before they fit it to the video: at one step a frame, frames decomposed with the 20-step weights scored below zero-shot, those with the 40-step and later ones level with it (docs/measurements.md, session 32)")
                    .minimum(1)
                    .maximum(1_000_000)
                    .default_value(d.ttt_first_swap_steps)
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
                glib::ParamSpecDouble::builder("ttt-mask-weight")
                    .nick("Test-time training mask weight")
                    .blurb("lambda_m at the first step of test-time training, tenfold less at 0.1 and 0.2 of ttt-steps (the paper: 0.1)")
                    .minimum(0.0)
                    .maximum(100.0)
                    .default_value(d.ttt_mask_weight)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("ttt-interior-opacity")
                    .nick("Test-time training interior opacity")
                    .blurb("Weight of a term, not in the paper, that keeps each object opaque in the network's alpha inside its mask eroded by 3 pixels (of a thinner object, its middle line) during test-time training (0: off, the paper's objective; 0.1 keeps the objects as opaque as zero-shot at no measured cost in effect IoU: README)")
                    .minimum(0.0)
                    .maximum(100.0)
                    .default_value(d.ttt_interior_opacity)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("ttt-warmup-steps")
                    .nick("Test-time training warm-up")
                    .blurb("Steps over which the test-time training learning rate rises linearly to ttt-learning-rate, in both modes (0: none, the paper's constant rate). AdamW's first updates move every weight by about the learning rate whatever its gradient; a 40-step warm-up in background mode at one step a frame measured level with none (+0.004 effect IoU, SE 0.005: docs/measurements.md, session 33)")
                    .maximum(1_000_000)
                    .default_value(d.ttt_warmup_steps)
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
                    .unwrap_or_else(|| crate::defaults::DEVICE.into())
            }
            "objects" => s.objects = value.get().unwrap(),
            "working-height" => s.working_height = value.get().unwrap(),
            "working-width" => s.working_width = value.get().unwrap(),
            "clip-length" => s.clip_length = value.get().unwrap(),
            "clip-gap" => s.clip_gap = value.get().unwrap(),
            "background-frames" => s.background_frames = value.get().unwrap(),
            "background-warm-up" => s.background_warm_up = value.get().unwrap(),
            "background-quantile" => s.background_quantile = value.get().unwrap(),
            "background-plate" => {
                s.background_plate = value.get::<Option<String>>().unwrap().unwrap_or_default()
            }
            "mask-timeout" => s.mask_timeout_ms = value.get().unwrap(),
            "alpha-mode" => s.alpha_mode = value.get().unwrap(),
            "background-mode" => s.background_mode = value.get().unwrap(),
            "background-median" => s.background_median = value.get().unwrap(),
            "mirror-average" => s.mirror_average = value.get().unwrap(),
            "exposure-match" => s.exposure_match = value.get().unwrap(),
            "residual-shadows" => s.residual_shadows = value.get().unwrap(),
            "residual-reflections" => s.residual_reflections = value.get().unwrap(),
            "stabilise" => s.stabilise = value.get().unwrap(),
            "clear-still-ground" => s.clear_still_ground = value.get().unwrap(),
            "upsampling" => s.upsampling = value.get().unwrap(),
            "output-frame" => s.output_frame = value.get().unwrap(),
            "precision" => s.precision = value.get().unwrap(),
            "ttt" => s.ttt = value.get().unwrap(),
            "ttt-frames" => s.ttt_frames = value.get().unwrap(),
            "ttt-steps" => s.ttt_steps = value.get().unwrap(),
            "ttt-swap-steps" => s.ttt_swap_steps = value.get().unwrap(),
            "ttt-first-swap-steps" => s.ttt_first_swap_steps = value.get().unwrap(),
            "ttt-batch" => s.ttt_batch = value.get().unwrap(),
            "ttt-learning-rate" => s.ttt_learning_rate = value.get().unwrap(),
            "ttt-mask-weight" => s.ttt_mask_weight = value.get().unwrap(),
            "ttt-interior-opacity" => s.ttt_interior_opacity = value.get().unwrap(),
            "ttt-warmup-steps" => s.ttt_warmup_steps = value.get().unwrap(),
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
            "background-warm-up" => s.background_warm_up.to_value(),
            "background-quantile" => s.background_quantile.to_value(),
            "background-plate" => s.background_plate.to_value(),
            "processing-latency" => s.processing_latency_ms.to_value(),
            "mask-timeout" => s.mask_timeout_ms.to_value(),
            "alpha-mode" => s.alpha_mode.to_value(),
            "background-mode" => s.background_mode.to_value(),
            "background-median" => s.background_median.to_value(),
            "mirror-average" => s.mirror_average.to_value(),
            "exposure-match" => s.exposure_match.to_value(),
            "residual-shadows" => s.residual_shadows.to_value(),
            "residual-reflections" => s.residual_reflections.to_value(),
            "stabilise" => s.stabilise.to_value(),
            "clear-still-ground" => s.clear_still_ground.to_value(),
            "upsampling" => s.upsampling.to_value(),
            "output-frame" => s.output_frame.to_value(),
            "precision" => s.precision.to_value(),
            "ttt" => s.ttt.to_value(),
            "ttt-frames" => s.ttt_frames.to_value(),
            "ttt-steps" => s.ttt_steps.to_value(),
            "ttt-swap-steps" => s.ttt_swap_steps.to_value(),
            "ttt-first-swap-steps" => s.ttt_first_swap_steps.to_value(),
            "ttt-batch" => s.ttt_batch.to_value(),
            "ttt-learning-rate" => s.ttt_learning_rate.to_value(),
            "ttt-mask-weight" => s.ttt_mask_weight.to_value(),
            "ttt-interior-opacity" => s.ttt_interior_opacity.to_value(),
            "ttt-warmup-steps" => s.ttt_warmup_steps.to_value(),
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
                 a background and the reconstruction, from a GRAY8 label mask (Omnimatte by coordination games, NeurIPS 2022). \
                 Example: gst-launch-1.0 -e imagesequencesrc location=rgb/%05d.png framerate=25/1 ! pngdec ! videoconvert ! om.sink \
                 imagesequencesrc location=mask/%05d.png framerate=25/1 ! pngdec ! om.mask \
                 omnimatte name=om objects=2 ! pngenc ! multifilesink location=recon_%05d.png \
                 om.layer_1 ! pngenc ! multifilesink location=layer1_%05d.png \
                 om.background ! pngenc ! multifilesink location=background_%05d.png",
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
        // A refused request returns no pad and logs why; it is not an error of the stream.
        let output = match templ.name_template().to_string().as_str() {
            "background" => Output::Background,
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
                    None => (1..=objects).find(|&k| !self.outputs.has(Output::Layer(k)))?,
                };
                if index == 0 || index > objects {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "no pad layer_{index}: layers are numbered 1..={objects} (set objects first)"
                    );
                    return None;
                }
                Output::Layer(index)
            }
            other => {
                gst::warning!(CAT, imp = self, "no request pad template {other}");
                return None;
            }
        };
        if self.outputs.has(output) {
            gst::warning!(CAT, imp = self, "the pad for {output:?} exists already");
            return None;
        }
        let pad_name = match output {
            Output::Background => "background".to_string(),
            Output::Layer(k) => format!("layer_{k}"),
        };
        let pad = src_pad_builder(templ, Some(&pad_name)).build();
        let running = self.obj().current_state() > gst::State::Ready;
        self.obj().add_pad(&pad).ok()?;
        self.outputs.add(output, pad.clone(), running);
        Some(pad)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        self.outputs.release(pad);
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
                *lock(&self.state) = State::default();
                if let Err(msg) = self.start_worker() {
                    self.post_error_message(msg);
                    return Err(gst::StateChangeError);
                }
            }
            gst::StateChange::PausedToReady => {
                self.stop_worker();
                self.outputs.stop();
            }
            _ => {}
        }
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::ReadyToPaused {
            if result.is_err() {
                self.stop_worker();
            } else {
                self.outputs.start();
            }
        }
        result
    }
}
