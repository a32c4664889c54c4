//! Mirror averaging at inference: the network decomposes the clip and its left-right mirror
//! image, and the two sets of layers are averaged. A scene and its mirror image have mirrored
//! layers (light from the left casts a shadow to the right in one, to the left in the other),
//! so the two predictions are two guesses at the same answer whose errors differ; their mean
//! errs less. It doubles the network's work.
//!
//! Only for the pretrained network: test-time training fits it to the video as it is, never
//! to its mirror image, so afterwards the mirrored pass is the worse guess and the mean is
//! worse than the tuned pass alone (docs/measurements.md, session 16).

use tch::Tensor;

/// The mirror image of images or layers [.., W]: columns in reverse order.
pub fn mirrored(images: &Tensor) -> Tensor {
    images.flip([-1])
}

/// Whether a decomposition averages with the mirror image: when asked (`requested`) and the
/// weights were not fine-tuned on the video.
pub fn averages(requested: bool, fine_tuned: bool) -> bool {
    requested && !fine_tuned
}

/// Below this mean alpha a pixel's colour is the plain mean of the two colours (it is almost
/// transparent either way): avoids dividing by nothing.
const TRANSPARENT: f64 = 1e-4;

/// The mean of two sets of straight-alpha RGBA layers [.., 4, H, W] in [0, 1], taken on
/// premultiplied colour so that the mean's composite over any background is the mean of
/// the two composites.
pub fn average_layers(a: &Tensor, b: &Tensor) -> Tensor {
    let (rgb_a, alpha_a) = (a.narrow(-3, 0, 3), a.narrow(-3, 3, 1));
    let (rgb_b, alpha_b) = (b.narrow(-3, 0, 3), b.narrow(-3, 3, 1));
    let alpha: Tensor = (&alpha_a + &alpha_b) * 0.5;
    let premultiplied: Tensor = (&rgb_a * &alpha_a + &rgb_b * &alpha_b) * 0.5;
    let plain: Tensor = (&rgb_a + &rgb_b) * 0.5;
    let rgb = plain.where_self(
        &alpha.le(TRANSPARENT),
        &(premultiplied / alpha.clamp_min(TRANSPARENT)),
    );
    Tensor::cat(&[rgb, alpha], -3)
}
