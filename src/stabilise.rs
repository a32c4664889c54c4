//! A shaking camera's frames brought back onto one another. The method assumes one background
//! for the clip (a static camera, METHOD.md); a camera on a hand or in the wind moves by a few
//! pixels, and a median over textured ground then leaves every frame's edges in its residual,
//! which the layers take for effects (docs/measurements.md, session 47). Each frame's
//! translation, turn and zoom (a hand rolls a camera too, a lens breathes: session 49) against
//! the first is estimated over the pixels no mask covers, for a whole clip at once
//! ([`estimate_camera_shifts`]) or frame by frame for a stream ([`StreamStabiliser`]), undone
//! for what the network and the background median see (frames and masks), and done again to
//! the frame's layers and background before its outputs are made ([`crate::stream`]). A pan
//! or a drift is followed one stretch at a time (session 50): the estimate's reference, and
//! the view a stream is decomposed in, move on with the camera ([`REANCHOR_SHARE`]).

use tch::{Kind, Tensor};

/// A frame none of whose pixels moved this many pixels has not moved. Unless a quarter of the
/// frames (1 / [`MOVED_SHARE_INVERSE`]) have, the clip is left as it is: a static camera's frames
/// are not resampled (no blur, the same outputs as without stabilising).
pub const STILL_PIXELS: f64 = 0.25;
pub const MOVED_SHARE_INVERSE: usize = 4;

/// The estimate runs on frames brought to at most this many pixels on their longer side (by
/// whole factors): a 1080p frame at full size costs more than it adds.
const MAX_SIDE: i64 = 512;

/// Frames with a shorter side below this many pixels are not aligned.
const MIN_SIDE: i64 = 32;

/// One frame's camera motion against the reference frame: a translation, a roll and a zoom
/// (a hand turns a camera as well as moving it, a lens breathes). The frame's pixel at
/// c + L (p - c) + d shows what the reference shows at pixel p ((y, x), c the centre of a
/// frame of `size`): L is a scaled rotation, or the identity for a translation alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraShift {
    /// d = [dy, dx], in pixels.
    pub shift: [f64; 2],
    /// L, by rows, acting on (y, x).
    pub linear: [[f64; 2]; 2],
    /// [h, w]: the frames' size, in pixels (the roll moves their corners most).
    pub size: [f64; 2],
}

const IDENTITY: [[f64; 2]; 2] = [[1.0, 0.0], [0.0, 1.0]];

impl Default for CameraShift {
    fn default() -> Self {
        Self::NONE
    }
}

impl std::fmt::Display for CameraShift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [dy, dx] = self.shift;
        write!(f, "({dy:.2}, {dx:.2}) pixels")?;
        match self.turn() {
            0.0 => {}
            turn => write!(f, ", turned by {:.2} degrees", turn.to_degrees())?,
        }
        match self.zoom() {
            0.0 => Ok(()),
            zoom => write!(f, ", zoomed by {:.2}%", (zoom.exp() - 1.0) * 100.0),
        }
    }
}

impl CameraShift {
    /// No movement: aligning and restoring leave images as they are.
    pub const NONE: Self = Self {
        shift: [0.0, 0.0],
        linear: IDENTITY,
        size: [0.0, 0.0],
    };

    /// A translation by [dy, dx] pixels, alike for every pixel whatever the frame's size.
    pub fn translation(shift: [f64; 2]) -> Self {
        Self {
            shift,
            ..Self::NONE
        }
    }

    /// A translation by `shift` after a turn by `turn` radians and a zoom by e^`zoom` about
    /// the centre of a frame of `size` [h, w].
    pub fn similarity(shift: [f64; 2], turn: f64, zoom: f64, size: [f64; 2]) -> Self {
        let (sin, cos) = turn.sin_cos();
        let scale = zoom.exp();
        Self {
            shift,
            linear: [[scale * cos, -scale * sin], [scale * sin, scale * cos]],
            size,
        }
    }

    /// The turn about the frame's centre, in radians (of the rotation's aspect-scaled
    /// counterpart after [`Self::scaled`]).
    pub fn turn(self) -> f64 {
        self.linear[1][0].atan2(self.linear[0][0])
    }

    /// The zoom about the frame's centre: the log of the scale.
    pub fn zoom(self) -> f64 {
        let l = self.linear;
        (l[0][0] * l[1][1] - l[0][1] * l[1][0]).abs().sqrt().ln()
    }

    /// Whether it moves nothing.
    pub fn is_none(self) -> bool {
        self.shift == [0.0, 0.0] && self.linear == IDENTITY
    }

    /// How far it moves the pixel `offset` [y, x] from the frame's centre, [dy, dx].
    fn displacement(self, offset: [f64; 2]) -> [f64; 2] {
        let l = self.linear;
        [
            (l[0][0] - 1.0) * offset[0] + l[0][1] * offset[1] + self.shift[0],
            l[1][0] * offset[0] + (l[1][1] - 1.0) * offset[1] + self.shift[1],
        ]
    }

    /// The farthest the turn and the zoom alone move any pixel of the frame along either axis
    /// (a corner's), in pixels.
    pub fn turned_or_zoomed(self) -> f64 {
        Self {
            shift: [0.0, 0.0],
            ..self
        }
        .largest()
    }

    /// The farthest any pixel of the frame moves along either axis (a corner's, under a
    /// turn), in pixels.
    pub fn largest(self) -> f64 {
        let [hy, hx] = self.size.map(|n| (n - 1.0).max(0.0) / 2.0);
        [[-hy, -hx], [-hy, hx], [hy, -hx], [hy, hx]]
            .iter()
            .map(|&corner| {
                let [dy, dx] = self.displacement(corner);
                dy.abs().max(dx.abs())
            })
            .fold(0.0, f64::max)
    }

    /// Whether the frame moved at all (some pixel by [`STILL_PIXELS`] or more along either
    /// axis).
    pub fn moved(self) -> bool {
        self.largest() >= STILL_PIXELS
    }

    /// The same movement in an image scaled by `sy` and `sx` (the working size; pixel centres
    /// map to pixel centres, so the centre to the centre).
    pub fn scaled(self, sy: f64, sx: f64) -> Self {
        let l = self.linear;
        Self {
            shift: [self.shift[0] * sy, self.shift[1] * sx],
            linear: [[l[0][0], l[0][1] * sy / sx], [l[1][0] * sx / sy, l[1][1]]],
            size: [self.size[0] * sy, self.size[1] * sx],
        }
    }

    /// The movement that undoes this one: c + L^-1 (q - c) - L^-1 d.
    pub fn inverse(self) -> Self {
        let l = self.linear;
        let det = l[0][0] * l[1][1] - l[0][1] * l[1][0];
        let inv = [
            [l[1][1] / det, -l[0][1] / det],
            [-l[1][0] / det, l[0][0] / det],
        ];
        let [dy, dx] = self.shift;
        Self {
            shift: [
                -(inv[0][0] * dy + inv[0][1] * dx),
                -(inv[1][0] * dy + inv[1][1] * dx),
            ],
            linear: inv,
            size: self.size,
        }
    }

    /// This movement after `first`: p -> self(first(p)) (both of frames of one size). A frame
    /// that moved by `first` against a reference that itself moved by `self` against another,
    /// against that other.
    pub fn after(self, first: Self) -> Self {
        let (a, b) = (self.linear, first.linear);
        let [dy, dx] = first.shift;
        Self {
            shift: [
                a[0][0] * dy + a[0][1] * dx + self.shift[0],
                a[1][0] * dy + a[1][1] * dx + self.shift[1],
            ],
            linear: [
                [
                    a[0][0] * b[0][0] + a[0][1] * b[1][0],
                    a[0][0] * b[0][1] + a[0][1] * b[1][1],
                ],
                [
                    a[1][0] * b[0][0] + a[1][1] * b[1][0],
                    a[1][0] * b[0][1] + a[1][1] * b[1][1],
                ],
            ],
            size: match self.size {
                [0.0, 0.0] => first.size,
                size => size,
            },
        }
    }

