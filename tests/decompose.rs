//! `omnimatte decompose` end to end on real files: an Omnimatte folder or an encoded video
//! with a mask folder in; per-object RGBA PNGs, background and reconstruction out; fine-tuned
//! weights that the element loads.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/gst_helpers.rs"]
mod helpers;

use cli::{encode_png_sequence, fails_with, files_under, omnimatte, succeeds, tiny_scene, TINY};
use gst::prelude::*;
use gstomnimatte::dataset::{read_png, read_video};
use gstomnimatte::model::loading::load_model;
use gstomnimatte::model::weights::fine_tuned_steps;
use gstomnimatte::model::PrecisionChoice;
use gstomnimatte::synth::EffectKind;
use std::path::Path;
use tch::Device;

fn scene(dir: &Path, frames: i64) {
    tiny_scene(dir, frames, EffectKind::Both, 7);
}

fn count_pngs(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn an_omnimatte_folder_decomposes_into_layers_background_and_reconstruction() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("video");
    scene(&input, 8);
    let out = dir.path().join("out");
    let tuned = dir.path().join("tuned.safetensors");
    let args = [
        "decompose",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--ttt-steps",
        "2",
        "--save-weights",
        tuned.to_str().unwrap(),
    ];
    let log = succeeds(&[&args[..], &TINY].concat());
    // Standard error is no terminal here: the progress comes as plain lines.
    assert!(
        log.contains("/2 test-time training steps") && log.contains("/8 frames"),
        "{log}"
    );
    for layer in ["layer_01", "layer_02"] {
        assert_eq!(count_pngs(&out.join(layer)), 8, "{layer}");
        let rgba = read_png(&out.join(layer).join("00000.png")).unwrap();
        assert_eq!(rgba.size(), [4, 64, 64]);
    }
    assert_eq!(count_pngs(&out.join("recon")), 8);
    assert_eq!(
        read_png(&out.join("background.png")).unwrap().size(),
        [3, 64, 64]
    );
    // The reconstruction reproduces the input frames (detail transfer), to 8-bit rounding.
    let video = read_video(&input).unwrap();
    for t in [0i64, 7] {
        let recon = read_png(&out.join("recon").join(format!("{t:05}.png"))).unwrap();
        let diff = (recon - video.frames.get(t)).abs().max().double_value(&[]);
        assert!(diff < 2.5 / 255.0, "frame {t}: max difference {diff}");
    }
    // The fine-tuned weights say so (whoever loads them runs them as after the training),
    // and load in the element's model.
    assert_eq!(fine_tuned_steps(&tuned).unwrap(), 2);
    load_model(
        &tuned.to_string_lossy(),
        Device::Cpu,
        5,
        PrecisionChoice::Fp32,
    )
    .unwrap();
}

