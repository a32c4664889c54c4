//! Streaming decomposition: frames and label maps go in one at a time, one set of layers per
//! frame comes out as soon as the clip that predicts it is complete (look-ahead of
//! `ClipSpec::look_ahead` frames), and `finish` drains the rest at the end of a stream.
//!
//! Work is shared between the overlapping clips (docs/method.md, "Streaming inference"): each
//! frame's image is encoded once (and only if some clip sees it), each frame's masks are encoded
//! once, hidden frames share one encoding of the blacked-out frame, and only the output frame
//! of each clip is decoded, for all objects in one batch (with `mirror_average`, all of this
//! once more for the mirror image, [`crate::mirror`]). Memory stays flat: the window holds
//! `look_back + look_ahead + 1` frames and the background reservoir a bounded number.

use crate::alpha::{upsample_layers, AlphaMode, Upsampling};
use crate::background::{effects_outside_masks, layers_cover, BackgroundMedian, BackgroundModel};
use crate::clip::{inference_plan, ClipSpec, OutputFrame, OutputFrameChoice};
use crate::composite::{composite, to_unit};
use crate::exposure::{at_exposure_of, matched};
use crate::full_resolution::{full_resolution_layers, full_resolution_with_tensors};
use crate::mirror::{average_layers, mirrored};
use crate::model::{check_working_size, Encoded, OmnimatteNet};
use crate::residual_effects::{add_residual_effects, ResidualEffects};
use crate::stabilise::{CameraMotion, CameraShift, StreamStabiliser, REANCHOR_SHARE};
use crate::still_ground::{
    clear_still_ground, still_ground, STILL_GROUND_SHARE, STILL_GROUND_TOLERANCE,
};
use crate::working::{network_inputs, object_masks, working_image, MASK_THRESHOLD};
use anyhow::Context;
use std::collections::VecDeque;
use tch::{Device, Kind, Tensor};

/// [H, W] bool: where a frame moved by `shift` (its aligned labels `seen_labels` [H, W]) shows
/// no background to the median: under its masks, and beyond the frame (a frame not moved, a
/// still camera's every frame, shows nothing from beyond it).
fn as_covered(seen_labels: &Tensor, shift: CameraShift) -> Tensor {
    let masked = seen_labels.gt(0);
    if shift.is_none() {
        return masked;
    }
    let size = seen_labels.size();
    masked.logical_or(&shift.unseen(size[0], size[1], seen_labels.device()))
}

/// A frame [3, H, W] and its label map [H, W] moved by `shift` onto the view the network and
/// the median work in, and the network's inputs made of them at `config`'s working size:
/// (frame, labels) moved, (image [1, 3, h, w], masks [L, 1, h, w]).
fn seen_inputs(
    config: &StreamConfig,
    frame: &Tensor,
    labels: &Tensor,
    shift: CameraShift,
) -> ((Tensor, Tensor), (Tensor, Tensor)) {
    let (seen, seen_labels) = shift.align_frame(frame, labels);
    let inputs = network_inputs(
        &seen,
        &seen_labels,
        config.objects,
        (config.working_height, config.working_width),
        config.mask_threshold,
    );
    ((seen, seen_labels), inputs)
}

