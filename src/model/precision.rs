//! Compute precision of the network: bf16 for convolutions, matmuls and attention where the
//! hardware has it, fp32 otherwise. One implementation for training and inference.
//!
//! tch has no CPU autocast, so the layers cast for themselves, following autocast's policy:
//! convolutions, linear layers and attention take bf16 inputs and weights and give bf16;
//! normalisation statistics, residual sums, the positional tables, the encoders' tokens and
//! the output tanh are fp32. Weights stay fp32
//! (training keeps fp32 master weights and optimiser state; a cast of a bf16 tensor to bf16 is
//! free, so inference can hold its weights in bf16 once).

use tch::nn;
use tch::{Device, Kind, Tensor};

/// The precision the network computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
}

/// What a user asks for: a precision, or `auto` (bf16 where the hardware computes it natively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrecisionChoice {
    #[default]
    Auto,
    Fp32,
    Bf16,
}

impl std::str::FromStr for PrecisionChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "fp32" => Ok(Self::Fp32),
            "bf16" => Ok(Self::Bf16),
            other => anyhow::bail!("unknown precision {other:?}: expected auto, fp32 or bf16"),
        }
    }
}

impl Precision {
    /// The tensor kind matmuls and convolutions run in.
    pub fn kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }

    /// What to tell the user when `self` is bf16 on a CPU without AMX-BF16 or AVX512-BF16:
    /// libtorch then emulates bf16, and a pretraining step measured about 80 times slower than
    /// in fp32 on an AVX2-only CPU (docs/training.md, sitting 20). `auto` never picks it there.
    pub fn emulation_warning(self, device: Device) -> Option<String> {
        (self == Precision::Bf16 && device == Device::Cpu && !cpu_has_bf16()).then(|| {
            "bf16 was asked for, but this CPU has neither AMX-BF16 nor AVX512-BF16: libtorch \
             emulates bf16 here, many times slower than fp32 (about 80x measured for a training \
             step); use precision auto or fp32"
                .to_string()
        })
    }
}

/// Set `OMNIMATTE_CPU_BF16=0` to behave as on a CPU without bf16 (tests of the fallback), `1`
/// to claim it.
pub const CPU_BF16_ENV: &str = "OMNIMATTE_CPU_BF16";

/// Whether this CPU computes bf16 natively (AMX-BF16 or AVX512-BF16). Without either, libtorch
/// emulates bf16 and is slower than fp32.
pub fn cpu_has_bf16() -> bool {
    match std::env::var(CPU_BF16_ENV).as_deref() {
        Ok("0") => return false,
        Ok("1") => return true,
        _ => {}
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| cpu_flags_have_bf16(&info))
        .unwrap_or(false)
}

/// The decision on the text of /proc/cpuinfo.
pub fn cpu_flags_have_bf16(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .take(1)
        .any(|l| {
            l.split_whitespace()
                .any(|f| f == "amx_bf16" || f == "avx512_bf16")
        })
}

impl PrecisionChoice {
    /// The precision to compute in on `device`. `auto` picks bf16 where the CPU has it
    /// natively, and fp32 on a GPU: on an H200 the bf16 network was no faster at 256x448 and
    /// slower at 128x224 (docs/measurements.md, "On a GPU"); an explicit choice is kept.
    pub fn resolve(self, device: Device) -> Precision {
        match self {
            PrecisionChoice::Fp32 => Precision::Fp32,
            PrecisionChoice::Bf16 => Precision::Bf16,
            PrecisionChoice::Auto => {
                if !device.is_cuda() && cpu_has_bf16() {
                    Precision::Bf16
                } else {
                    Precision::Fp32
                }
            }
        }
    }
}

/// `x` as `kind`, without a copy when it already is.
fn cast(x: &Tensor, kind: Kind) -> Tensor {
    if x.kind() == kind {
        x.shallow_clone()
    } else {
        x.to_kind(kind)
    }
}

/// Whether a 4-D tensor is laid out channels-last (NHWC strides).
pub fn is_channels_last(x: &Tensor) -> bool {
    let (strides, sizes) = (x.stride(), x.size());
    x.dim() == 4 && strides[1] == 1 && strides[3] == sizes[1]
}

