//! Background estimation (supplementary Sec. 4): per RGB channel, the temporal median of the
//! pixels no object mask covers (sum_i M_t^i = 0). Another quantile can be asked for (the
//! element's `background-quantile`, the command line's `--background-quantile` and
//! `--whole-video-quantile`; the median while streaming, [`crate::defaults::BACKGROUND_QUANTILE`],
//! and the 0.75 quantile for a whole clip, [`crate::defaults::WHOLE_VIDEO_QUANTILE`]).
//!
//! Pixels covered in every frame have no observation. Their documented fallback is a fill from
//! the nearest observed pixels: a coarse-to-fine pyramid of observed-only averages, so holes get
//! a smooth, plausible colour from their surroundings (never NaN, never the object's colour).
//! If no pixel was ever observed at all, the plain temporal median (objects included) serves.
//! While streaming, pixels the window never sees free but earlier frames did take the values
//! seen there before the fill ([`crate::background_memory`]).

use crate::background_memory::FreeMemory;
use crate::cpu_slices::floats;
use crate::eight_bit::quantise_all;
use crate::median::{masked_quantile_u8, masked_quantile_u8_at};
use std::convert::Infallible;
use tch::{Device, Kind, Tensor};

/// Which pixels of a frame the background median leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackgroundMedian {
    /// The pixels any object mask covers (supplementary Sec. 4).
    Masks,
    /// Those, and the effects the layers found there (alpha above [`EFFECT_COVER_ALPHA`]
    /// outside the masks), once the frame's layers are made, and in the frames after it that
    /// are not decomposed yet, where its effects were ([`BackgroundModel::cover_newest`]):
    /// later estimates keep less of the shadows that slow objects leave on a pixel most of
    /// the time.
    #[default]
    Layers,
}

impl std::str::FromStr for BackgroundMedian {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "masks" => Ok(Self::Masks),
            "layers" => Ok(Self::Layers),
            other => anyhow::bail!("background median {other:?}: expected masks or layers"),
        }
    }
}

/// Where the background estimate of a whole file comes from (the command line's
/// `--background-estimate`; a live stream has only the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackgroundEstimate {
    /// A sliding window of recent frames, as the element streams ([`BackgroundModel`]).
    #[default]
    Stream,
    /// One masked median over the whole video ([`whole_video_background`]): every frame's
    /// estimate also sees the frames after it, so a pixel an object covers early on is seen
    /// free later (docs/measurements.md: fewer ghosts of slow objects' shadows).
    WholeVideo,
    /// The same median made twice: the second leaves out, beside the masks, the effects a
    /// first decomposition over the first put in the layers ([`layers_cover`]), so shadows
    /// that stay on a pixel most of the clip are not taken for the background. Twice the
    /// network's work. (The first decomposition runs without residual effects: session 40.)
    WholeVideoLayers,
}

impl std::str::FromStr for BackgroundEstimate {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "stream" => Ok(Self::Stream),
            "whole-video" => Ok(Self::WholeVideo),
            "whole-video-layers" => Ok(Self::WholeVideoLayers),
            other => anyhow::bail!(
                "background estimate {other:?}: expected stream, whole-video or whole-video-layers"
            ),
        }
    }
}

/// The most frames [`whole_video_background`] reads: spread evenly over a longer video, they
/// bound its memory and time (a median of 64 observations per pixel is as good as of more
/// for a static camera).
pub const WHOLE_VIDEO_FRAMES: i64 = 64;

/// The paper's estimate: the median of each pixel's free values.
pub const MEDIAN: f64 = 0.5;

/// The masked temporal quantile `quantile` ([`MEDIAN`]: the paper's median) of a video of `len`
/// frames, read through `frame(t)`: frame t [C, H, W] in [0, 1] and where masks cover it
/// [1, H, W] (non-zero: covered). At most [`WHOLE_VIDEO_FRAMES`] frames, spread evenly. Panics
/// when `len` is 0.
pub fn whole_video_background(
    len: i64,
    quantile: f64,
    mut frame: impl FnMut(i64) -> (Tensor, Tensor),
) -> Tensor {
    match try_whole_video_background(len, quantile, |t| Ok::<_, Infallible>(frame(t))) {
        Ok(estimate) => estimate,
        Err(never) => match never {},
    }
}