/// Settings of a streaming decomposition.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    pub clip: ClipSpec,
    /// Height and width the network runs at (multiples of 16).
    pub working_height: i64,
    pub working_width: i64,
    /// Number of objects: label k in 1..=objects is object k, 0 is background.
    pub objects: usize,
    /// Recent frames kept for the background median.
    pub background_frames: usize,
    /// Which quantile of a pixel's free values is its background (0.5: the paper's median).
    pub background_quantile: f64,
    /// Masks resized to the working size are binarised at this coverage (docs/method.md: 0.6).
    pub mask_threshold: f64,
    /// Objects opaque inside their masks (default), or the network's alpha alone.
    pub alpha_mode: AlphaMode,
    /// How the working-size layers reach the input size.
    pub upsampling: Upsampling,
    /// Whether the network sees the frame it decomposes.
    pub output_frame: OutputFrame,
    /// Which pixels the background median leaves out.
    pub background_median: BackgroundMedian,
    /// Also run the network on the mirror image of each clip and average the two sets of
    /// layers ([`crate::mirror`]): twice the network's work.
    pub mirror_average: bool,
    /// Bring the background estimate to each frame's exposure ([`crate::exposure`]) before
    /// the network sees the frame's difference to it and before the outputs are made from it.
    pub exposure_match: bool,
    /// Which effects the network's layers leave in the background are given to the object
    /// whose mask they join: darkening (shadows), brighter residual of its colour
    /// (reflections) ([`crate::residual_effects`]).
    pub residual: ResidualEffects,
    /// Frames held at the start before the first output (at most `background_frames`; only
    /// where the median leaves out the layers' effects and no plate is set): the first frames'
    /// background is then the median of this many frames, and each held frame is decomposed
    /// once first so that its effects are left out of that median, as `decompose`'s
    /// whole-clip estimate leaves them out. 0: output from the look-ahead on.
    /// [`warm_up_held`](Self::warm_up_held) is what is held.
    pub warm_up_frames: usize,
    /// A shaking camera, followed ([`StreamStabiliser`]) or its shifts given: each frame the
    /// network and the background median see is moved onto the first frame, and its layers
    /// and background are moved back before they are made at full resolution, so that the
    /// outputs stay where the frame shows them, detail transferred from the frame as it came.
    /// A static camera's frames are left as they came.
    pub camera: CameraMotion,
    /// Clear every layer's alpha outside the masks where the frame shows the median's
    /// estimate and at least half of the median's frames show it too: ground nothing crossed
    /// ([`crate::still_ground`]). Only where the median makes the background (not over a
    /// plate).
    pub clear_still_ground: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            clip: ClipSpec::default(),
            working_height: crate::defaults::WORKING_HEIGHT,
            working_width: crate::defaults::WORKING_WIDTH,
            objects: crate::defaults::OBJECTS,
            background_frames: crate::defaults::BACKGROUND_FRAMES,
            background_quantile: crate::defaults::BACKGROUND_QUANTILE,
            mask_threshold: MASK_THRESHOLD,
            alpha_mode: AlphaMode::default(),
            upsampling: Upsampling::default(),
            output_frame: OutputFrame::default(),
            background_median: BackgroundMedian::default(),
            mirror_average: crate::defaults::MIRROR_AVERAGE,
            exposure_match: crate::defaults::EXPOSURE_MATCH,
            residual: ResidualEffects {
                shadows: crate::defaults::RESIDUAL_SHADOWS,
                reflections: crate::defaults::RESIDUAL_REFLECTIONS,
            },
            warm_up_frames: crate::defaults::BACKGROUND_WARM_UP,
            camera: CameraMotion::streamed(crate::defaults::STABILISE),
            clear_still_ground: crate::defaults::CLEAR_STILL_GROUND,
        }
    }
}

/// How inference runs, the part of a [`StreamConfig`] whose best choice test-time training
/// changes ([`crate::clip::OutputFrameChoice`], [`crate::mirror::averages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inference {
    /// Whether the network sees the frame it decomposes.
    pub output_frame: OutputFrame,
    /// Whether the layers are averaged with the mirror image's.
    pub mirror_average: bool,
}

impl Inference {
    /// How inference runs with weights that were (`fine_tuned`) or were not fine-tuned on the
    /// video by test-time training: the output frame as `output_frame` resolves for them
    /// (`auto` hides it from tuned weights, whose training taught only hidden frames' layers)
    /// and mirror averaging (asked for by `mirror_average`) for untuned weights only.
    pub fn for_weights(
        output_frame: OutputFrameChoice,
        mirror_average: bool,
        fine_tuned: bool,
    ) -> Self {
        Self {
            output_frame: output_frame.resolve(fine_tuned),
            mirror_average: crate::mirror::averages(mirror_average, fine_tuned),
        }
    }
}

impl StreamConfig {
    /// Frames held at the start before the first output without a background plate (with
    /// one, none): the warm-up where the median leaves out the layers' effects, at most the
    /// median's own frames (a frame it no longer holds cannot take a cover).
    pub fn warm_up_held(&self) -> usize {
        match self.background_median {
            BackgroundMedian::Layers => self.warm_up_frames.min(self.background_frames),
            BackgroundMedian::Masks => 0,
        }
    }

    pub fn inference(&self) -> Inference {
        Inference {
            output_frame: self.output_frame,
            mirror_average: self.mirror_average,
        }
    }
}

/// The decomposition of one frame at full resolution, colours in [0, 1].
pub struct FrameLayers {
    /// Frame number since the start (or the last reset).
    pub index: u64,
    /// [L, 4, H, W] straight-alpha RGBA, object 1 first (back-most).
    pub layers: Tensor,
    /// [3, H, W] the residual background of this frame: the estimate plus what of this frame
    /// the layers do not explain, so that `layers` over it reproduce the frame exactly.
    pub background: Tensor,
    /// [3, H, W] the layers composited over the background.
    pub reconstruction: Tensor,
    /// [3, H, W] the clean background: the estimate (median or plate) the layers go over,
    /// with nothing of this frame's objects or their effects.
    pub background_estimate: Tensor,
    /// [L, 4, h, w] the network's own layers at the working size (with the residual effects,
    /// where `residual` adds them: outside the masks, so the alpha inside them is the
    /// network's).
    pub network_working: Tensor,
    /// The camera's motion against the stream's first frame (none for a static camera); the
    /// network and the median saw the frame moved onto the view they worked in, and the
    /// outputs are where the frame as it came shows them.
    pub camera_shift: CameraShift,
    /// [3, H, W] the input frame, which guides the upsampling.
    frame: Tensor,
    upsampling: Upsampling,
}