/// `x` (4-D) laid out channels-last, without a copy when it already is.
pub fn to_channels_last(x: &Tensor) -> Tensor {
    if is_channels_last(x) {
        x.shallow_clone()
    } else {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    }
}

/// A convolution's input in `kind`, and in its weights' layout: channels-last where
/// [`hold_for_inference`] laid the weights out so (a convolution's output keeps its input's
/// layout, so a chain of layers converts once), as given otherwise.
fn conv_input(xs: &Tensor, weights: &Tensor, kind: Kind) -> Tensor {
    let xs = cast(xs, kind);
    if is_channels_last(weights) {
        to_channels_last(&xs)
    } else {
        xs
    }
}

/// A linear layer computed in `kind`; the result stays in `kind`.
pub fn linear(layer: &nn::Linear, xs: &Tensor, kind: Kind) -> Tensor {
    cast(xs, kind).linear(
        &cast(&layer.ws, kind),
        layer.bs.as_ref().map(|b| cast(b, kind)),
    )
}

/// Stride and padding of a convolution (tch keeps its layers' configs private).
#[derive(Debug, Clone, Copy)]
pub struct ConvGeometry {
    pub stride: i64,
    pub padding: i64,
}

/// A convolution computed in `kind`; the result stays in `kind` (as under autocast: the
/// normalisation after it reads bf16 and accumulates in fp32, see `layers::InstanceNorm`).
pub fn conv2d(conv: &nn::Conv2D, xs: &Tensor, geometry: ConvGeometry, kind: Kind) -> Tensor {
    let ConvGeometry { stride, padding } = geometry;
    let weights = cast(&conv.ws, kind);
    conv_input(xs, &weights, kind).conv2d(
        &weights,
        conv.bs.as_ref().map(|b| cast(b, kind)),
        [stride; 2],
        [padding; 2],
        [1; 2],
        1,
    )
}

/// A transposed convolution computed in `kind`; the result stays in `kind`.
pub fn conv_transpose2d(
    conv: &nn::ConvTranspose2D,
    xs: &Tensor,
    geometry: ConvGeometry,
    kind: Kind,
) -> Tensor {
    let ConvGeometry { stride, padding } = geometry;
    let weights = cast(&conv.ws, kind);
    conv_input(xs, &weights, kind).conv_transpose2d(
        &weights,
        conv.bs.as_ref().map(|b| cast(b, kind)),
        [stride; 2],
        [padding; 2],
        [0; 2],
        1,
        [1; 2],
    )
}

/// A layer norm in fp32 (autocast's policy), whatever its weights are held in.
pub fn layer_norm(norm: &nn::LayerNorm, xs: &Tensor) -> Tensor {
    let float = |t: &Tensor| cast(t, Kind::Float);
    Tensor::layer_norm(
        &float(xs),
        norm.normalized_shape.as_slice(),
        norm.ws.as_ref().map(float).as_ref(),
        norm.bs.as_ref().map(float).as_ref(),
        1e-5,
        false,
    )
}

/// For inference only: holds the convolution and linear weights of `vs` (the variables named
/// `*.weight` with two or more dimensions) in `precision`'s kind once, so that no call casts
/// them again (7.4 M parameters, a few milliseconds a frame on a CPU). On the CPU it also lays
/// the convolution weights out channels-last, and with them the convolutions
/// ([`conv_input`]): oneDNN's inference kernels are several times faster on NHWC than on NCHW
/// (docs/measurements.md: the decoder's last transposed convolution 15.7 ms NCHW against
/// 2.2 ms NHWC in bf16), while training's backward passes are slower there (a training step
/// 1.31 s NCHW against 1.59 s NHWC), so training keeps NCHW. Other devices keep NCHW
/// (unmeasured there). Training needs fp32 master weights: a store held for inference must not
/// be trained or saved afterwards.
pub fn hold_for_inference(vs: &nn::VarStore, precision: Precision) {
    let kind = precision.kind();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            if name.ends_with(".weight") && var.dim() >= 2 {
                let held = cast(&var, kind);
                let held = if var.dim() == 4 && var.device() == Device::Cpu {
                    to_channels_last(&held)
                } else {
                    held
                };
                var.set_data(&held);
            }
        }
    });
}