/// [`whole_video_background`] of frames that can fail to be read (read again from their
/// files): the first error stops it.
pub fn try_whole_video_background<E>(
    len: i64,
    quantile: f64,
    mut frame: impl FnMut(i64) -> Result<(Tensor, Tensor), E>,
) -> Result<Tensor, E> {
    let mut model = BackgroundModel::new(len.min(WHOLE_VIDEO_FRAMES) as usize, quantile);
    for t in whole_video_frames(len) {
        let (image, covered) = frame(t)?;
        model.push(&image, &covered);
    }
    Ok(model.estimate())
}

/// The frames [`whole_video_background`] reads of a video of `len` frames, in order: all of
/// them, or [`WHOLE_VIDEO_FRAMES`] spread evenly.
pub fn whole_video_frames(len: i64) -> impl Iterator<Item = i64> {
    let used = len.min(WHOLE_VIDEO_FRAMES);
    (0..used).map(move |i| i * len / used)
}

/// Where a frame's layers [L, 4, H, W] hold their objects and effects: summed alpha above
/// [`EFFECT_COVER_ALPHA`], [1, H, W] bool. What [`BackgroundMedian::Layers`] and
/// [`BackgroundEstimate::WholeVideoLayers`] leave out of the median.
pub fn layers_cover(layers: &Tensor) -> Tensor {
    layers
        .narrow(1, 3, 1)
        .sum_dim_intlist(0, false, Kind::Float)
        .gt(EFFECT_COVER_ALPHA)
}

/// Of a frame's layers' `cover` [1, H, W] (bool, [`layers_cover`]), the part outside every
/// object's mask (`labels` [H, W], 0: no object): where its effects are.
pub fn effects_outside_masks(cover: &Tensor, labels: &Tensor) -> Tensor {
    let [h, w] = labels.size()[..] else {
        panic!("labels are [H, W]")
    };
    cover.logical_and(&labels.eq(0).view([1, h, w]))
}

/// The layers' summed alpha above which [`BackgroundMedian::Layers`] leaves a pixel out.
pub const EFFECT_COVER_ALPHA: f64 = 0.1;

/// A background estimate and where it had to be filled in.
pub struct Background {
    /// [C, H, W] in the frames' range.
    pub image: Tensor,
    /// [1, H, W] bool: true where no frame observed the background (filled in).
    pub filled: Tensor,
}

/// `frames` [N, C, H, W] in [0, 1]; `covered` [N, 1, H, W], non-zero where any object mask
/// covers the pixel. Frames are taken at 8 bits (what every input of the element and the
/// command line is), and the median computed by [`crate::median`]. (What pretraining shows a
/// network that sees the background.)
pub fn masked_temporal_median(frames: &Tensor, covered: &Tensor) -> Background {
    let observations: Vec<Observation> = (0..frames.size()[0])
        .map(|i| Observation::new(&frames.get(i), &covered.get(i)))
        .collect();
    median_of(&observations, None, MEDIAN, frames.device())
}

/// One frame as the median reads it: planar [C, H, W] bytes and its [H, W] coverage.
struct Observation {
    frame: Vec<u8>,
    covered: Vec<u8>,
    size: [i64; 3],
}

impl Observation {
    /// `frame` [C, H, W] in [0, 1] and `covered` [1, H, W] (non-zero: covered).
    fn new(frame: &Tensor, covered: &Tensor) -> Self {
        Self {
            frame: held_bytes(frame),
            covered: coverage_bytes(covered),
            size: frame.size3().expect("frames are [C, H, W]").into(),
        }
    }
}

/// An image [C, H, W] in [0, 1] as the median holds its frames: planar bytes, rounded as
/// [`quantise_all`] rounds them.
fn held_bytes(image: &Tensor) -> Vec<u8> {
    let image = image
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let mut bytes = vec![0u8; image.numel()];
    quantise_all(floats(&image), &mut bytes);
    bytes
}