impl FrameLayers {
    /// [L, 4, H, W] the network's own layers at the input size, before mask guidance and
    /// detail transfer. Made on demand (evaluation wants them, streaming does not).
    pub fn network_layers(&self) -> Tensor {
        upsample_layers(&self.network_working, &self.frame, self.upsampling)
    }

    /// Clears every layer's alpha on `still` [1, H, W] (bool), the frame's still ground
    /// ([`crate::still_ground`]).
    fn clear_still_ground(&mut self, still: &Tensor) {
        clear_still_ground(
            &mut self.layers,
            &mut self.background,
            &mut self.reconstruction,
            &self.frame,
            still,
        );
    }

    /// [3, H, W] the network's layers over the background estimate, before detail transfer:
    /// how much of the frame the layers themselves explain. Made on demand (evaluation wants
    /// it, streaming does not).
    pub fn network_reconstruction(&self) -> Tensor {
        composite(
            &self.network_layers().unsqueeze(0),
            &self.background_estimate.unsqueeze(0),
        )
        .squeeze_dim(0)
    }
}

/// One frame in the window.
struct WindowFrame {
    index: u64,
    /// [3, H, W] in [0, 1], full resolution (detail transfer needs it).
    full: Tensor,
    /// [1, 3, h, w] in [-1, 1] at the working size.
    working: Tensor,
    /// [L, 1, h, w] every object's mask at the working size, in {0, 1}.
    masks: Tensor,
    /// [H, W] the label map at full resolution, 8-bit (mask guidance needs it; check_input
    /// allows at most 254 objects, and 8 bits keep the window small at 1080p).
    labels: Tensor,
    /// The camera's motion against the stream's first frame.
    camera: CameraShift,
    /// What moves the frame onto the view the network and the median work in
    /// ([`Decomposer::reference`]; `working` and `masks` are moved, `full` and `labels` are as
    /// the frame came).
    shift: CameraShift,
    /// Image encoding, made the first time a clip sees this frame: as given ([0]) and mirrored
    /// ([1], with `mirror_average` only).
    encoded: [Option<Encoded>; 2],
    /// [L, D, h/16, w/16] mask tokens of every object, made the first time a clip needs them;
    /// as given and mirrored like `encoded`.
    mask_tokens: [Option<Tensor>; 2],
}

impl WindowFrame {
    /// A mask of the frame as it came [..., H, W] moved as the network and the median saw the
    /// frame (onto the view they work in).
    fn as_seen(&self, mask: &Tensor) -> Tensor {
        self.shift.align_nearest(mask)
    }
}

/// The streaming decomposer. Not thread-safe by itself: one worker owns it.
pub struct Decomposer {
    config: StreamConfig,
    device: Device,
    window: VecDeque<WindowFrame>,
    received: u64,
    next_output: u64,
    frame_size: Option<(i64, i64)>,
    /// Encoding of a hidden (all -1) frame at the working size: the same for every clip.
    hidden: Option<Encoded>,
    /// The masked median of recent frames, or the user's clean plate.
    background: BackgroundModel,
    /// Frames received when the warm-up decomposed them all once (0: no warm-up since the
    /// start). Until the next frame comes, the held frames are going out at once.
    warmed_up_at: u64,
    /// Where the camera is [`CameraMotion::Followed`].
    stabiliser: Option<StreamStabiliser>,
    /// The shifts of the next frames, followed before they came ([`Self::follow_on`]).
    followed_ahead: VecDeque<CameraShift>,
    /// The camera's motion against the first frame of the frame whose view the network and
    /// the median work in: the first's until the camera moves on ([`Self::keep_in_view`]).
    reference: CameraShift,
    /// The frames the median holds, as they came, where the camera is followed: a view
    /// moved on is made from them, each resampled once however often the view moves.
    originals: VecDeque<Original>,
}

/// A frame the median holds, as it came.
struct Original {
    /// [3, H, W] uint8; `None` while the median holds it as it came (not moved), as a still
    /// camera's frames: no copy is kept until the view first moves.
    frame: Option<Tensor>,
    camera: CameraShift,
}

