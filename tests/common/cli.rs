//! Running the `omnimatte` CLI, and gst-launch-1.0 for test media, from the integration tests.
#![allow(dead_code)]

use gstomnimatte::dataset::write_scene;
use gstomnimatte::synth::{generate, EffectKind, SynthConfig};
use std::path::Path;
use std::process::{Command, Output};

/// The network at 64x64 on the CPU: fast enough for tests.
pub const TINY: [&str; 6] = [
    "--working-height",
    "64",
    "--working-width",
    "64",
    "--device",
    "cpu",
];

/// Writes a 64x64 scene of two objects with `effects`, `frames` long, as an Omnimatte folder
/// (rgb/, mask/NN/, and the true layers) at `dir`.
pub fn tiny_scene(dir: &Path, frames: i64, effects: EffectKind, seed: u64) {
    let cfg = SynthConfig {
        height: 64,
        width: 64,
        frames,
        min_objects: 2,
        max_objects: 2,
        effects: Some(effects),
        ..SynthConfig::default()
    };
    write_scene(dir, &generate(&cfg, seed)).unwrap();
}

/// A JSON file the CLI wrote (`eval --json`, `train`'s state), parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn omnimatte(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omnimatte"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs the CLI; fails the test with its stderr if the command fails, else returns its stderr.
pub fn succeeds(args: &[&str]) -> String {
    let out = omnimatte(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err
}

/// Runs the CLI; fails the test unless the command fails with `needle` in its stderr.
pub fn fails_with(args: &[&str], needle: &str) {
    let out = omnimatte(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

/// `decompose --input INPUT [--masks MASKS] --out OUT` at the tiny test size.
pub fn decompose_args<'a>(input: &'a Path, masks: Option<&'a Path>, out: &'a Path) -> Vec<&'a str> {
    let mut args = vec![
        "decompose",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(masks) = masks {
        args.extend(["--masks", masks.to_str().unwrap()]);
    }
    args.extend(TINY);
    args
}

/// Runs `gst-launch-1.0 -q ARGS`; fails the test with `failure` unless it succeeds.
pub fn gst_launch(args: &[&str], failure: &str) {
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "{failure}");
}

/// Encodes a PNG sequence at 25 fps with gst-launch: `multifilesrc` with `source` (its
/// properties: `location=DIR/%05d.png`, ...), `pngdec ! videoconvert ! `, then `chain` (caps,
/// encoder, muxer, sink); fails the test with `failure` unless it succeeds.
pub fn encode_png_sequence(source: &[&str], chain: &[&str], failure: &str) {
    let head = [
        &["multifilesrc"][..],
        source,
        &[
            "caps=image/png,framerate=25/1",
            "!",
            "pngdec",
            "!",
            "videoconvert",
            "!",
        ],
    ]
    .concat();
    gst_launch(&[&head[..], chain].concat(), failure);
}

/// Every file under `dir` (relative path, bytes), in order.
pub fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
            }
        }
    }
    found.sort();
    found
}
