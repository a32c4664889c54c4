//! Each loss against a small hand-computed case; hidden-frame weighting; the lambda schedules.

mod common;

use gstomnimatte::loss::{
    alpha_regularization, mask_bootstrap_loss, reconstruction_loss, total_loss, MaskWeightSchedule,
    LAMBDA_R,
};
use tch::{Kind, Tensor};

fn t(values: &[f32], shape: &[i64]) -> Tensor {
    Tensor::from_slice(values).view(shape)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-5
}

/// Two objects, two frames of 1x2 pixels; both layers fully transparent, so the composite is
/// the background. Frame 0 is visible, frame 1 hidden.
fn transparent_case() -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    let layers = Tensor::full([1, 2, 2, 4, 1, 2], -1.0, (Kind::Float, tch::Device::Cpu));
    let bg = Tensor::zeros([1, 1, 3, 1, 2], (Kind::Float, tch::Device::Cpu));
    // Hidden frame errors: pixel 0 off by 0.1 per channel, pixel 1 by 0.2.
    let hidden = t(&[0.1, 0.2, 0.1, 0.2, 0.1, 0.2], &[1, 1, 3, 1, 2]);
    let seen = Tensor::full([1, 1, 3, 1, 2], 0.9, (Kind::Float, tch::Device::Cpu));
    let frames = Tensor::cat(&[seen, hidden], 1);
    // Both objects' masks cover pixel 0 in both frames: an overlap pixel.
    let masks = t(
        &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
        &[1, 2, 2, 1, 1, 2],
    );
    let visible = t(&[1.0, 0.0], &[1, 2]);
    (layers, frames, bg, masks, visible)
}

#[test]
fn reconstruction_counts_hidden_frames_and_downweights_overlaps() {
    let (layers, frames, bg, masks, visible) = transparent_case();
    let (loss, recon) = reconstruction_loss(&layers, &frames, &bg, &masks, &visible);
    // (0.1 * 3 * 0.1 + 1.0 * 3 * 0.2) / (0.1 + 1.0)
    assert!(close(loss.double_value(&[]), (0.03 + 0.6) / 1.1), "{loss}");
    assert_eq!(recon.size(), [1, 2, 3, 1, 2]);
}

#[test]
fn visible_frames_cost_nothing() {
    let (layers, frames, bg, masks, visible) = transparent_case();
    let base = total_loss(&layers, &frames, &bg, &masks, &visible, 1.0)
        .total
        .double_value(&[]);
    let changed = frames.copy();
    let _ = changed.select(1, 0).fill_(-0.7);
    let same = total_loss(&layers, &changed, &bg, &masks, &visible, 1.0)
        .total
        .double_value(&[]);
    assert!(
        close(base, same),
        "a visible frame changed the loss: {base} vs {same}"
    );
    let hidden_changed = frames.copy();
    let _ = hidden_changed.select(1, 1).fill_(-0.7);
    let differs = total_loss(&layers, &hidden_changed, &bg, &masks, &visible, 1.0)
        .total
        .double_value(&[]);
    assert!(!close(base, differs));
}

#[test]
fn alpha_regularization_skips_pixels_occluded_by_front_masks() {
    // One hidden frame of 1x2 pixels. Back layer alpha 0.5, front layer alpha 0;
    // the front object's mask covers pixel 0.
    let back = t(
        &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        &[1, 1, 1, 4, 1, 2],
    );
    let front = t(
        &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0],
        &[1, 1, 1, 4, 1, 2],
    );
    let layers = Tensor::cat(&[back, front], 1);
    let masks = t(&[0.0, 0.0, 1.0, 0.0], &[1, 2, 1, 1, 1, 2]);
    let visible = t(&[0.0], &[1, 1]);
    let reg = alpha_regularization(&layers, &masks, &visible);
    // A = 0.25 at both pixels. Weights: back layer (0, 1), front layer (1, 1): mean over 4.
    let l1 = 3.0 * 0.25 / 4.0;
    let l0 = 3.0 * (2.0 / (1.0 + (-1.25f64).exp()) - 1.0) / 4.0;
    assert!(close(reg.l1.double_value(&[]), l1), "{}", reg.l1);
    assert!(close(reg.l0.double_value(&[]), l0), "{}", reg.l0);
    assert!(close(reg.total().double_value(&[]), l1 + l0));
    // Seen frames are not regularised.
    let seen = alpha_regularization(&layers, &masks, &t(&[1.0], &[1, 1]));
    assert_eq!(seen.total().double_value(&[]), 0.0);
}

#[test]
fn mask_bootstrap_balances_object_and_background_pixels() {
    // 1x4 pixels, mask [1, 0, 0, 0], predicted alpha (in [-1, 1]) [1, 1, -1, -1].
    let mut rgba = vec![0.0f32; 12];
    rgba.extend_from_slice(&[1.0, 1.0, -1.0, -1.0]);
    let layers = t(&rgba, &[1, 1, 1, 4, 1, 4]);
    let masks = t(&[1.0, 0.0, 0.0, 0.0], &[1, 1, 1, 1, 1, 4]);
    // S = 4 * 0.5 * (1 / 2) = 1 on the object, 4 * 0.5 * (1 / 4) = 0.5 off it;
    // only pixel 1 is wrong, by 2: mean = 0.5 * 2 / 4.
    let loss = mask_bootstrap_loss(&layers, &masks, &t(&[0.0], &[1, 1]));
    assert!(close(loss.double_value(&[]), 0.25), "{loss}");
    let seen = mask_bootstrap_loss(&layers, &masks, &t(&[1.0], &[1, 1]));
    assert_eq!(seen.double_value(&[]), 0.0);
}

#[test]
fn total_loss_weighs_the_terms_as_equation_5() {
    let (layers, frames, bg, masks, visible) = transparent_case();
    let terms = total_loss(&layers, &frames, &bg, &masks, &visible, 0.1);
    let expected = terms.reconstruction.double_value(&[])
        + LAMBDA_R * terms.alpha_regularization.double_value(&[])
        + 0.1 * terms.mask.double_value(&[]);
    assert!(close(terms.total.double_value(&[]), expected));
    assert!(
        terms.mask.double_value(&[]) > 0.0,
        "transparent layers miss their masks"
    );
}

#[test]
fn mask_weight_schedules() {
    let pre = MaskWeightSchedule::pretraining();
    assert_eq!(pre.at(0), 1.0);
    assert_eq!(pre.at(999), 1.0);
    assert!(close(pre.at(1000), 0.1));
    assert!(close(pre.at(2000), 0.01));
    let ttt = MaskWeightSchedule::test_time(200, 0.1);
    assert!(close(ttt.at(0), 0.1));
    assert!(close(ttt.at(19), 0.1));
    assert!(close(ttt.at(20), 0.01));
    assert!(close(ttt.at(40), 0.001));
}