impl Decomposer {
    pub fn new(config: StreamConfig, device: Device) -> anyhow::Result<Self> {
        check_working_size(config.working_height, config.working_width)?;
        anyhow::ensure!(config.objects >= 1, "at least one object is needed");
        crate::allocator::keep_freed_memory();
        anyhow::ensure!(
            config.objects <= 254,
            "at most 254 objects fit an 8-bit label map"
        );
        Ok(Self {
            background: BackgroundModel::new(config.background_frames, config.background_quantile),
            stabiliser: (config.camera == CameraMotion::Followed).then(StreamStabiliser::new),
            config,
            device,
            window: VecDeque::new(),
            received: 0,
            next_output: 0,
            frame_size: None,
            hidden: None,
            warmed_up_at: 0,
            followed_ahead: VecDeque::new(),
            reference: CameraShift::NONE,
            originals: VecDeque::new(),
        })
    }

    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Forgets every frame (flush, seek, new stream). The next frame is frame 0 again.
    pub fn reset(&mut self) {
        self.window.clear();
        self.received = 0;
        self.next_output = 0;
        self.frame_size = None;
        self.background.clear();
        self.warmed_up_at = 0;
        if self.stabiliser.is_some() {
            self.stabiliser = Some(StreamStabiliser::new());
        }
        self.followed_ahead.clear();
        self.reference = CameraShift::NONE;
        self.originals.clear();
    }

    /// A followed camera's next frames were followed already, from the stream's first frame
    /// on (the element's `before-output` training aligns the frames it gathers): they take
    /// `shifts`, one each, instead of being followed again, and `stabiliser`, which followed
    /// them, follows the frames after them. Nothing changes where the camera is not followed.
    pub fn follow_on(&mut self, stabiliser: StreamStabiliser, shifts: Vec<CameraShift>) {
        if self.stabiliser.is_some() {
            self.stabiliser = Some(stabiliser);
            self.followed_ahead = shifts.into();
        }
    }

    /// Uses `plate` [3, H, W] in [0, 1] (the frames' size) as the background instead of the
    /// masked temporal median: a clean plate shows no shadow, where a median over a clip in
    /// which objects move slowly keeps the shadows that stayed on a pixel most of the time.
    pub fn set_background_plate(&mut self, plate: &Tensor) {
        self.background
            .set_plate(plate.to_device(self.device).to_kind(Kind::Float));
    }

    /// New weights were loaded into the network: encodings made with the old ones are dropped
    /// (each is remade with the new weights when a clip next needs it).
    pub fn weights_changed(&mut self) {
        self.hidden = None;
        for entry in &mut self.window {
            entry.encoded = [None, None];
            entry.mask_tokens = [None, None];
        }
    }

    /// How the frames made from now on are inferred (the encodings held serve either way).
    pub fn set_inference(&mut self, inference: Inference) {
        self.config.output_frame = inference.output_frame;
        self.config.mirror_average = inference.mirror_average;
    }

    /// What the network saw of the latest frame: its image [1, 3, h, w] in [-1, 1] and its
    /// masks [L, 1, h, w] at the working size (test-time training fits the network on them).
    pub fn latest_inputs(&self) -> Option<(Tensor, Tensor)> {
        self.window
            .back()
            .map(|e| (e.working.shallow_clone(), e.masks.shallow_clone()))
    }

    /// Frames received since the start (or the last reset).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Frames received whose layers have not been produced yet.
    pub fn pending(&self) -> u64 {
        self.received - self.next_output
    }

    /// Adds one frame: `frame` [3, H, W] float in [0, 1], `labels` [H, W] integer label map
    /// (0 = background, k = object k). Returns the frames that became ready, in order.
    pub fn push(
        &mut self,
        net: &OmnimatteNet,
        frame: &Tensor,
        labels: &Tensor,
    ) -> anyhow::Result<Vec<FrameLayers>> {
        self.admit(frame, labels, true)?;
        let mut ready = Vec::new();
        if self.warming_up() {
            if self.received < self.warm_up_held() {
                return Ok(ready);
            }
            self.warm_up(net)?;
        }
        while self.next_output + self.look_ahead() < self.received {
            ready.push(self.emit(net, None)?);
        }
        Ok(ready)
    }

    /// Frames held at the start before the first output (docs/method.md, "Background"): the
    /// config's, where the median makes the background.
    fn warm_up_held(&self) -> u64 {
        match self.background.plate() {
            Some(_) => 0,
            None => self.config.warm_up_held() as u64,
        }
    }

    /// Whether frames are still held for the warm-up.
    fn warming_up(&self) -> bool {
        self.next_output == 0 && self.warmed_up_at == 0 && self.warm_up_held() > 0
    }

    /// The warm-up's first pass: decomposes every held frame once over the median of all of
    /// them and leaves what its layers cover out of that median. The frames are decomposed
    /// again for output, over the estimate made without their effects: the first frames'
    /// estimate otherwise comes from the few frames up to their look-ahead, where a slow
    /// object's shadow stays. With the residual effects, unlike the whole clip's first pass
    /// (docs/method.md): measured here, +0.001 to +0.002 effect IoU on four sets
    /// (docs/measurements.md, session 43).
    fn warm_up(&mut self, net: &OmnimatteNet) -> anyhow::Result<()> {
        let held = self.next_output..self.received;
        for f in held.clone() {
            let out = self.decompose(net, f, Some(self.received as usize))?;
            let age = (self.received - 1 - f) as usize;
            let cover = self.window[self.slot(f)].as_seen(&layers_cover(&out.layers));
            self.background.cover(age, &cover);
        }
        // The encodings showed the network each frame's difference to the estimate before.
        for entry in self.window.iter_mut() {
            entry.encoded = [None, None];
        }
        self.warmed_up_at = held.end;
        Ok(())
    }

