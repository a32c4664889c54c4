//! Evaluation: perfect layers score 1, mask-only layers lower; the CLI trains, evaluates, and
//! the element loads what training wrote.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/gst_helpers.rs"]
mod helpers;

use cli::{omnimatte, read_json, succeeds, TINY};
use gst::prelude::*;
use gstomnimatte::dataset::{read_video, write_panned_scene, write_scene};
use gstomnimatte::eval::{
    alpha_in_mask, alpha_on_object, effect_iou, effect_iou_over_time, mask_only_layers,
};
use gstomnimatte::synth::{generate, generate_panned, EffectKind, SynthConfig};
use tch::Tensor;

fn tiny_set(dir: &std::path::Path, videos: u64) {
    let cfg = SynthConfig {
        height: 64,
        width: 64,
        frames: 8,
        effects: Some(EffectKind::Both),
        ..SynthConfig::default()
    };
    for i in 0..videos {
        write_scene(&dir.join(format!("video_{i:04}")), &generate(&cfg, 100 + i)).unwrap();
    }
}

#[test]
fn ground_truth_scores_one_and_masks_alone_score_lower() {
    let dir = tempfile::tempdir().unwrap();
    tiny_set(dir.path(), 2);
    for i in 0..2 {
        let video = read_video(&dir.path().join(format!("video_{i:04}"))).unwrap();
        let (gt, bg) = (
            video.gt_layers.as_ref().unwrap(),
            video.background.as_ref().unwrap(),
        );
        let perfect = effect_iou(gt, gt, bg, &video.masks);
        assert_eq!(perfect.effect_iou, 1.0);
        assert_eq!(perfect.beyond_mask_recall, 1.0);
        let baseline = effect_iou(&mask_only_layers(&video), gt, bg, &video.masks);
        assert!(
            baseline.effect_iou < 0.9,
            "mask-only IoU {}",
            baseline.effect_iou
        );
        // The masks' layers hold nothing outside the masks.
        assert_eq!(baseline.beyond_mask_recall, 0.0);
    }
}

#[test]
fn effect_iou_over_time_scores_each_stretch_of_the_frames_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    tiny_set(dir.path(), 1);
    let video = read_video(&dir.path().join("video_0000")).unwrap();
    let (gt, bg) = (
        video.gt_layers.as_ref().unwrap(),
        video.background.as_ref().unwrap(),
    );
    // The true layers in the first half of the 8 frames, the masks' layers in the second.
    let masks_only = mask_only_layers(&video);
    let mixed = tch::Tensor::cat(&[gt.narrow(1, 0, 4), masks_only.narrow(1, 4, 4)], 1);
    let quarters = effect_iou_over_time(&mixed, gt, bg, &video.masks, 4);
    assert_eq!(quarters.len(), 4);
    assert_eq!(&quarters[..2], &[1.0, 1.0]);
    // The third quarter is frames 4 and 5, scored alone.
    let third = effect_iou(
        &masks_only.narrow(1, 4, 2),
        &gt.narrow(1, 4, 2),
        &bg.narrow(0, 4, 2),
        &video.masks.narrow(1, 4, 2),
    );
    assert_eq!(quarters[2], third.effect_iou);
    assert!(quarters[2] < 0.9 && quarters[3] < 0.9, "{quarters:?}");
    // Fewer frames than parts: nothing to score.
    assert!(effect_iou_over_time(gt, gt, bg, &video.masks, 9).is_empty());
}

