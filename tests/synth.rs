//! Synthetic scenes: deterministic, exact ground truth, regions that hold masks and effects.

use gstomnimatte::composite::composite;
use gstomnimatte::dataset::write_png;
use gstomnimatte::synth::{
    generate, generate_panned, window, EffectKind, PhotoLibrary, Scene, SceneFamily, SynthConfig,
    REGION_ALPHA,
};
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

fn config(effects: EffectKind) -> SynthConfig {
    SynthConfig {
        height: 64,
        width: 96,
        frames: 8,
        effects: Some(effects),
        rough_masks: false,
        ..SynthConfig::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_scene() {
    let cfg = SynthConfig {
        height: 64,
        width: 96,
        frames: 6,
        ..SynthConfig::default()
    };
    let (a, b, c) = (generate(&cfg, 7), generate(&cfg, 7), generate(&cfg, 8));
    assert!(a.frames.equal(&b.frames) && a.layers.equal(&b.layers) && a.masks.equal(&b.masks));
    assert!(!a.frames.equal(&c.frames) || a.layers.size() != c.layers.size());
}

#[test]
fn layers_over_the_background_are_the_frames() {
    for (seed, effects) in [
        (1, EffectKind::Shadows),
        (2, EffectKind::Reflections),
        (3, EffectKind::Both),
    ] {
        let s = generate(&config(effects), seed);
        let (l, t) = (s.layers.size()[0], s.layers.size()[1]);
        assert!((2..=4).contains(&l));
        assert_eq!(s.frames.size(), [t, 3, 64, 96]);
        let again = composite(
            &s.layers.unsqueeze(0),
            &s.background.view([1, 1, 3, 64, 96]),
        )
        .squeeze_dim(0);
        assert!(again.equal(&s.frames), "{effects:?}");
        let (lo, hi) = (
            s.frames.min().double_value(&[]),
            s.frames.max().double_value(&[]),
        );
        assert!(lo >= 0.0 && hi <= 1.0);
    }
}

#[test]
fn regions_hold_the_masks_and_the_effects() {
    for (seed, effects) in [
        (4, EffectKind::Shadows),
        (5, EffectKind::Reflections),
        (6, EffectKind::Both),
    ] {
        let s = generate(&config(effects), seed);
        let region = s.regions.gt(0.5);
        // Every mask pixel is in its object's region.
        assert!(bool::try_from(
            s.masks
                .gt(0.5)
                .logical_and(&region.logical_not())
                .any()
                .logical_not()
        )
        .unwrap());
        // Every visible effect pixel (alpha over the threshold) is too.
        let alpha = s.layers.narrow(2, 3, 1);
        assert!(bool::try_from(
            alpha
                .ge(REGION_ALPHA)
                .logical_and(&region.logical_not())
                .any()
                .logical_not()
        )
        .unwrap());
        // And the effects are real: regions are larger than the objects' masks.
        let (r, m) = (
            region.sum(Kind::Float).double_value(&[]),
            s.masks.sum(Kind::Float).double_value(&[]),
        );
        assert!(r > 1.2 * m, "{effects:?}: region {r} vs masks {m} pixels");
    }
}

#[test]
fn rough_masks_differ_from_exact_ones_somewhere() {
    let exact = config(EffectKind::Shadows);
    let rough = SynthConfig {
        rough_masks: true,
        ..exact.clone()
    };
    let differs = (0..8).any(|seed| {
        !generate(&exact, seed)
            .masks
            .equal(&generate(&rough, seed).masks)
    });
    assert!(differs);
}

fn family_config(family: SceneFamily, objects: (usize, usize)) -> SynthConfig {
    SynthConfig {
        height: 64,
        width: 96,
        frames: 8,
        min_objects: objects.0,
        max_objects: objects.1,
        family,
        ..SynthConfig::default()
    }
}

#[test]
fn world_and_transfer_scenes_are_reproducible_and_hold_their_ground_truth() {
    for family in [SceneFamily::World, SceneFamily::Transfer] {
        let cfg = family_config(family, (1, 5));
        let mut counts = std::collections::BTreeSet::new();
        for seed in 0..6 {
            let s = generate(&cfg, seed);
            let again = generate(&cfg, seed);
            assert!(s.frames.equal(&again.frames) && s.masks.equal(&again.masks));
            let l = s.layers.size()[0];
            counts.insert(l);
            assert!((1..=5).contains(&l), "{family:?}: {l} objects");
            assert_eq!(s.frames.size(), [8, 3, 64, 96]);
            let (lo, hi) = (
                s.frames.min().double_value(&[]),
                s.frames.max().double_value(&[]),
            );
            assert!(lo >= 0.0 && hi <= 1.0, "{family:?}: frames in {lo}..{hi}");
            // The camera adds noise, blur, flicker and blocks to the frames only: the true
            // layers over the true background stay close to them on average.
            let clean = composite(
                &s.layers.unsqueeze(0),
                &s.background.view([1, 1, 3, 64, 96]),
            )
            .squeeze_dim(0);
            let err = (&clean - &s.frames)
                .abs()
                .mean(Kind::Float)
                .double_value(&[]);
            assert!(err < 0.06, "{family:?} seed {seed}: camera error {err}");
            // Masks stay binary, and sit in their objects' regions for the most part
            // (segmenter errors bleed past them a little).
            let binary = s.masks.eq(0.0).logical_or(&s.masks.eq(1.0)).all();
            assert!(bool::try_from(binary).unwrap());
        }
        assert!(counts.len() > 1, "{family:?}: object counts {counts:?}");
    }
}

#[test]
fn the_same_seed_draws_different_scenes_in_each_family() {
    let frames = |family| generate(&family_config(family, (2, 2)), 3).frames;
    let (c, w, t) = (
        frames(SceneFamily::Classic),
        frames(SceneFamily::World),
        frames(SceneFamily::Transfer),
    );
    assert!(!c.equal(&w) && !w.equal(&t) && !c.equal(&t));
}

#[test]
fn classic_scenes_are_unchanged_by_the_new_families() {
    // The fixed test set is drawn from the classic family: its scenes must stay the ones the
    // earlier measurements were made on. Pinned from the generator as it was before the world
    // and transfer families (seed 1000, the test set's first video, at 64x96).
    let s = generate(
        &SynthConfig {
            height: 64,
            width: 96,
            frames: 6,
            ..SynthConfig::default()
        },
        1000,
    );
    let sum = s.frames.sum(Kind::Double).double_value(&[]);
    let masks = s.masks.sum(Kind::Double).double_value(&[]);
    assert!((sum - CLASSIC_FRAMES_SUM).abs() < 1e-2, "frames sum {sum}");
    assert_eq!(masks, CLASSIC_MASKS_SUM, "masks sum {masks}");
}

const CLASSIC_FRAMES_SUM: f64 = 53391.948194;
const CLASSIC_MASKS_SUM: f64 = 2488.0;

#[test]
fn photographs_load_from_a_folder_and_crop_to_any_size() {
    let dir = tempfile::tempdir().unwrap();
    let opts = (Kind::Float, Device::Cpu);
    write_png(&dir.path().join("a.png"), &Tensor::rand([3, 40, 60], opts)).unwrap();
    write_png(&dir.path().join("b.png"), &Tensor::rand([1, 30, 30], opts)).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a photo").unwrap();
    let photos = PhotoLibrary::load(dir.path()).unwrap();
    assert_eq!(photos.len(), 2);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    for (h, w) in [(64, 96), (16, 16)] {
        let crop = photos.crop(&mut rng, h, w);
        assert_eq!(crop.size(), [3, h, w]);
    }
    // Scenes use them.
    let cfg = SynthConfig {
        photos: Some(Rc::new(photos)),
        ..family_config(SceneFamily::World, (2, 2))
    };
    assert_eq!(generate(&cfg, 1).background.size(), [3, 64, 96]);
    let empty = tempfile::tempdir().unwrap();
    let err = PhotoLibrary::load(empty.path()).unwrap_err().to_string();
    assert!(err.contains("no PNG photos"), "{err}");
}

#[test]
fn a_panning_window_shows_each_frame_over_its_own_ground() {
    let cfg = SynthConfig {
        height: 48,
        width: 64,
        frames: 8,
        min_objects: 2,
        max_objects: 2,
        ..config(EffectKind::Shadows)
    };
    let panned = generate_panned(&cfg, 5, [0.5, 2.0]);
    let (s, grounds) = (&panned.scene, &panned.backgrounds);
    assert_eq!(s.frames.size(), [8, 3, 48, 64]);
    assert_eq!(grounds.size(), [8, 3, 48, 64]);
    // The true layers over each frame's own ground are the frames.
    let again = composite(&s.layers.transpose(0, 1), grounds);
    let off = (again - &s.frames).abs().max().double_value(&[]);
    assert!(
        off < 1e-5,
        "layers over the grounds differ from the frames by {off}"
    );
    // The same scene drawn larger, seen through a window that starts at its corner ...
    let grown = SynthConfig {
        height: 48 + 4,
        width: 64 + 14,
        ..cfg.clone()
    };
    let whole = generate(&grown, 5);
    let first = whole.frames.get(0).narrow(1, 0, 48).narrow(2, 0, 64);
    assert!(s.frames.get(0).equal(&first));
    // ... and moves by whole pixels: a row and two columns by frame 1 (0.5 rounds up), 4 and
    // 14 by the last.
    let seen_at = |t: i64, y: i64, x: i64| {
        whole
            .background
            .narrow(1, y, 48)
            .narrow(2, x, 64)
            .equal(&grounds.get(t))
    };
    assert!(seen_at(0, 0, 0) && seen_at(1, 1, 2) && seen_at(7, 4, 14));
    assert_eq!(s.background.size(), [3, 48, 64]);
    assert!(s.background.equal(&grounds.get(0)));
}

#[test]
fn an_object_the_window_never_shows_goes_into_the_grounds() {
    // Two frames of a 4x16 scene: object 1 on the left; object 2's body on the right, its
    // shadow reaching into the 4x8 window on the left, which never moves.
    let ground = Tensor::full([3, 4, 16], 0.8, (Kind::Float, Device::Cpu));
    let layers = Tensor::zeros([2, 2, 4, 4, 16], (Kind::Float, Device::Cpu));
    let masks = Tensor::zeros([2, 2, 1, 4, 16], (Kind::Float, Device::Cpu));
    let _ = layers.get(0).narrow(3, 1, 2).narrow(1, 0, 3).fill_(0.2);
    let _ = layers.get(0).narrow(3, 1, 2).narrow(1, 3, 1).fill_(1.0);
    let _ = masks.get(0).narrow(3, 1, 2).fill_(1.0);
    let _ = layers.get(1).narrow(3, 6, 10).narrow(1, 3, 1).fill_(0.5); // shadow: black, alpha 0.5
    let _ = layers.get(1).narrow(3, 12, 4).fill_(1.0); // body: white
    let _ = masks.get(1).narrow(3, 12, 4).fill_(1.0);
    let frames = composite(&layers.transpose(0, 1), &ground.unsqueeze(0));
    let scene = Scene {
        frames: frames.shallow_clone(),
        background: ground.shallow_clone(),
        regions: masks.shallow_clone(),
        layers,
        masks,
        effects: EffectKind::Shadows,
    };
    let panned = window(&scene, [4, 8], [0.0, 0.0]);
    assert_eq!(
        panned.scene.layers.size()[0],
        1,
        "the unseen object is left out"
    );
    let grounds = &panned.backgrounds;
    // Its shadow (columns 6 and 7 of the window) is in the ground; the rest is bare.
    let shadowed = grounds.narrow(3, 6, 2);
    assert!(shadowed.allclose(&shadowed.full_like(0.4), 1e-6, 1e-6, false));
    let bare = grounds.narrow(3, 0, 6);
    assert!(bare.allclose(&bare.full_like(0.8), 1e-6, 1e-6, false));
    let again = composite(&panned.scene.layers.transpose(0, 1), grounds);
    assert!(again.allclose(&panned.scene.frames, 1e-6, 1e-6, false));
}