    /// [H, W] (bool, on `device`): the pixels of an image of that size that aligning by this
    /// movement takes from beyond the frame (more than half a pixel out), where what is shown
    /// is the border repeated, not the scene.
    pub fn unseen(self, h: i64, w: i64, device: tch::Device) -> Tensor {
        if self.is_none() {
            return Tensor::zeros([h, w], (Kind::Bool, device));
        }
        let (source_y, source_x) = sources(self, h, w, device);
        let beyond = |s: Tensor, n: i64| s.lt(-0.5).logical_or(&s.gt(n as f64 - 0.5));
        beyond(source_y, h).logical_or(&beyond(source_x, w))
    }

    /// The frame's image [C, H, W] (float in [0, 1]) moved onto the reference (bicubic,
    /// borders repeated).
    pub fn align(self, image: &Tensor) -> Tensor {
        warp(image, self, Sampling::Bicubic)
    }

    /// A frame [3, H, W] and its label map [H, W] moved onto the reference ([`Self::align`],
    /// [`Self::align_labels`]).
    pub fn align_frame(self, frame: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
        (self.align(frame), self.align_labels(labels))
    }

    /// The frame's label map [H, W] (uint8) moved onto the reference (nearest label).
    pub fn align_labels(self, labels: &Tensor) -> Tensor {
        self.align_nearest(&labels.unsqueeze(0)).squeeze_dim(0)
    }

    /// The frame's masks or labels [..., H, W] (any kind) moved onto the reference, each pixel
    /// taking its nearest source pixel's value.
    pub fn align_nearest(self, masks: &Tensor) -> Tensor {
        warp(masks, self, Sampling::Nearest)
    }

    /// An output ([..., C, H, W], float in [0, 1]) made on the aligned frame, moved back to
    /// where the frame shows it.
    pub fn restore(self, image: &Tensor) -> Tensor {
        warp(image, self.inverse(), Sampling::Bicubic)
    }

    /// Layers ([..., 4, H, W], straight alpha) moved back as [`Self::restore`] does, their
    /// colours resampled premultiplied: a transparent pixel's colour, which nothing shows,
    /// must not bleed into its visible neighbours.
    pub fn restore_rgba(self, layers: &Tensor) -> Tensor {
        if self.is_none() {
            return layers.shallow_clone();
        }
        let alpha = layers.narrow(-3, 3, 1);
        let premultiplied = Tensor::cat(&[layers.narrow(-3, 0, 3) * &alpha, alpha], -3);
        let moved = self.restore(&premultiplied);
        let alpha = moved.narrow(-3, 3, 1);
        let colour = (moved.narrow(-3, 0, 3) / alpha.clamp_min(1e-6)).clamp(0.0, 1.0);
        Tensor::cat(&[colour, alpha], -3)
    }
}

/// Each frame's camera motion against the first: frame t shows the first frame's content
/// moved by `shifts[t]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraShifts {
    shifts: Vec<CameraShift>,
}

impl CameraShifts {
    pub fn new(shifts: Vec<CameraShift>) -> Self {
        Self { shifts }
    }

    pub fn shifts(&self) -> &[CameraShift] {
        &self.shifts
    }

    /// Frame `t`'s shift.
    pub fn at(&self, t: i64) -> CameraShift {
        self.shifts[t as usize]
    }

    /// Frame `t`'s shift, `None` beyond the clip.
    pub fn get(&self, t: u64) -> Option<CameraShift> {
        self.shifts.get(t as usize).copied()
    }

    /// The farthest any frame's pixel moves along either axis, in pixels.
    pub fn largest(&self) -> f64 {
        self.shifts.iter().fold(0.0, |m: f64, s| m.max(s.largest()))
    }

    /// Whether the camera moves beyond what the first frame's view holds (a pan, a drift):
    /// some frame by more than [`REANCHOR_SHARE`] of the shorter side, where a stream's
    /// decomposer moves its view on.
    pub fn leave_the_first_view(&self) -> bool {
        self.shifts
            .iter()
            .any(|s| s.largest() > REANCHOR_SHARE * s.size[0].min(s.size[1]))
    }
}

#[derive(Clone, Copy)]
enum Sampling {
    Bilinear,
    Bicubic,
    Nearest,
}

/// Where `motion` samples each pixel p of an image of [h, w]: c + L (p - c) + d as ([h, w],
/// [h, w]) of y and x (c the image's centre).
fn sources(motion: CameraShift, h: i64, w: i64, device: tch::Device) -> (Tensor, Tensor) {
    let opts = (Kind::Float, device);
    let (cy, cx) = ((h - 1) as f64 / 2.0, (w - 1) as f64 / 2.0);
    let ys = (Tensor::arange(h, opts) - cy).view([h, 1]);
    let xs = (Tensor::arange(w, opts) - cx).view([1, w]);
    let [[l00, l01], [l10, l11]] = motion.linear;
    let [dy, dx] = motion.shift;
    (
        &ys * l00 + &xs * l01 + (cy + dy),
        &ys * l10 + &xs * l11 + (cx + dx),
    )
}

/// `image` [..., C, H, W] sampled at c + L (p - c) + d for each pixel p (`motion`, c the
/// image's centre). No motion leaves it as it is (not resampled).
fn warp(image: &Tensor, motion: CameraShift, sampling: Sampling) -> Tensor {
    if motion.is_none() {
        return image.shallow_clone();
    }
    let size = image.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    let kind = image.kind();
    let flat = image.reshape([-1, 1, h, w]).to_kind(Kind::Float);
    let n = flat.size()[0];
    let (source_y, source_x) = sources(motion, h, w, image.device());
    // Pixel centres in grid_sample's [-1, 1] (align_corners false).
    let grid = Tensor::stack(
        &[
            (source_x + 0.5) * (2.0 / w as f64) - 1.0,
            (source_y + 0.5) * (2.0 / h as f64) - 1.0,
        ],
        -1,
    )
    .unsqueeze(0)
    .expand([n, h, w, 2], false);
    let (mode, clamp) = match sampling {
        Sampling::Bilinear => (0, false),
        Sampling::Bicubic => (2, true),
        Sampling::Nearest => (1, false),
    };
    // Padding mode 1: the border's values repeated.
    let moved = flat.grid_sampler(&grid, mode, 1, false);
    let moved = if clamp { moved.clamp(0.0, 1.0) } else { moved };
    moved.reshape(size.as_slice()).to_kind(kind)
}

/// The camera's shifts over a clip of `len` frames, `frame_at(t)` giving frame t [3, H, W]
/// (float in [0, 1]) and the pixels its masks cover [H, W] (bool); `None` for a static camera
/// (fewer than a quarter of the frames moved by [`STILL_PIXELS`]), or ground without texture
/// to align by ([`CameraTracker`] finds each frame's shift).
pub fn estimate_camera_shifts(
    len: i64,
    mut frame_at: impl FnMut(i64) -> anyhow::Result<(Tensor, Tensor)>,
) -> anyhow::Result<Option<CameraShifts>> {
    let (first, covered) = frame_at(0)?;
    let Some(mut tracker) = CameraTracker::new(&first, &covered) else {
        return Ok(None);
    };
    let mut shifts = vec![CameraShift::NONE];
    for t in 1..len {
        let (frame, covered) = frame_at(t)?;
        shifts.push(tracker.follow(&frame, &covered));
    }
    let moved = shifts.iter().filter(|s| s.moved()).count();
    Ok(shaking(moved, shifts.len()).then(|| CameraShifts::new(shifts)))
}

