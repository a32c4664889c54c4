//! Compute precision: bf16 where the hardware has it, fp32 otherwise; one network code path.

mod common;

use common::{max_abs_diff, seeded, square_with_shadow};
use gstomnimatte::model::precision::{
    self as precision, cpu_flags_have_bf16, hold_for_inference, is_channels_last, to_channels_last,
    ConvGeometry, CPU_BF16_ENV,
};
use gstomnimatte::model::{ModelConfig, OmnimatteNet, Precision, PrecisionChoice};
use gstomnimatte::train::{Batch, TrainConfig, Trainer};
use tch::{nn, Device, Kind, Tensor};

fn net(precision: Precision) -> (nn::VarStore, OmnimatteNet) {
    seeded(11, || {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ModelConfig {
            precision,
            ..ModelConfig::default()
        };
        let net = OmnimatteNet::new(&vs.root(), cfg).unwrap();
        (vs, net)
    })
}

#[test]
fn cpu_flags_decide_bf16() {
    let with = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n";
    let amx = "flags\t\t: fpu avx2 amx_bf16 amx_tile\n";
    let without = "flags\t\t: fpu sse avx2 avx512f\n";
    assert!(cpu_flags_have_bf16(with));
    assert!(cpu_flags_have_bf16(amx));
    assert!(!cpu_flags_have_bf16(without));
    assert!(!cpu_flags_have_bf16(""));
}

#[test]
fn auto_falls_back_to_fp32_where_the_cpu_lacks_bf16_and_explicit_choices_hold() {
    // Only this test sets the variable; the decision reads it on each call.
    std::env::set_var(CPU_BF16_ENV, "0");
    assert_eq!(PrecisionChoice::Auto.resolve(Device::Cpu), Precision::Fp32);
    // Asked for explicitly, bf16 is kept, with a warning that it is emulated.
    let warning = Precision::Bf16.emulation_warning(Device::Cpu).unwrap();
    assert!(warning.contains("emulates bf16"), "{warning}");
    assert_eq!(Precision::Fp32.emulation_warning(Device::Cpu), None);
    std::env::set_var(CPU_BF16_ENV, "1");
    assert_eq!(PrecisionChoice::Auto.resolve(Device::Cpu), Precision::Bf16);
    assert_eq!(Precision::Bf16.emulation_warning(Device::Cpu), None);
    std::env::remove_var(CPU_BF16_ENV);
    assert_eq!(PrecisionChoice::Fp32.resolve(Device::Cpu), Precision::Fp32);
    assert_eq!(PrecisionChoice::Bf16.resolve(Device::Cpu), Precision::Bf16);
    assert_eq!(
        "bf16".parse::<PrecisionChoice>().unwrap(),
        PrecisionChoice::Bf16
    );
    let err = "half".parse::<PrecisionChoice>().unwrap_err().to_string();
    assert!(err.contains("auto, fp32 or bf16"), "{err}");
}

#[test]
fn bf16_layers_stay_close_to_fp32_with_the_same_weights() {
    let (vs32, net32) = net(Precision::Fp32);
    let (mut vs16, net16) = net(Precision::Bf16);
    vs16.copy(&vs32).unwrap();
    let (frames, masks, _) = square_with_shadow(5, 64, 64);
    let visible = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0]).view([1, 5]);
    let (a, b) = tch::no_grad(|| {
        (
            net32.forward(&frames, &masks, &visible, false).unwrap(),
            net16.forward(&frames, &masks, &visible, false).unwrap(),
        )
    });
    assert_eq!(a.kind(), tch::Kind::Float, "outputs leave as fp32");
    assert_eq!(b.kind(), tch::Kind::Float, "outputs leave as fp32");
    // bf16 keeps 8 bits of mantissa: on a [-1, 1] output, about 1e-2 on average and a tenth at
    // the worst pixel of a random (untrained, so badly conditioned) network.
    let worst = max_abs_diff(&a, &b);
    let mean = (&a - &b).abs().mean(tch::Kind::Float).double_value(&[]);
    assert!(mean < 0.015, "bf16 differs from fp32 by {mean} on average");
    assert!(worst < 0.2, "bf16 differs from fp32 by {worst} at worst");
    assert!(worst > 0.0, "bf16 must actually compute in bf16");
}

