//! Evaluation metrics (reference eval): effect IoU of each layer's "object + effects" region,
//! and PSNR. Colours in [0, 1].

use tch::{Kind, Tensor};

/// A pixel belongs to a layer's region where the layer composited over the background differs
/// from the background by more than this: summed squared RGB difference on the 0-255 scale.
pub const REGION_THRESHOLD: f64 = 0.25 * 255.0;

/// Region of an RGBA layer [.., 4, H, W] over a background [.., 3, H, W]: bool [.., 1, H, W].
pub fn effect_region(layer: &Tensor, background: &Tensor) -> Tensor {
    let rgb = layer.narrow(-3, 0, 3);
    let alpha = layer.narrow(-3, 3, 1);
    let composite: Tensor = &alpha * rgb + (1.0 - &alpha) * background;
    ((composite - background) * 255.0)
        .square()
        .sum_dim_intlist(-3, true, Kind::Float)
        .gt(REGION_THRESHOLD)
}

/// Intersection over union of two boolean masks; 1 when both are empty.
pub fn iou(a: &Tensor, b: &Tensor) -> f64 {
    let inter = a.logical_and(b).sum(Kind::Float).double_value(&[]);
    let union = a.logical_or(b).sum(Kind::Float).double_value(&[]);
    if union == 0.0 {
        1.0
    } else {
        inter / union
    }
}

/// Peak signal-to-noise ratio in dB of images in [0, 1].
pub fn psnr(a: &Tensor, b: &Tensor) -> f64 {
    let mse = (a - b).square().mean(Kind::Float).double_value(&[]);
    10.0 * (1.0 / mse.max(1e-12)).log10()
}