/// Whether `moved` of `seen` frames make a shaking camera: a few frames off (a knock, or an
/// estimate fooled) hardly move a median over the clip; a shaking camera moves most of them.
fn shaking(moved: usize, seen: usize) -> bool {
    moved * MOVED_SHARE_INVERSE >= seen
}

/// Follows a camera frame by frame against a reference frame: the first, then a later one
/// where the camera moved on ([`REANCHOR_SHARE`]), whose own motion against the first is
/// known. Each frame's motion (a translation, a turn and a zoom about the centre) is found by
/// Gauss-Newton steps on the pixels free of masks in both frames (Lucas and Kanade's, with
/// Cauchy's robust weights), coarse to fine from no motion and from the last motion found, and
/// kept only where it explains the frame clearly better than none, across the whole frame, and
/// is within reach of where it started ([`MAX_SHIFT_SHARE`], [`TURN_REACH`]).
pub struct CameraTracker {
    reference: Vec<Level>,
    /// The levels are at 1 / factor of the frames' size.
    factor: i64,
    /// The last motion found against the reference, at the finest level.
    previous: Similarity,
    /// The reference's motion against the first frame: none until two frames found in a row
    /// (frames missed between them aside) moved beyond [`REANCHOR_SHARE`] against it and the
    /// second became the reference.
    anchor: CameraShift,
    /// Whether the last frame whose motion was found moved beyond [`REANCHOR_SHARE`] against
    /// the reference.
    beyond: bool,
}

impl CameraTracker {
    /// A tracker against `first` [3, H, W] (float in [0, 1]), whose masks cover `covered`
    /// [H, W] (bool); `None` where the frame is too small to align or (a bare wall, a smooth
    /// gradient) has nothing to align by, where a shake spoils little: fewer of its parts
    /// have texture than a motion needs to be judged ([`MIN_VOTERS`]). Parts, not the whole
    /// frame: a first frame that is mostly sky over textured ground is followed (session 52).
    pub fn new(first: &Tensor, covered: &Tensor) -> Option<Self> {
        let (h, w) = (first.size()[1], first.size()[2]);
        if h.min(w) < MIN_SIDE {
            return None;
        }
        let factor = (h.max(w) + MAX_SIDE - 1) / MAX_SIDE;
        let reference = pyramid(first, covered, factor);
        let fine = &reference[0];
        let itself = compare(
            fine,
            fine,
            Similarity::NONE,
            margin_for(Similarity::NONE, fine),
        );
        let textured = voting_parts(&itself.texture(), &itself.weight).len() as i64;
        (textured >= MIN_VOTERS).then_some(Self {
            reference,
            factor,
            previous: Similarity::NONE,
            anchor: CameraShift::NONE,
            beyond: false,
        })
    }

    /// The next frame's motion against the first (frames as in [`Self::new`]): the
    /// reference's where no motion against it explains the frame clearly better than none.
    pub fn follow(&mut self, frame: &Tensor, covered: &Tensor) -> CameraShift {
        let size = [frame.size()[1] as f64, frame.size()[2] as f64];
        let mut frame = pyramid(frame, covered, self.factor);
        match_brightness(&mut frame, &self.reference);
        let (fine, reference_fine) = (&frame[0], &self.reference[0]);
        // From no motion, from the last motion found (a drifting camera), from the whole-pixel
        // translation most of the frame's parts choose (fitted to those parts alone) and from
        // the one that fits the whole frame best ([`searched`]: on ground with a faint or
        // repeating pattern Gauss-Newton from no motion can settle a period away; both start
        // at the level searched, as the coarser levels alias such a pattern), each as a
        // similarity and as a translation alone ([`Model`]): of those that explain the frame
        // clearly better than none and are within reach of where they started (a repeating
        // pattern matches itself a period away), the one with the lowest bounded cost in the
        // median part ([`Judgement::bounded`]), fitted again without the parts it explains
        // much worse than the others ([`Judgement::kept`]).
        let still = Still::compare(fine, reference_fine);
        let still_cost = still.cost();
        let mut best = Similarity::NONE;
        let mut best_bounded = f64::INFINITY;
        let mut best_judgement: Option<(Judgement, Model)> = None;
        let side = fine.gray.size()[0].min(fine.gray.size()[1]) as f64;
        // Whether a fit from `from` landed within reach.
        let within_reach = |motion: Similarity, from: Similarity| {
            let (at, from) = (motion.at(fine), from.at(fine));
            at.after(from.inverse()).largest() <= MAX_SHIFT_SHARE * side
                && at.turned_or_zoomed() <= TURN_REACH * side
        };
        let coarsest = frame.len() - 1;
        let searched = searched(&frame, &self.reference);
        let level = searched.level;
        let whole_frame = |motion, level, fitted_before| Start {
            motion,
            level,
            fitted_before,
            parts: None,
        };
        let mut starts = vec![whole_frame(Similarity::NONE, coarsest, true)];
        // The parts' choice before the whole frame's: where the two are the same, it is fitted
        // to the parts that chose it, not to the whole frame.
        let mut later = vec![whole_frame(self.previous, coarsest, true)];
        later.extend(searched.parts_choice.map(|(motion, parts)| Start {
            parts: Some(parts),
            ..whole_frame(motion, level, false)
        }));
        later.push(whole_frame(searched.whole, level, false));
        for start in later {
            if !starts.iter().any(|other| other.motion == start.motion) {
                starts.push(start);
            }
        }
        for Start {
            motion: start,
            level,
            fitted_before,
            parts,
        } in starts
        {
            // Fits that would land where one already has are skipped (the tracker's time a
            // frame): from the search's start where a motion was found within its step, ...
            let step = (1i64 << level) as f64;
            let near = |a: Similarity, b: Similarity| {
                (a.shift[0] - b.shift[0])
                    .abs()
                    .max((a.shift[1] - b.shift[1]).abs())
                    <= step
            };
            // (not the parts' choice fitted to some of the parts: that fit weighs other pixels)
            let some_parts = parts.is_some_and(|parts| parts.contains(&false));
            if !fitted_before && !some_parts && best != Similarity::NONE && near(best, start) {
                continue;
            }
            // From the parts' choice, fitted to those parts alone.
            let restricted_reference = parts.map(|parts| restricted(&self.reference, &parts));
            let reference = restricted_reference.as_deref().unwrap_or(&self.reference);
            let mut kept_similarity = false;
            for model in [Model::Similarity, Model::Translation] {
                // ... and a translation alone where the similarity from the same start was
                // kept.
                if model == Model::Translation && kept_similarity {
                    continue;
                }
                // Half the parts chose the parts' choice: it needs no more voters.
                let min_voters = match (model, fitted_before, &parts) {
                    (Model::Similarity, true, _) | (_, _, Some(_)) => MIN_VOTERS,
                    _ => NEW_PATH_MIN_VOTERS,
                };
                let start = model.restrict(start);
                let motion = coarse_to_fine(&frame, reference, start, level, model);
                if !within_reach(motion, start) {
                    continue;
                }
                if let Some(judgement) = judged(fine, reference_fine, &still, motion, min_voters) {
                    kept_similarity = model == Model::Similarity;
                    if judgement.cost < still_cost && judgement.bounded < best_bounded {
                        (best, best_bounded) = (motion, judgement.bounded);
                        best_judgement = Some((judgement, model));
                    }
                }
            }
        }
        // Parts the motion found explains much worse than the others hold something that moves
        // against the ground (an object's shadow or reflection no mask holds), which pulls the
        // fit towards its own motion by a fraction of a pixel or more, and the frames after a
        // new reference with it (session 55): the motion is fitted again without them, at the
        // finest level, and kept where it is judged as well and costs no more.
        if let Some((judgement, model)) = best_judgement {
            if judgement.kept.contains(&false) {
                let reference = restricted(&self.reference, &judgement.kept);
                let motion = coarse_to_fine(&frame, &reference, best, 0, model);
                let again = within_reach(motion, best)
                    .then(|| judged(fine, reference_fine, &still, motion, MIN_VOTERS))
                    .flatten();
                if again
                    .is_some_and(|again| again.cost < still_cost && again.bounded <= best_bounded)
                {
                    best = motion;
                }
            }
        }
        if best == Similarity::NONE {
            // Kept: a pan missed in one frame is taken up again from where it was last found,
            // and whether that frame had moved beyond (on ground textured in few parts a pan
            // is missed every other frame as it leaves the reference: session 52).
            return self.anchor;
        }
        let beyond = best.at(fine).largest() > REANCHOR_SHARE * side;
        let reanchor = beyond && self.beyond;
        self.beyond = beyond;
        self.previous = best;
        let motion = best
            .at_full_size(fine, self.factor, size)
            .after(self.anchor);
        if reanchor {
            (self.reference, self.anchor) = (frame, motion);
            (self.previous, self.beyond) = (Similarity::NONE, false);
        }
        motion
    }
}