#[test]
fn alpha_on_object_asks_only_for_the_object_the_truth_has() {
    let dir = tempfile::tempdir().unwrap();
    tiny_set(dir.path(), 1);
    let video = read_video(&dir.path().join("video_0000")).unwrap();
    let gt = video.gt_layers.as_ref().unwrap();
    // A mask that bleeds: grown by 5 pixels past the object, as rough segmenters do.
    let bleeding = video
        .masks
        .to_kind(tch::Kind::Float)
        .flatten(0, 1)
        .max_pool2d([11, 11], [1, 1], [5, 5], [1, 1], false)
        .view_as(&video.masks);
    let truth_in_mask = alpha_in_mask(gt, &bleeding);
    assert!(
        truth_in_mask < 0.95,
        "the truth fills a bleeding mask to {truth_in_mask}"
    );
    assert!((alpha_on_object(gt, gt, &bleeding) - 1.0).abs() < 1e-9);
    // Half-transparent objects score half, whatever the mask.
    let half = gt.copy();
    let _ = half.narrow(2, 3, 1).g_mul_scalar_(0.5);
    let score = alpha_on_object(&half, gt, &bleeding);
    assert!(
        (score - 0.5).abs() < 0.05,
        "half-opaque layers score {score}"
    );
}

#[test]
fn train_writes_weights_that_eval_and_the_element_load() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.safetensors");
    let w = weights.to_str().unwrap();
    let train = [
        "train", "--batch", "1", "--size", "64", "--device", "cpu", "--out", w,
    ];
    succeeds(&[&train[..], &["--steps", "3", "--checkpoint-every", "2"]].concat());
    let log = std::fs::read_to_string(weights.with_extension("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);

    // Resuming continues the step count and the optimiser, whose state is in the checkpoint.
    assert!(weights
        .with_extension("ckpt")
        .join("optim.safetensors")
        .exists());
    let out = omnimatte(&[&train[..], &["--steps", "4", "--resume"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("start afresh"), "{stderr}");
    let state = std::fs::read_to_string(weights.with_extension("json")).unwrap();
    assert!(state.contains("\"step\": 4"), "{state}");

    let data = dir.path().join("data");
    tiny_set(&data, 1);
    let json = dir.path().join("scores.json");
    let (d, j) = (data.to_str().unwrap(), json.to_str().unwrap());
    succeeds(
        &[
            &["eval", "--weights", w, "--data", d, "--json", j][..],
            &["--ttt-steps", "0,2"],
            &TINY,
        ]
        .concat(),
    );
    let scores = read_json(&json);
    let iou = scores["mean"]["effect_iou"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&iou), "{scores}");
    // The same score over each quarter of the video, for how the live mode moves along it.
    let quarters = scores["videos"][0]["effect_iou_by_quarter"]
        .as_array()
        .unwrap();
    assert_eq!(quarters.len(), 4, "{scores}");
    assert!(quarters
        .iter()
        .all(|q| (0.0..=1.0).contains(&q.as_f64().unwrap())));
    // Mirror averaging (on by default) is for the pretrained weights only.
    let mirrored: Vec<(u64, bool)> = scores["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ttt_steps"].as_u64().unwrap(),
                r["mirror_average"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(mirrored, [(0, true), (2, false)], "{scores}");
    assert_eq!(scores["complete"], true, "{scores}");
    assert!(!json.with_extension("json.partial").exists());

    // The element runs with these weights (learnt at 64x64, run at 64x64).
    helpers::init();
    let element = gst::ElementFactory::make("omnimatte")
        .property("weights", weights.to_str().unwrap())
        .property("working-height", 64u32)
        .property("working-width", 64u32)
        .build()
        .unwrap();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&element).unwrap();
    assert!(
        pipeline.set_state(gst::State::Paused).is_ok(),
        "the element loads the trained weights"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_run_stopped_part_way_keeps_the_scores_of_the_videos_it_finished() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_set(&data, 2);
    // The second video cannot be scored: the run stops there with an error.
    std::fs::remove_file(data.join("video_0001").join("bg.png")).unwrap();
    let json = dir.path().join("scores.json");
    let (d, j) = (data.to_str().unwrap(), json.to_str().unwrap());
    let out = omnimatte(&[&["eval", "--data", d, "--json", j][..], &TINY].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no bg.png"), "{stderr}");
    let scores = read_json(&json);
    let videos = scores["videos"].as_array().unwrap();
    assert_eq!(videos.len(), 1, "{scores}");
    assert_eq!(videos[0]["video"], "video_0000");
    assert_eq!(scores["complete"], false, "{scores}");
    assert_eq!(scores["mean"]["effect_iou"], videos[0]["effect_iou"]);
}

#[test]
fn a_video_scores_the_same_after_test_time_training_whichever_videos_ran_before() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_set(&data, 2);
    let d = data.to_str().unwrap();
    let score_of_second = |only: &[&str], json: &str| {
        let json = dir.path().join(json);
        let j = json.to_str().unwrap();
        let run = ["eval", "--data", d, "--json", j, "--ttt-steps", "3"];
        succeeds(&[&run[..], only, &TINY].concat());
        let scores = read_json(&json);
        let videos = scores["videos"].as_array().unwrap().clone();
        let second = videos.iter().find(|v| v["video"] == "video_0001").unwrap();
        (videos.len(), second["effect_iou"].as_f64().unwrap())
    };
    let (all, after_the_first) = score_of_second(&[], "all.json");
    let (one, alone) = score_of_second(&["--only", "video_0001"], "one.json");
    assert_eq!((all, one), (2, 1));
    assert_eq!(after_the_first, alone);
}

#[test]
fn a_corrupt_weights_file_fails_the_element_with_its_name() {
    helpers::init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.safetensors");
    std::fs::write(&path, b"definitely not safetensors").unwrap();
    let element = gst::ElementFactory::make("omnimatte")
        .property("weights", path.to_str().unwrap())
        .build()
        .unwrap();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&element).unwrap();
    assert!(pipeline.set_state(gst::State::Paused).is_err());
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .unwrap();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = format!("{} {:?}", e.error(), e.debug());
    assert!(text.contains("corrupt.safetensors"), "{text}");
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn eval_scores_the_live_mode_at_a_fixed_pace_of_steps_per_frame() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_set(&data, 1);
    let json = dir.path().join("live.json");
    let (d, j) = (data.to_str().unwrap(), json.to_str().unwrap());
    let live = [
        "eval",
        "--data",
        d,
        "--json",
        j,
        "--live-steps-per-frame",
        "2",
        "--live-frames",
        "6",
        "--live-swap-steps",
        "2",
        "--mirror-average",
        "false",
    ];
    succeeds(&[&live[..], &TINY].concat());
    let scores = read_json(&json);
    // 8 frames, training from the 6th on (a clip needs the 6 frames kept): 2 steps on each
    // of the last 3.
    assert_eq!(
        scores["videos"][0]["live_steps"].as_u64(),
        Some(6),
        "{scores}"
    );
    let iou = scores["mean"]["effect_iou"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&iou), "{scores}");

    cli::fails_with(
        &[&live[..], &["--ttt-steps", "5"], &TINY].concat(),
        "leave --ttt-steps at 0",
    );
}

#[test]
fn eval_fine_tunes_over_the_true_background_as_a_clean_plate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_set(&data, 1);
    let json = dir.path().join("plate.json");
    let (d, j) = (data.to_str().unwrap(), json.to_str().unwrap());
    succeeds(
        &[
            &["eval", "--data", d, "--json", j, "--clean-plate"][..],
            &["--ttt-steps", "2"],
            &TINY,
        ]
        .concat(),
    );
    let scores = read_json(&json);
    assert_eq!(scores["clean_plate"].as_bool(), Some(true), "{scores}");
    assert_eq!(
        scores["videos"][0]["ttt_steps"].as_u64(),
        Some(2),
        "{scores}"
    );
    // Over the true background, the background estimate is perfect.
    assert!(
        scores["videos"][0]["ghost_clean"].as_f64().unwrap() < 1.0,
        "{scores}"
    );
}

