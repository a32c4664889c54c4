//! From the network's working-size alpha to the layers' full-resolution alpha: the upsampling
//! (plain bilinear, or a guided filter that follows the frame's edges) and the mask guidance
//! that makes every object opaque with its mask's own edge. Not in the paper, which outputs the
//! network's alpha as it is (`AlphaMode::Network` keeps that for comparison).

use tch::{Kind, Tensor};

/// How a layer's alpha is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlphaMode {
    /// Where the input mask says "object", the layer is opaque, with the mask's edge; the
    /// network's alpha adds the effects outside the mask.
    #[default]
    MaskGuided,
    /// The network's alpha alone (the paper's behaviour).
    Network,
}

impl std::str::FromStr for AlphaMode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "mask-guided" => Ok(Self::MaskGuided),
            "network" => Ok(Self::Network),
            other => anyhow::bail!("alpha mode {other:?}: expected mask-guided or network"),
        }
    }
}

/// How the working-size layers are brought to the input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Upsampling {
    /// Bilinear interpolation of colour and alpha.
    Bilinear,
    /// Bilinear colour; alpha refined by a guided filter on the full-resolution frame, so that
    /// a shadow's edge follows the image's edge (He et al., "Guided Image Filtering", 2010).
    #[default]
    Guided,
}

impl std::str::FromStr for Upsampling {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "bilinear" => Ok(Self::Bilinear),
            "guided" => Ok(Self::Guided),
            other => anyhow::bail!("upsampling {other:?}: expected guided or bilinear"),
        }
    }
}

/// Regularisation of the guided filter: larger keeps more of the bilinear alpha where the
/// frame is flat (variance well below it), smaller follows weaker edges.
pub const GUIDED_EPSILON: f64 = 1e-3;

/// Radius of the guided filter's windows at the working size.
pub const GUIDED_RADIUS: i64 = 1;

/// Working-size layers [L, 4, h, w] to the frame's size [L, 4, H, W]. `frame` [3, H, W] in
/// [0, 1] guides the alpha in `Upsampling::Guided`.
pub fn upsample_layers(rgba: &Tensor, frame: &Tensor, upsampling: Upsampling) -> Tensor {
    let (h, w) = (frame.size()[1], frame.size()[2]);
    let (small_h, small_w) = (rgba.size()[2], rgba.size()[3]);
    if (small_h, small_w) == (h, w) {
        return rgba.shallow_clone();
    }
    let bilinear = |x: &Tensor| x.upsample_bilinear2d([h, w], false, None, None);
    if upsampling == Upsampling::Bilinear {
        return bilinear(rgba);
    }
    // Colour bilinear, alpha guided, written into one [L, 4, H, W] (no concatenation: at
    // 720p each full-size pass over the layers is a few milliseconds).
    let mut alpha = guided_upsample(
        &luminance(frame),
        &rgba.narrow(1, 3, 1),
        GUIDED_RADIUS,
        GUIDED_EPSILON,
    );
    let up = Tensor::empty([rgba.size()[0], 4, h, w], (rgba.kind(), rgba.device()));
    up.narrow(1, 0, 3).copy_(&bilinear(&rgba.narrow(1, 0, 3)));
    up.narrow(1, 3, 1).copy_(&alpha.clamp_(0.0, 1.0));
    up
}

/// Box mean over a (2r+1)^2 window, the same size out (edges average what they have).
fn box_mean(x: &Tensor, r: i64) -> Tensor {
    let k = 2 * r + 1;
    x.avg_pool2d([k, k], [1, 1], [r, r], false, false, None::<i64>)
}

/// The guide of the guided upsampling: the frame's luminance, [3, H, W] to [1, 1, H, W].
pub fn luminance(frame: &Tensor) -> Tensor {
    frame.mean_dim(0, true, Kind::Float).unsqueeze(0)
}

/// The guided filter's local linear model of `p` [N, 1, h, w] in the guide [1, 1, h, w]: in
/// each window p = a I + b, averaged over the windows that cover a pixel: (mean a, mean b).
/// Guided upsampling applies it at full resolution as up(a) I + up(b).
pub fn linear_model(guide: &Tensor, p: &Tensor, r: i64, eps: f64) -> (Tensor, Tensor) {
    let mean_i = box_mean(guide, r);
    let mean_p = box_mean(p, r);
    let cov_ip = box_mean(&(guide * p), r) - &mean_i * &mean_p;
    let var_i = box_mean(&(guide * guide), r) - &mean_i * &mean_i;
    let a = cov_ip / (var_i + eps);
    let b = &mean_p - &a * &mean_i;
    (box_mean(&a, r), box_mean(&b, r))
}

/// Guided upsampling (He and Sun, "Fast Guided Filter", 2015): the linear model of the
/// working-size `p` [N, 1, h, w] in the guide brought to that size, its coefficients resized
/// to the guide's full size [1, 1, H, W] and applied there, so that `p`'s edges land on the
/// full-resolution guide's edges.
pub fn guided_upsample(guide: &Tensor, p: &Tensor, r: i64, eps: f64) -> Tensor {
    let (h, w) = (guide.size()[2], guide.size()[3]);
    let (small_h, small_w) = (p.size()[2], p.size()[3]);
    let small_guide = guide.adaptive_avg_pool2d([small_h, small_w]);
    let (a, b) = linear_model(&small_guide, p, r, eps);
    let up = |x: Tensor| x.upsample_bilinear2d([h, w], false, None, None);
    up(a) * guide + up(b)
}

/// `AlphaMode::MaskGuided`: layers [L, 4, H, W] with alpha raised to 1 wherever the object's
/// full-resolution mask [L, 1, H, W] (in {0, 1}) is set. Outside the masks the network's
/// alpha stays: the effects.
pub fn mask_guided(rgba: &Tensor, masks: &Tensor) -> Tensor {
    let guided = rgba.copy();
    let _ = guided
        .narrow(1, 3, 1)
        .clamp_min_tensor_(&masks.to_kind(rgba.kind()));
    guided
}