    /// The network's share of [`push`](Self::push), for `omnimatte bench`: the same window,
    /// shared encodings and decoding, but no background, upsampling or detail transfer.
    /// Returns the working-size layers [L, 4, h, w] of the frames that became ready.
    pub fn push_network_only(
        &mut self,
        net: &OmnimatteNet,
        frame: &Tensor,
        labels: &Tensor,
    ) -> anyhow::Result<Vec<Tensor>> {
        self.admit(frame, labels, false)?;
        let mut ready = Vec::new();
        while self.next_output + self.look_ahead() < self.received {
            let f = self.next_output;
            // No background model here: a network that sees the background is shown each
            // frame as its own, so a zero difference (the same cost).
            ready.push(tch::no_grad(|| self.network_layers(net, f, None, None)));
            self.next_output += 1;
            self.prune();
        }
        Ok(ready)
    }

    /// Frames after an output frame that its clip needs.
    fn look_ahead(&self) -> u64 {
        self.config.clip.look_ahead() as u64
    }

    /// Takes a frame into the window (and the background model, unless `network_only`).
    fn admit(&mut self, frame: &Tensor, labels: &Tensor, background: bool) -> anyhow::Result<()> {
        let (h, w) = self.check_input(frame, labels)?;
        let frame = frame.to_device(self.device).to_kind(Kind::Float);
        // check_input bounded the labels to 0..=objects (at most 254): 8 bits hold them.
        let labels = labels.to_device(self.device).to_kind(Kind::Uint8);

        // The network and the median see the frame moved onto the view they work in; the
        // outputs are made at full resolution where the frame shows them ([`Self::decompose`]).
        let camera = match (&mut self.stabiliser, &self.config.camera) {
            (Some(stabiliser), _) if background => match self.followed_ahead.pop_front() {
                Some(shift) => shift,
                None => stabiliser.follow(&frame, &labels.gt(0)),
            },
            (_, CameraMotion::Given(shifts)) => shifts.get(self.received).with_context(|| {
                format!(
                    "frame {} came, but the camera's shifts were given for {} frames",
                    self.received,
                    shifts.shifts().len()
                )
            })?,
            _ => CameraShift::NONE,
        };
        let shift = camera.after(self.reference.inverse());
        let ((seen, seen_labels), (working, masks)) =
            seen_inputs(&self.config, &frame, &labels, shift);
        if background {
            self.background
                .push(&seen, &as_covered(&seen_labels, shift).view([1, h, w]));
            if self.config.camera != CameraMotion::Still {
                if self.originals.len() == self.config.background_frames.max(1) {
                    self.originals.pop_front();
                }
                self.originals.push_back(Original {
                    frame: (!shift.is_none())
                        .then(|| (&frame * 255.0).round().to_kind(Kind::Uint8)),
                    camera,
                });
            }
        }
        self.window.push_back(WindowFrame {
            index: self.received,
            full: frame,
            working,
            masks,
            labels,
            camera,
            shift,
            encoded: [None, None],
            mask_tokens: [None, None],
        });
        self.received += 1;
        Ok(())
    }

    /// End of stream: produces every pending frame, clamping clips at the last frame.
    pub fn finish(&mut self, net: &OmnimatteNet) -> anyhow::Result<Vec<FrameLayers>> {
        let mut ready = Vec::new();
        if self.warming_up() && self.received > 0 {
            // A stream shorter than the warm-up: all of it is held.
            self.warm_up(net)?;
        }
        while self.next_output < self.received {
            ready.push(self.emit(net, Some(self.received as usize))?);
        }
        Ok(ready)
    }