/// Where a Gauss-Newton fit of [`CameraTracker::follow`] starts.
struct Start {
    motion: Similarity,
    /// The level it begins at.
    level: usize,
    /// Whether the tracker fitted a similarity from it before session 53: those fits need the
    /// parts they needed, the new paths half the parts ([`NEW_PATH_MIN_VOTERS`]).
    fitted_before: bool,
    /// The parts it is fitted to, where not the whole frame's ([`Searched::parts_choice`]).
    parts: Option<Parts>,
}

/// A camera's motion at one level of the estimate: a translation after a turn and a zoom
/// about the level's centre.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Similarity {
    /// [dy, dx], in the level's pixels.
    shift: [f64; 2],
    /// Radians.
    turn: f64,
    /// The log of the scale.
    zoom: f64,
}

impl Similarity {
    const NONE: Self = Self {
        shift: [0.0, 0.0],
        turn: 0.0,
        zoom: 0.0,
    };

    /// As a [`CameraShift`] of the level's pixels.
    fn at(self, level: &Level) -> CameraShift {
        let size = level.gray.size();
        let size = [size[0] as f64, size[1] as f64];
        CameraShift::similarity(self.shift, self.turn, self.zoom, size)
    }

    /// The translation in the pixels of a level `k` times as large.
    fn scaled(self, k: f64) -> Self {
        Self {
            shift: self.shift.map(|x| x * k),
            ..self
        }
    }

    /// As a [`CameraShift`] of frames of `size` [H, W], from `level`, the finest, at 1 /
    /// `factor` of it. Level pixel p is the mean of the frame's pixels about k p + (k - 1) / 2,
    /// so the level's centre is the frame's c' = k c_l + (k - 1) / 2, which is not quite the
    /// frame's centre c where a side is no multiple of k: about c the same motion translates
    /// by k d + (I - L) (c' - c).
    fn at_full_size(self, level: &Level, factor: i64, size: [f64; 2]) -> CameraShift {
        let k = factor as f64;
        let level_size = level.gray.size();
        let offset = [0, 1].map(|i| {
            let level_centre = (level_size[i] - 1) as f64 / 2.0;
            k * level_centre + (k - 1.0) / 2.0 - (size[i] - 1.0) / 2.0
        });
        let mut motion = CameraShift::similarity(self.scaled(k).shift, self.turn, self.zoom, size);
        let l = motion.linear;
        motion.shift[0] += (1.0 - l[0][0]) * offset[0] - l[0][1] * offset[1];
        motion.shift[1] += -l[1][0] * offset[0] + (1.0 - l[1][1]) * offset[1];
        motion
    }
}

/// How a decomposition treats its camera.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraMotion {
    /// A static camera: frames are decomposed as they come.
    Still,
    /// Followed frame by frame ([`StreamStabiliser`]): a stream's, whose end is not known.
    Followed,
    /// Frame i moved by the i-th of a clip's shifts found beforehand (the whole clip's rule,
    /// [`estimate_camera_shifts`]).
    Given(CameraShifts),
}

impl CameraMotion {
    /// A stream's camera: followed where it is to be stabilised, else taken for still.
    pub fn streamed(stabilise: bool) -> Self {
        match stabilise {
            true => Self::Followed,
            false => Self::Still,
        }
    }
}

/// A stream's camera followed frame by frame against its first frame, for a decomposition
/// that cannot wait for the clip's end ([`crate::stream`]). The clip's rule of
/// [`estimate_camera_shifts`] on the frames so far: a frame is aligned by its shift while at
/// least a quarter of the frames up to it moved by [`STILL_PIXELS`], else left as it came
/// (a static camera's stream is never resampled; a knock or a fooled estimate in a long still
/// stream is outvoted).
#[derive(Default)]
pub struct StreamStabiliser {
    state: Following,
    /// Frames followed, and those among them that moved.
    seen: usize,
    moved: usize,
}

#[derive(Default)]
enum Following {
    /// No frame yet: the next is the reference.
    #[default]
    Waiting,
    Tracking(CameraTracker),
    /// The first frame had nothing to align by: every frame is left as it came.
    Off,
}

impl StreamStabiliser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next frame [3, H, W] (float in [0, 1], its masks covering `covered` [H, W]): the
    /// shift that brings it onto the stream's first frame ([`CameraShift::align`]), or
    /// [`CameraShift::NONE`] where it is left as it came.
    pub fn follow(&mut self, frame: &Tensor, covered: &Tensor) -> CameraShift {
        let shift = match &mut self.state {
            Following::Waiting => {
                self.state = match CameraTracker::new(frame, covered) {
                    Some(tracker) => Following::Tracking(tracker),
                    None => Following::Off,
                };
                CameraShift::NONE
            }
            Following::Tracking(tracker) => tracker.follow(frame, covered),
            Following::Off => CameraShift::NONE,
        };
        self.seen += 1;
        self.moved += shift.moved() as usize;
        match shaking(self.moved, self.seen) {
            true => shift,
            false => CameraShift::NONE,
        }
    }
}

/// What a motion is fitted as. Both are tried from each start and judged alike: on smooth or
/// weakly textured ground a fit with a turn and a zoom can slide into a zoom of 10-20% that
/// fits a shaken frame a little better than none (and is then beyond [`TURN_REACH`]) where
/// the translation alone fits it well (session 53: most of the frames such shaken copies
/// missed).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    /// A translation after a turn and a zoom.
    Similarity,
    /// A translation alone.
    Translation,
}

impl Model {
    /// `motion` as this model has it.
    fn restrict(self, motion: Similarity) -> Similarity {
        match self {
            Self::Similarity => motion,
            Self::Translation => Similarity {
                shift: motion.shift,
                ..Similarity::NONE
            },
        }
    }
}

