//! The supervised term on synthetic scenes' true layers, and its schedule.

mod common;

use common::seeded_net;
use gstomnimatte::composite::to_signed;
use gstomnimatte::supervision::{
    premultiply, supervised_layer_loss, weighted_layer_loss, SupervisedFrames, SupervisionSchedule,
    SupervisionWeighting,
};
use gstomnimatte::synth::{training_batch, SceneFamily, SynthConfig, TrainingBatchSpec};
use gstomnimatte::train::{TrainConfig, Trainer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

fn layers(alpha: f64, colour: f64) -> Tensor {
    let opts = (Kind::Float, Device::Cpu);
    Tensor::cat(
        &[
            Tensor::full([1, 2, 3, 3, 8, 8], colour, opts),
            Tensor::full([1, 2, 3, 1, 8, 8], alpha, opts),
        ],
        3,
    )
}

#[test]
fn perfect_layers_cost_nothing_and_the_error_is_alpha_plus_premultiplied_colour() {
    let truth = layers(0.5, 0.8);
    let perfect = supervised_layer_loss(&to_signed(&truth), &premultiply(&truth));
    assert!(perfect.double_value(&[]).abs() < 1e-6);
    // Alpha 0.25 instead of 0.5 (colour right): |0.25-0.5| + |0.25*0.8-0.5*0.8| per channel.
    let off = supervised_layer_loss(&to_signed(&layers(0.25, 0.8)), &premultiply(&truth));
    let expected = 0.25 + 0.25 * 0.8;
    assert!((off.double_value(&[]) - expected).abs() < 1e-5);
    // Colour under zero alpha costs nothing.
    let clear = layers(0.0, 0.3);
    let free = supervised_layer_loss(&to_signed(&layers(0.0, 0.9)), &premultiply(&clear));
    assert!(free.double_value(&[]).abs() < 1e-6);
}

#[test]
fn region_balanced_weighting_counts_each_region_by_its_mean() {
    // One object on a 10x10 frame: its mask is 10 pixels, its true effect 5 pixels outside
    // the mask (alpha 0.5), the rest 85. The layer misses the effect and nothing else.
    let opts = (Kind::Float, Device::Cpu);
    let truth = Tensor::zeros([1, 1, 1, 4, 10, 10], opts);
    let mask = Tensor::zeros([1, 1, 1, 1, 10, 10], opts);
    let _ = mask.narrow(-2, 0, 1).fill_(1.0);
    let _ = truth.narrow(-3, 3, 1).narrow(-2, 0, 1).fill_(1.0); // object: opaque black
    let _ = truth
        .narrow(-3, 3, 1)
        .narrow(-2, 1, 1)
        .narrow(-1, 0, 5)
        .fill_(0.5); // its effect: half-transparent black
    let predicted = truth.copy();
    let _ = predicted.narrow(-3, 3, 1).narrow(-2, 1, 1).fill_(0.0);
    let layers = to_signed(&predicted);
    let targets = premultiply(&truth);
    let all_frames =
        SupervisedFrames::All.counted(&Tensor::ones([1, 1], (Kind::Bool, Device::Cpu)));
    let weigh = |w: SupervisionWeighting| {
        weighted_layer_loss(&layers, &targets, &mask, w, &all_frames).double_value(&[])
    };
    // Uniform: 5 pixels of alpha error 0.5 over 100 pixels (colour is black: no error).
    assert!((weigh(SupervisionWeighting::Uniform) - 0.025).abs() < 1e-6);
    // Region-balanced: the effect's own mean, 5 x 0.5 / (5 + 1); mask and rest are right.
    let balanced = 2.5 / 6.0;
    assert!((weigh(SupervisionWeighting::RegionBalanced) - balanced).abs() < 1e-5);
    let mixed = weigh(SupervisionWeighting::Mixed { regions: 0.15 });
    assert!((mixed - (0.025 + 0.15 * balanced)).abs() < 1e-5);
    // Perfect layers cost nothing either way.
    let perfect = to_signed(&truth);
    let zero = weighted_layer_loss(
        &perfect,
        &targets,
        &mask,
        SupervisionWeighting::RegionBalanced,
        &all_frames,
    );
    assert!(zero.double_value(&[]).abs() < 1e-6);
    assert_eq!(
        "mixed:0.15".parse::<SupervisionWeighting>().unwrap(),
        SupervisionWeighting::Mixed { regions: 0.15 }
    );
    assert!("mixed:-1".parse::<SupervisionWeighting>().is_err());
    assert!("balanced".parse::<SupervisionWeighting>().is_err());
}

#[test]
fn seen_frames_supervision_ignores_what_hidden_frames_get_wrong() {
    // Two frames of one object on a 4x4 frame, the first seen, the second hidden. The layer is
    // right on the seen frame and wrong everywhere (alpha off by 1) on the hidden one.
    let opts = (Kind::Float, Device::Cpu);
    let truth = Tensor::zeros([1, 1, 2, 4, 4, 4], opts);
    let predicted = truth.copy();
    let _ = predicted.narrow(2, 1, 1).narrow(-3, 3, 1).fill_(1.0);
    let (layers, targets) = (to_signed(&predicted), premultiply(&truth));
    let mask = Tensor::zeros([1, 1, 2, 1, 4, 4], opts);
    let visible = Tensor::from_slice(&[true, false]).view([1, 2]);
    let loss = |frames: SupervisedFrames, weighting: SupervisionWeighting| {
        let counted = frames.counted(&visible);
        weighted_layer_loss(&layers, &targets, &mask, weighting, &counted).double_value(&[])
    };
    for weighting in [
        SupervisionWeighting::Uniform,
        SupervisionWeighting::Mixed { regions: 0.15 },
    ] {
        assert!(loss(SupervisedFrames::Seen, weighting).abs() < 1e-6);
        assert!(loss(SupervisedFrames::All, weighting) > 0.4);
    }
    // Over all frames the uniform mean is the plain mean: half the pixels off by 1.
    assert!((loss(SupervisedFrames::All, SupervisionWeighting::Uniform) - 0.5).abs() < 1e-6);
    assert_eq!(
        "seen".parse::<SupervisedFrames>().unwrap(),
        SupervisedFrames::Seen
    );
    assert!("visible".parse::<SupervisedFrames>().is_err());
}

#[test]
fn the_schedule_holds_then_fades_to_its_final_fraction() {
    let s = SupervisionSchedule {
        initial: 2.0,
        fade_from: 100,
        fade_to: 200,
        final_fraction: 0.1,
    };
    assert_eq!(s.at(0), 2.0);
    assert_eq!(s.at(100), 2.0);
    assert!((s.at(150) - 1.1).abs() < 1e-9);
    assert!((s.at(200) - 0.2).abs() < 1e-9);
    assert!((s.at(10_000) - 0.2).abs() < 1e-9);
    assert_eq!(SupervisionSchedule::off().at(5), 0.0);
    assert_eq!(SupervisionSchedule::constant(1.0).at(u64::MAX), 1.0);
}

#[test]
fn training_with_supervision_lowers_the_supervised_term_on_synthetic_batches() {
    let (vs, net) = seeded_net(4);
    let spec = TrainingBatchSpec {
        scenes: SynthConfig {
            height: 64,
            width: 64,
            min_objects: 2,
            max_objects: 2,
            family: SceneFamily::World,
            ..SynthConfig::default()
        },
        clip: Default::default(),
        batch_size: 1,
        hidden: gstomnimatte::clip::HiddenPattern::Random { count: 3 },
        crop: None,
        world_share: 0.0,
        shown_background: false,
        median_without_effects_share: 0.0,
    };
    // One fixed batch, so the decrease is the optimiser's and not the data's.
    let batch = training_batch(&spec, &mut StdRng::seed_from_u64(9));
    assert!(
        batch.targets.is_some(),
        "synthetic batches carry the true layers"
    );
    let mut trainer = Trainer::new(
        &vs,
        TrainConfig {
            learning_rate: 3e-4,
            supervision: SupervisionSchedule::constant(1.0),
            ..TrainConfig::pretraining()
        },
    )
    .unwrap();
    let reports: Vec<_> = (0..15)
        .map(|_| trainer.step(&net, &batch).unwrap())
        .collect();
    assert!(reports
        .iter()
        .all(|r| r.lambda_s == 1.0 && r.supervised > 0.0));
    let first = reports[0].supervised;
    let last = reports[14].supervised;
    assert!(last < first * 0.9, "supervised term {first} -> {last}");
}

#[test]
fn a_median_without_the_effects_shows_the_same_scenes_a_cleaner_background() {
    let spec = |share: f64| TrainingBatchSpec {
        scenes: SynthConfig {
            height: 64,
            width: 64,
            min_objects: 2,
            max_objects: 2,
            effects: Some(gstomnimatte::synth::EffectKind::Shadows),
            ..SynthConfig::default()
        },
        clip: Default::default(),
        batch_size: 4,
        hidden: gstomnimatte::clip::HiddenPattern::Random { count: 3 },
        crop: None,
        world_share: 0.0,
        shown_background: true,
        median_without_effects_share: share,
    };
    let masks_only = training_batch(&spec(0.0), &mut StdRng::seed_from_u64(5));
    let without_effects = training_batch(&spec(1.0), &mut StdRng::seed_from_u64(5));
    assert!(
        masks_only.frames.equal(&without_effects.frames),
        "the share changed the scenes"
    );
    let error = |b: &gstomnimatte::train::Batch| {
        let shown = b.shown_background.as_ref().unwrap();
        (shown - &b.background)
            .abs()
            .mean(tch::Kind::Float)
            .double_value(&[])
    };
    assert!(
        error(&without_effects) < error(&masks_only),
        "leaving out the effects did not bring the shown background closer to the truth: {} against {}",
        error(&without_effects),
        error(&masks_only)
    );
}
