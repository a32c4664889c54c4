//! Training augmentation (supplementary Sec. 3; docs/method.md, "Augmentation"): each clip is cropped
//! by up to 10% on every edge, 80% of the time, and resized back to its size. One crop per clip,
//! the same on its frames, masks and background, so the clip stays a consistent video.

use crate::train::Batch;
use rand::rngs::StdRng;
use rand::Rng;
use tch::{Kind, Tensor};

/// How often and how much to crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomCrop {
    /// Chance that a clip is cropped at all.
    pub probability: f64,
    /// Largest crop on each edge, as a fraction of the height (top, bottom) or width.
    pub max_edge_fraction: f64,
}

impl Default for RandomCrop {
    /// The reference's values: 80% of clips, up to 10% per edge.
    fn default() -> Self {
        Self {
            probability: 0.8,
            max_edge_fraction: 0.1,
        }
    }
}

/// The rows and columns kept of an `h` x `w` image: (top, height, left, width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropWindow {
    pub top: i64,
    pub height: i64,
    pub left: i64,
    pub width: i64,
}

impl RandomCrop {
    /// A window for one clip, or None when this clip stays uncropped.
    pub fn draw(&self, h: i64, w: i64, rng: &mut StdRng) -> Option<CropWindow> {
        if !rng.random_bool(self.probability.clamp(0.0, 1.0)) {
            return None;
        }
        let max_rows = (h as f64 * self.max_edge_fraction).floor() as i64;
        let max_cols = (w as f64 * self.max_edge_fraction).floor() as i64;
        let mut edge = |max: i64| rng.random_range(0..=max.max(0));
        let (top, bottom, left, right) = (
            edge(max_rows),
            edge(max_rows),
            edge(max_cols),
            edge(max_cols),
        );
        Some(CropWindow {
            top,
            height: h - top - bottom,
            left,
            width: w - left - right,
        })
    }

    /// Crops each clip of `batch` by its own window and resizes it back.
    pub fn apply(&self, batch: &Batch, rng: &mut StdRng) -> Batch {
        let size = batch.frames.size();
        let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
        let clips = size[0];
        let (mut frames, mut masks, mut backgrounds, mut targets, mut shown) =
            (vec![], vec![], vec![], vec![], vec![]);
        for b in 0..clips {
            let (f, m, bg) = (
                batch.frames.get(b),
                batch.masks.get(b),
                batch.background.get(b),
            );
            // Premultiplied target layers resize like colours.
            let target = batch.targets.as_ref().map(|t| t.get(b));
            let shown_background = batch.shown_background.as_ref().map(|t| t.get(b));
            match self.draw(h, w, rng) {
                Some(window) => {
                    frames.push(crop_resize(&f, window, h, w, Resize::Bilinear));
                    masks.push(crop_resize(&m, window, h, w, Resize::Nearest));
                    backgrounds.push(crop_resize(&bg, window, h, w, Resize::Bilinear));
                    targets.extend(target.map(|t| crop_resize(&t, window, h, w, Resize::Bilinear)));
                    shown.extend(
                        shown_background.map(|t| crop_resize(&t, window, h, w, Resize::Bilinear)),
                    );
                }
                None => {
                    frames.push(f);
                    masks.push(m);
                    backgrounds.push(bg);
                    targets.extend(target);
                    shown.extend(shown_background);
                }
            }
        }
        Batch {
            frames: Tensor::stack(&frames, 0),
            masks: Tensor::stack(&masks, 0),
            background: Tensor::stack(&backgrounds, 0),
            visible: batch.visible.shallow_clone(),
            targets: batch.targets.as_ref().map(|_| Tensor::stack(&targets, 0)),
            shown_background: batch
                .shown_background
                .as_ref()
                .map(|_| Tensor::stack(&shown, 0)),
        }
    }
}

#[derive(Clone, Copy)]
enum Resize {
    /// Colours.
    Bilinear,
    /// Binary masks stay binary.
    Nearest,
}

/// Crops the last two dimensions of `x` (any leading shape) to `window` and resizes to h x w.
fn crop_resize(x: &Tensor, window: CropWindow, h: i64, w: i64, resize: Resize) -> Tensor {
    let shape = x.size();
    let lead = &shape[..shape.len() - 2];
    let cropped = x
        .narrow(-2, window.top, window.height)
        .narrow(-1, window.left, window.width)
        .reshape([-1, 1, window.height, window.width])
        .to_kind(Kind::Float);
    let resized = match resize {
        Resize::Bilinear => cropped.upsample_bilinear2d([h, w], false, None, None),
        // Pixel-centre aligned like the bilinear resize, so masks and colours stay registered.
        Resize::Nearest => cropped.internal_upsample_nearest_exact2d([h, w], None, None),
    };
    let mut out_shape = lead.to_vec();
    out_shape.extend([h, w]);
    resized.reshape(out_shape).to_kind(x.kind())
}
