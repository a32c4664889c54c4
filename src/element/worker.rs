//! The worker thread: takes the paired work in stream order from [`Streaming`], runs the
//! network (and the test-time training of the `ttt` property), and queues the results on the
//! [`Outputs`]. It holds no lock while it computes or pushes, and knows the element only as a
//! `gst::Element` to post messages from.

use super::convert::{mask_to_tensor, VideoReader};
use super::debug_category::CAT;
use super::output::Outputs;
use super::pairing::Work;
use super::progress::{post_swap, post_training, Phase};
use super::settings::{Settings, TttMode};
use super::streaming::Streaming;
use crate::model::precision::hold_for_inference;
use crate::model::OmnimatteNet;
use crate::stabilise::{CameraShift, StreamStabiliser};
use crate::stream::{Decomposer, FrameLayers};
use crate::ttt::{
    fine_tune, leave_out_layers, ContinuousTraining, Progress, TrainingFrames, WeightsSnapshot,
};
use gst::glib;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::Arc;
use tch::nn;

type Timestamps = (Option<gst::ClockTime>, Option<gst::ClockTime>);

/// An item of work's result: an error to post (the outer), or the flow to return upstream.
type Outcome = anyhow::Result<Result<gst::FlowSuccess, gst::FlowError>>;

/// Where test-time training stands.
enum TestTime {
    /// Zero-shot, or `before-output` once its training is done.
    Off,
    /// `before-output`: frames are held (with the events between them) until the network has
    /// been fine-tuned on them.
    Gathering {
        held: Vec<Work>,
        frames: TrainingFrames,
        /// With `stabilise`: the network trains on the frames as the decomposer will show
        /// them; it is handed the shifts found and the stabiliser that found them.
        camera: Option<Box<GatheredCamera>>,
    },
    /// `background`: a training thread fine-tunes a copy of the network on recent frames.
    Continuous {
        training: ContinuousTraining,
        swaps: u64,
    },
}

impl TestTime {
    /// Forgets what `before-output` has gathered (a flush, or its training cancelled).
    fn forget_gathered(&mut self) {
        if let TestTime::Gathering {
            held,
            frames,
            camera,
        } = self
        {
            held.clear();
            frames.clear();
            if let Some(camera) = camera {
                **camera = GatheredCamera::default();
            }
        }
    }
}

/// The camera of the frames `before-output` gathers, followed as the decomposer would.
#[derive(Default)]
struct GatheredCamera {
    stabiliser: StreamStabiliser,
    /// One for each gathered frame.
    shifts: Vec<CameraShift>,
}

pub(super) struct Worker {
    element: glib::WeakRef<gst::Element>,
    streaming: Arc<Streaming>,
    outputs: Arc<Outputs>,
    settings: Settings,
    decomposer: Decomposer,
    vs: nn::VarStore,
    net: OmnimatteNet,
    test_time: TestTime,
    timestamps: VecDeque<Timestamps>,
    reader: VideoReader,
    failed: bool,
    /// Whether a frame of this stream was moved onto its first (told once at info level).
    camera_followed: bool,
}

impl Worker {
    /// Builds the worker state; in `background` mode this starts the training thread.
    pub fn new(
        element: glib::WeakRef<gst::Element>,
        streaming: Arc<Streaming>,
        outputs: Arc<Outputs>,
        settings: Settings,
        mut decomposer: Decomposer,
        vs: nn::VarStore,
        net: OmnimatteNet,
    ) -> anyhow::Result<Self> {
        let plate = settings.plate()?;
        let (h, w) = (
            settings.working_height as i64,
            settings.working_width as i64,
        );
        if let Some(plate) = &plate {
            decomposer.set_background_plate(plate);
        }
        let test_time = match settings.ttt {
            TttMode::Off => TestTime::Off,
            TttMode::BeforeOutput => {
                let mut frames =
                    TrainingFrames::new(settings.ttt_frames as usize, settings.background_quantile)
                        .matching_exposure(settings.exposure_match);
                if let Some(plate) = &plate {
                    frames.set_background_plate(plate, h, w);
                }
                TestTime::Gathering {
                    held: Vec::new(),
                    frames,
                    camera: settings.stabilise.then(Box::default),
                }
            }
            TttMode::Background => {
                let poster = element.clone();
                let training = ContinuousTraining::start(
                    net.config().clone(),
                    WeightsSnapshot::take(&vs, 0),
                    vs.device(),
                    settings.continuous_config()?,
                    move |progress: &Progress| {
                        if let Some(e) = poster.upgrade() {
                            post_training(&e, "background", Phase::Running, progress);
                        }
                    },
                )?;
                if let Some(plate) = &plate {
                    training.set_background_plate(plate, h, w);
                }
                TestTime::Continuous { training, swaps: 0 }
            }
        };
        // Inference alone uses these weights from now on (the background trainer took its own
        // fp32 copy above); before-output training needs them fp32 until it ends.
        if !matches!(test_time, TestTime::Gathering { .. }) {
            hold_for_inference(&vs, net.config().precision);
        }
        Ok(Self {
            element,
            streaming,
            outputs,
            settings,
            decomposer,
            vs,
            net,
            test_time,
            timestamps: VecDeque::new(),
            reader: VideoReader::default(),
            failed: false,
            camera_followed: false,
        })
    }

