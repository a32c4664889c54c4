//! Random-crop augmentation: bounds, frequency, and one window per clip for all its tensors.

use gstomnimatte::augment::RandomCrop;
use gstomnimatte::train::Batch;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tch::{Kind, Tensor};

#[test]
fn windows_stay_within_a_tenth_per_edge_and_eight_in_ten_clips_are_cropped() {
    let crop = RandomCrop::default();
    let mut rng = StdRng::seed_from_u64(7);
    let (h, w) = (128, 224);
    let draws = 2000;
    let mut cropped = 0;
    for _ in 0..draws {
        if let Some(win) = crop.draw(h, w, &mut rng) {
            cropped += 1;
            assert!((0..=12).contains(&win.top), "{win:?}");
            assert!((0..=22).contains(&win.left), "{win:?}");
            let (bottom, right) = (h - win.top - win.height, w - win.left - win.width);
            assert!((0..=12).contains(&bottom), "{win:?}");
            assert!((0..=22).contains(&right), "{win:?}");
        }
    }
    let share = cropped as f64 / draws as f64;
    assert!((0.76..0.84).contains(&share), "cropped share {share}");
}

/// A batch whose frames, background and masks all show the same pattern of 8x8 blocks.
fn patterned_batch(clips: i64) -> Batch {
    let (t, l, h, w) = (5, 2, 64, 64);
    let rows = Tensor::arange(h, (Kind::Int64, tch::Device::Cpu)).divide_scalar_mode(8, "floor");
    let cols = Tensor::arange(w, (Kind::Int64, tch::Device::Cpu)).divide_scalar_mode(8, "floor");
    let pattern = ((rows.unsqueeze(1) + cols.unsqueeze(0)).remainder(2)).to_kind(Kind::Float);
    let image = (&pattern * 2.0 - 1.0)
        .expand([clips, t, 3, h, w], false)
        .contiguous();
    Batch {
        frames: image.shallow_clone(),
        masks: pattern.expand([clips, l, t, 1, h, w], false).contiguous(),
        background: image.narrow(1, 0, 1).contiguous(),
        visible: Tensor::ones([clips, t], (Kind::Float, tch::Device::Cpu)),
        targets: Some(pattern.expand([clips, l, t, 4, h, w], false).contiguous()),
        shown_background: None,
    }
}

#[test]
fn a_clip_is_cropped_alike_in_its_frames_masks_and_background() {
    let crop = RandomCrop {
        probability: 1.0,
        max_edge_fraction: 0.1,
    };
    let batch = patterned_batch(4);
    let out = crop.apply(&batch, &mut StdRng::seed_from_u64(3));
    assert_eq!(out.frames.size(), batch.frames.size());
    assert_eq!(out.masks.size(), batch.masks.size());
    assert_eq!(out.background.size(), batch.background.size());
    // Masks stay binary.
    let binary = out.masks.eq(0.0).logical_or(&out.masks.eq(1.0));
    assert!(binary.all().int64_value(&[]) == 1);
    // Frames and background agree with the masks away from the blurred block edges.
    let from_frames = out.frames.gt(0.0).to_kind(Kind::Float);
    let from_background = out.background.gt(0.0).to_kind(Kind::Float);
    let targets = out.targets.as_ref().expect("targets are cropped too");
    assert_eq!(targets.size(), batch.targets.as_ref().unwrap().size());
    let from_targets = targets
        .select(1, 0)
        .narrow(2, 3, 1)
        .gt(0.5)
        .to_kind(Kind::Float);
    let masks = out.masks.select(1, 0).narrow(2, 0, 1); // [B, T, 1, H, W]
    for (name, other) in [
        ("frames", &from_frames),
        ("background", &from_background),
        ("target layers", &from_targets),
    ] {
        let channel = other.narrow(2, 0, 1);
        let disagree = channel.ne_tensor(&masks.narrow(1, 0, channel.size()[1]));
        let share = disagree
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        assert!(share < 0.05, "{name} disagree with masks on {share}");
    }
    // Some clip was actually cropped: the pattern moved.
    let moved = out.masks.ne_tensor(&batch.masks).any().int64_value(&[]);
    assert_eq!(moved, 1);
}

#[test]
fn probability_zero_leaves_the_batch_untouched() {
    let crop = RandomCrop {
        probability: 0.0,
        max_edge_fraction: 0.1,
    };
    let batch = patterned_batch(2);
    let out = crop.apply(&batch, &mut StdRng::seed_from_u64(1));
    assert!(out.frames.equal(&batch.frames));
    assert!(out.masks.equal(&batch.masks));
    assert!(out.background.equal(&batch.background));
}