#[test]
fn weights_held_in_bf16_for_inference_give_the_layers_of_casting_at_every_call() {
    let (vs32, net32) = net(Precision::Fp32);
    let (mut vs, net16) = net(Precision::Bf16);
    vs.copy(&vs32).unwrap();
    let (frames, masks, _) = square_with_shadow(5, 64, 64);
    let visible = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0]).view([1, 5]);
    let run = || tch::no_grad(|| net16.forward(&frames, &masks, &visible, false).unwrap());
    let cast_per_call = run();
    let fp32 = tch::no_grad(|| net32.forward(&frames, &masks, &visible, false).unwrap());
    hold_for_inference(&vs, Precision::Bf16);
    let variables = vs.variables();
    let kind = |name: &str| variables[name].kind();
    // Convolutions and linear layers in bf16; norms, embeddings and positions untouched.
    assert_eq!(kind("decoder.0.conv.weight"), tch::Kind::BFloat16);
    assert_eq!(kind("transformer.0.mlp_in.weight"), tch::Kind::BFloat16);
    assert_eq!(kind("decoder.0.norm.weight"), tch::Kind::Float);
    assert_eq!(kind("image_position.x"), tch::Kind::Float);
    assert_eq!(kind("hidden_embedding"), tch::Kind::Float);
    // Held weights also run the convolutions channels-last, whose bf16 kernels sum in another
    // order (and differ between CPUs): the same layers up to bf16's rounding, so no further
    // from casting at every call than bf16 itself is from fp32.
    let held = run();
    let mean = |a: &Tensor, b: &Tensor| (a - b).abs().mean(Kind::Float).double_value(&[]);
    let (held_mean, held_worst) = (
        mean(&held, &cast_per_call),
        max_abs_diff(&held, &cast_per_call),
    );
    let (bf16_mean, bf16_worst) = (
        mean(&cast_per_call, &fp32),
        max_abs_diff(&cast_per_call, &fp32),
    );
    assert!(
        held_mean <= bf16_mean && held_worst <= bf16_worst,
        "holding the weights in bf16 changed the layers by {held_mean} on average and {held_worst} at worst, more than bf16 differs from fp32 ({bf16_mean}, {bf16_worst})"
    );
    // fp32 inference is left as it is.
    hold_for_inference(&vs32, Precision::Fp32);
    assert!(vs32
        .variables()
        .values()
        .all(|t| t.kind() == tch::Kind::Float));
}

#[test]
fn bf16_training_keeps_fp32_weights_and_lowers_the_loss() {
    let (vs, net) = net(Precision::Bf16);
    let (frames, masks, background) = square_with_shadow(5, 64, 64);
    let batch = Batch {
        frames,
        masks,
        background,
        visible: Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0]).view([1, 5]),
        targets: None,
        shown_background: None,
    };
    let mut trainer = Trainer::new(
        &vs,
        TrainConfig {
            learning_rate: 3e-4,
            ..TrainConfig::pretraining()
        },
    )
    .unwrap();
    let losses: Vec<f64> = (0..20)
        .map(|_| trainer.step(&net, &batch).unwrap().total)
        .collect();
    for (name, t) in vs.variables() {
        assert_eq!(t.kind(), tch::Kind::Float, "{name} must stay fp32");
    }
    let (first, last) = (
        losses[..3].iter().sum::<f64>(),
        losses[17..].iter().sum::<f64>(),
    );
    assert!(last < first, "losses {losses:?}");
}

/// Weights held for inference on the CPU run the convolutions channels-last (several times
/// faster there) with the same numbers; weights as trained keep NCHW (faster backward passes).
#[test]
fn weights_held_for_inference_run_convolutions_channels_last_with_the_same_numbers() {
    seeded(5, || {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        let conv = nn::conv2d(vs.root() / "down", 8, 16, 4, cfg);
        let up_cfg = nn::ConvTransposeConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        let up = nn::conv_transpose2d(vs.root() / "up", 16, 8, 4, up_cfg);
        let geometry = ConvGeometry {
            stride: 2,
            padding: 1,
        };
        let xs = Tensor::randn([2, 8, 12, 20], (Kind::Float, Device::Cpu));
        let run = || {
            let down = precision::conv2d(&conv, &xs, geometry, Kind::Float);
            let back = precision::conv_transpose2d(&up, &down, geometry, Kind::Float);
            (down, back)
        };
        let (trained_down, trained_back) = run();
        assert!(!is_channels_last(&trained_down) && !is_channels_last(&trained_back));

        hold_for_inference(&vs, Precision::Fp32);
        let (down, back) = run();
        assert!(is_channels_last(&down) && is_channels_last(&back));
        assert_eq!(back.size(), [2, 8, 12, 20]);
        assert!(max_abs_diff(&down, &trained_down) < 1e-5);
        assert!(max_abs_diff(&back, &trained_back) < 1e-5);
        let again = to_channels_last(&down);
        assert_eq!(
            again.data_ptr(),
            down.data_ptr(),
            "a channels-last tensor is not copied"
        );
    });
}