    /// Takes work until shutdown.
    pub fn run(mut self) {
        while let Some(work) = self.streaming.next_work() {
            let Some(element) = self.element.upgrade() else {
                return;
            };
            let flow = match self.handle(&element, work) {
                Ok(flow) => flow,
                Err(e) => {
                    gst::element_error!(element, gst::StreamError::Failed, ["{e:#}"]);
                    self.failed = true;
                    Err(gst::FlowError::Error)
                }
            };
            if let Err(err) = flow {
                self.streaming.fail(err);
            }
        }
    }

    /// Routes work through test-time training first: `before-output` holds it back.
    fn handle(&mut self, element: &gst::Element, work: Work) -> Outcome {
        let TestTime::Gathering {
            held,
            frames,
            camera,
        } = &mut self.test_time
        else {
            return self.process(element, work);
        };
        match work {
            Work::Frame { video, mask } if !self.failed => {
                let (h, w) = (
                    self.settings.working_height as i64,
                    self.settings.working_width as i64,
                );
                let frame = self.reader.frame_to_tensor(&video.buffer, &video.info)?;
                let labels = mask_to_tensor(&mask.buffer, &mask.info)?;
                let (frame, labels) = match camera {
                    Some(camera) => {
                        let shift = camera.stabiliser.follow(&frame, &labels.gt(0));
                        camera.shifts.push(shift);
                        shift.align_frame(&frame, &labels)
                    }
                    None => (frame, labels),
                };
                frames.push_video_frame(&frame, &labels, self.settings.objects as usize, h, w);
                // Held as the buffers and converted again on release: a float frame is four
                // times the bytes (60 held 1080p frames: 1.5 GB instead of 370 MB).
                held.push(Work::Frame { video, mask });
                if frames.len() >= self.settings.ttt_frames as usize {
                    return self.train_then_release(element);
                }
                Ok(Ok(gst::FlowSuccess::Ok))
            }
            Work::Reset => {
                self.test_time.forget_gathered();
                self.process(element, Work::Reset)
            }
            Work::Drain | Work::Caps(_) => {
                let flow = self.train_then_release(element)?;
                if flow.is_err() {
                    return Ok(flow);
                }
                self.process(element, work)
            }
            other if held.is_empty() => self.process(element, other),
            other => {
                held.push(other);
                Ok(Ok(gst::FlowSuccess::Ok))
            }
        }
    }

