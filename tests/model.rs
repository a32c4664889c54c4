//! The network (docs/method.md): shapes at working sizes, gradients, determinism, weights.

mod common;

use common::{max_abs_diff, seeded, seeded_net, square_with_shadow};
use gstomnimatte::loss::total_loss;
use gstomnimatte::model::{parameter_count, ModelConfig, OmnimatteNet};
use tch::{nn, Device, Kind, Tensor};

fn random_clip(objects: i64, t: i64, h: i64, w: i64) -> (Tensor, Tensor, Tensor) {
    let (frames, masks) = seeded(5, || {
        let opts = (Kind::Float, Device::Cpu);
        let frames = Tensor::rand([1, t, 3, h, w], opts) * 2.0 - 1.0;
        let masks = Tensor::rand([1, objects, t, 1, h, w], opts).gt(0.7);
        (frames, masks.to_kind(Kind::Float))
    });
    let visible = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0]).view([1, t]);
    (frames, masks, visible)
}

#[test]
fn layers_have_one_rgba_per_object_and_frame_at_several_working_sizes() {
    let (_vs, net) = seeded_net(0);
    for (h, w) in [(64, 64), (64, 112)] {
        let (frames, masks, visible) = random_clip(2, 5, h, w);
        let layers = net.forward(&frames, &masks, &visible, false).unwrap();
        assert_eq!(layers.size(), [1, 2, 5, 4, h, w], "at {h}x{w}");
        let (lo, hi) = (
            layers.min().double_value(&[]),
            layers.max().double_value(&[]),
        );
        assert!(
            (-1.0..=1.0).contains(&lo) && (-1.0..=1.0).contains(&hi),
            "tanh range, got {lo}..{hi}"
        );
    }
}

#[test]
fn decoding_one_frame_matches_the_full_clip() {
    let (_vs, net) = seeded_net(1);
    let (frames, masks, visible) = random_clip(2, 5, 64, 64);
    let all = net.forward(&frames, &masks, &visible, false).unwrap();
    // forward_frame's transformer computes the last layer's queries for that frame alone.
    for index in 0..5 {
        let one = net.forward_frame(&frames, &masks, &visible, index).unwrap();
        assert_eq!(one.size(), [1, 2, 4, 64, 64]);
        let diff = max_abs_diff(&all.select(2, index), &one);
        assert!(diff < 1e-5, "frame {index}: {diff}");
    }
}

#[test]
fn objects_are_independent_players() {
    // Object 0's layer must not depend on object 1's mask: no attention crosses objects.
    let (_vs, net) = seeded_net(2);
    let (frames, masks, visible) = random_clip(2, 5, 64, 64);
    let a = net.forward(&frames, &masks, &visible, false).unwrap();
    let other = masks.copy();
    let _ = other.select(1, 1).fill_(1.0);
    let b = net.forward(&frames, &other, &visible, false).unwrap();
    assert!(max_abs_diff(&a.select(1, 0), &b.select(1, 0)) < 1e-5);
    assert!(max_abs_diff(&a.select(1, 1), &b.select(1, 1)) > 1e-4);
}

#[test]
fn hidden_frames_cannot_be_seen() {
    // Changing a hidden frame's pixels must not change the output: it is blacked out.
    let (_vs, net) = seeded_net(3);
    let (frames, masks, visible) = random_clip(1, 5, 64, 64);
    let a = net.forward(&frames, &masks, &visible, false).unwrap();
    let changed = frames.copy();
    let _ = changed.select(1, 3).fill_(0.5);
    let b = net.forward(&changed, &masks, &visible, false).unwrap();
    assert!(max_abs_diff(&a, &b) < 1e-6);
    let seen = frames.copy();
    let _ = seen.select(1, 0).fill_(0.5);
    let c = net.forward(&seen, &masks, &visible, false).unwrap();
    assert!(max_abs_diff(&a, &c) > 1e-4);
}

#[test]
fn gradients_reach_every_parameter() {
    let (vs, net) = seeded_net(4);
    let (frames, masks, bg) = square_with_shadow(5, 64, 64);
    let visible = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0]).view([1, 5]);
    // Dropout draws from the shared generator: keep it out of the seeded tests' way.
    let layers = seeded(4, || net.forward(&frames, &masks, &visible, true).unwrap());
    let terms = total_loss(&layers, &frames, &bg, &masks, &visible, 1.0);
    terms.total.backward();
    for (name, var) in vs.variables() {
        let grad = var.grad();
        assert!(grad.defined(), "no gradient reaches {name}");
        let norm = grad.norm().double_value(&[]);
        assert!(
            norm > 0.0 && norm.is_finite(),
            "gradient of {name} has norm {norm}"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_output() {
    let (frames, masks, visible) = random_clip(2, 5, 64, 64);
    let (_a, net_a) = seeded_net(42);
    let (_b, net_b) = seeded_net(42);
    let (_c, net_c) = seeded_net(43);
    let out_a = net_a.forward(&frames, &masks, &visible, false).unwrap();
    let out_b = net_b.forward(&frames, &masks, &visible, false).unwrap();
    let out_c = net_c.forward(&frames, &masks, &visible, false).unwrap();
    assert!(out_a.equal(&out_b), "same seed, different output");
    assert!(!out_a.equal(&out_c), "different seeds, same output");
}

#[test]
fn the_network_has_the_papers_size() {
    let (vs, _net) = seeded_net(0);
    let n = parameter_count(&vs);
    // Two 1.71 M encoders, a 2.11 M transformer, a 1.84 M decoder and 4.9 k of embeddings:
    // 7 367 044, module for module the reference's layers. (the design notes quote "about 8.4 M";
    // where the other million would come from is not visible in the reference code.)
    assert_eq!(n, 7_367_044, "{n} parameters");
}

#[test]
fn bad_clip_shapes_are_errors_not_panics() {
    let (_vs, net) = seeded_net(0);
    let (frames, masks, visible) = random_clip(1, 5, 64, 64);
    let err = net
        .forward(&frames.narrow(4, 0, 60), &masks, &visible, false)
        .unwrap_err();
    assert!(err.to_string().contains("masks must be"), "{err}");
    let (frames, masks, visible) = random_clip(1, 5, 48, 40);
    let err = net.forward(&frames, &masks, &visible, false).unwrap_err();
    assert!(err.to_string().contains("multiples of 16"), "{err}");
    let err = net.forward_frame(&frames, &masks, &visible, 7).unwrap_err();
    assert!(
        err.to_string().contains("multiples of 16") || err.to_string().contains("outside"),
        "{err}"
    );
    let bad = ModelConfig {
        pos_t_dim: 32,
        ..ModelConfig::default()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    assert!(OmnimatteNet::new(&vs.root(), bad).is_err());
}
