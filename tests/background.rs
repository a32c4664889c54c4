//! Masked temporal median: exact where the background was ever seen, a fill where not.

use gstomnimatte::background::{
    effects_outside_masks, layers_cover, masked_temporal_median, whole_video_background,
    BackgroundModel, EFFECT_COVER_ALPHA, MEDIAN, WHOLE_VIDEO_FRAMES,
};
use gstomnimatte::dataset::Video;
use gstomnimatte::eval::whole_video_median;
use tch::{Device, Kind, Tensor};

/// Random colours at 8 bits, as the element's and the command line's frames are.
fn eight_bit(t: Tensor) -> Tensor {
    (t * 255.0).round() / 255.0
}

fn textured_background(h: i64, w: i64) -> Tensor {
    tch::manual_seed(11);
    eight_bit(Tensor::rand([3, h, w], (Kind::Float, Device::Cpu)))
}

#[test]
fn a_moving_square_reveals_the_exact_background() {
    let (h, w, n) = (16, 24, 9);
    let bg = textured_background(h, w);
    let mut frames = Vec::new();
    let mut covered = Vec::new();
    for i in 0..n {
        let frame = bg.copy();
        let mask = Tensor::zeros([1, h, w], (Kind::Float, Device::Cpu));
        // A 6x6 square moving 3 px per frame: every pixel is uncovered in some frame.
        let x0 = (i * 3).min(w - 6);
        let _ = frame.narrow(1, 5, 6).narrow(2, x0, 6).fill_(0.95);
        let _ = mask.narrow(1, 5, 6).narrow(2, x0, 6).fill_(1.0);
        frames.push(frame);
        covered.push(mask);
    }
    let est = masked_temporal_median(&Tensor::stack(&frames, 0), &Tensor::stack(&covered, 0));
    assert!(
        est.image.equal(&bg),
        "background differs by {}",
        (&est.image - &bg).abs().max()
    );
    assert_eq!(est.filled.sum(Kind::Int64).int64_value(&[]), 0);
}

#[test]
fn never_uncovered_pixels_get_the_neighbourhood_fill() {
    let (h, w, n) = (16, 16, 5);
    // A smooth horizontal ramp, so the right fill is predictable.
    let ramp = (Tensor::arange(w, (Kind::Float, Device::Cpu)) / (w - 1) as f64).view([1, 1, w]);
    let bg = ramp.expand([3, h, w], false).copy();
    let frames = bg.unsqueeze(0).repeat([n, 1, 1, 1]);
    let _ = frames.narrow(2, 4, 4).narrow(3, 6, 4).fill_(0.0); // a static black object
    let covered = Tensor::zeros([n, 1, h, w], (Kind::Float, Device::Cpu));
    let _ = covered.narrow(2, 4, 4).narrow(3, 6, 4).fill_(1.0);

    let est = masked_temporal_median(&frames, &covered);
    let filled = est.filled.squeeze_dim(0);
    assert_eq!(filled.sum(Kind::Int64).int64_value(&[]), 16);
    assert!(bool::try_from(filled.narrow(0, 4, 4).narrow(1, 6, 4).all()).unwrap());
    assert!(
        est.image.isfinite().all().int64_value(&[]) == 1,
        "NaN in the background"
    );
    // The hole takes colours of the ramp around it, not the object's black.
    let hole = est.image.narrow(1, 4, 4).narrow(2, 6, 4);
    let (lo, hi) = (hole.min().double_value(&[]), hole.max().double_value(&[]));
    assert!(lo > 0.2 && hi < 0.8, "hole filled with {lo}..{hi}");
    // Pixels that were seen are exact.
    let seen = est.filled.logical_not().expand([3, h, w], false);
    assert!(est
        .image
        .masked_select(&seen)
        .equal(&bg.masked_select(&seen)));
}

#[test]
fn a_fully_covered_video_falls_back_to_the_plain_median() {
    let frames = eight_bit(Tensor::rand([4, 3, 8, 8], (Kind::Float, Device::Cpu)));
    let covered = Tensor::ones([4, 1, 8, 8], (Kind::Float, Device::Cpu));
    let est = masked_temporal_median(&frames, &covered);
    assert!(est.image.equal(&frames.median_dim(0, false).0));
    assert_eq!(est.filled.sum(Kind::Int64).int64_value(&[]), 64);
}