/// The whole-pixel translations within [`MAX_SHIFT_SHARE`] of the shorter side that bring the
/// frame closest to the reference ([`bounded`] cost over the pixels free in both) at the first
/// level at most [`SEARCH_SIDE`] on its shorter side, at the finest level's scale, and that
/// level: starts for Gauss-Newton near the right motion whatever the ground's pattern
/// (session 53). Two: the best over the whole frame, and the one most of the frame's
/// [`TILES`] x [`TILES`] parts find best on their own ([`Searched::parts_choice`]).
fn searched(frame: &[Level], reference: &[Level]) -> Searched {
    let shorter = |level: &Level| level.gray.size()[0].min(level.gray.size()[1]);
    let at = frame
        .iter()
        .position(|level| shorter(level) <= SEARCH_SIDE)
        .unwrap_or(frame.len() - 1);
    let (frame, reference) = (&frame[at], &reference[at]);
    let (h, w) = (frame.gray.size()[0], frame.gray.size()[1]);
    let reach = (MAX_SHIFT_SHARE * shorter(frame) as f64).ceil() as i64;
    // Every candidate compares the same pixels of the reference.
    let margin = reach + 2;
    let (height, width) = (h - 2 * margin, w - 2 * margin);
    // Every other row and column: a pattern that can fool Gauss-Newton is some pixels wide,
    // and the search compares every translation at a quarter of the cost.
    let sparse = |image: Tensor| image.slice(0, 0, None, 2).slice(-1, 0, None, 2);
    let inner = |image: &Tensor| image.narrow(0, margin, height).narrow(1, margin, width);
    let (reference_gray, reference_free) = (
        sparse(inner(&reference.gray)).unsqueeze(1),
        sparse(inner(&reference.free)).unsqueeze(1),
    );
    let area = reference_free.numel() as f64;
    // Which of [`voting_parts`]' parts each compared row and column falls in (one-hot, [TILES
    // + 1, n]; the last for the rows in none of them): the parts' own searches, and summed
    // over all, the whole frame's, in one product.
    let one_hot = |n: i64, length: i64| {
        let mut cells = vec![0f32; ((TILES + 1) * n) as usize];
        for k in 0..n {
            let part = part_of(margin + 2 * k, length).unwrap_or(TILES);
            cells[(part * n + k) as usize] = 1.0;
        }
        Tensor::from_slice(&cells).view([TILES + 1, n])
    };
    let (rows, columns) = (reference_free.size()[0], reference_free.size()[2]);
    let (row_parts, column_parts) = (one_hot(rows, h), one_hot(columns, w).tr());
    let mut best = ([0, 0], f64::INFINITY);
    let mut parts_best = [([0i64, 0i64], f64::INFINITY); PARTS];
    let part_area = area / PARTS as f64;
    for dy in -reach..=reach {
        // [height, 2 reach + 1, width]: the frame's rows moved by dy, at every dx at once.
        let moved = |image: &Tensor| {
            sparse(
                image
                    .narrow(0, margin + dy, height)
                    .narrow(1, margin - reach, width + 2 * reach)
                    .unfold(1, width, 1),
            )
        };
        let weight = moved(&frame.free) * &reference_free;
        let costs = bounded(&(moved(&frame.gray) - &reference_gray)) * &weight;
        // By part, [2 reach + 1, TILES + 1, TILES + 1], summed in single precision (a part
        // sums a few hundred values, each at most 1: exact to about a millionth) and
        // compared as doubles. The shifts of the 24 pans, 68 shaken copies and 200 static
        // videos of session 55 came out the same as with sums in doubles.
        let by_part = |x: &Tensor| {
            let sums = row_parts
                .matmul(&x.permute([1, 0, 2]))
                .matmul(&column_parts);
            let sums = sums.to_kind(Kind::Double).contiguous().view([-1]);
            Vec::<f64>::try_from(&sums).expect("a vector of sums")
        };
        let (part_counted, part_costs) = (by_part(&weight), by_part(&costs));
        let cells = ((TILES + 1) * (TILES + 1)) as usize;
        for k in 0..(2 * reach + 1) as usize {
            let shift = [dy, k as i64 - reach];
            let cells_of_shift = k * cells..(k + 1) * cells;
            let (counted, cost) = (
                &part_counted[cells_of_shift.clone()],
                &part_costs[cells_of_shift],
            );
            let (all_counted, all_cost) = (counted.iter().sum::<f64>(), cost.iter().sum::<f64>());
            // Too few pixels free in both to compare.
            if all_counted >= 0.25 * area && all_cost / all_counted < best.1 {
                best = (shift, all_cost / all_counted);
            }
            for (i, best) in parts_best.iter_mut().enumerate() {
                // Part i's cell, past the row and column of the pixels in no part.
                let cell = i / TILES as usize * (TILES + 1) as usize + i % TILES as usize;
                let (counted, cost) = (counted[cell], cost[cell]);
                if counted >= 0.25 * part_area && cost / counted < best.1 {
                    *best = (shift, cost / counted);
                }
            }
        }
    }
    let scale = (1i64 << at) as f64;
    let start = |shift: [i64; 2]| Similarity {
        shift: shift.map(|d| d as f64 * scale),
        ..Similarity::NONE
    };
    let choices: Vec<Option<[i64; 2]>> = parts_best
        .iter()
        .map(|&(shift, cost)| cost.is_finite().then_some(shift))
        .collect();
    Searched {
        whole: start(best.0),
        parts_choice: most_chosen(&choices).map(|(shift, parts)| (start(shift), parts)),
        level: at,
    }
}

/// What [`searched`] found.
struct Searched {
    /// The translation that fits the whole frame best.
    whole: Similarity,
    /// The translation that most of [`voting_parts`]' parts, each searched on its own, chose
    /// ([`most_chosen`]), and the parts within a pixel of it: on smooth ground the shadows and
    /// reflections no mask holds, which move with their objects, can outweigh the ground in
    /// the whole frame's cost while lying in a few parts only (session 55).
    parts_choice: Option<(Similarity, Parts)>,
    /// The level searched.
    level: usize,
}

/// Which of the [`TILES`] x [`TILES`] parts count, row by row.
type Parts = [bool; PARTS];
const PARTS: usize = (TILES * TILES) as usize;

/// The part row or column `index` of a level `length` long falls in, as [`voting_parts`]
/// cuts the inner pixels [`compare`] keeps; none for the few left over.
fn part_of(index: i64, length: i64) -> Option<i64> {
    let size = (length - 2) / TILES;
    let inner = index - 1;
    (inner >= 0 && inner < TILES * size).then(|| inner / size)
}

/// The parts' most frequent choice (`None`: a part without pixels to compare) and the parts
/// within a pixel of it, where those are at least half the parts: on flat ground the parts
/// without texture choose at random, and a static camera's parts that choose where the large
/// shadows moved are a few (`data/valthird/classic_0003`, [`NEW_PATH_MIN_VOTERS`]).
fn most_chosen(choices: &[Option<[i64; 2]>]) -> Option<([i64; 2], Parts)> {
    let near = |a: [i64; 2], b: [i64; 2]| (a[0] - b[0]).abs().max((a[1] - b[1]).abs()) <= 1;
    let chosen: Vec<[i64; 2]> = choices.iter().flatten().copied().collect();
    let count = |a: [i64; 2], close: &dyn Fn([i64; 2], [i64; 2]) -> bool| {
        chosen.iter().filter(|&&b| close(a, b)).count()
    };
    let best = chosen
        .iter()
        .copied()
        .max_by_key(|&a| (count(a, &|a, b| a == b), count(a, &near)))?;
    let parts = std::array::from_fn(|i| choices[i].is_some_and(|c| near(best, c)));
    (2 * count(best, &near) >= PARTS).then_some((best, parts))
}

/// The levels with only `parts`' pixels free.
fn restricted(levels: &[Level], parts: &Parts) -> Vec<Level> {
    // Each row's and column's part; the borders and the few left over in the nearest.
    let part = |index: i64, length: i64| {
        part_of(index, length).unwrap_or(if index < 1 { 0 } else { TILES - 1 })
    };
    levels
        .iter()
        .map(|level| {
            let (h, w) = (level.free.size()[0], level.free.size()[1]);
            let counted: Vec<f32> = (0..h)
                .flat_map(|y| (0..w).map(move |x| (part(y, h), part(x, w))))
                .map(|(i, j)| f32::from(u8::from(parts[(i * TILES + j) as usize])))
                .collect();
            let counted = Tensor::from_slice(&counted).view([h, w]);
            Level {
                gray: level.gray.shallow_clone(),
                free: &level.free * counted.to_device(level.free.device()),
            }
        })
        .collect()
}

