//! Layers an editor can use: opaque objects in mask-guided mode, clean backgrounds without the
//! objects, exact reconstruction in both alpha modes, object removal, guided upsampling.

mod common;

use common::seeded_net;
use gstomnimatte::alpha::{guided_upsample, upsample_layers, AlphaMode, Upsampling};
use gstomnimatte::composite::{composite, detail_transfer};
use gstomnimatte::dataset::Video;
use gstomnimatte::eval::{background_ghost, decompose, label_maps, remove_object};
use gstomnimatte::metrics::effect_region;
use gstomnimatte::stream::StreamConfig;
use gstomnimatte::synth::{generate, EffectKind, SynthConfig};
use tch::{Device, Kind, Tensor};

fn scene_video() -> (Video, Tensor, Tensor) {
    let scene = generate(
        &SynthConfig {
            height: 64,
            width: 96,
            frames: 16,
            min_objects: 2,
            max_objects: 2,
            effects: Some(EffectKind::Shadows),
            rough_masks: false,
            ..SynthConfig::default()
        },
        21,
    );
    let video = Video {
        frames: scene.frames.shallow_clone(),
        masks: scene.masks.shallow_clone(),
        background: Some(
            scene
                .background
                .expand([scene.frames.size()[0], -1, -1, -1], false),
        ),
        gt_layers: Some(scene.layers.shallow_clone()),
    };
    (video, scene.layers, scene.background)
}

fn config(alpha_mode: AlphaMode) -> StreamConfig {
    StreamConfig {
        working_height: 64,
        working_width: 64,
        objects: 2,
        alpha_mode,
        ..StreamConfig::default()
    }
}

#[test]
fn mask_guided_objects_are_opaque_in_their_masks_and_both_modes_reconstruct_exactly() {
    let (_vs, net) = seeded_net(2);
    let (video, _, _) = scene_video();
    let labels = label_maps(&video.masks);
    for mode in [AlphaMode::MaskGuided, AlphaMode::Network] {
        let result =
            tch::no_grad(|| decompose(&net, &video, &config(mode), None, Device::Cpu)).unwrap();
        for k in 0..2 {
            let inside = labels.eq(k + 1).unsqueeze(1); // [T, 1, H, W]
            let alpha = result.layers.get(k).narrow(1, 3, 1);
            let lowest = alpha.masked_select(&inside).min().double_value(&[]);
            match mode {
                AlphaMode::MaskGuided => assert_eq!(lowest, 1.0, "object {k}"),
                // A random network is not opaque there: the guidance is what makes it so.
                AlphaMode::Network => assert!(lowest < 0.99, "object {k}: {lowest}"),
            }
        }
        // The reconstruction reproduces the frames in both modes.
        let err = (&result.reconstruction - &video.frames)
            .abs()
            .max()
            .double_value(&[]);
        assert!(err < 1e-4, "{mode:?}: reconstruction off by {err}");
        // The residual background with the layers is the frame; the clean one is the estimate.
        let again = composite(&result.layers.transpose(0, 1), &result.residual_backgrounds);
        let err = (again - &video.frames).abs().max().double_value(&[]);
        assert!(
            err < 1e-4,
            "{mode:?}: layers over the residual background off by {err}"
        );
    }
}

#[test]
fn the_clean_background_holds_no_object_where_the_residual_one_may() {
    let (_vs, net) = seeded_net(2);
    let (video, gt, background) = scene_video();
    let result =
        tch::no_grad(|| decompose(&net, &video, &config(AlphaMode::Network), None, Device::Cpu))
            .unwrap();
    let regions = effect_region(&gt, &background);
    let clean = background_ghost(&result.clean_backgrounds, &background, &regions);
    let residual = background_ghost(&result.residual_backgrounds, &background, &regions);
    // The objects move across a static background: the median of 16 recent frames sees the
    // background almost everywhere (where a slow object stays on a pixel for most of the
    // window, some of it remains: about 9 of 255 on average here). A random network's residual
    // background keeps most of the objects (its alpha is low), so it is far worse.
    assert!(
        clean < 12.0,
        "clean background differs by {clean} (0-255) where objects were"
    );
    eprintln!("ghosts (0-255): clean {clean}, residual {residual}");
    assert!(
        residual > 2.0 * clean,
        "residual {residual} vs clean {clean}"
    );
}

#[test]
fn removing_an_object_with_perfect_layers_gives_the_scene_without_it() {
    let (video, gt, background) = scene_video();
    let t = video.frames.size()[0];
    let bg = background.unsqueeze(0).expand([t, -1, -1, -1], false);
    // Perfect layers: detail transfer of the true layers over the true background changes
    // nothing, and the residual background is the true one.
    let (layers, residual) = detail_transfer(&gt.transpose(0, 1), &bg, &video.frames);
    let layers = layers.transpose(0, 1);
    for k in 0..2 {
        let removed = remove_object(&layers, &residual, &bg, k);
        let other = gt.get(1 - k).unsqueeze(1); // [T, 1, 4, H, W]
        let truth = composite(&other, &bg);
        let err = (removed - truth).abs().max().double_value(&[]);
        assert!(err < 1e-4, "removing object {k}: off by {err}");
    }
}

#[test]
fn guided_upsampling_follows_the_frames_edge() {
    // A frame with a vertical edge at column 42 of 64, and an alpha that is 1 left of column
    // 10 of 16 at a quarter of the size (column 40 at full size, as a network at the working
    // size places it): bilinear upsampling keeps the step where the working size put it, the
    // guided filter moves it towards the frame's edge.
    let opts = (Kind::Float, Device::Cpu);
    let cols = Tensor::arange(64, opts)
        .view([1, 1, 64])
        .expand([3, 64, 64], false);
    let frame = cols.lt(42.0).to_kind(Kind::Float) * 0.8 + 0.1;
    let small_cols = Tensor::arange(16, opts)
        .view([1, 1, 1, 16])
        .expand([1, 4, 16, 16], false);
    let small = small_cols.lt(10.0).to_kind(Kind::Float);
    let bilinear = upsample_layers(&small, &frame, Upsampling::Bilinear);
    let guided = upsample_layers(&small, &frame, Upsampling::Guided);
    let truth = cols.get(0).lt(42.0).to_kind(Kind::Float);
    let err = |x: &Tensor| {
        (x.narrow(1, 3, 1).squeeze() - &truth)
            .abs()
            .mean(Kind::Float)
            .double_value(&[])
    };
    assert!(
        err(&guided) < 0.6 * err(&bilinear),
        "guided {} vs bilinear {}",
        err(&guided),
        err(&bilinear)
    );
    // A flat guide leaves a flat alpha flat.
    let flat = Tensor::full([1, 1, 32, 32], 0.5, opts);
    let p = Tensor::full([1, 1, 8, 8], 0.3, opts);
    let q = guided_upsample(&flat, &p, 1, 1e-3);
    assert!((q - 0.3).abs().max().double_value(&[]) < 1e-5);
}
