//! The CLI against a hostile user: files that are not videos, sequences with a gap or a frame of
//! another size, missing ground truth, broken weights, an output folder in use, unwritable
//! output paths. Each is a clear error (exit status 1, what was wrong), never a hang, a panic
//! or results passed as good.

#[path = "common/cli.rs"]
mod cli;

use cli::{fails_with, succeeds, tiny_scene, TINY};
use gstomnimatte::dataset::write_png;
use gstomnimatte::synth::EffectKind;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

fn scene(dir: &Path, frames: i64) {
    tiny_scene(dir, frames, EffectKind::Shadows, 3);
}

/// Runs the CLI with a deadline: a hang fails the test instead of stalling the suite.
fn fails_within(args: &[&str], limit: Duration, needle: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_omnimatte"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert_eq!(status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(needle), "expected `{needle}` in: {err}");
            return;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{args:?} still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_file_that_is_not_a_video_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let masks = dir.path().join("masks");
    scene(&dir.path().join("v"), 4);
    std::fs::rename(dir.path().join("v/mask"), &masks).unwrap();
    for (name, bytes) in [
        ("text.mp4", b"this is not a video\n".to_vec()),
        ("empty.mp4", Vec::new()),
        (
            "noise.mp4",
            (0..50_000u32)
                .map(|i| ((i * 2_654_435_761u32) >> 24) as u8)
                .collect(),
        ),
    ] {
        let input = dir.path().join(name);
        std::fs::write(&input, bytes).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let args = [
            "decompose",
            "--input",
            input.to_str().unwrap(),
            "--masks",
            masks.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        fails_within(
            &[&args[..], &TINY].concat(),
            Duration::from_secs(60),
            "decoding",
        );
    }
}

#[test]
fn a_gap_or_a_frame_of_another_size_in_a_sequence_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v");
    scene(&video, 6);
    let out = dir.path().join("out");
    let args = |out: &Path| {
        vec![
            "decompose".to_string(),
            "--input".into(),
            video.to_string_lossy().into(),
            "--out".into(),
            out.to_string_lossy().into(),
        ]
    };
    // A frame of another size.
    let odd = video.join("rgb/00003.png");
    let original = std::fs::read(&odd).unwrap();
    write_png(
        &odd,
        &Tensor::zeros([3, 48, 64], (Kind::Float, Device::Cpu)),
    )
    .unwrap();
    let a = args(&out);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with(&[&a[..], &TINY].concat(), "00003.png is 64x48");
    std::fs::write(&odd, original).unwrap();
    // A gap in the numbering.
    std::fs::rename(video.join("rgb/00003.png"), video.join("rgb/00009.png")).unwrap();
    fails_with(&[&a[..], &TINY].concat(), "frame 3 is missing");
}

#[test]
fn eval_names_missing_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v");
    scene(&video, 5);
    std::fs::remove_file(video.join("gt/layer_01/00004.png")).unwrap();
    let args = ["eval", "--data", video.to_str().unwrap()];
    fails_with(
        &[&args[..], &TINY].concat(),
        "4 ground-truth layers for 5 frames",
    );
}

#[test]
fn weights_with_nan_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v");
    scene(&video, 4);
    let bundled = gstomnimatte::model::loading::BUNDLED_WEIGHTS;
    let tensors = Tensor::read_safetensors(bundled).unwrap();
    let broken: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(name, t)| {
            let t = t.to_kind(Kind::Float);
            if name.contains("decoder") {
                (name, t.full_like(f64::NAN))
            } else {
                (name, t)
            }
        })
        .collect();
    let weights = dir.path().join("nan.safetensors");
    Tensor::write_safetensors(&broken, &weights).unwrap();
    let out = dir.path().join("out");
    let args = [
        "decompose",
        "--input",
        video.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
    ];
    fails_with(&[&args[..], &TINY].concat(), "holds NaN or infinite values");
}

#[test]
fn an_output_folder_in_use_is_refused_unless_overwrite_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v");
    scene(&video, 4);
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("layer_07")).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let args = [
        "decompose",
        "--input",
        video.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    fails_with(&[&args[..], &TINY].concat(), "is not empty");
    // Said before the input is read (a long file takes minutes to decode).
    let missing = dir.path().join("no-such-clip.mp4");
    let masks = video.join("mask");
    fails_with(
        &[
            "decompose",
            "--input",
            missing.to_str().unwrap(),
            "--masks",
            masks.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "is not empty",
    );
    succeeds(&[&args[..], &TINY, &["--overwrite"]].concat());
    assert!(!out.join("layer_07").exists(), "old results are cleared");
    assert!(
        out.join("notes.txt").exists(),
        "what decompose does not own stays"
    );
    assert!(out.join("layer_01").is_dir() && out.join("layer_02").is_dir());
}

#[test]
fn unwritable_outputs_are_found_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("v");
    scene(&video, 4);
    let out = dir.path().join("out");
    let args = [
        "decompose",
        "--input",
        video.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--ttt-steps",
        "100000",
        "--save-weights",
        "/proc/omnimatte/weights.safetensors",
    ];
    // 100 000 training steps would take hours: the refusal comes first.
    fails_within(
        &[&args[..], &TINY].concat(),
        Duration::from_secs(60),
        "cannot write the weights",
    );
}