/// [`searched`] looks at the first level at most this many pixels on its shorter side (the
/// project's working height): a shake's reach there is some ten pixels, 23 x 23 whole-pixel
/// translations to compare. On a 64-pixel level the faint checkerboard of session 53's
/// shaken copies was blurred away and more frames were missed (155 against 147 of 1296 more
/// than half a pixel off).
const SEARCH_SIDE: i64 = 128;

/// Gauss-Newton from `start` (at the finest level's scale) down the pyramid from level
/// `coarsest`, finest last.
fn coarse_to_fine(
    frame: &[Level],
    reference: &[Level],
    start: Similarity,
    coarsest: usize,
    model: Model,
) -> Similarity {
    let mut motion = start.scaled(0.5f64.powi(coarsest as i32));
    let levels = frame.iter().zip(reference).take(coarsest + 1);
    for (level, (frame, reference)) in levels.enumerate().rev() {
        motion = refine(frame, reference, motion, model);
        if level > 0 {
            motion = motion.scaled(2.0);
        }
    }
    motion
}

/// A motion's robust cost must be below this share of no motion's to be kept.
const ACCEPT: f64 = 0.9;

/// Motions that move a pixel beyond this share of the frame's shorter side against where
/// their estimate started (no motion, or the last motion found) are not followed (a pattern
/// matching itself a period away; a whip pan).
const MAX_SHIFT_SHARE: f64 = 0.08;

/// A turn and a zoom against the reference that move a corner beyond this share of the
/// frame's shorter side are not followed: on ground with little texture (a blurred
/// photograph) a turn and a zoom of a few degrees and percent fit a translating camera's
/// frames a little better than none, and each frame followed from the last one found would
/// carry such a fit further (session 50). Session 49's turned copies, up to 3.2 degrees
/// (5.6% at the corners), are within it.
const TURN_REACH: f64 = 0.06;

/// A reference is moved to a later frame once two frames found in a row (frames missed
/// between them aside, since session 52) have moved beyond this share of the shorter side
/// against it ([`CameraTracker`], the stream's decomposer): a
/// panning or drifting camera is followed as far as it goes, one stretch at a time, where the
/// first frame's view would soon show little of the frame. Two in a row: a shaking camera
/// reaches this far now and then and comes back, and a jolt as the reference puts the next
/// frames far from it. Below [`MAX_SHIFT_SHARE`], so that the reference is near the frames
/// followed; pans of up to 2 pixels a frame at 128 high (1.6%) were measured (session 50).
pub const REANCHOR_SHARE: f64 = 0.06;

/// The median of a part's free pixels' luminance gradient at the finest level must reach this
/// for the part to have texture to align by (per pixel, the luminance brought to a mean of
/// 1/2): the project's flat synthetic grounds and the real clip's white wall have about
/// 0.001-0.002 over the whole frame, photographed ground 0.004-0.02 (session 47).
const MIN_GRADIENT: f64 = 0.003;

/// Central differences (dy, dx) of [h, w], [h - 2, w - 2].
fn gradients(image: &Tensor) -> (Tensor, Tensor) {
    let (h, w) = (image.size()[0], image.size()[1]);
    let gy = (image.narrow(0, 2, h - 2) - image.narrow(0, 0, h - 2)).narrow(1, 1, w - 2) * 0.5;
    let gx = (image.narrow(1, 2, w - 2) - image.narrow(1, 0, w - 2)).narrow(0, 1, h - 2) * 0.5;
    (gy, gx)
}

/// Pixels at the borders left out of a comparison at `motion`: the warp repeats the edge
/// there.
fn margin_for(motion: Similarity, level: &Level) -> i64 {
    motion.at(level).largest().ceil() as i64 + 2
}

/// frame(c + L (p - c) + d) against the reference at one level, [h - 2, w - 2] each: the
/// difference, the moved frame's gradients, and the weights (1 where both are free of masks
/// and `margin` from the borders, else 0).
struct Comparison {
    residual: Tensor,
    gy: Tensor,
    gx: Tensor,
    weight: Tensor,
}

impl Comparison {
    /// The moved frame's gradient magnitude.
    fn texture(&self) -> Tensor {
        (self.gy.square() + self.gx.square()).sqrt()
    }
}

fn compare(frame: &Level, reference: &Level, motion: Similarity, margin: i64) -> Comparison {
    let (h, w) = (reference.gray.size()[0], reference.gray.size()[1]);
    let inner = |x: &Tensor| x.narrow(0, 1, h - 2).narrow(1, 1, w - 2);
    let at = motion.at(frame);
    let moved = warp(&frame.gray.unsqueeze(0), at, Sampling::Bilinear).squeeze_dim(0);
    let moved_free = warp(&frame.free.unsqueeze(0), at, Sampling::Nearest).squeeze_dim(0);
    let weight = moved_free * &reference.free;
    let margin = margin.min(h.min(w) / 2);
    for dim in [0, 1] {
        let n = weight.size()[dim as usize];
        let _ = weight.narrow(dim, 0, margin).fill_(0.0);
        let _ = weight.narrow(dim, n - margin, margin).fill_(0.0);
    }
    let moved = matched_brightness(moved, &reference.gray, &weight);
    let (gy, gx) = gradients(&moved);
    Comparison {
        residual: inner(&(&moved - &reference.gray)),
        gy,
        gx,
        weight: inner(&weight),
    }
}

/// `moved` [h, w] brought to the brightness of `reference` [h, w] where `weight` counts: the
/// median ratio of the two there. A frame's brightness is matched to its reference's once
/// before it is aligned ([`match_brightness`]), over pixels that do not show the same ground
/// where the camera moved: on a sky's smooth gradient a shake of 3 pixels made that match half
/// a percent off, which every pixel's difference then held, and a motion pixels away from the
/// true one made up for it (session 54). So each comparison matches again, at its motion.
fn matched_brightness(moved: Tensor, reference: &Tensor, weight: &Tensor) -> Tensor {
    let ratio = (reference / moved.clamp_min(1e-3)).masked_select(&weight.gt(0.5));
    match ratio.numel() > 0 {
        true => moved * ratio.median().double_value(&[]),
        false => moved,
    }
}

/// The frame against the reference with no motion, at the finest level: what every motion
/// found must explain clearly better.
struct Still {
    comparison: Comparison,
    /// Cauchy's cost of each difference.
    rho: Tensor,
}

impl Still {
    fn compare(frame: &Level, reference: &Level) -> Self {
        let comparison = compare(
            frame,
            reference,
            Similarity::NONE,
            margin_for(Similarity::NONE, frame),
        );
        let rho = cauchy(&comparison.residual);
        Self { comparison, rho }
    }

    /// The mean robust cost over the pixels free in both frames.
    fn cost(&self) -> f64 {
        let weight = &self.comparison.weight;
        (&self.rho * weight).sum(Kind::Double).double_value(&[])
            / weight.sum(Kind::Double).double_value(&[]).max(1.0)
    }
}