    fn check_input(&mut self, frame: &Tensor, labels: &Tensor) -> anyhow::Result<(i64, i64)> {
        let fs = frame.size();
        anyhow::ensure!(
            fs.len() == 3 && fs[0] == 3,
            "frame must be [3, H, W], got {fs:?}"
        );
        let (h, w) = (fs[1], fs[2]);
        if let Some(plate) = self.background.plate() {
            anyhow::ensure!(
                plate.size() == [3, h, w],
                "the background plate is {:?} but frames are 3x{h}x{w}",
                plate.size()
            );
        }
        anyhow::ensure!(
            labels.size() == [h, w],
            "mask is {:?} but the frame is {h}x{w}: mask and video must have the same size",
            labels.size()
        );
        if let Some((ph, pw)) = self.frame_size {
            anyhow::ensure!(
                (ph, pw) == (h, w),
                "frame size changed from {ph}x{pw} to {h}x{w} mid-stream"
            );
        }
        let min_label = labels.min().int64_value(&[]);
        anyhow::ensure!(
            min_label >= 0,
            "mask label {min_label} is negative (labels are 0 = background, 1..={} = objects)",
            self.config.objects
        );
        let max_label = labels.max().int64_value(&[]);
        anyhow::ensure!(
            max_label <= self.config.objects as i64,
            "mask label {max_label} is above the object count {} (labels are 0 = background, 1..={} = objects)",
            self.config.objects,
            self.config.objects
        );
        self.frame_size = Some((h, w));
        Ok((h, w))
    }

    /// Index of frame `index` in the window.
    fn slot(&self, index: u64) -> usize {
        let first = self.window.front().expect("window is not empty").index;
        (index - first) as usize
    }

    fn hidden_encoding(&mut self, net: &OmnimatteNet) -> &Encoded {
        let (wh, ww) = (self.config.working_height, self.config.working_width);
        let channels = net.config().image_channels();
        let device = self.device;
        self.hidden.get_or_insert_with(|| {
            let pixel = crate::model::background_input::hidden_pixel(channels).to_device(device);
            net.encode_images(
                &pixel
                    .view([1, channels, 1, 1])
                    .expand([1, channels, wh, ww], false),
            )
        })
    }

    /// The network's layers of frame `f` at the working size, [L, 4, h, w] in [0, 1], from the
    /// clip of the inference plan; `video_len` is known only when draining. Each frame's
    /// image and masks are encoded once, for every clip that uses them: a network that sees
    /// the background is shown each frame's difference to `background` [1, 3, h, w] in
    /// [-1, 1] (the estimate when the frame is first encoded; None: the frame itself, so no
    /// difference). With `mirror_average`, the mean of the layers of the clip and of its
    /// mirror image.
    fn network_layers(
        &mut self,
        net: &OmnimatteNet,
        f: u64,
        video_len: Option<usize>,
        background: Option<&Tensor>,
    ) -> Tensor {
        let as_given = self.oriented_layers(net, f, video_len, background, false);
        if !self.config.mirror_average {
            return as_given;
        }
        let mirror = self.oriented_layers(net, f, video_len, background, true);
        average_layers(&as_given, &mirrored(&mirror))
    }

    /// [`network_layers`](Self::network_layers) of the clip as given, or of its mirror image
    /// (`mirror`; the layers come back mirrored too).
    fn oriented_layers(
        &mut self,
        net: &OmnimatteNet,
        f: u64,
        video_len: Option<usize>,
        background: Option<&Tensor>,
        mirror: bool,
    ) -> Tensor {
        let plan = inference_plan(
            self.config.clip,
            f as usize,
            video_len.or(Some(self.received as usize)),
            self.config.output_frame,
        );
        let orient = |images: &Tensor| {
            if mirror {
                mirrored(images)
            } else {
                images.shallow_clone()
            }
        };
        // The hidden frame is one colour: its encoding serves both orientations.
        let hidden_features = self.hidden_encoding(net).features.shallow_clone();
        let hidden_skip = self.hidden_encoding(net).skip.shallow_clone();
        let mut image_tokens = Vec::with_capacity(plan.frames.len());
        let mut mask_tokens = Vec::with_capacity(plan.frames.len());
        let mut output_skip = hidden_skip;
        let exposure_match = self.config.exposure_match;
        for (slot_index, (&source, &visible)) in plan.frames.iter().zip(&plan.visible).enumerate() {
            let slot = self.slot(source as u64);
            let entry = &mut self.window[slot];
            mask_tokens.push(
                entry.mask_tokens[mirror as usize]
                    .get_or_insert_with(|| net.encode_masks(&orient(&entry.masks)))
                    .shallow_clone(),
            );
            image_tokens.push(if visible {
                let encoded = entry.encoded[mirror as usize].get_or_insert_with(|| {
                    // Each frame's difference to the background at its own exposure.
                    let at_its_exposure = background
                        .filter(|_| exposure_match)
                        .map(|shown| at_exposure_of(&entry.working, &entry.masks, shown).0);
                    let background = at_its_exposure
                        .as_ref()
                        .or(background)
                        .unwrap_or(&entry.working);
                    net.encode_images(
                        &net.image_input(&orient(&entry.working), &orient(background)),
                    )
                });
                if slot_index == plan.output_index {
                    output_skip = encoded.skip.shallow_clone();
                }
                encoded.features.shallow_clone()
            } else {
                hidden_features.shallow_clone()
            });
        }
        let image_tokens = Tensor::cat(&image_tokens, 0).unsqueeze(0); // [1, T, D, h, w]
        let mask_tokens = Tensor::stack(&mask_tokens, 1).unsqueeze(0); // [1, L, T, D, h, w]
        let visible: Vec<f32> = plan.visible.iter().map(|&v| v as u8 as f32).collect();
        let visible = Tensor::from_slice(&visible)
            .view([1, -1])
            .to_device(self.device);
        let tokens = net
            .transform_frame(
                &image_tokens,
                &mask_tokens,
                &visible,
                plan.output_index as i64,
            )
            .select(0, 0); // [L, D, h, w]
        let l = tokens.size()[0];
        // The decoder's skip is the output frame's encoding: its own where the network sees
        // it, the hidden frame's otherwise.
        let skip = output_skip.expand([l, -1, -1, -1], false);
        to_unit(&net.decode(&tokens, &skip)) // [L, 4, h, w]
    }