/// `covered` [1, H, W] (non-zero: covered) as one byte per pixel, 1 where covered.
fn coverage_bytes(covered: &Tensor) -> Vec<u8> {
    let covered = covered
        .ne(0)
        .to_kind(Kind::Uint8)
        .to_device(Device::Cpu)
        .contiguous();
    let n = covered.numel();
    let mut bytes = vec![0u8; n];
    covered.copy_data(&mut bytes, n);
    bytes
}

/// The masked quantile `quantile` (0.5: the median) of `observations` (at least one, all of
/// one size) on `device`, with what `memory` remembers where no observation is free, then the
/// neighbourhood fill and the plain-median fallback.
fn median_of(
    observations: &[Observation],
    memory: Option<&FreeMemory>,
    quantile: f64,
    device: Device,
) -> Background {
    let [c, h, w] = observations[0].size;
    let frames: Vec<&[u8]> = observations.iter().map(|o| o.frame.as_slice()).collect();
    let covered: Vec<&[u8]> = observations.iter().map(|o| o.covered.as_slice()).collect();
    let threads = tch::get_num_threads().max(1) as usize;
    let pixels = (h * w) as usize;
    let mut median = masked_quantile_u8(&frames, &covered, c as usize, pixels, quantile, threads);
    if let Some(memory) = memory {
        memory.fill_unseen(&mut median, quantile, threads);
    }
    let image = (Tensor::from_slice(&median.values)
        .view([c, h, w])
        .to_kind(Kind::Float)
        / 255.0)
        .to_device(device);
    let seen = Tensor::from_slice(&median.seen)
        .view([1, h, w])
        .to_device(device);
    let image = if median.seen.iter().any(|&s| s) {
        fill_from_neighbours(&image, &seen)
    } else {
        let all: Vec<Tensor> = frames
            .iter()
            .map(|f| Tensor::from_slice(f).view([c, h, w]))
            .collect();
        (Tensor::stack(&all, 0)
            .median_dim(0, false)
            .0
            .to_kind(Kind::Float)
            / 255.0)
            .to_device(device)
    };
    Background {
        image,
        filled: seen.logical_not(),
    }
}

/// What counts as covered in the frame of `frames` pushed `age` pushes ago, and `covered`
/// [1, H, W] as the same bytes; None for a frame no longer held.
fn coverage_of<'a>(
    frames: &'a mut std::collections::VecDeque<Observation>,
    age: usize,
    covered: &Tensor,
) -> Option<(&'a mut Vec<u8>, Vec<u8>)> {
    let index = frames.len().checked_sub(age + 1)?;
    let observation = &mut frames[index];
    let new = coverage_bytes(covered);
    assert_eq!(
        new.len(),
        observation.covered.len(),
        "coverage of another size than the frame"
    );
    Some((&mut observation.covered, new))
}

/// The estimate last made, and the pixels whose coverage changed since (covers came), which
/// the next [`BackgroundModel::estimate`] makes again alone when the whole is not due.
struct Estimate {
    /// [C, H, W] in the frames' range.
    image: Tensor,
    /// [H, W], made with the first mark.
    changed: Vec<bool>,
}

impl Estimate {
    fn new(image: Tensor) -> Self {
        Self {
            image,
            changed: Vec::new(),
        }
    }
}

/// Where to mark the pixels a cover changes: the estimate's marks, made for `pixels` pixels
/// if there are none yet; None without an estimate (the next is made whole).
fn changed_marks(estimate: &mut Option<Box<Estimate>>, pixels: usize) -> Option<&mut [bool]> {
    estimate.as_deref_mut().map(|estimate| {
        if estimate.changed.len() != pixels {
            estimate.changed = vec![false; pixels];
        }
        estimate.changed.as_mut_slice()
    })
}