    /// `before-output`: fine-tunes on the held frames, then processes everything held. A
    /// flush or shutdown during training cancels it; a flush starts the gathering afresh.
    fn train_then_release(&mut self, element: &gst::Element) -> Outcome {
        let TestTime::Gathering { held, frames, .. } = &mut self.test_time else {
            return Ok(Ok(gst::FlowSuccess::Ok));
        };
        if frames.is_empty() {
            // Nothing to train on yet (the stream's first caps): let what is held go, and
            // keep gathering.
            let held = std::mem::take(held);
            return self.process_all(element, held);
        }
        let mut last = Progress {
            step: 0,
            steps: Some(self.settings.ttt_steps as u64),
            loss: f64::NAN,
            reconstruction: f64::NAN,
            mask_weight: f64::NAN,
            steps_per_second: 0.0,
        };
        let mut cancelled = false;
        post_training(element, "before-output", Phase::Started, &last);
        let streaming = &self.streaming;
        let config = self.settings.fine_tune_config()?;
        // The chains keep taking frames while the network trains (see TRAINING_QUEUE_BYTES).
        streaming.set_training(true);
        // The training background leaves out what the network as loaded finds (a zero-shot
        // pass over the held frames at the working size: about what decomposing them costs).
        let zero_shot = self.settings.zero_shot_output_frame();
        let tuned = leave_out_layers(frames, &self.net, config.clip, zero_shot).and_then(|()| {
            fine_tune(&self.vs, &self.net, frames, &config, |progress| {
                last = *progress;
                post_training(element, "before-output", Phase::Running, progress);
                cancelled = streaming.cancelled();
                if cancelled {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
        });
        streaming.set_training(false);
        tuned?;
        if cancelled {
            post_training(element, "before-output", Phase::Cancelled, &last);
            self.test_time.forget_gathered();
            return Ok(Err(gst::FlowError::Flushing));
        }
        post_training(element, "before-output", Phase::Finished, &last);
        hold_for_inference(&self.vs, self.net.config().precision);
        let TestTime::Gathering { held, camera, .. } =
            std::mem::replace(&mut self.test_time, TestTime::Off)
        else {
            unreachable!("matched above")
        };
        if let Some(camera) = camera {
            // The held frames are followed already: the decomposer takes their shifts.
            self.decomposer.follow_on(camera.stabiliser, camera.shifts);
        }
        self.process_all(element, held)
    }

    /// Processes held work in order, stopping at the first flow that is not OK.
    fn process_all(&mut self, element: &gst::Element, held: Vec<Work>) -> Outcome {
        for work in held {
            let flow = self.process(element, work)?;
            if flow.is_err() {
                return Ok(flow);
            }
        }
        Ok(Ok(gst::FlowSuccess::Ok))
    }

    /// Swaps in the `background` trainer's newest weights, if it has handed any over.
    fn take_new_weights(&mut self, element: &gst::Element) -> anyhow::Result<()> {
        let TestTime::Continuous { training, swaps } = &mut self.test_time else {
            return Ok(());
        };
        if training.has_ended() {
            // Only an error ends it early: keep streaming with the weights in use.
            let TestTime::Continuous { training, .. } =
                std::mem::replace(&mut self.test_time, TestTime::Off)
            else {
                unreachable!("matched above")
            };
            let why = training
                .stop()
                .err()
                .map_or_else(|| "it ended".to_string(), |e| format!("{e:#}"));
            gst::element_warning!(
                element,
                gst::LibraryError::Failed,
                ["Test-time training stopped ({why}); streaming goes on with the last weights"]
            );
            return Ok(());
        }
        if let Some(snapshot) = training.take_weights() {
            snapshot.load_into(&self.vs)?;
            self.decomposer.weights_changed();
            self.decomposer
                .set_inference(self.settings.inference_once_tuned());
            *swaps += 1;
            post_swap(element, snapshot.step, *swaps);
        }
        Ok(())
    }

    /// Hands the frame the network just saw to the `background` trainer.
    fn share_latest_frame(&self) {
        if let TestTime::Continuous { training, .. } = &self.test_time {
            if let Some((image, masks)) = self.decomposer.latest_inputs() {
                training.add_frame(&image, &masks);
            }
        }
    }

    /// Runs one item of work through the decomposer and queues what it produces.
    fn process(&mut self, element: &gst::Element, work: Work) -> Outcome {
        Ok(match work {
            Work::Frame { video, mask } if !self.failed => {
                self.take_new_weights(element)?;
                let frame = self.reader.frame_to_tensor(&video.buffer, &video.info)?;
                let labels = mask_to_tensor(&mask.buffer, &mask.info)?;
                self.timestamps
                    .push_back((video.buffer.pts(), video.buffer.duration()));
                let outs = self.decomposer.push(&self.net, &frame, &labels)?;
                self.share_latest_frame();
                self.push_all(&outs);
                Ok(gst::FlowSuccess::Ok)
            }
            Work::Frame { .. } => Err(gst::FlowError::Error),
            Work::Drain => {
                let outs = if self.failed {
                    Vec::new()
                } else {
                    self.decomposer.finish(&self.net)?
                };
                self.push_all(&outs);
                self.outputs.queue_event(&gst::event::Eos::new());
                Ok(gst::FlowSuccess::Ok)
            }
            Work::Caps(info) => {
                // Frames of the old size go out under the old caps; then start afresh.
                let outs = self.decomposer.finish(&self.net)?;
                self.push_all(&outs);
                self.decomposer.reset();
                if let TestTime::Continuous { training, .. } = &self.test_time {
                    training.clear_frames();
                }
                self.outputs.queue_caps(&info);
                Ok(gst::FlowSuccess::Ok)
            }
            Work::StreamStart(event) => {
                self.outputs.queue_stream_start(&event);
                Ok(gst::FlowSuccess::Ok)
            }
            Work::Event(event) => {
                self.outputs.queue_event(&event);
                Ok(gst::FlowSuccess::Ok)
            }
            Work::Reset => {
                self.decomposer.reset();
                // A seek: the trainer's frames are no longer the ones before these.
                if let TestTime::Continuous { training, .. } = &self.test_time {
                    training.clear_frames();
                }
                self.timestamps.clear();
                self.failed = false;
                self.camera_followed = false;
                Ok(gst::FlowSuccess::Ok)
            }
        })
    }

    /// Queues every finished frame, each with the timestamps of its input frame.
    fn push_all(&mut self, outs: &[FrameLayers]) {
        for out in outs {
            if !out.camera_shift.is_none() {
                let first = !std::mem::replace(&mut self.camera_followed, true);
                let level = if first {
                    gst::DebugLevel::Info
                } else {
                    gst::DebugLevel::Debug
                };
                gst::log_with_level!(
                    CAT,
                    level,
                    "frame {}: the camera moved by {} from the stream's first frame; aligned for the network and the median, its outputs made in place",
                    out.index,
                    out.camera_shift
                );
            }
            let (pts, duration) = self.timestamps.pop_front().unwrap_or((None, None));
            let mode = self.settings.background_mode;
            if !self.outputs.queue_frame(out, mode, pts, duration) {
                break; // flushing: the frames are dropped on purpose
            }
        }
    }
}