#[test]
fn a_video_file_with_a_mask_folder_decomposes_frame_for_frame() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("video");
    scene(&input, 6);
    // Encode the frames as an MPEG-4 AVI with GStreamer: a real, lossy video file.
    let movie = dir.path().join("movie.avi");
    encode_png_sequence(
        &[&format!("location={}/rgb/%05d.png", input.display())],
        &[
            "avenc_mpeg4",
            "bitrate=2000000",
            "!",
            "avimux",
            "!",
            "filesink",
            &format!("location={}", movie.display()),
        ],
        "encoding the test video failed",
    );
    let out = dir.path().join("out");
    let masks = input.join("mask");
    let args = [
        "decompose",
        "--input",
        movie.to_str().unwrap(),
        "--masks",
        masks.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    succeeds(&[&args[..], &TINY].concat());
    assert_eq!(count_pngs(&out.join("layer_01")), 6);
    assert_eq!(count_pngs(&out.join("layer_02")), 6);
    assert_eq!(count_pngs(&out.join("recon")), 6);
    // Decoded into a file rather than held (a long file): the same outputs to the byte, and
    // that file gone from OUT.
    let spilled = dir.path().join("spilled");
    let spilled_args = [&args[..5], &["--out", spilled.to_str().unwrap()]].concat();
    succeeds(&[&spilled_args[..], &["--hold-frames-mib", "0"], &TINY].concat());
    assert!(
        files_under(&out) == files_under(&spilled),
        "the outputs differ"
    );

    // The masks as a losslessly coded video of label maps (FFV1, 8-bit gray), read from it
    // and kept in a file like the frames: the same outputs again.
    let labels = dir.path().join("labels");
    succeeds(&[
        "labels",
        "--masks",
        masks.to_str().unwrap(),
        "--out",
        labels.to_str().unwrap(),
    ]);
    let mask_movie = dir.path().join("masks.mkv");
    encode_png_sequence(
        &[&format!("location={}/%05d.png", labels.display())],
        &[
            "video/x-raw,format=GRAY8",
            "!",
            "avenc_ffv1",
            "!",
            "matroskamux",
            "!",
            "filesink",
            &format!("location={}", mask_movie.display()),
        ],
        "encoding the label maps failed",
    );
    let from_movie = dir.path().join("from_movie");
    succeeds(
        &[
            &args[..3],
            &["--masks", mask_movie.to_str().unwrap()],
            &["--out", from_movie.to_str().unwrap()],
            &["--hold-frames-mib", "0"],
            &TINY,
        ]
        .concat(),
    );
    assert!(
        files_under(&out) == files_under(&from_movie),
        "the outputs differ"
    );

    // Into an empty folder: a used one is refused before the input is read.
    let unused = dir.path().join("unused");
    fails_with(
        &[
            "decompose",
            "--input",
            movie.to_str().unwrap(),
            "--out",
            unused.to_str().unwrap(),
        ],
        "give its masks with --masks",
    );
    let unused_args = [&args[..5], &["--out", unused.to_str().unwrap()]].concat();
    fails_with(
        &[&unused_args[..], &["--objects", "1"]].concat(),
        "the masks hold label 2 but --objects is 1",
    );
}

/// Frames of a media file decoded to RGBA.
fn decoded_frames(file: &Path) -> Vec<Vec<u8>> {
    helpers::init();
    let p = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! appsink name=out sync=false",
        file.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let r = helpers::run(&p, std::time::Duration::from_secs(60), |_| {});
    assert!(r.error.is_none(), "{}: {:?}", file.display(), r.error);
    r.outputs["out"].iter().map(|b| b.bytes.clone()).collect()
}

#[test]
fn decompose_writes_prores_layers_with_alpha_and_a_vp9_reconstruction() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("video");
    scene(&input, 6);
    let (png_out, out) = (dir.path().join("png"), dir.path().join("out"));
    let common = [
        &["decompose", "--input", input.to_str().unwrap()][..],
        &TINY,
    ]
    .concat();
    succeeds(&[&common[..], &["--out", png_out.to_str().unwrap()]].concat());
    succeeds(
        &[
            &common[..],
            &[
                "--out",
                out.to_str().unwrap(),
                "--format",
                "prores",
                "--recon-format",
                "vp9",
            ],
        ]
        .concat(),
    );
    for k in 1..=2 {
        let frames = decoded_frames(&out.join(format!("layer_{k:02}.mov")));
        assert_eq!(frames.len(), 6, "layer_{k:02}.mov frames");
        for (t, frame) in frames.iter().enumerate() {
            let png = read_png(&png_out.join(format!("layer_{k:02}/{t:05}.png"))).unwrap();
            let alpha = (png.get(3) * 255.0).round();
            let mut decoded = vec![0f32; 64 * 64];
            for (i, px) in frame.chunks(4).enumerate() {
                decoded[i] = px[3] as f32;
            }
            let decoded = tch::Tensor::from_slice(&decoded).view([64, 64]);
            let worst = (decoded - alpha).abs().max().double_value(&[]);
            assert!(worst <= 1.0, "layer_{k:02} frame {t}: alpha off by {worst}");
        }
    }
    assert_eq!(decoded_frames(&out.join("recon.webm")).len(), 6);
    fails_with(
        &[
            &common[..],
            &["--out", out.to_str().unwrap(), "--format", "vp9"],
        ]
        .concat(),
        "vp9 has no alpha",
    );
}