/// ORs the coverage bytes `extra` into `held`, marking in `changed` the pixels it covers anew.
fn or_into(held: &mut [u8], extra: &[u8], changed: Option<&mut [bool]>) {
    match changed {
        Some(changed) => {
            for ((held, &new), changed) in held.iter_mut().zip(extra).zip(changed) {
                *changed |= new & !*held & 1 != 0;
                *held |= new;
            }
        }
        None => {
            for (held, &new) in held.iter_mut().zip(extra) {
                *held |= new;
            }
        }
    }
}

/// `estimate` [C, H, W] made again at the `changed` pixels ([H, W]) as a whole remake makes
/// them: the quantile of `observations` where any leaves the pixel free, else what `memory`
/// remembers, else the fill from the neighbours. A new tensor: estimates handed out before
/// stay as they were.
fn remade_at(
    estimate: &Tensor,
    observations: &[Observation],
    memory: Option<&FreeMemory>,
    changed: &[bool],
    quantile: f64,
) -> Tensor {
    let [c, h, w] = observations[0].size;
    let pixels = (h * w) as usize;
    let at: Vec<usize> = (0..pixels).filter(|&p| changed[p]).collect();
    let frames: Vec<&[u8]> = observations.iter().map(|o| o.frame.as_slice()).collect();
    let covered: Vec<&[u8]> = observations.iter().map(|o| o.covered.as_slice()).collect();
    let threads = tch::get_num_threads().max(1) as usize;
    let mut median = masked_quantile_u8_at(
        &frames, &covered, c as usize, pixels, &at, quantile, threads,
    );
    if let Some(memory) = memory {
        memory.fill_unseen_at(&mut median, &at, quantile, threads);
    }
    let (seen, unseen): (Vec<usize>, Vec<usize>) = (0..at.len()).partition(|&i| median.seen[i]);
    let index: Vec<i64> = seen.iter().map(|&i| at[i] as i64).collect();
    let values: Vec<f32> = (0..c as usize)
        .flat_map(|plane| {
            let plane = &median.values[plane * at.len()..(plane + 1) * at.len()];
            seen.iter().map(move |&i| plane[i] as f32 / 255.0)
        })
        .collect();
    let device = estimate.device();
    let image = estimate
        .view([c, h * w])
        .index_copy(
            1,
            &Tensor::from_slice(&index).to_device(device),
            &Tensor::from_slice(&values)
                .view([c, seen.len() as i64])
                .to_device(device),
        )
        .view([c, h, w]);
    if unseen.is_empty() {
        return image;
    }
    let mut known = vec![true; pixels];
    for &i in &unseen {
        known[at[i]] = false;
    }
    let known = Tensor::from_slice(&known).view([1, h, w]).to_device(device);
    fill_from_neighbours(&image, &known)
}

/// Fills the pixels where `known` [1, H, W] is false from their known surroundings: averages
/// of known pixels at half resolution (recursively, until every pixel is known), upsampled.
fn fill_from_neighbours(image: &Tensor, known: &Tensor) -> Tensor {
    if known.all().int64_value(&[]) != 0 {
        return image.shallow_clone();
    }
    let (h, w) = (image.size()[1], image.size()[2]);
    let k = known.to_kind(Kind::Float).unsqueeze(0); // [1, 1, H, W]
    let pool = |x: &Tensor| x.avg_pool2d([2, 2], [2, 2], [0, 0], true, false, None::<i64>);
    let weight = pool(&k);
    let coarse = pool(&(image.unsqueeze(0) * &k)) / weight.clamp_min(1e-12);
    let coarse_known = weight.gt(0.0).squeeze_dim(0);
    let coarse = fill_from_neighbours(&coarse.squeeze_dim(0), &coarse_known);
    let up = coarse
        .unsqueeze(0)
        .upsample_bilinear2d([h, w], false, None, None)
        .squeeze_dim(0);
    image.where_self(known, &up)
}