#[test]
fn a_panned_video_is_scored_over_each_frames_own_ground() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        height: 64,
        width: 64,
        frames: 8,
        min_objects: 2,
        max_objects: 2,
        effects: Some(EffectKind::Shadows),
        ..SynthConfig::default()
    };
    let panned = generate_panned(&cfg, 3, [0.0, 2.0]);
    write_panned_scene(dir.path(), &panned).unwrap();
    let video = read_video(dir.path()).unwrap();
    let grounds = video.background.as_ref().unwrap();
    assert_eq!(grounds.size(), [8, 3, 64, 64]);
    let off = (grounds - &panned.backgrounds)
        .abs()
        .max()
        .double_value(&[]);
    assert!(off <= 0.5 / 255.0 + 1e-6, "bg/ read back {off} off");
    assert!(video.still_background().is_none(), "the ground moves");
    // Layers that also take a little of the ground around their object (alpha 0.2, its
    // colour) change nothing there: over each frame's own ground they score as the truth, over
    // the first frame's ground (bg.png, a still camera's) they would not.
    let gt = video.gt_layers.as_ref().unwrap();
    let alpha = gt.narrow(2, 3, 1);
    let bare = alpha.le(0.0);
    let ground = grounds.unsqueeze(0).expand_as(&gt.narrow(2, 0, 3));
    let rgb = gt.narrow(2, 0, 3).where_self(&bare.logical_not(), &ground);
    let hazy = Tensor::cat(
        &[
            rgb,
            alpha.where_self(&bare.logical_not(), &alpha.full_like(0.2)),
        ],
        2,
    );
    let own = effect_iou(&hazy, gt, grounds, &video.masks);
    assert!(own.effect_iou > 0.999, "{}", own.effect_iou);
    let first = grounds.get(0);
    let wrong = effect_iou(&hazy, gt, &first, &video.masks);
    assert!(wrong.effect_iou < 0.9, "{}", wrong.effect_iou);
}