/// How well `motion` explains the frame, where it explains it clearly better than none (by
/// [`ACCEPT`], on the same pixels) and the frame's textured parts all but agree: a camera's
/// motion moves all the ground, where an object's shadow or reflection that no mask holds,
/// matched to the reference's, moves one part of it. The frame is cut into [`TILES`] x
/// [`TILES`] parts; those with texture and free pixels enough vote, at least `min_voters` of
/// them ([`MIN_VOTERS`] or more).
fn judged(
    frame: &Level,
    reference: &Level,
    still: &Still,
    motion: Similarity,
    min_voters: i64,
) -> Option<Judgement> {
    let at_d = compare(frame, reference, motion, margin_for(motion, frame));
    // `at_d`'s margin is the wider: these are the pixels both compare.
    let weight = &at_d.weight * &still.comparison.weight;
    let (rho_d, rho_0) = (cauchy(&at_d.residual), &still.rho);
    let mean = |rho: &Tensor| {
        (rho * &weight).sum(Kind::Double).double_value(&[])
            / weight.sum(Kind::Double).double_value(&[]).max(1.0)
    };
    let cost = mean(&rho_d);
    if cost >= ACCEPT * mean(rho_0) {
        return None;
    }
    let voters = voting_parts(&still.comparison.texture(), &weight);
    // A voting part's mean of `rho` over the pixels both compare.
    let part_mean = |part: &Part, rho: &Tensor| {
        let wt = part.of(&weight);
        (part.of(rho) * &wt).sum(Kind::Double).double_value(&[])
            / wt.sum(Kind::Double).double_value(&[])
    };
    let for_d = voters
        .iter()
        .filter(|part| part_mean(part, &rho_d) < ACCEPT * part_mean(part, rho_0))
        .count();
    let voted = voters.len() as i64;
    if voted < min_voters || (for_d as f64) < AGREEMENT * voted as f64 {
        return None;
    }
    // Only a motion that passes is ranked and fitted again.
    let rho_bounded = bounded(&at_d.residual);
    let part_costs: Vec<f64> = voters
        .iter()
        .map(|part| part_mean(part, &rho_bounded))
        .collect();
    let middle = median(part_costs.clone());
    let mut kept = [true; PARTS];
    for (part, &cost) in voters.iter().zip(&part_costs) {
        kept[part.index] = cost <= OUTLIER * middle;
    }
    Some(Judgement {
        cost,
        bounded: middle,
        kept,
    })
}

/// A motion [`judged`] to explain the frame.
struct Judgement {
    /// Cauchy's mean cost, what explaining the frame clearly better than none is judged by.
    cost: f64,
    /// The median over the voting parts of each part's mean bounded cost ([`bounded`]), what
    /// motions that do are ranked by: a shadow or reflection no mask holds, moving with its
    /// object, lies in a few parts, and the whole frame's mean weighed it against the ground
    /// (session 55: on smooth ground it outweighed the ground).
    bounded: f64,
    /// The parts but those voters whose mean bounded cost is beyond [`OUTLIER`] times the
    /// median's.
    kept: Parts,
}

/// A voting part whose bounded cost at a motion is beyond this many times the median part's is
/// left out when the motion is fitted again ([`CameraTracker::follow`]).
const OUTLIER: f64 = 2.0;

/// The median of `values` (the mean of the middle two of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (values[(n - 1) / 2] + values[n / 2]) / 2.0
}

/// One of a frame's [`TILES`] x [`TILES`] parts: its first row and column, and its size.
struct Part {
    index: usize,
    at: [i64; 2],
    size: [i64; 2],
}

impl Part {
    /// The part of an image [h, w].
    fn of(&self, image: &Tensor) -> Tensor {
        image
            .narrow(0, self.at[0], self.size[0])
            .narrow(1, self.at[1], self.size[1])
    }
}

/// The parts of an image whose `texture` (gradient magnitude) can tell a motion where
/// `weight` [h, w] (1 or 0) counts: a quarter of their pixels counted, and the median texture
/// there at least [`MIN_GRADIENT`].
fn voting_parts(texture: &Tensor, weight: &Tensor) -> Vec<Part> {
    let (h, w) = (weight.size()[0], weight.size()[1]);
    let size = [h / TILES, w / TILES];
    let parts = (0..TILES).flat_map(|i| (0..TILES).map(move |j| (i, j)));
    parts
        .map(|(i, j)| Part {
            index: (i * TILES + j) as usize,
            at: [i * size[0], j * size[1]],
            size,
        })
        .filter(|part| {
            let counted = part.of(weight).gt(0.5);
            let count = counted.sum(Kind::Int64).int64_value(&[]);
            count as f64 >= 0.25 * (size[0] * size[1]) as f64
                && part
                    .of(texture)
                    .masked_select(&counted)
                    .median()
                    .double_value(&[])
                    >= MIN_GRADIENT
        })
        .collect()
}

/// Cauchy's robust cost of a difference: log(1 + (r / scale)^2).
fn cauchy(residual: &Tensor) -> Tensor {
    (residual.square() / (ROBUST_SCALE * ROBUST_SCALE) + 1.0).log()
}

/// Geman and McClure's cost of a difference, r^2 / (r^2 + scale^2): below 1 however large the
/// difference, so a pixel a moving shadow no mask holds darkens costs about as much as one that
/// is merely wrong. Motions are ranked by it, not by Cauchy's, whose cost keeps growing with
/// the shadow's depth: on a clear checkerboard under moving shadows (the validation set's
/// classic_0021) Cauchy's mean ranked a whole-pixel shift a period of the pattern away, which
/// laid the frame's shadows partly over the reference's, above the true one on 16 of 23
/// shaken frames, this cost on none (session 54).
fn bounded(residual: &Tensor) -> Tensor {
    let r2 = residual.square();
    &r2 / (&r2 + ROBUST_SCALE * ROBUST_SCALE)
}

/// The frame's parts along each side for [`judged`].
const TILES: i64 = 4;

/// Parts that must vote, and the share of them that must agree. 70%, not 80% (session 52): on
/// shaken copies of weakly textured or noisy ground a right motion had 70-80% of the parts for
/// it in 56 of its missed frames (a wrong one in 7), and the frames so kept scored +0.007 and
/// +0.012 effect IoU on the videos they changed; no static video moved either way.
const MIN_VOTERS: i64 = 4;
const AGREEMENT: f64 = 0.7;

/// A motion found as a translation alone ([`Model::Translation`]) or from [`searched`]'s start
/// needs half the parts to vote: on a smooth ground whose only texture is the edges of large
/// shadows no mask holds, both found where the shadows moved, which 3 of the 4 and 4 of the 5
/// parts with texture agreed on in a static video (`data/valthird/classic_0003`, session 53).
/// On session 53's shaken copies it costs one frame (148 against 147 of 1296 more than half a
/// pixel off).
const NEW_PATH_MIN_VOTERS: i64 = TILES * TILES / 2;

/// A level of what the estimate compares of a frame.
struct Level {
    /// Luminance [h, w], smoothed a little (a Gauss-Newton step reaches about the blur's width).
    gray: Tensor,
    /// [h, w]: 1 where no mask covers the pixel, else 0.
    free: Tensor,
}

/// A frame's levels at 1/`factor` of its size, then halved down to [`COARSEST_SIDE`], finest
/// first.
fn pyramid(frame: &Tensor, covered: &Tensor, factor: i64) -> Vec<Level> {
    let (h, w) = (covered.size()[0], covered.size()[1]);
    let mut gray = frame
        .to_kind(Kind::Float)
        .mean_dim(0, true, Kind::Float)
        .unsqueeze(0);
    let mut covered = covered.to_kind(Kind::Float).view([1, 1, h, w]);
    let mut levels = Vec::new();
    let mut k = factor;
    loop {
        if k > 1 {
            let kk = [k, k];
            gray = gray.avg_pool2d(kk, kk, [0, 0], false, true, None::<i64>);
            // A pixel any covered pixel falls in is covered.
            covered = covered.max_pool2d(kk, kk, [0, 0], [1, 1], false);
        }
        let (lh, lw) = (gray.size()[2], gray.size()[3]);
        let smooth = |x: &Tensor| x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>);
        // The smoothing spreads an object's edge by two pixels: its masks too, and one more.
        let grown = covered.max_pool2d([7, 7], [1, 1], [3, 3], [1, 1], false);
        let free = grown.le(0.5).to_kind(Kind::Float).view([lh, lw]);
        let gray = smooth(&smooth(&gray)).view([lh, lw]);
        // At the free pixels' mean brightness 1/2, the scale the thresholds here are set in (a
        // frame is then brought to its reference's brightness: `match_brightness`).
        let mean = (&gray * &free).sum(Kind::Float).double_value(&[])
            / free.sum(Kind::Float).double_value(&[]).max(1.0);
        levels.push(Level {
            gray: gray * (0.5 / mean.max(1e-3)),
            free,
        });
        if lh.min(lw) < 2 * COARSEST_SIDE {
            return levels;
        }
        k = 2;
    }
}