#[test]
fn the_median_equals_libtorchs_nanmedian_for_any_count_of_uncovered_frames() {
    // 1 to 40 frames (odd and even counts, sorting networks of 1 to 64 wide), a random share
    // covered per pixel: the same lower median as libtorch's nanmedian over float frames.
    tch::manual_seed(5);
    for n in [1, 2, 3, 7, 16, 17, 40] {
        let (h, w) = (19, 37); // not a multiple of any tile
        let frames = eight_bit(Tensor::rand([n, 3, h, w], (Kind::Float, Device::Cpu)));
        let covered = Tensor::rand([n, 1, h, w], (Kind::Float, Device::Cpu)).gt(0.6);
        let nan = Tensor::full([1], f64::NAN, (Kind::Float, Device::Cpu));
        let reference = frames
            .where_self(&covered.logical_not().expand_as(&frames), &nan)
            .nanmedian_dim(0, false)
            .0;
        let est = masked_temporal_median(&frames, &covered);
        let seen = est.filled.logical_not().expand([3, h, w], false);
        let ours = est.image.masked_select(&seen);
        let theirs = reference.masked_select(&seen);
        assert!(
            ours.equal(&theirs),
            "{n} frames: differs by {}",
            (&ours - &theirs).abs().max()
        );
        let unseen = covered.all_dim(0, false);
        assert!(est.filled.equal(&unseen), "{n} frames: wrong unseen pixels");
    }
}

/// A flat ground of 4x12 pixels whose left quarter a shadow darkens in some frames, with no mask
/// anywhere: the masked median keeps the shadow where it lies in most frames.
struct ShadowedGround {
    ground: Tensor,
    no_mask: Tensor,
    /// [1, H, W]: the left quarter, where the shadow lies.
    shadow: Tensor,
}

impl ShadowedGround {
    fn new() -> Self {
        let (h, w) = (4, 12);
        let no_mask = Tensor::zeros([1, h, w], (Kind::Float, Device::Cpu));
        let shadow = no_mask.copy();
        let _ = shadow.narrow(2, 0, 3).fill_(1.0);
        Self {
            ground: eight_bit(Tensor::full([3, h, w], 0.8, (Kind::Float, Device::Cpu))),
            no_mask,
            shadow,
        }
    }

    /// A model of `capacity` frames pushed with `shadowed(i)` frames, no mask covering them.
    fn model(
        &self,
        capacity: usize,
        frames: usize,
        shadowed: impl Fn(usize) -> bool,
    ) -> BackgroundModel {
        let mut model = BackgroundModel::new(capacity, MEDIAN);
        for i in 0..frames {
            model.push(&self.frame(shadowed(i)), &self.no_mask);
        }
        model
    }

    fn frame(&self, shadowed: bool) -> Tensor {
        let frame = self.ground.copy();
        if shadowed {
            let _ = frame.narrow(2, 0, 3).fill_(0.2);
        }
        eight_bit(frame)
    }

    /// The mean of an estimate's left quarter (0.2 in the shadow, 0.8 on the ground).
    fn left(estimate: &Tensor) -> f64 {
        estimate.narrow(2, 0, 3).mean(Kind::Float).double_value(&[])
    }

    fn is_ground(&self, estimate: &Tensor) -> bool {
        estimate.allclose(&self.ground, 1e-6, 1e-6, false)
    }

    fn assert_ground(&self, estimate: &Tensor, what: &str) {
        assert!(
            self.is_ground(estimate),
            "{what}: the left quarter is {}",
            Self::left(estimate)
        );
    }
}

#[test]
fn covering_a_frames_effects_leaves_them_out_of_later_estimates() {
    // The shadow lies in 3 of 5 frames; no mask covers it, so the masked median keeps it.
    // Once those frames' effects are covered, the estimate is the ground.
    let scene = ShadowedGround::new();
    let model = |covered_ages: &[usize]| {
        let mut model = scene.model(5, 5, |i| i < 3);
        for &age in covered_ages {
            model.cover(age, &scene.shadow);
        }
        model
    };
    let dark = ShadowedGround::left(&model(&[]).estimate());
    assert!(
        (dark - 0.2).abs() < 0.01,
        "the median keeps the shadow: {dark}"
    );
    // Frames 0..3 were pushed 4, 3 and 2 pushes before the latest; age 5 is no longer held.
    scene.assert_ground(
        &model(&[4, 3, 2, 5]).estimate(),
        "the shadow is still in the estimate",
    );
    // Covering two of the three shadowed frames leaves one dark against two seen as ground.
    scene.assert_ground(&model(&[4, 3]).estimate(), "two of three covered");
}