#[test]
fn synth_pans_and_eval_scores_the_pan_but_takes_no_plate_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let json = dir.path().join("pan.json");
    let (d, j) = (data.to_str().unwrap(), json.to_str().unwrap());
    let synth = [
        "synth",
        "--out",
        d,
        "--videos",
        "1",
        "--height",
        "64",
        "--width",
        "64",
        "--frames",
        "8",
        "--seed",
        "3",
        "--exact-masks",
        "--pan",
        "0,-2",
    ];
    assert!(omnimatte(&synth).status.success());
    let video = data.join("video_0000");
    assert_eq!(std::fs::read_dir(video.join("bg")).unwrap().count(), 8);
    assert!(!video.join("bg.png").exists());
    succeeds(&[&["eval", "--data", d, "--json", j][..], &TINY].concat());
    let scores = read_json(&json);
    // Exact masks hold only their objects, wherever the ground has moved to.
    let precision = scores["videos"][0]["mask_only_effect_precision"].as_f64();
    assert_eq!(precision, Some(1.0), "{scores}");
    cli::fails_with(
        &[&["eval", "--data", d, "--clean-plate"][..], &TINY].concat(),
        "moves with its camera",
    );
}

#[test]
fn a_background_that_does_not_fit_the_frames_is_named() {
    let dir = tempfile::tempdir().unwrap();
    tiny_set(dir.path(), 1);
    let video = dir.path().join("video_0000");
    let small = Tensor::zeros([3, 32, 48], (tch::Kind::Float, tch::Device::Cpu));
    gstomnimatte::dataset::write_png(&video.join("bg.png"), &small).unwrap();
    let err = read_video(&video)
        .err()
        .expect("a 32x48 background")
        .to_string();
    assert!(err.contains("the background is [32, 48]"), "{err}");
    // One background a frame, but not for every frame.
    std::fs::remove_file(video.join("bg.png")).unwrap();
    let one = Tensor::zeros([3, 64, 64], (tch::Kind::Float, tch::Device::Cpu));
    gstomnimatte::dataset::write_png(&video.join("bg").join("00000.png"), &one).unwrap();
    let err = read_video(&video)
        .err()
        .expect("one background")
        .to_string();
    assert!(err.contains("1 backgrounds for 8 frames"), "{err}");
}
