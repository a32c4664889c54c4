//! The background as a second image input (not in the paper).
//!
//! The paper's image encoder sees RGB frames only, and the network must tell a shadow from a
//! dark patch of the ground by what it learnt of shadows. At this project's compute it did not
//! learn that: on validation scenes it puts a soft blob of alpha below each object wherever the
//! shadow really falls (docs/training.md, sitting 9). Yet every layer is composited over a
//! background estimate the project already has (the masked temporal median, Sec. 4), and the
//! effects are exactly where the frame differs from it. The image input can carry that
//! difference, frame minus background, as three more channels: zero wherever nothing covers
//! the background, so its weights learn only from objects and their effects (a first try
//! with the background itself, which looks like the frame almost everywhere, left its new
//! weights at noise: sitting 9). The network is left the part of the task that is the paper's:
//! which object an effect belongs to.
//!
//! A hidden frame hides its difference too (zero, while its colour channels are -1), so that
//! the hidden frames' encoding is shared as before. Weights of the three-channel network load
//! into the six-channel one with zeros for the new input channels: the same function, from
//! which training starts.

use tch::Tensor;

/// The image encoder's first convolution: the only tensor whose shape the background changes.
pub const FIRST_CONVOLUTION: &str = "image_encoder.0.conv.weight";

/// `frames` [..., 3, H, W] with their difference to `background` [..., 3, H, W] (broadcast
/// over the leading dimensions, e.g. [B, 1, 3, H, W] for a clip) beside them: [..., 6, H, W].
pub fn with_background(frames: &Tensor, background: &Tensor) -> Tensor {
    let difference = frames - background.to_kind(frames.kind());
    Tensor::cat(&[frames.shallow_clone(), difference], -3)
}

/// What a hidden frame's image input holds, per channel ([C]): -1 (black) for the colour,
/// 0 for the difference to the background.
pub fn hidden_pixel(channels: i64) -> Tensor {
    Tensor::from_slice(&[-1.0f32, -1.0, -1.0, 0.0, 0.0, 0.0]).narrow(0, 0, channels)
}

/// The learning-rate scale of [`FIRST_CONVOLUTION`] that lets the background channels learn
/// `factor` times faster than the frame's ([1, 6, 1, 1]): they start from zero beside weights
/// trained for thousands of steps, which anneal at a small rate.
pub fn learning_rate_scale(factor: f64) -> Tensor {
    Tensor::from_slice(&[1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0])
        .index_fill(0, &Tensor::from_slice(&[3i64, 4, 5]), factor)
        .view([1, 6, 1, 1])
}

/// A stored tensor `name` of shape `stored` made to fit `needed`, where the only difference is
/// the three background channels of [`FIRST_CONVOLUTION`]: zeros for them (the network then
/// ignores the background until it learns to use it). None where the shapes differ otherwise.
pub fn widen(name: &str, stored: &Tensor, needed: &[i64]) -> Option<Tensor> {
    let have = stored.size();
    let fits = name.ends_with(FIRST_CONVOLUTION)
        && have.len() == 4
        && needed.len() == 4
        && have[1] == 3
        && needed[1] == 6
        && (have[0], have[2], have[3]) == (needed[0], needed[2], needed[3]);
    fits.then(|| {
        let zeros = Tensor::zeros(
            [have[0], 3, have[2], have[3]],
            (stored.kind(), stored.device()),
        );
        Tensor::cat(&[stored.shallow_clone(), zeros], 1)
    })
}
