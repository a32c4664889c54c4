//! The frames test-time training fits: the network's inputs at the working size, a bounded
//! number of the most recent ones, and their background (supplementary Sec. 4).

use crate::background::BackgroundModel;
use crate::clip::{clip_frames, recency_biased_start, ClipSpec, HiddenPattern};
use crate::composite::{to_signed, to_unit};
use crate::exposure::at_exposure_of;
use crate::train::Batch;
use crate::working::{masks_cover, network_inputs, resize_area, MASK_THRESHOLD};
use rand::Rng;
use std::collections::VecDeque;
use tch::{Kind, Tensor};

pub struct TrainingFrames {
    capacity: usize,
    /// [1, 3, h, w] in [-1, 1]
    images: VecDeque<Tensor>,
    /// [L, 1, h, w] in {0, 1}
    masks: VecDeque<Tensor>,
    /// The masked median (or another quantile) of the frames held, or the user's clean plate,
    /// in [0, 1] as the model takes frames (at 8 bits: [-1, 1] would lose its negative half).
    background: BackgroundModel,
    /// Frames pushed since the last clear: the latest pushed is number `added - 1`.
    added: u64,
    /// Times cleared: a number names a frame only within one of them.
    clears: u64,
    /// Whether a frame weighs in the background only once covered (see
    /// [`median_of_covered_frames_only`](Self::median_of_covered_frames_only)).
    covered_only: bool,
    /// Whether each clip frame's background is brought to that frame's exposure
    /// ([`matching_exposure`](Self::matching_exposure)).
    exposure_match: bool,
}

impl TrainingFrames {
    /// Room for `capacity` frames (pushing more forgets the oldest), their background the
    /// quantile `background_quantile` of each pixel's free values (0.5: the median).
    pub fn new(capacity: usize, background_quantile: f64) -> Self {
        Self {
            capacity: capacity.max(1),
            images: VecDeque::new(),
            masks: VecDeque::new(),
            background: BackgroundModel::new(capacity, background_quantile),
            added: 0,
            clears: 0,
            covered_only: false,
            exposure_match: false,
        }
    }

    /// With `on`, [`batch`](Self::batch) brings the background to each clip frame's exposure
    /// ([`crate::exposure`]), as inference with `exposure_match` does: otherwise the layers
    /// are fitted to explain a camera's exposure drift, a wash over the frame, and the network
    /// is tuned on differences to a background that inference no longer shows it.
    pub fn matching_exposure(mut self, on: bool) -> Self {
        self.exposure_match = on;
        self
    }

    /// Whether [`matching_exposure`](Self::matching_exposure) was asked for: the zero-shot
    /// passes that find what to leave out of the background run the stream the same way.
    pub fn matches_exposure(&self) -> bool {
        self.exposure_match
    }

    /// Trains against `plate` [3, H, W] in [0, 1] (a clean background, any size: it is brought
    /// to the working size of the frames) instead of the frames' masked median.
    pub fn set_background_plate(&mut self, plate: &Tensor, height: i64, width: i64) {
        // Resized in [0, 1], the range the background model holds (the network's [-1, 1] comes
        // only when `background` hands the estimate out).
        let plate = tch::no_grad(|| {
            resize_area(&plate.to_kind(Kind::Float).unsqueeze(0), height, width).squeeze_dim(0)
        });
        self.background.set_plate(plate);
    }

    /// A whole video: frames [N, 3, H, W] in [0, 1] and label maps [N, H, W] (0 = background,
    /// k = object k, as the element receives them), brought to the working size as inference
    /// does.
    pub fn from_video(
        frames: &Tensor,
        labels: &Tensor,
        objects: usize,
        height: i64,
        width: i64,
        background_quantile: f64,
    ) -> Self {
        let mut out = Self::new(frames.size()[0] as usize, background_quantile);
        out.push_video(frames, labels, objects, height, width);
        out
    }

    /// Adds every frame of a video: frames [N, 3, H, W] in [0, 1] and label maps [N, H, W], as
    /// [`push_video_frame`](Self::push_video_frame) adds one.
    pub fn push_video(
        &mut self,
        frames: &Tensor,
        labels: &Tensor,
        objects: usize,
        height: i64,
        width: i64,
    ) {
        for t in 0..frames.size()[0] {
            self.push_video_frame(&frames.get(t), &labels.get(t), objects, height, width);
        }
    }

    /// Adds a frame [3, H, W] in [0, 1] with its label map [H, W], brought to the working
    /// size as inference does.
    pub fn push_video_frame(
        &mut self,
        frame: &Tensor,
        labels: &Tensor,
        objects: usize,
        height: i64,
        width: i64,
    ) {
        let (image, masks) =
            network_inputs(frame, labels, objects, (height, width), MASK_THRESHOLD);
        self.push(image, masks);
    }

