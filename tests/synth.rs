//! Synthetic scenes: deterministic, exact ground truth, regions that hold masks and effects.

use gstomnimatte::composite::composite;
use gstomnimatte::synth::{generate, EffectKind, SynthConfig, REGION_ALPHA};
use tch::Kind;

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