/// The one background model of streaming, test-time training, `decompose` and `eval`: a
/// bounded ring of recent frames with the pixels their masks cover, whose masked temporal
/// median (or another quantile) is the estimate, or a clean plate the user gave instead.
/// Frames leaving the ring leave their free pixels in a [`FreeMemory`], read where the ring
/// sees a pixel nowhere free.
///
/// The median is remade whole once a quarter of the frames held changed (it moves slowly,
/// and at 720p a remake costs about 30 ms on two cores, a third of the network's time);
/// covers that come in between are taken in at once, at the pixels whose coverage they
/// change, unless they change more than a quarter of them.
pub struct BackgroundModel {
    capacity: usize,
    /// Which quantile of a pixel's free values is the estimate ([`MEDIAN`]: the paper's).
    quantile: f64,
    /// Frames at 8 bits (the median's input), and the device estimates go to.
    frames: std::collections::VecDeque<Observation>,
    device: Device,
    /// Boxed, like the memory: the model is held inline in larger states.
    estimate: Option<Box<Estimate>>,
    pushes_since_estimate: usize,
    plate: Option<Tensor>,
    /// Free values of frames that left the ring (made with the first frame that leaves; boxed:
    /// the model is held inline in larger states).
    memory: Option<Box<FreeMemory>>,
}

