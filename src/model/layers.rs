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
        // Instance norm is group norm with one channel per group. Statistics and normalisation
        // are computed in fp32 (autocast's policy) whatever the input is held in: libtorch's
        // CPU group norm takes bf16 input with fp32 scale and shift and accumulates in fp32,
        // which saves the casts to fp32 and back and the batch-norm reshapes of
        // `instance_norm` (a sixth of a bf16 forward at 128x224). Other devices get fp32 input.
        let channels = self.weight.size()[0];
        let xs = if xs.device() != tch::Device::Cpu {
            xs.to_kind(Kind::Float)
        } else if precision::is_channels_last(xs) && few_pixels_per_channel(xs) {
            // libtorch's channels-last group norm is slow with one group per channel and few
            // pixels per channel (3.1 ms against 0.06 ms NCHW on [2, 256, 16, 28] in bf16);
            // such tensors are small, so the copy to NCHW costs little.
            xs.contiguous()
        } else {
            xs.shallow_clone()
        };
        xs.group_norm(
            channels,
            Some(&self.weight.to_kind(Kind::Float)),
            Some(&self.bias.to_kind(Kind::Float)),
            1e-5,
            false,
        )
    }
}

/// Fewer pixels per channel than this many times the channels (measured crossover, above).
fn few_pixels_per_channel(xs: &Tensor) -> bool {
    let size = xs.size();
    size[2] * size[3] < 16 * size[1]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each channel of each image normalised by its own mean and (biased) variance, then
    /// scaled and shifted: from fp32 input, and from bf16 input as bf16 inference feeds it.
    #[test]
    fn instance_norm_normalises_each_channel_of_each_image() {
        tch::manual_seed(11);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut norm = InstanceNorm::new(vs.root() / "norm", 3);
        tch::no_grad(|| {
            norm.weight.copy_(&Tensor::from_slice(&[1.0f32, 2.0, 0.5]));
            norm.bias.copy_(&Tensor::from_slice(&[0.0f32, -1.0, 3.0]));
        });
        let xs = Tensor::randn([2, 3, 8, 12], (Kind::Float, tch::Device::Cpu)) * 3.0 + 1.0;
        let mean = xs.mean_dim([2, 3].as_slice(), true, Kind::Float);
        let var = xs.var_dim([2, 3].as_slice(), false, true);
        let expected = (&xs - mean) / (var + 1e-5).sqrt() * norm.weight.view([1, 3, 1, 1])
            + norm.bias.view([1, 3, 1, 1]);
        let fp32 = norm.forward(&xs);
        let diff = (&fp32 - &expected).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "fp32 input: {diff}");
        let bf16 = norm
            .forward(&xs.to_kind(Kind::BFloat16))
            .to_kind(Kind::Float);
        let diff = (&bf16 - &expected).abs().max().double_value(&[]);
        assert!(diff < 0.1, "bf16 input: {diff}");
    }
}