    /// Produces frame `next_output`; `video_len` is known only when draining.
    fn emit(
        &mut self,
        net: &OmnimatteNet,
        video_len: Option<usize>,
    ) -> anyhow::Result<FrameLayers> {
        let f = self.next_output;
        let mut output = self.decompose(net, f, video_len)?;
        let median_in_use = self.background.plate().is_none();
        if median_in_use && self.config.background_median == BackgroundMedian::Layers {
            let age = (self.received - 1 - f) as usize;
            let cover = layers_cover(&output.layers);
            // The frames after f in the window have no layers yet, so their masks alone
            // cover them, and a slow object's shadow there weighs in the next estimates.
            // Effects move with their objects, a little from one frame to the next: f's
            // (its cover outside its masks) stand in for theirs. They stay counted when
            // those frames' own covers come (docs/measurements.md, session 38). Not while the
            // warm-up's frames go out at once: the frames after f have their own covers from
            // the warm-up, and f's, handed to up to 15 of them, took so many values out of
            // their median that the warm-up lost (session 43).
            let burst = self.received == self.warmed_up_at;
            let ahead = if burst { 0 } else { age };
            let entry = &self.window[self.slot(f)];
            let effects = entry.as_seen(&effects_outside_masks(&cover, &entry.labels));
            self.background.cover_newest(ahead, &effects);
            self.background.cover(age, &entry.as_seen(&cover));
        }
        if median_in_use && self.config.clear_still_ground {
            // After the covers: the estimate leaves out what the layers of f and of the
            // frames before it hold, so an effect they agree on is not the estimate's, and
            // the frame does not match it there (docs/measurements.md, session 57).
            if let Some(still) = self.still_ground(f) {
                output.clear_still_ground(&still);
            }
        }
        self.next_output += 1;
        self.prune();
        Ok(output)
    }

    /// Frame `f`'s layers over the current estimate.
    fn decompose(
        &mut self,
        net: &OmnimatteNet,
        f: u64,
        video_len: Option<usize>,
    ) -> anyhow::Result<FrameLayers> {
        self.keep_in_view(f);
        tch::no_grad(|| -> anyhow::Result<FrameLayers> {
            let residual = self.config.residual;
            let (h, w) = (self.config.working_height, self.config.working_width);
            let estimate = self.background.estimate();
            let sees_background = net.config().background_input;
            // The estimate at the working size, resized once (at 720p a resize costs more
            // than the gain): what the network sees, and where the gain is read.
            let small = (sees_background || self.config.exposure_match || residual.any())
                .then(|| working_image(&estimate, h, w));
            let (background, small) = match small {
                Some(small) if self.config.exposure_match => {
                    let entry = &self.window[self.slot(f)];
                    let (small, gain) = at_exposure_of(&entry.working, &entry.masks, &small);
                    (matched(&estimate, &gain), Some(small))
                }
                small => (estimate, small),
            };
            let shown = small.as_ref().filter(|_| sees_background);
            let rgba = self.network_layers(net, f, video_len, shown);
            anyhow::ensure!(
                rgba.isfinite().all().int64_value(&[]) != 0,
                "the network produced NaN or infinite values for frame {f}: its weights or the input are broken"
            );
            let entry = &self.window[self.slot(f)];
            let rgba = match &small {
                Some(small) if residual.any() => add_residual_effects(
                    &rgba,
                    &to_unit(&entry.working.select(0, 0)),
                    &to_unit(&small.select(0, 0)),
                    &entry.masks,
                    residual,
                ),
                _ => rgba,
            };
            // Made on the frame moved onto the stream's first: moved back to where the frame
            // shows them, so that detail transfer and mask guidance use the frame as it came.
            let (big_h, big_w) = (entry.full.size()[1], entry.full.size()[2]);
            let at_working = entry
                .shift
                .scaled(h as f64 / big_h as f64, w as f64 / big_w as f64);
            let (rgba, background) = (
                at_working.restore_rgba(&rgba),
                entry.shift.restore(&background),
            );
            let masks = match self.config.alpha_mode {
                AlphaMode::Network => None,
                AlphaMode::MaskGuided => Some(&entry.labels),
            };
            let out = if self.device == Device::Cpu {
                full_resolution_layers(
                    &rgba,
                    &entry.full,
                    &background,
                    masks,
                    self.config.upsampling,
                    tch::get_num_threads().max(1) as usize,
                )
            } else {
                full_resolution_with_tensors(
                    &rgba,
                    &entry.full,
                    &background,
                    masks.map(|labels| object_masks(labels, self.config.objects)),
                    self.config.upsampling,
                )
            };
            Ok(FrameLayers {
                index: f,
                layers: out.layers,
                background: out.background,
                reconstruction: out.reconstruction,
                background_estimate: background,
                network_working: rgba,
                camera_shift: entry.camera,
                frame: entry.full.shallow_clone(),
                upsampling: self.config.upsampling,
            })
        })
    }

