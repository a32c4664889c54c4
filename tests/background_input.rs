//! The background as a second image input (`model::background_input`): three-channel weights
//! become the same six-channel function, the background then changes the layers of the
//! frames the network sees and of no hidden one, and streaming and training run with it.

mod common;

use common::{max_abs_diff, seeded, seeded_net, square_with_shadow};
use gstomnimatte::defaults::{TTT_LEARNING_RATE, TTT_MASK_WEIGHT};
use gstomnimatte::model::background_input::{learning_rate_scale, FIRST_CONVOLUTION};
use gstomnimatte::model::weights::{self, Storage};
use gstomnimatte::model::{ModelConfig, OmnimatteNet};
use gstomnimatte::stream::{Decomposer, StreamConfig};
use gstomnimatte::train::{Batch, TrainConfig, Trainer};
use tch::{nn, Device, Kind, Tensor};

fn background_net() -> (nn::VarStore, OmnimatteNet) {
    seeded(7, || {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = ModelConfig {
            background_input: true,
            ..ModelConfig::default()
        };
        let net = OmnimatteNet::new(&vs.root(), config).expect("valid config");
        (vs, net)
    })
}

/// A three-channel network's weights, loaded into a six-channel one.
fn widened(seed: i64, dir: &std::path::Path) -> (nn::VarStore, OmnimatteNet, OmnimatteNet) {
    let (narrow_vs, narrow) = seeded_net(seed);
    let path = dir.join("narrow.safetensors");
    weights::save(&narrow_vs, &path, Storage::F32).unwrap();
    assert!(!weights::sees_background(&path).unwrap());
    let (mut vs, wide) = background_net();
    weights::load(&mut vs, &path).unwrap();
    (vs, wide, narrow)
}

fn clip() -> (Tensor, Tensor, Tensor, Tensor) {
    let (frames, masks, background) = square_with_shadow(5, 64, 64);
    let visible = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 0.0, 0.0]).view([1, 5]);
    (frames, masks, background, visible)
}

#[test]
fn three_channel_weights_load_as_the_same_network() {
    let dir = tempfile::tempdir().unwrap();
    let (vs, wide, narrow) = widened(3, dir.path());
    let (frames, masks, background, visible) = clip();
    let before = narrow.forward(&frames, &masks, &visible, false).unwrap();
    for shown in [
        background.shallow_clone(),
        background.rand_like() * 2.0 - 1.0,
    ] {
        let input = wide.image_input(&frames, &shown);
        assert_eq!(input.size()[2], 6);
        let after = wide.forward(&input, &masks, &visible, false).unwrap();
        let diff = max_abs_diff(&before, &after);
        assert!(diff < 1e-5, "the widened network differs by {diff}");
    }
    // Without the background the six-channel network refuses the clip, with a clear error.
    let err = wide.forward(&frames, &masks, &visible, false).unwrap_err();
    assert!(err.to_string().contains("[B, T, 6, H, W]"), "{err}");
    // Its own weights say that it sees the background.
    let path = dir.path().join("wide.safetensors");
    weights::save(&vs, &path, Storage::F16).unwrap();
    assert!(weights::sees_background(&path).unwrap());
}

#[test]
fn the_background_changes_the_layers_of_seen_frames_only() {
    let dir = tempfile::tempdir().unwrap();
    let (vs, wide, _) = widened(4, dir.path());
    // As if training had taught the background channels something.
    tch::no_grad(|| {
        let conv = vs
            .variables()
            .remove(FIRST_CONVOLUTION)
            .expect("the first convolution");
        let learnt = seeded(5, || conv.narrow(1, 3, 3).randn_like() * 0.1);
        conv.narrow(1, 3, 3).copy_(&learnt);
    });
    let (frames, masks, background, visible) = clip();
    let layers = |shown: &Tensor, visible: &Tensor| {
        wide.forward(&wide.image_input(&frames, shown), &masks, visible, false)
            .unwrap()
    };
    let other = background.flip([-1]);
    let seen = max_abs_diff(&layers(&background, &visible), &layers(&other, &visible));
    assert!(seen > 1e-4, "the background changed nothing ({seen})");
    let all_hidden = visible.zeros_like();
    let hidden = max_abs_diff(
        &layers(&background, &all_hidden),
        &layers(&other, &all_hidden),
    );
    assert!(
        hidden < 1e-6,
        "a hidden frame's background leaked ({hidden})"
    );
}

