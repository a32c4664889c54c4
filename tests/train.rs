//! Training smoke test: AdamW steps on one tiny synthetic clip lower the loss.

mod common;

use common::{seeded_net, square_with_shadow};
use gstomnimatte::loss::total_loss;
use gstomnimatte::train::{Batch, TrainConfig, Trainer};
use tch::Tensor;

#[test]
fn thirty_adamw_steps_lower_the_total_loss() {
    let (vs, net) = seeded_net(3);
    let (frames, masks, background) = square_with_shadow(5, 64, 64);
    let batch = Batch {
        frames,
        masks,
        background,
        visible: Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0]).view([1, 5]),
        targets: None,
        shown_background: None,
    };
    // Evaluate without dropout, so before and after are comparable.
    let eval = || {
        let layers = net
            .forward(&batch.frames, &batch.masks, &batch.visible, false)
            .unwrap();
        tch::no_grad(|| {
            total_loss(
                &layers,
                &batch.frames,
                &batch.background,
                &batch.masks,
                &batch.visible,
                1.0,
            )
        })
        .total
        .double_value(&[])
    };
    let before = eval();
    let mut trainer = Trainer::new(&vs, TrainConfig::pretraining()).unwrap();
    for _ in 0..30 {
        let report = trainer.step(&net, &batch).unwrap();
        assert!(report.total.is_finite());
    }
    assert_eq!(trainer.step_count(), 30);
    let after = eval();
    assert!(after < 0.7 * before, "loss {before} -> {after}");
}
