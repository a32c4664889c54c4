//! The supervised term on synthetic scenes' true layers, and its schedule.

mod common;

use common::seeded_net;
use gstomnimatte::composite::to_signed;
use gstomnimatte::supervision::{premultiply, supervised_layer_loss, SupervisionSchedule};
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
