//! The example application (examples/export_layers.rs) runs on a tiny generated input: it
//! builds its pipeline, follows test-time training on the bus and writes every layer.

#[path = "common/gst_helpers.rs"]
mod helpers;

use gstomnimatte::dataset::write_png;
use std::path::PathBuf;
use std::process::Command;
use tch::{Kind, Tensor};

/// target/<profile>/examples/export_layers, next to this test's deps/ folder. `cargo test`
/// builds the examples; `cargo test --test example` does not, so build it then.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let binary = profile_dir.join("examples").join("export_layers");
    if !binary.exists() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--example", "export_layers"]);
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        assert!(cargo.status().unwrap().success(), "building the example");
    }
    binary
}

#[test]
fn the_example_application_writes_every_layer_after_test_time_training() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h, n) = (80usize, 64usize, 10usize);
    for (i, (rgb, labels)) in helpers::synthetic_video(n, w, h).into_iter().enumerate() {
        let name = format!("{i:05}.png");
        let rgb = Tensor::from_slice(&rgb)
            .view([h as i64, w as i64, 3])
            .permute([2, 0, 1])
            .to_kind(Kind::Float)
            / 255.0;
        write_png(&dir.path().join("rgb").join(&name), &rgb).unwrap();
        let labels = Tensor::from_slice(&labels)
            .view([1, h as i64, w as i64])
            .to_kind(Kind::Float)
            / 255.0;
        write_png(&dir.path().join("mask").join(&name), &labels).unwrap();
    }
    let out = dir.path().join("out");
    let result = Command::new(example_binary())
        .args([
            dir.path().join("rgb/%05d.png").to_str().unwrap(),
            dir.path().join("mask/%05d.png").to_str().unwrap(),
            out.to_str().unwrap(),
            "2",
            "2",
        ])
        .env("OMNIMATTE_WORKING_SIZE", "64x64")
        .output()
        .expect("the example is built with the tests");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("test-time training 2/2"), "{stderr}");
    for folder in ["recon", "layer_01", "layer_02"] {
        let files = std::fs::read_dir(out.join(folder)).unwrap().count();
        assert_eq!(files, n, "{folder}");
    }

    // A missing input is an error message and a failure, not a hang.
    let result = Command::new(example_binary())
        .args([
            "/nonexistent/%05d.png",
            "/nonexistent/%05d.png",
            out.to_str().unwrap(),
            "2",
        ])
        .env("OMNIMATTE_WORKING_SIZE", "64x64")
        .output()
        .unwrap();
    assert!(!result.status.success());
}
