//! CNN encoder Φ (supplementary Sec. 1, "CNN Encoder"): pix2pix blocks
//! conv64-conv128-conv256-conv256, 4x4 stride 2, instance norm except on the first block,
//! LeakyReLU 0.2. The supplementary lists three blocks, but tokens live at H/16, which needs
//! the fourth 256 block the reference has. The same shape serves images (3 ch) and masks (1 ch).

use super::layers::{Activation, ConvBlock};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

#[derive(Debug)]
pub struct Encoder {
    blocks: Vec<ConvBlock>,
}

/// Encoder output: tokens at H/16 and the first block's H/2 features (the decoder's skip).
pub struct Encoded {
    /// [N, 4f, H/16, W/16]
    pub features: Tensor,
    /// [N, f, H/2, W/2]
    pub skip: Tensor,
}

impl Encoder {
    pub fn new(vs: nn::Path, in_channels: i64, f: i64, compute: Kind) -> Self {
        let widths = [(in_channels, f), (f, 2 * f), (2 * f, 4 * f), (4 * f, 4 * f)];
        let blocks = widths
            .iter()
            .enumerate()
            .map(|(i, &(c_in, c_out))| {
                // Following Omnimatte (Lu et al. 2021): no normalisation in the first block.
                ConvBlock::down(&vs / i, c_in, c_out, i > 0, Activation::LeakyRelu, compute)
            })
            .collect();
        Self { blocks }
    }

    /// `xs`: [N, C, H, W] in [-1, 1], H and W multiples of 16.
    pub fn forward(&self, xs: &Tensor) -> Encoded {
        let skip = self.blocks[0].forward(xs);
        let features = self.blocks[1..]
            .iter()
            .fold(skip.shallow_clone(), |h, b| b.forward(&h));
        // Tokens enter the transformer's fp32 sums; the skip only feeds the decoder's last
        // convolution and stays in the compute precision.
        Encoded {
            features: features.to_kind(Kind::Float),
            skip,
        }
    }
}
