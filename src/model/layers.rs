//! Building blocks shared by the encoders and the decoder (pix2pix-style conv blocks).

use super::precision::{self, ConvGeometry};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Instance normalisation with a learnt per-channel scale and shift
/// (Ulyanov et al. 2016; the supplementary's "instance normalization", affine as in the reference).
#[derive(Debug)]
pub struct InstanceNorm {
    weight: Tensor,
    bias: Tensor,
}

impl InstanceNorm {
    pub fn new(vs: nn::Path, channels: i64) -> Self {
        Self {
            weight: vs.var("weight", &[channels], nn::Init::Const(1.0)),
            bias: vs.var("bias", &[channels], nn::Init::Const(0.0)),
        }
    }
}

impl Module for InstanceNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        // Normalisation stays in fp32 (autocast's policy), whatever the weights are held in.
        xs.to_kind(Kind::Float).instance_norm(
            Some(&self.weight.to_kind(Kind::Float)),
            Some(&self.bias.to_kind(Kind::Float)),
            None::<&Tensor>,
            None::<&Tensor>,
            true,
            0.0,
            1e-5,
            false,
        )
    }
}

/// Activation closing a block.
#[derive(Debug, Clone, Copy)]
pub enum Activation {
    /// LeakyReLU with slope 0.2 (encoders).
    LeakyRelu,
    /// ReLU (decoder).
    Relu,
}

impl Activation {
    fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            // max(x, 0.2x) is LeakyReLU(0.2) without a slope argument tch does not expose.
            Activation::LeakyRelu => xs.maximum(&(xs * 0.2)),
            Activation::Relu => xs.relu(),
        }
    }
}

/// The 4x4 stride-2 convolution the blocks use: padding 1 halves (or, transposed, doubles)
/// an even size exactly, as the reference's SAME padding does.
const BLOCK: ConvGeometry = ConvGeometry {
    stride: 2,
    padding: 1,
};

/// A block's convolution: down-sampling (encoders) or transposed (decoder).
#[derive(Debug)]
enum Conv {
    Down(nn::Conv2D),
    Up(nn::ConvTranspose2D),
}

/// conv (or transposed conv) 4x4 stride 2, optional instance norm, activation.
#[derive(Debug)]
pub struct ConvBlock {
    conv: Conv,
    norm: Option<InstanceNorm>,
    activation: Activation,
    /// The kind the convolution computes in (see [`precision`]).
    compute: Kind,
}

impl ConvBlock {
    /// A down-sampling block (encoder): halves H and W.
    pub fn down(
        vs: nn::Path,
        c_in: i64,
        c_out: i64,
        norm: bool,
        act: Activation,
        compute: Kind,
    ) -> Self {
        let cfg = nn::ConvConfig {
            stride: BLOCK.stride,
            padding: BLOCK.padding,
            ..Default::default()
        };
        Self {
            conv: Conv::Down(nn::conv2d(&vs / "conv", c_in, c_out, 4, cfg)),
            norm: norm.then(|| InstanceNorm::new(&vs / "norm", c_out)),
            activation: act,
            compute,
        }
    }

    /// An up-sampling block (decoder): doubles H and W.
    pub fn up(
        vs: nn::Path,
        c_in: i64,
        c_out: i64,
        norm: bool,
        act: Activation,
        compute: Kind,
    ) -> Self {
        let cfg = nn::ConvTransposeConfig {
            stride: BLOCK.stride,
            padding: BLOCK.padding,
            ..Default::default()
        };
        Self {
            conv: Conv::Up(nn::conv_transpose2d(&vs / "conv", c_in, c_out, 4, cfg)),
            norm: norm.then(|| InstanceNorm::new(&vs / "norm", c_out)),
            activation: act,
            compute,
        }
    }
}

impl Module for ConvBlock {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let ys = match &self.conv {
            Conv::Down(c) => precision::conv2d(c, xs, BLOCK, self.compute),
            Conv::Up(c) => precision::conv_transpose2d(c, xs, BLOCK, self.compute),
        };
        let ys = match &self.norm {
            Some(n) => n.forward(&ys),
            None => ys,
        };
        self.activation.apply(&ys)
    }
}