#[test]
fn covering_the_newest_frames_leaves_their_expected_effects_out() {
    // The shadow lies in the 3 newest of 5 frames, which are not decomposed yet: the masked
    // median keeps it until those frames are covered where it is expected.
    let scene = ShadowedGround::new();
    let estimate_after = |count: usize| {
        let mut model = scene.model(5, 5, |i| i >= 2);
        model.cover_newest(count, &scene.shadow);
        model.estimate()
    };
    let dark = ShadowedGround::left(&estimate_after(0));
    assert!((dark - 0.2).abs() < 0.01, "nothing covered: {dark}");
    // Two of the three covered: one dark value against two of the ground, the median is ground.
    for count in [2, 3, 7] {
        scene.assert_ground(
            &estimate_after(count),
            &format!("{count} newest covered: the shadow is still there"),
        );
    }
}

#[test]
fn covers_are_taken_in_at_the_next_estimate_between_whole_remakes() {
    // 16 frames, the shadow in the 10 newest: the median keeps it. Covers for those frames
    // come one estimate later, before a whole remake is due (one push since the last); the
    // next estimate takes them in where they changed the coverage alone.
    let scene = ShadowedGround::new();
    let mut model = scene.model(16, 16, |i| i >= 6);
    let before = model.estimate();
    let dark = ShadowedGround::left(&before);
    assert!(
        (dark - 0.2).abs() < 0.01,
        "the median keeps the shadow: {dark}"
    );
    model.push(&scene.frame(true), &scene.no_mask);
    model.cover_newest(11, &scene.shadow);
    let after = model.estimate();
    scene.assert_ground(&after, "the covers were not taken in");
    assert!(
        (ShadowedGround::left(&before) - 0.2).abs() < 0.01,
        "an estimate handed out before changed"
    );
    // The rest, whose coverage did not change, is what the last whole remake made.
    assert!(after.narrow(2, 3, 9).equal(&before.narrow(2, 3, 9)));

    // Covers over more than a quarter of the frame (here half of it) wait for the next whole
    // remake, four frames on, which takes them in.
    let mut model = scene.model(16, 16, |i| i >= 6);
    let before = model.estimate();
    model.push(&scene.frame(true), &scene.no_mask);
    let half = scene.no_mask.copy();
    let _ = half.narrow(2, 0, 6).fill_(1.0);
    model.cover_newest(11, &half);
    assert!(
        model.estimate().equal(&before),
        "taken in before the whole remake"
    );
    for _ in 0..3 {
        model.push(&scene.frame(false), &scene.no_mask);
    }
    scene.assert_ground(&model.estimate(), "the whole remake did not take them in");

    // Covered in every frame held, the left half is what a whole remake makes there (the
    // memory's values, else the neighbours' fill), not the shadow it showed before.
    let mut model = scene.model(16, 16, |i| i >= 6);
    let _ = model.estimate();
    model.push(&scene.frame(true), &scene.no_mask);
    model.cover_newest(16, &scene.shadow);
    scene.assert_ground(
        &model.estimate(),
        "a pixel no frame leaves free kept its old value",
    );
}

/// The estimate with the covers so far takes them in as the next estimate would (a few
/// pixels at once, over a quarter of the frame at the next whole remake), and reading it
/// changes nothing of what the model does next: the still-ground rule reads it after each
/// frame's covers, and the outputs of the frames after must not depend on whether it did.
#[test]
fn the_estimate_with_covers_taken_in_leaves_the_model_as_it_is() {
    let scene = ShadowedGround::new();
    let half = scene.no_mask.copy();
    let _ = half.narrow(2, 0, 6).fill_(1.0);
    for (covered, at_once) in [(scene.shadow.shallow_clone(), true), (half, false)] {
        let mut read = scene.model(16, 16, |i| i >= 6);
        let mut untouched = scene.model(16, 16, |i| i >= 6);
        let before = read.estimate();
        let _ = untouched.estimate();
        for model in [&mut read, &mut untouched] {
            model.push(&scene.frame(true), &scene.no_mask);
            model.cover_newest(11, &covered);
        }
        let peeked = read.estimate_with_covers(&scene.no_mask.eq(0.0));
        if at_once {
            scene.assert_ground(&peeked, "the covers were not taken in");
        } else {
            assert!(peeked.equal(&before), "taken in before the whole remake");
        }
        for step in 0..6 {
            assert!(
                read.estimate().equal(&untouched.estimate()),
                "step {step}: reading the estimate with covers changed the model"
            );
            for model in [&mut read, &mut untouched] {
                model.push(&scene.frame(step % 2 == 0), &scene.no_mask);
            }
        }
    }
}