    /// [1, H, W] bool: frame `f`'s still ground where the frame shows it
    /// ([`crate::still_ground`]): no mask, and frame `f` and at least [`STILL_GROUND_SHARE`]
    /// of the frames the median holds within [`STILL_GROUND_TOLERANCE`] of its estimate, as
    /// the median holds them (8 bits, in the view it works in). `None` where the median no
    /// longer holds `f`.
    fn still_ground(&mut self, f: u64) -> Option<Tensor> {
        let age = (self.received - 1 - f) as usize;
        let entry = &self.window[self.slot(f)];
        // Outside the masks alone: the rule leaves the pixels under them as they are.
        let free = entry.as_seen(&entry.labels.eq(0).unsqueeze(0));
        let estimate = self.background.estimate_with_covers(&free);
        let seen = self.background.matching_ground(
            &estimate,
            STILL_GROUND_TOLERANCE,
            STILL_GROUND_SHARE,
            age,
        )?;
        let entry = &self.window[self.slot(f)];
        let seen = seen.to_device(entry.full.device()).unsqueeze(0);
        Some(still_ground(&seen, &entry.labels, entry.shift))
    }

    /// Moves the view the network and the median work in to frame `f`'s where the camera has
    /// moved beyond [`REANCHOR_SHARE`] of the shorter side against it, in frame `f` and in the
    /// latest frame (a pan, a drift; not a jolt of a shaking camera, which comes back): the
    /// first frame's view would show less and less of the frames, and what it does not show
    /// is the border repeated. The frames held are moved into the new view, each from the
    /// frame as it came; what each covered in the old view stays covered. Not over a clean
    /// plate, which is the first frame's view.
    fn keep_in_view(&mut self, f: u64) {
        let entry = &self.window[self.slot(f)];
        let (h, w) = (entry.full.size()[1], entry.full.size()[2]);
        let reach = REANCHOR_SHARE * h.min(w) as f64;
        let latest = self.window.back().expect("frame f is in the window");
        if self.background.plate().is_some()
            || entry.shift.largest() <= reach
            || latest.shift.largest() <= reach
        {
            return;
        }
        // A pixel of the new view is the old view's at `back` of it.
        let back = entry.shift.inverse();
        self.reference = entry.camera;
        let to_view = self.reference.inverse();
        for entry in self.window.iter_mut() {
            entry.shift = entry.camera.after(to_view);
            (_, (entry.working, entry.masks)) =
                seen_inputs(&self.config, &entry.full, &entry.labels, entry.shift);
            entry.encoded = [None, None];
            entry.mask_tokens = [None, None];
        }
        // The frames the median holds as they came are copied before it moves them.
        let held = self.originals.len();
        for (index, original) in self.originals.iter_mut().enumerate() {
            if original.frame.is_none() {
                original.frame = self.background.held_frame(held - 1 - index);
            }
        }
        let (originals, device) = (&self.originals, self.device);
        self.background.reframe(|age, covered| {
            let original = &originals[originals.len() - 1 - age];
            let shift = original.camera.after(to_view);
            let frame = original
                .frame
                .as_ref()
                .expect("copied above")
                .to_device(device)
                .to_kind(Kind::Float)
                / 255.0;
            // What it covered (its masks, its layers' effects) moved, and what the new view
            // takes from beyond the old or beyond the frame.
            let covered = back
                .align_nearest(&covered.to_device(device))
                .gt(0)
                .logical_or(&back.unseen(h, w, device))
                .logical_or(&shift.unseen(h, w, device));
            (shift.align(&frame), covered)
        });
    }

    /// Drops frames no future clip needs: the oldest is look_back frames before the next output.
    fn prune(&mut self) {
        let keep_from = self
            .next_output
            .saturating_sub(self.config.clip.look_back() as u64);
        while self.window.front().is_some_and(|e| e.index < keep_from) {
            self.window.pop_front();
        }
    }
}