/// Largest difference between every per-frame background PNG and OUT/background.png.
fn frames_against_plate(out: &Path, frames: i64) -> Vec<f64> {
    let plate = read_png(&out.join("background.png")).unwrap();
    (0..frames)
        .map(|t| {
            let frame = read_png(&out.join("background").join(format!("{t:05}.png"))).unwrap();
            (frame - &plate).abs().max().double_value(&[])
        })
        .collect()
}

#[test]
fn the_background_estimate_is_one_whole_video_median_of_the_asked_kind() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("video");
    scene(&input, 8);
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let args = ["decompose", "--input", input.to_str().unwrap()];
        succeeds(&[&args[..], &["--out", out.to_str().unwrap()], extra, &TINY].concat());
        frames_against_plate(&out, 8)
    };
    // Every frame's clean background is the one whole-video median.
    let whole = run("whole", &["--background-estimate", "whole-video"]);
    assert!(
        whole.iter().all(|&d| d < 1.0 / 255.0),
        "per-frame backgrounds differ from background.png: {whole:?}"
    );
    // The stream's median of recent frames has seen fewer frames early on.
    let stream = run("stream", &["--background-estimate", "stream"]);
    assert!(
        stream.iter().any(|&d| d > 1.0 / 255.0),
        "the stream estimate never differs from the whole video's: {stream:?}"
    );
    // Its window is the element's `background-frames`: one frame's median is another image
    // (compared frame by frame: their largest differences to the plate can coincide).
    let one = run(
        "one",
        &[
            "--background-estimate",
            "stream",
            "--background-frames",
            "1",
        ],
    );
    let largest_difference = (0..8)
        .map(|t| {
            let name = format!("background/{t:05}.png");
            let a = read_png(&dir.path().join("one").join(&name)).unwrap();
            let b = read_png(&dir.path().join("stream").join(&name)).unwrap();
            (a - b).abs().max().double_value(&[])
        })
        .fold(0.0, f64::max);
    assert!(
        largest_difference > 1.5 / 255.0,
        "--background-frames changed nothing (against the plate: one {one:?}, sixteen {stream:?})"
    );
    // By default the median is made twice, the second time without what the layers over the
    // first hold: the plate of every frame too, and another image than the first.
    let layers = run("layers", &[]);
    assert!(
        layers.iter().all(|&d| d < 1.0 / 255.0),
        "per-frame backgrounds differ from background.png: {layers:?}"
    );
    let plate = |name: &str| read_png(&dir.path().join(name).join("background.png")).unwrap();
    assert!(
        !plate("layers").equal(&plate("whole")),
        "leaving out the layers changed nothing in the plate"
    );
    fails_with(
        &[
            "decompose",
            "--input",
            input.to_str().unwrap(),
            "--out",
            dir.path().join("bad").to_str().unwrap(),
            "--background-estimate",
            "everything",
        ],
        "expected stream, whole-video or whole-video-layers",
    );
}

#[test]
fn test_time_training_over_the_streams_estimate_first_finds_the_effects_to_leave_out() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("video");
    scene(&input, 8);
    let out = dir.path().join("out");
    let args = [
        "decompose",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--background-estimate",
        "stream",
        "--ttt-steps",
        "2",
    ];
    let run = omnimatte(&[&args[..], &TINY].concat());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("a zero-shot pass finds the effects"),
        "{stderr}"
    );
    for layer in ["layer_01", "layer_02", "recon"] {
        assert_eq!(count_pngs(&out.join(layer)), 8, "{layer}");
    }
}