#[test]
fn the_effects_outside_the_masks_are_the_cover_less_every_objects_mask() {
    let cover = Tensor::from_slice(&[1u8, 1, 1, 0, 0, 1])
        .view([1, 2, 3])
        .gt(0);
    let labels = Tensor::from_slice(&[0u8, 1, 2, 0, 1, 0]).view([2, 3]);
    let effects = effects_outside_masks(&cover, &labels);
    let expected = Tensor::from_slice(&[1u8, 0, 0, 0, 0, 1])
        .view([1, 2, 3])
        .gt(0);
    assert!(effects.equal(&expected), "{effects}");
}

#[test]
fn a_pixel_covered_for_the_whole_window_keeps_the_background_seen_there_before() {
    // An object arrives on a textured ground after 4 free frames and stays for 6: a ring of 4
    // frames then sees the ground under it nowhere. The frames that left the ring saw it.
    let (h, w) = (12, 16);
    let bg = textured_background(h, w);
    let object = Tensor::zeros([1, h, w], (Kind::Float, Device::Cpu));
    let _ = object.narrow(1, 3, 5).narrow(2, 4, 6).fill_(1.0);
    let no_mask = Tensor::zeros([1, h, w], (Kind::Float, Device::Cpu));
    let stream = |model: &mut BackgroundModel, free_frames: usize| {
        for i in 0..free_frames + 6 {
            if i < free_frames {
                model.push(&bg, &no_mask);
            } else {
                let frame = bg.copy();
                let _ = frame.narrow(1, 3, 5).narrow(2, 4, 6).fill_(0.95);
                model.push(&frame, &object);
            }
        }
    };
    let mut model = BackgroundModel::new(4, MEDIAN);
    stream(&mut model, 4);
    let remembered = model.estimate();
    assert!(
        remembered.equal(&bg),
        "the ground under the object differs by {}",
        (&remembered - &bg).abs().max()
    );
    // Without frames that saw it (a new stream), the same place is a fill of its surroundings.
    model.clear();
    stream(&mut model, 0);
    let filled = model.estimate().narrow(1, 3, 5).narrow(2, 4, 6);
    let error = (&filled - bg.narrow(1, 3, 5).narrow(2, 4, 6))
        .abs()
        .mean(Kind::Float);
    assert!(
        error.double_value(&[]) > 0.05,
        "a fill of random texture cannot match it: error {error}"
    );
}

#[test]
fn a_brighter_quantile_leaves_out_a_shadow_that_lies_there_in_most_frames() {
    // A slow object's shadow on the left half in 10 of 16 frames, no mask over it: the median
    // takes the shadow for the ground, the 0.75 quantile (rank 11 of 16) does not.
    let (h, w) = (4, 6);
    let ground = eight_bit(Tensor::full([3, h, w], 0.8, (Kind::Float, Device::Cpu)));
    let no_mask = Tensor::zeros([1, h, w], (Kind::Float, Device::Cpu));
    let left = |estimate: Tensor| estimate.narrow(2, 0, 3).mean(Kind::Float).double_value(&[]);
    let estimate = |quantile| {
        let mut model = BackgroundModel::new(16, quantile);
        for i in 0..16 {
            let frame = ground.copy();
            if i < 10 {
                let _ = frame.narrow(2, 0, 3).fill_(0.2);
            }
            model.push(&eight_bit(frame), &no_mask);
        }
        model.estimate()
    };
    assert!((left(estimate(MEDIAN)) - 0.2).abs() < 0.01);
    let brighter = estimate(0.75);
    assert!(
        brighter.allclose(&ground, 1e-6, 1e-6, false),
        "the shadow is still in the estimate: {}",
        (&brighter - &ground).abs().max()
    );
}

#[test]
fn a_long_video_is_read_at_spread_frames_and_its_background_recovered() {
    let (h, w, n) = (8, 40, 100);
    let bg = textured_background(h, w);
    let mut read = Vec::new();
    let estimate = whole_video_background(n, MEDIAN, |t| {
        read.push(t);
        // A 4x4 square crossing the frame over the whole video: each pixel covered briefly.
        let (frame, covered) = (
            bg.copy(),
            Tensor::zeros([1, h, w], (Kind::Float, Device::Cpu)),
        );
        let x0 = t * (w - 4) / (n - 1);
        let _ = frame.narrow(1, 2, 4).narrow(2, x0, 4).fill_(0.0);
        let _ = covered.narrow(1, 2, 4).narrow(2, x0, 4).fill_(1.0);
        (frame, covered)
    });
    assert_eq!(read.len() as i64, WHOLE_VIDEO_FRAMES);
    assert!(
        read.windows(2).all(|p| p[0] < p[1]),
        "not in order: {read:?}"
    );
    assert_eq!(read[0], 0);
    assert!(
        *read.last().unwrap() >= n - n / WHOLE_VIDEO_FRAMES - 1,
        "{read:?}"
    );
    assert!(
        estimate.equal(&bg),
        "differs by {}",
        (&estimate - &bg).abs().max()
    );

    let mut short = Vec::new();
    let still = whole_video_background(5, MEDIAN, |t| {
        short.push(t);
        (
            bg.copy(),
            Tensor::zeros([1, h, w], (Kind::Float, Device::Cpu)),
        )
    });
    assert_eq!(short, [0, 1, 2, 3, 4], "a short video is read whole");
    assert!(still.equal(&bg));
}

