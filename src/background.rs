//! Background estimation (supplementary Sec. 4): per RGB channel, the temporal median of the
//! pixels no object mask covers (sum_i M_t^i = 0).
//!
//! Pixels covered in every frame have no observation. Their documented fallback is a fill from
//! the nearest observed pixels: a coarse-to-fine pyramid of observed-only averages, so holes get
//! a smooth, plausible colour from their surroundings (never NaN, never the object's colour).
//! If no pixel was ever observed at all, the plain temporal median (objects included) serves.

use tch::{Kind, Tensor};

/// A background estimate and where it had to be filled in.
pub struct Background {
    /// [C, H, W] in the frames' range.
    pub image: Tensor,
    /// [1, H, W] bool: true where no frame observed the background (filled in).
    pub filled: Tensor,
}

/// `frames` [N, C, H, W]; `covered` [N, 1, H, W], non-zero where any object mask covers the pixel.
pub fn masked_temporal_median(frames: &Tensor, covered: &Tensor) -> Background {
    let frames = frames.to_kind(Kind::Float);
    let covered = covered.ne(0).expand_as(&frames);
    let nan = Tensor::full([1], f64::NAN, (Kind::Float, frames.device()));
    let observations = frames.where_self(&covered.logical_not(), &nan);
    let (median, _) = observations.nanmedian_dim(0, false);
    let seen = covered.logical_not().any_dim(0, false).narrow(0, 0, 1); // [1, H, W]

    let image = if seen.any().int64_value(&[]) != 0 {
        fill_from_neighbours(&median.nan_to_num(0.0, None, None), &seen)
    } else {
        frames.median_dim(0, false).0
    };
    Background {
        image,
        filled: seen.logical_not(),
    }
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
/// median is the estimate, or a clean plate the user gave instead.
///
/// The median is remade once a quarter of the frames held changed (it moves slowly, and
/// remaking it per frame would cost more than the network at small sizes).
pub struct BackgroundModel {
    capacity: usize,
    frames: std::collections::VecDeque<(Tensor, Tensor)>,
    estimate: Option<Tensor>,
    pushes_since_estimate: usize,
    plate: Option<Tensor>,
}

impl BackgroundModel {
    /// Room for `capacity` frames; pushing more forgets the oldest.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            frames: Default::default(),
            estimate: None,
            pushes_since_estimate: 0,
            plate: None,
        }
    }

    /// Uses `plate` [C, H, W] (the frames' range and size) instead of the median from now on:
    /// a clean plate shows no shadow, where a median over a clip in which objects move slowly
    /// keeps the shadows that stayed on a pixel most of the time.
    pub fn set_plate(&mut self, plate: Tensor) {
        self.plate = Some(plate);
    }

    pub fn plate(&self) -> Option<&Tensor> {
        self.plate.as_ref()
    }

    /// Adds a frame [C, H, W] and where masks cover it, [1, H, W] (non-zero: covered).
    pub fn push(&mut self, frame: &Tensor, covered: &Tensor) {
        if self.frames.len() == self.capacity {
            self.frames.pop_front();
        }
        self.frames
            .push_back((frame.shallow_clone(), covered.shallow_clone()));
        self.pushes_since_estimate += 1;
    }

    /// Forgets the frames (a new stream); the plate stays.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.estimate = None;
        self.pushes_since_estimate = 0;
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
            let (frames, covered): (Vec<&Tensor>, Vec<&Tensor>) =
                self.frames.iter().map(|(f, c)| (f, c)).unzip();
            let median = tch::no_grad(|| {
                masked_temporal_median(&Tensor::stack(&frames, 0), &Tensor::stack(&covered, 0))
            });
            self.estimate = Some(median.image);
            self.pushes_since_estimate = 0;
        }
        self.estimate
            .as_ref()
            .expect("estimated above")
            .shallow_clone()
    }
}
