//! CNN decoder (supplementary Sec. 1, "CNN Decoder"): convt256-convt128-convt64-convt64-conv4.
//! Each convt is a 4x4 stride-2 transposed convolution, instance norm and ReLU. As in the
//! reference, the image encoder's H/2 features are concatenated before the last block, and the
//! final 3x3 conv's pre-activation is clipped to [-3, 3] before the tanh.

use super::layers::{Activation, ConvBlock};
use super::precision::{self, ConvGeometry};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// The final 3x3 convolution keeps the size.
const TO_RGBA: ConvGeometry = ConvGeometry {
    stride: 1,
    padding: 1,
};

#[derive(Debug)]
pub struct Decoder {
    blocks: Vec<ConvBlock>,
    to_rgba: nn::Conv2D,
    compute: Kind,
}

impl Decoder {
    pub fn new(vs: nn::Path, f: i64, compute: Kind) -> Self {
        // The last block sees its input concatenated with the f-channel skip.
        let widths = [(4 * f, 4 * f), (4 * f, 2 * f), (2 * f, f), (2 * f, f)];
        let blocks = widths
            .iter()
            .enumerate()
            .map(|(i, &(c_in, c_out))| {
                ConvBlock::up(&vs / i, c_in, c_out, true, Activation::Relu, compute)
            })
            .collect();
        let cfg = nn::ConvConfig {
            stride: TO_RGBA.stride,
            padding: TO_RGBA.padding,
            ..Default::default()
        };
        Self {
            blocks,
            to_rgba: nn::conv2d(&vs / "rgba", f, 4, 3, cfg),
            compute,
        }
    }

    /// `tokens`: [N, 4f, H/16, W/16]; `skip`: [N, f, H/2, W/2].
    /// Returns RGBA in [-1, 1], [N, 4, H, W].
    pub fn forward(&self, tokens: &Tensor, skip: &Tensor) -> Tensor {
        let (last, first) = self.blocks.split_last().expect("decoder has blocks");
        let h = first
            .iter()
            .fold(tokens.shallow_clone(), |h, b| b.forward(&h));
        let h = last.forward(&Tensor::cat(&[h, skip.shallow_clone()], 1));
        // Back to NCHW (convolutions may run channels-last): callers read the planes.
        precision::conv2d(&self.to_rgba, &h, TO_RGBA, self.compute)
            .to_kind(Kind::Float)
            .contiguous()
            .clamp(-3.0, 3.0)
            .tanh()
    }
}