#[test]
fn a_layers_cover_is_where_their_summed_alpha_passes_the_threshold() {
    // Two layers [2, 4, 1, 3]: alone each stays under the threshold at pixel 1, together
    // they pass it; pixel 0 is empty, pixel 2 is one layer's object.
    let layers = Tensor::zeros([2, 4, 1, 3], (Kind::Float, Device::Cpu));
    let half = EFFECT_COVER_ALPHA * 0.6;
    let _ = layers.get(0).get(3).narrow(1, 1, 1).fill_(half);
    let _ = layers.get(1).get(3).narrow(1, 1, 1).fill_(half);
    let _ = layers.get(1).get(3).narrow(1, 2, 1).fill_(1.0);
    let cover = layers_cover(&layers);
    assert_eq!(cover.size(), [1, 1, 3]);
    assert_eq!(
        Vec::<bool>::try_from(cover.flatten(0, -1)).unwrap(),
        [false, true, true]
    );
}

#[test]
fn a_second_whole_video_median_leaves_out_what_the_first_passs_layers_hold() {
    // A shadow no mask covers lies on the left half in 3 of 5 frames, so the masks-only
    // median keeps it; a first pass whose layers put alpha there lets the second see ground.
    let (t, h, w) = (5, 4, 6);
    let ground = eight_bit(Tensor::full([3, h, w], 0.8, (Kind::Float, Device::Cpu)));
    let frames = ground.unsqueeze(0).repeat([t, 1, 1, 1]);
    let _ = frames
        .narrow(0, 0, 3)
        .narrow(3, 0, 3)
        .fill_(eight_bit(Tensor::from(0.2)).double_value(&[]));
    // One object whose mask is one corner pixel in every frame.
    let masks = Tensor::zeros([1, t, 1, h, w], (Kind::Float, Device::Cpu));
    let _ = masks.narrow(3, 0, 1).narrow(4, w - 1, 1).fill_(1.0);
    let video = Video {
        frames,
        masks,
        background: None,
        gt_layers: None,
    };
    let left = |bg: &Tensor| bg.narrow(2, 0, 3).mean(Kind::Float).double_value(&[]);
    assert!((left(&whole_video_median(&video, None, MEDIAN)) - 0.2).abs() < 0.01);

    // The first pass's layers [1, T, 4, H, W]: the shadow at alpha 0.5 where it is.
    let first = Tensor::zeros([1, t, 4, h, w], (Kind::Float, Device::Cpu));
    let _ = first
        .narrow(1, 0, 3)
        .narrow(2, 3, 1)
        .narrow(4, 0, 3)
        .fill_(0.5);
    let second = whole_video_median(&video, Some(&first), MEDIAN);
    assert!(
        second.allclose(&ground, 1e-6, 1e-6, false),
        "the shadow is still in the second median: {}",
        (&second - &ground).abs().max()
    );
    // Layers that found nothing leave the first median as it was.
    let nothing = whole_video_median(&video, Some(&first.zeros_like()), MEDIAN);
    assert!(nothing.equal(&whole_video_median(&video, None, MEDIAN)));
}

#[test]
fn a_plate_is_the_estimate_and_no_frames_are_held_for_a_median() {
    let plate = Tensor::full([3, 4, 4], 0.25, (Kind::Float, Device::Cpu));
    let mut model = BackgroundModel::new(3, MEDIAN);
    let free = Tensor::zeros([1, 4, 4], (Kind::Bool, Device::Cpu));
    model.push(&Tensor::ones([3, 4, 4], (Kind::Float, Device::Cpu)), &free);
    assert_eq!(model.held(), 1);
    model.set_plate(plate.copy());
    assert_eq!(model.held(), 0, "frames held before the plate are let go");
    for _ in 0..5 {
        model.push(&Tensor::ones([3, 4, 4], (Kind::Float, Device::Cpu)), &free);
    }
    assert_eq!(model.held(), 0, "frames pushed over a plate are not kept");
    assert!(model.estimate().equal(&plate));
}