impl BackgroundModel {
    /// Room for `capacity` frames (pushing more forgets the oldest), estimating by the quantile
    /// `quantile` of each pixel's free values (in [0, 1]; [`MEDIAN`]: the paper's median).
    pub fn new(capacity: usize, quantile: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&quantile),
            "a quantile is in [0, 1], not {quantile}"
        );
        Self {
            capacity: capacity.max(1),
            quantile,
            frames: Default::default(),
            device: Device::Cpu,
            estimate: None,
            pushes_since_estimate: 0,
            plate: None,
            memory: None,
        }
    }

    /// Uses `plate` [C, H, W] (the frames' range and size) instead of the median from now on:
    /// a clean plate shows no shadow, where a median over a clip in which objects move slowly
    /// keeps the shadows that stayed on a pixel most of the time.
    pub fn set_plate(&mut self, plate: Tensor) {
        self.plate = Some(plate);
        // Nothing reads them from now on.
        self.frames.clear();
        self.memory = None;
        self.estimate = None;
    }

    /// Frames held for the median (none while a plate is in use).
    pub fn held(&self) -> usize {
        self.frames.len()
    }

    pub fn plate(&self) -> Option<&Tensor> {
        self.plate.as_ref()
    }

    /// Adds a frame [C, H, W] in [0, 1] and where masks cover it, [1, H, W] (non-zero:
    /// covered). The model keeps it at 8 bits.
    pub fn push(&mut self, frame: &Tensor, covered: &Tensor) {
        if self.plate.is_some() {
            // The plate is the estimate: the 8-bit copy and the memory of free values would
            // only cost time (about 7 ms a frame at 1080p on the streaming worker).
            return;
        }
        if self.frames.len() == self.capacity {
            let leaving = self.frames.pop_front().expect("the ring is full");
            let [c, h, w] = leaving.size;
            let (channels, pixels) = (c as usize, (h * w) as usize);
            let memory = match &mut self.memory {
                Some(memory) if memory.fits(channels, pixels) => memory,
                slot => slot.insert(Box::new(FreeMemory::new(channels, pixels))),
            };
            // Its effects' cover is in by now unless the ring is shorter than the look-ahead.
            memory.remember(&leaving.frame, &leaving.covered);
        }
        self.device = frame.device();
        self.frames.push_back(Observation::new(frame, covered));
        self.pushes_since_estimate += 1;
    }

    /// Also counts as covered, in the frame pushed `age` pushes ago (0: the latest), the
    /// pixels where `covered` [1, H, W] is non-zero: the effects its layers were found to
    /// have, which a median under the masks alone keeps wherever they stayed on a pixel most
    /// of the time (the shadows of slow objects). A frame no longer held is left alone. The
    /// next estimate takes it in.
    pub fn cover(&mut self, age: usize, covered: &Tensor) {
        if let Some(index) = self.frames.len().checked_sub(age + 1) {
            self.cover_frames(index..index + 1, covered);
        }
        // Taken in at the next estimate, at the pixels it changed alone: a whole remake for
        // every cover would cost, at 720p, a third of the network's time.
    }

    /// Also counts as covered, in each of the `count` frames pushed last (ages 0 to count - 1),
    /// the pixels where `covered` [1, H, W] is non-zero: where the frames not decomposed yet
    /// are expected to hold effects ([`crate::stream`] gives them those of the frame just
    /// decomposed). Taken in like [`cover`](Self::cover).
    pub fn cover_newest(&mut self, count: usize, covered: &Tensor) {
        let held = self.frames.len();
        self.cover_frames(held - count.min(held)..held, covered);
    }

    /// ORs `covered` [1, H, W] into what counts as covered in the frames held at `indices`
    /// (oldest first), marking the pixels it covers anew for the next estimate.
    fn cover_frames(&mut self, indices: std::ops::Range<usize>, covered: &Tensor) {
        let extra = coverage_bytes(covered);
        let mut changed = changed_marks(&mut self.estimate, extra.len());
        for observation in self.frames.range_mut(indices) {
            assert_eq!(
                extra.len(),
                observation.covered.len(),
                "coverage of another size than the frame"
            );
            or_into(&mut observation.covered, &extra, changed.as_deref_mut());
        }
    }

    /// Replaces what counts as covered in the frame pushed `age` pushes ago with `covered`
    /// [1, H, W] (non-zero: covered): a frame pushed fully covered, so that it weighs in no
    /// median until its effects are known, is let in. A frame no longer held is left alone.
    pub fn set_cover(&mut self, age: usize, covered: &Tensor) {
        let changed = changed_marks(&mut self.estimate, covered.numel());
        if let Some((held, new)) = coverage_of(&mut self.frames, age, covered) {
            if let Some(changed) = changed {
                for ((held, new), changed) in held.iter().zip(&new).zip(changed) {
                    *changed |= held != new;
                }
            }
            *held = new;
        }
    }

    /// The frame pushed `age` pushes ago (0: the latest) as held, [C, H, W] uint8 on the CPU;
    /// `None` beyond the frames held.
    pub fn held_frame(&self, age: usize) -> Option<Tensor> {
        let index = self.frames.len().checked_sub(age + 1)?;
        let observation = &self.frames[index];
        Some(Tensor::from_slice(&observation.frame).view(observation.size))
    }

    /// [H, W] bool on the CPU: where the frame pushed `age` pushes ago (0: the latest) and at
    /// least a share `share` of the frames held lie within `tolerance` levels of `image`
    /// [C, H, W] (in [0, 1], the frames' size; taken at 8 bits as they are), their differences
    /// summed over the channels ([`crate::still_ground::matching_ground`]). `None` where no
    /// frame is held at that age (a plate in use).
    pub fn matching_ground(
        &self,
        image: &Tensor,
        tolerance: u16,
        share: f64,
        age: usize,
    ) -> Option<Tensor> {
        use crate::still_ground::{frames_needed, matching_ground};
        let own = self.frames.len().checked_sub(age + 1)?;
        let [c, h, w] = self.frames[own].size;
        let image = held_bytes(image);
        let frames: Vec<&[u8]> = self.frames.iter().map(|o| o.frame.as_slice()).collect();
        let needed = frames_needed(frames.len(), share);
        let threads = tch::get_num_threads().max(1) as usize;
        let still = matching_ground(&frames, own, &image, c as usize, tolerance, needed, threads);
        Some(Tensor::from_slice(&still).view([h, w]).gt(0))
    }

    /// Brings every frame held into another view (a followed camera's reference moved on):
    /// `moved(age, covered)` gives the frame pushed `age` pushes ago (0: the latest) in that
    /// view [C, H, W] in [0, 1], and what counts as covered in it there [1, H, W] (non-zero:
    /// covered) from what counts in the old view, `covered` [1, H, W] (uint8). The free values
    /// of frames that left are forgotten (they are the old view's) and the next estimate is
    /// made afresh.
    pub fn reframe(&mut self, mut moved: impl FnMut(usize, &Tensor) -> (Tensor, Tensor)) {
        let held = self.frames.len();
        for (index, observation) in self.frames.iter_mut().enumerate() {
            let [_, h, w] = observation.size;
            let covered = Tensor::from_slice(&observation.covered).view([1, h, w]);
            let (frame, covered) = moved(held - 1 - index, &covered);
            *observation = Observation::new(&frame, &covered);
        }
        self.memory = None;
        self.estimate = None;
    }

    /// Makes the next [`estimate`](Self::estimate) afresh, taking in every cover so far (a
    /// caller that covers all its frames at once and then reads the estimate).
    pub fn remake(&mut self) {
        self.estimate = None;
    }

    /// Forgets the frames (a new stream); the plate stays.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.memory = None;
        self.estimate = None;
        self.pushes_since_estimate = 0;
    }

    /// What [`estimate`](Self::estimate) would give were no frame pushed since it last made
    /// one, at the pixels where `wanted` [1, H, W] is non-zero: the covers since taken in at
    /// the pixels whose coverage they changed, unless over a quarter of them (those wait for
    /// the next whole remake, as there). Elsewhere the estimate as it was made (at 1080p the
    /// pixels a frame's covers change take about 100 ms to remake on two cores, most of them
    /// under its masks, which a caller may not need). The model is left as it is, so that a
    /// rule can read the estimate after a frame's covers without changing what the next
    /// frames' estimates are. Panics without frames or plate.
    pub fn estimate_with_covers(&mut self, wanted: &Tensor) -> Tensor {
        if let Some(plate) = &self.plate {
            return plate.shallow_clone();
        }
        assert!(
            !self.frames.is_empty(),
            "no frames for a background estimate"
        );
        let observations = self.frames.make_contiguous();
        let memory = self.memory.as_deref();
        let quantile = self.quantile;
        tch::no_grad(|| match &self.estimate {
            Some(estimate) => {
                let changed = estimate.changed.iter().filter(|&&c| c).count();
                if changed == 0 || changed * 4 > estimate.changed.len() {
                    return estimate.image.shallow_clone();
                }
                let wanted = coverage_bytes(wanted);
                assert_eq!(
                    wanted.len(),
                    estimate.changed.len(),
                    "wanted of another size"
                );
                let at: Vec<bool> = estimate
                    .changed
                    .iter()
                    .zip(&wanted)
                    .map(|(&c, &w)| c && w != 0)
                    .collect();
                remade_at(&estimate.image, observations, memory, &at, quantile)
            }
            None => median_of(observations, memory, quantile, self.device).image,
        })
    }

    /// The plate, or the masked temporal median of the frames held [C, H, W]. Panics without
    /// frames or plate (callers push before they ask).
    pub fn estimate(&mut self) -> Tensor {
        if let Some(plate) = &self.plate {
            return plate.shallow_clone();
        }
        assert!(
            !self.frames.is_empty(),
            "no frames for a background estimate"
        );
        let stale = self.pushes_since_estimate * 4 >= self.frames.len().max(4);
        if self.estimate.is_none() || stale {
            let observations = self.frames.make_contiguous();
            let memory = self.memory.as_deref();
            let quantile = self.quantile;
            let median = tch::no_grad(|| median_of(observations, memory, quantile, self.device));
            self.estimate = Some(Box::new(Estimate::new(median.image)));
            self.pushes_since_estimate = 0;
        }
        let estimate = self.estimate.as_mut().expect("estimated above");
        let changed = estimate.changed.iter().filter(|&&c| c).count();
        // Covers over more than a quarter of the frame (layers that hold much of it, as a
        // random network's do) wait for the next whole remake: made again pixel by pixel
        // they would cost more than it, and a fill needs pixels known around them.
        if changed > 0 && changed * 4 <= estimate.changed.len() {
            let observations = self.frames.make_contiguous();
            let memory = self.memory.as_deref();
            estimate.image = tch::no_grad(|| {
                remade_at(
                    &estimate.image,
                    observations,
                    memory,
                    &estimate.changed,
                    self.quantile,
                )
            });
            estimate.changed.fill(false);
        }
        estimate.image.shallow_clone()
    }
}
