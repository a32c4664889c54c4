//! What the network sees of a frame: its image and its objects' masks at the working size.
//! Streaming inference and test-time training both go through here, so that the network is
//! fine-tuned on exactly the inputs it is later run on.

use tch::{Kind, Tensor};

/// Masks resized to the working size are binarised at this coverage (docs/method.md: 0.6).
pub const MASK_THRESHOLD: f64 = 0.6;

/// The frame [3, H, W] in [0, 1] as the network's input: [1, 3, h, w] in [-1, 1].
pub fn working_image(frame: &Tensor, h: i64, w: i64) -> Tensor {
    resize_area(&frame.unsqueeze(0), h, w) * 2.0 - 1.0
}

/// One binary mask per object, [L, H, W] float, from a label map [H, W] (0 = background,
/// k = object k).
pub fn object_masks(labels: &Tensor, objects: usize) -> Tensor {
    // Compared in the labels' own kind: an 8-bit label map is not widened (at 720p an int64
    // copy is 7 MB a frame).
    let ids = Tensor::arange_start(1, objects as i64 + 1, (labels.kind(), labels.device()));
    labels
        .unsqueeze(0)
        .eq_tensor(&ids.view([-1, 1, 1]))
        .to_kind(Kind::Float)
}

/// Label map [T, H, W] (uint8) from per-object masks [L, T, 1, H, W]: front objects win.
/// The inverse of [`object_masks`] where masks do not overlap.
pub fn label_maps(masks: &Tensor) -> Tensor {
    let l = masks.size()[0];
    let mut labels = masks
        .get(0)
        .squeeze_dim(1)
        .zeros_like()
        .to_kind(Kind::Uint8);
    for k in 0..l {
        let m = masks.get(k).squeeze_dim(1).gt(0.5);
        let _ = labels.masked_fill_(&m, k + 1);
    }
    labels
}

/// Object masks [L, H, W] at the working size: [L, 1, h, w] in {0, 1}, a working pixel
/// belonging to an object when the object covers at least `threshold` of it.
pub fn working_masks(masks: &Tensor, h: i64, w: i64, threshold: f64) -> Tensor {
    resize_area(&masks.unsqueeze(1), h, w)
        .ge(threshold)
        .to_kind(Kind::Float)
}

/// What the network sees of a frame [3, H, W] in [0, 1] with its label map [H, W]: the image
/// [1, 3, h, w] in [-1, 1] and every object's mask [L, 1, h, w] in {0, 1}, at the working size.
pub fn network_inputs(
    frame: &Tensor,
    labels: &Tensor,
    objects: usize,
    (h, w): (i64, i64),
    threshold: f64,
) -> (Tensor, Tensor) {
    tch::no_grad(|| {
        let masks = working_masks(&object_masks(labels, objects), h, w, threshold);
        (working_image(&frame.to_kind(Kind::Float), h, w), masks)
    })
}

/// Where working-size masks [L, 1, h, w] cover a frame: [1, h, w] bool.
pub fn masks_cover(masks: &Tensor) -> Tensor {
    masks.sum_dim_intlist(0, false, Kind::Float).gt(0.0)
}

/// Area resize of [N, C, H, W] to [N, C, h, w] (exact averages when the sizes divide;
/// bilinear when enlarging).
pub fn resize_area(x: &Tensor, h: i64, w: i64) -> Tensor {
    let size = x.size();
    if size[2] == h && size[3] == w {
        return x.shallow_clone();
    }
    if size[2] >= h && size[3] >= w {
        x.adaptive_avg_pool2d([h, w])
    } else {
        x.upsample_bilinear2d([h, w], false, None, None)
    }
}