    /// Adds a frame as the network sees it: image [1, 3, h, w] in [-1, 1], masks [L, 1, h, w].
    pub fn push(&mut self, image: Tensor, masks: Tensor) {
        if self.images.len() == self.capacity {
            self.images.pop_front();
            self.masks.pop_front();
        }
        let covered = if self.covered_only {
            masks.get(0).ones_like() // [1, h, w]: out of the median for now
        } else {
            masks_cover(&masks)
        };
        self.background
            .push(&to_unit(&image.squeeze_dim(0)), &covered);
        self.images.push_back(image);
        self.masks.push_back(masks);
        self.added += 1;
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    pub fn clear(&mut self) {
        self.images.clear();
        self.masks.clear();
        self.background.clear();
        self.added = 0;
        self.clears += 1;
    }

    /// Frames kept at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Frames pushed since the last clear (the number the next one will have).
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Times cleared (frame numbers start again at 0 after each).
    pub fn clears(&self) -> u64 {
        self.clears
    }

    /// The number of the oldest frame held.
    pub fn oldest_number(&self) -> u64 {
        self.added - self.images.len() as u64
    }

    /// Frame number `number` as [`frame`](Self::frame) gives it, if it is still held.
    pub fn numbered(&self, number: u64) -> Option<(&Tensor, &Tensor)> {
        let index = number.checked_sub(self.oldest_number())?;
        (number < self.added).then(|| self.frame(index as usize))
    }

    /// The background the frames are composited over: [1, 3, h, w] in [-1, 1].
    pub fn background(&mut self) -> Tensor {
        to_signed(&self.background.estimate()).unsqueeze(0)
    }

    /// Whether the background is a clean plate (which no cover changes).
    pub fn has_plate(&self) -> bool {
        self.background.plate().is_some()
    }

    /// Leaves out of the background's median, beside the masks, the pixels where `covered`
    /// [1, h, w] is non-zero in the frame pushed `age` pushes ago (0: the latest): the effects
    /// a decomposition found there ([`crate::background::layers_cover`]), which the masks
    /// alone keep in the background wherever they stay on a pixel most of the time. The next
    /// [`background`](Self::background) is made afresh.
    pub fn cover_background(&mut self, age: usize, covered: &Tensor) {
        if self.covered_only {
            // Let in, with its masks and what was found.
            let Some(index) = self.len().checked_sub(age + 1) else {
                return;
            };
            let masks = masks_cover(&self.masks[index]);
            self.background
                .set_cover(age, &masks.logical_or(&covered.ne(0)));
        } else {
            self.background.cover(age, covered);
        }
        self.background.remake();
    }

    /// From the next frame pushed on, a frame weighs in the background only once
    /// [`cover_background`](Self::cover_background) says what its layers cover: the live
    /// training cannot always find the effects of every frame in time
    /// ([`super::ZeroShotCovers`]), and a frame under its masks alone brings back the
    /// lingering shadows the covers leave out. Until some frame is covered, the background is
    /// the plain median of the frames.
    pub fn median_of_covered_frames_only(mut self) -> Self {
        self.covered_only = true;
        self
    }

    /// Frame `index` (oldest held is 0) as the network sees it: image [1, 3, h, w] in [-1, 1],
    /// masks [L, 1, h, w].
    pub fn frame(&self, index: usize) -> (&Tensor, &Tensor) {
        (&self.images[index], &self.masks[index])
    }

    /// The images [T, 3, h, w] and masks [L, T, 1, h, w] of the frames `indices` (oldest held
    /// is 0), as a clip gives them to the network.
    pub fn clip(&self, indices: &[usize]) -> (Tensor, Tensor) {
        let images = Tensor::cat(
            &indices.iter().map(|&i| &self.images[i]).collect::<Vec<_>>(),
            0,
        );
        let masks = Tensor::stack(
            &indices.iter().map(|&i| &self.masks[i]).collect::<Vec<_>>(),
            1,
        );
        (images, masks)
    }

    /// `batch_size` clips at random places of the frames held, with the predict pattern
    /// (two frames seen, flipped half of the time), as the reference's test-time training;
    /// `recent_share` of them among the newest frames ([`recency_biased_start`]; 0: none).
    pub fn batch<R: Rng>(
        &mut self,
        clip: ClipSpec,
        batch_size: usize,
        recent_share: f64,
        rng: &mut R,
    ) -> Batch {
        assert!(!self.is_empty(), "no frames to train on");
        let background = self.background();
        let n = self.len();
        let (mut frames, mut masks, mut visible) = (Vec::new(), Vec::new(), Vec::new());
        let mut backgrounds = Vec::new();
        for _ in 0..batch_size.max(1) {
            let idx = clip_frames(clip, recency_biased_start(clip, n, recent_share, rng), n);
            let (images, clip_masks) = self.clip(&idx);
            frames.push(images);
            masks.push(clip_masks);
            backgrounds.push(if self.exposure_match {
                // [T, 3, h, w]: one per clip frame.
                let matched: Vec<Tensor> = idx
                    .iter()
                    .map(|&i| at_exposure_of(&self.images[i], &self.masks[i], &background).0)
                    .collect();
                Tensor::cat(&matched, 0)
            } else {
                background.shallow_clone() // [1, 3, h, w]: the same for every frame
            });
            let v: Vec<f32> = HiddenPattern::Predict
                .sample(clip.length, rng)
                .into_iter()
                .map(|v| v as u8 as f32)
                .collect();
            visible.push(Tensor::from_slice(&v));
        }
        Batch {
            frames: Tensor::stack(&frames, 0),
            masks: Tensor::stack(&masks, 0),
            background: Tensor::stack(&backgrounds, 0), // [B, T or 1, 3, h, w]
            visible: Tensor::stack(&visible, 0).to_device(background.device()),
            // A real video: no true layers, the game's losses only.
            targets: None,
            shown_background: None,
        }
    }
}