/// Brings each of the frame's levels to the reference's brightness: the median ratio of the
/// two over the pixels free in both. A camera hunting for exposure scales every pixel alike;
/// an unmasked shadow or reflection that moves darkens or brightens a minority of them, which
/// a median ignores and a mean does not (on a smooth gradient the shift that makes up such a
/// mean's difference explains every part of the frame: session 48's false alarm).
fn match_brightness(frame: &mut [Level], reference: &[Level]) {
    for (level, reference) in frame.iter_mut().zip(reference) {
        let both = &level.free * &reference.free;
        level.gray = matched_brightness(level.gray.shallow_clone(), &reference.gray, &both);
    }
}

/// The pyramid stops above this many pixels on its shorter side.
const COARSEST_SIDE: i64 = 24;

/// Gauss-Newton steps from `start` for the motion (d, turn, zoom) minimising the robustly weighted
/// squared difference of frame(c + L (p - c) + d) and the reference over the pixels free in
/// both (and away from the borders).
/// Without texture to align by (a bare wall) the motion stays where it started. A
/// [`Model::Translation`] keeps `start`'s turn and zoom.
fn refine(frame: &Level, reference: &Level, start: Similarity, model: Model) -> Similarity {
    let (h, w) = (frame.gray.size()[0], frame.gray.size()[1]);
    let opts = (Kind::Float, frame.gray.device());
    // Each compared pixel's place about the centre (the inner [h - 2, w - 2]).
    let ys = (Tensor::arange_start(1, h - 1, opts) - (h - 1) as f64 / 2.0).view([h - 2, 1]);
    let xs = (Tensor::arange_start(1, w - 1, opts) - (w - 1) as f64 / 2.0).view([1, w - 2]);
    let half_diagonal = ((h * h + w * w) as f64).sqrt() / 2.0;
    let mut motion = start;
    for _ in 0..MAX_STEPS {
        let Comparison {
            residual,
            gy,
            gx,
            weight,
        } = compare(frame, reference, motion, margin_for(motion, frame));
        // Cauchy's weights: what no mask holds but moves against the ground (a shadow, a
        // reflection) counts for little.
        let weight = weight / (residual.square() / (ROBUST_SCALE * ROBUST_SCALE) + 1.0);
        // The frame's gradients where each pixel is sampled (the moved frame's turned back,
        // L^-T = R / scale for L = scale R), and how the sample moves with d (the identity),
        // with the turn (scale R' (p - c)) and with the zoom (L (p - c)).
        let (sin, cos) = motion.turn.sin_cos();
        let scale = motion.zoom.exp();
        let (fy, fx) = (
            (&gy * cos - &gx * sin) / scale,
            (&gy * sin + &gx * cos) / scale,
        );
        // Too little texture in either direction: nothing to align by.
        let textured = |normal: &[[f64; 2]; 2]| {
            let (yy, xx, yx) = (normal[0][0], normal[1][1], normal[0][1]);
            !(yy * xx - yx * yx <= MIN_TEXTURE * (yy + xx).powi(2).max(1e-12) || yy + xx < 1e-6)
        };
        // A translation alone needs neither the turn's nor the zoom's columns.
        let step = match model {
            Model::Similarity => {
                let by_turn =
                    (&fy * (&ys * -sin - &xs * cos) + &fx * (&ys * cos - &xs * sin)) * scale;
                let by_zoom =
                    (&fy * (&ys * cos - &xs * sin) + &fx * (&ys * sin + &xs * cos)) * scale;
                let (normal, gradient) =
                    normal_equations([fy, fx, by_turn, by_zoom], &residual, &weight);
                let translation = [[normal[0][0], normal[0][1]], [normal[1][0], normal[1][1]]];
                textured(&translation)
                    .then(|| solve(normal, gradient.map(|g| -g)))
                    .flatten()
            }
            Model::Translation => {
                let (normal, gradient) = normal_equations([fy, fx], &residual, &weight);
                textured(&normal)
                    .then(|| solve(normal, gradient.map(|g| -g)))
                    .flatten()
                    .map(|[dy, dx]| [dy, dx, 0.0, 0.0])
            }
        };
        let Some(step) = step else {
            return start;
        };
        // The turn's and the zoom's steps kept to a pixel at the corners.
        let turn_step = step[2].clamp(-1.0 / half_diagonal, 1.0 / half_diagonal);
        let zoom_step = step[3].clamp(-1.0 / half_diagonal, 1.0 / half_diagonal);
        motion = Similarity {
            shift: [
                motion.shift[0] + step[0].clamp(-1.0, 1.0),
                motion.shift[1] + step[1].clamp(-1.0, 1.0),
            ],
            turn: motion.turn + turn_step,
            zoom: motion.zoom + zoom_step,
        };
        if step[0]
            .abs()
            .max(step[1].abs())
            .max(turn_step.abs().max(zoom_step.abs()) * half_diagonal)
            < 1e-3
        {
            break;
        }
    }
    motion
}

/// The Gauss-Newton normal equations of the weighted least squares: J^T W J and J^T W r, each
/// column of J one of `jacobian` (per pixel, as `residual` and `weight`).
fn normal_equations<const N: usize>(
    jacobian: [Tensor; N],
    residual: &Tensor,
    weight: &Tensor,
) -> ([[f64; N]; N], [f64; N]) {
    let sum = |x: Tensor| (x * weight).sum(Kind::Double).double_value(&[]);
    let mut normal = [[0.0; N]; N];
    let mut gradient = [0.0; N];
    for i in 0..N {
        for j in i..N {
            normal[i][j] = sum(&jacobian[i] * &jacobian[j]);
            normal[j][i] = normal[i][j];
        }
        gradient[i] = sum(&jacobian[i] * residual);
    }
    (normal, gradient)
}

/// x with a x = b for a symmetric positive definite a (Cholesky), `None` where a is
/// (numerically) singular.
fn solve<const N: usize>(a: [[f64; N]; N], b: [f64; N]) -> Option<[f64; N]> {
    let mut l = [[0.0; N]; N];
    for i in 0..N {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - sum;
                if d <= 1e-12 * a[i][i].abs().max(1e-300) {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - sum) / l[j][j];
            }
        }
    }
    let mut y = [0.0; N];
    for i in 0..N {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = [0.0; N];
    for i in (0..N).rev() {
        x[i] = (y[i] - (i + 1..N).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    Some(x)
}

/// Differences of luminance (in [0, 1]) about this large count half as much as small ones.
const ROBUST_SCALE: f64 = 0.03;

/// Gauss-Newton steps at most per level.
const MAX_STEPS: usize = 30;

/// The texture's weaker direction must hold at least this share of its gradients' energy
/// (the determinant over the trace squared: 1/4 for texture alike in every direction, 0 for
/// stripes, which fix no shift along them).
const MIN_TEXTURE: f64 = 0.01;
