//! Compute precision: bf16 where the hardware has it, fp32 otherwise; one network code path.

mod common;

use common::{max_abs_diff, seeded, square_with_shadow};
use gstomnimatte::model::precision::{cpu_flags_have_bf16, hold_for_inference, CPU_BF16_ENV};
use gstomnimatte::model::{ModelConfig, OmnimatteNet, Precision, PrecisionChoice};
use gstomnimatte::train::{Batch, TrainConfig, Trainer};
use tch::{nn, Device, Tensor};

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
    std::env::set_var(CPU_BF16_ENV, "1");
    assert_eq!(PrecisionChoice::Auto.resolve(Device::Cpu), Precision::Bf16);
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
fn weights_held_in_bf16_for_inference_give_the_same_layers_as_casting_at_every_call() {
    let (vs, net16) = net(Precision::Bf16);
    let (frames, masks, _) = square_with_shadow(5, 64, 64);
    let visible = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0]).view([1, 5]);
    let run = || tch::no_grad(|| net16.forward(&frames, &masks, &visible, false).unwrap());
    let cast_per_call = run();
    hold_for_inference(&vs, Precision::Bf16);
    let variables = vs.variables();
    let kind = |name: &str| variables[name].kind();
    // Convolutions and linear layers in bf16; norms, embeddings and positions untouched.
    assert_eq!(kind("decoder.0.conv.weight"), tch::Kind::BFloat16);
    assert_eq!(kind("transformer.0.mlp_in.weight"), tch::Kind::BFloat16);
    assert_eq!(kind("decoder.0.norm.weight"), tch::Kind::Float);
    assert_eq!(kind("image_position.x"), tch::Kind::Float);
    assert_eq!(kind("hidden_embedding"), tch::Kind::Float);
    assert!(
        run().equal(&cast_per_call),
        "holding the weights in bf16 changed the layers by {}",
        max_abs_diff(&run(), &cast_per_call)
    );
    // fp32 inference is left as it is.
    let (vs32, _) = net(Precision::Fp32);
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