#[test]
fn a_background_network_streams_every_frame_and_trains_from_narrow_moments() {
    let dir = tempfile::tempdir().unwrap();
    // AdamW's moments of a three-channel run resume into the six-channel network.
    let (narrow_vs, narrow) = seeded_net(6);
    let (frames, masks, background, visible) = clip();
    let batch = Batch {
        frames,
        masks,
        background,
        visible,
        targets: None,
        shown_background: None,
    };
    let mut trainer = Trainer::new(
        &narrow_vs,
        TrainConfig::test_time(10, TTT_LEARNING_RATE, TTT_MASK_WEIGHT),
    )
    .unwrap();
    trainer.step(&narrow, &batch).unwrap();
    let moments = dir.path().join("optim.safetensors");
    trainer.save_optimizer(&moments).unwrap();
    let (wide_vs, wide) = background_net();
    let mut trainer = Trainer::new(
        &wide_vs,
        TrainConfig::test_time(10, TTT_LEARNING_RATE, TTT_MASK_WEIGHT),
    )
    .unwrap();
    trainer.load_optimizer(&moments).unwrap();
    // The background's channels may learn faster than the frame's.
    let scale = learning_rate_scale(30.0);
    assert_eq!(
        Vec::<f32>::try_from(scale.flatten(0, -1)).unwrap(),
        [1.0, 1.0, 1.0, 30.0, 30.0, 30.0]
    );
    trainer
        .scale_learning_rate(FIRST_CONVOLUTION, &scale)
        .unwrap();
    let shown = batch.background.flip([-1]);
    let batch = Batch {
        shown_background: Some(shown),
        ..batch
    };
    let report = trainer.step(&wide, &batch).unwrap();
    assert!(report.total.is_finite());

    // Streaming: one output per frame, every layer finite.
    let config = StreamConfig {
        working_height: 64,
        working_width: 64,
        objects: 1,
        ..StreamConfig::default()
    };
    let mut dec = Decomposer::new(config, Device::Cpu).unwrap();
    let (frames, masks, _) = square_with_shadow(9, 64, 96);
    let mut outputs = Vec::new();
    for i in 0..9 {
        let frame = (frames.get(0).get(i) + 1.0) / 2.0;
        let labels = masks.get(0).get(0).get(i).get(0).to_kind(Kind::Uint8);
        outputs.extend(dec.push(&wide, &frame, &labels).unwrap());
    }
    outputs.extend(dec.finish(&wide).unwrap());
    assert_eq!(outputs.len(), 9);
    for out in &outputs {
        assert_eq!(out.layers.size(), [1, 4, 64, 96]);
        assert!(out.layers.isfinite().all().int64_value(&[]) != 0);
    }
}

#[test]
fn a_hidden_frame_shows_black_and_no_difference() {
    let (_vs, wide) = background_net();
    let frames = seeded(8, || {
        Tensor::rand([1, 2, 3, 16, 16], (Kind::Float, Device::Cpu)) * 2.0 - 1.0
    });
    let background = frames.narrow(1, 0, 1).flip([-1]);
    let input = wide.image_input(&frames, &background);
    // Beside the colour, the difference to the background.
    let difference = max_abs_diff(&input.narrow(2, 3, 3), &(&frames - &background));
    assert!(difference < 1e-6, "{difference}");
    let visible = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
    let hidden = OmnimatteNet::hide_frames(&input, &visible);
    assert!(
        hidden.select(1, 0).equal(&input.select(1, 0)),
        "a seen frame changed"
    );
    let colour = hidden.select(1, 1).narrow(1, 0, 3);
    assert!(
        colour.eq(-1.0).all().int64_value(&[]) != 0,
        "hidden colour is not -1"
    );
    let diff = hidden.select(1, 1).narrow(1, 3, 3);
    assert!(
        diff.eq(0.0).all().int64_value(&[]) != 0,
        "hidden difference is not 0"
    );
}
