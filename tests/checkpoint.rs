//! `omnimatte train` checkpoints: all or nothing, a mixed set refused on resume, one log line
//! per step across resumes, and bad numbers refused at argument parsing.

#[path = "common/cli.rs"]
mod cli;

use cli::{fails_with, read_json, succeeds};
use std::path::Path;

/// A small, quick training run of `steps` steps writing `out`: 64x64 classic scenes, batch 1.
fn small_run<'a>(out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--out",
        out,
        "--steps",
        steps,
        "--batch",
        "1",
        "--size",
        "64",
        "--device",
        "cpu",
        "--no-crop",
        "--world-share",
        "0",
    ]
}

fn train(out: &Path, steps: u64, resume: bool) {
    let (out, steps) = (out.to_str().unwrap(), steps.to_string());
    let mut args = small_run(out, &steps);
    args.extend(["--checkpoint-every", "2"]);
    if resume {
        args.push("--resume");
    }
    succeeds(&args);
}

/// The value of `key` on each line of a run's loss log.
fn logged(out: &Path, key: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.with_extension("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()[key].clone())
        .collect()
}

fn logged_steps(out: &Path) -> Vec<u64> {
    logged(out, "step")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn a_resumed_run_continues_from_one_consistent_checkpoint_and_logs_each_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.safetensors");
    train(&out, 4, false);
    let link = out.with_extension("ckpt");
    let folder = std::fs::canonicalize(&link).unwrap();
    assert!(folder.ends_with("w.ckpt.4"), "{}", folder.display());
    for f in ["weights.safetensors", "optim.safetensors", "state.json"] {
        assert!(folder.join(f).exists(), "{f}");
    }
    // Only the newest checkpoint folder is kept.
    assert!(!dir.path().join("w.ckpt.2").exists());
    // A killed run that logged steps beyond its last checkpoint: the resume writes them again.
    let log = out.with_extension("log.jsonl");
    let extra = std::fs::read_to_string(&log).unwrap()
        + "{\"step\":4,\"total\":1.0}\n{\"step\":5,\"total\":1.0}\n";
    std::fs::write(&log, extra).unwrap();
    train(&out, 6, true);
    assert_eq!(logged_steps(&out), vec![0, 1, 2, 3, 4, 5]);
    let state = read_json(&out.with_extension("json"));
    assert_eq!(state["step"].as_u64(), Some(6));

    // A checkpoint whose weights are not the ones its state was written with is refused.
    let folder = std::fs::canonicalize(&link).unwrap();
    let optim = std::fs::read(folder.join("optim.safetensors")).unwrap();
    std::fs::write(folder.join("weights.safetensors"), &optim).unwrap();
    let args = [
        "train",
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "8",
        "--batch",
        "1",
        "--size",
        "64",
        "--device",
        "cpu",
        "--resume",
    ];
    fails_with(&args, "refusing to resume from a mixed set");
}

#[test]
fn out_of_range_batches_intervals_and_hidden_frames_are_refused_at_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.safetensors");
    let out = out.to_str().unwrap();
    fails_with(&["train", "--out", out, "--batch", "0"], "--batch");
    fails_with(
        &["train", "--out", out, "--checkpoint-every", "0"],
        "--checkpoint-every",
    );
    // A 5-frame clip needs at least one hidden frame (the game's losses) and one seen.
    for hidden in ["0", "5"] {
        fails_with(
            &["train", "--out", out, "--hidden-frames", hidden],
            "--hidden-frames",
        );
    }
}

#[test]
fn wide_training_scenes_keep_the_positional_tables_at_the_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.safetensors");
    let out = out.to_str().unwrap();
    let with_width = |width: &'static str| {
        let mut args = small_run(out, "1");
        args.extend(["--max-objects", "2", "--scene-width", width]);
        args
    };
    fails_with(
        &with_width("100"),
        "training scenes (--size, --scene-width)",
    );
    succeeds(&with_width("112"));
    // 64x112 scenes, but the tables are learnt 64 / 16 = 4 tokens long in x and y: inference
    // and training both resize them to the clip's width.
    let tensors: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(out)
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(tensors["image_position.x"].size(), [4, 96]);
    assert_eq!(tensors["image_position.y"].size(), [4, 96]);
}

#[test]
fn scene_generator_threads_take_turns_in_a_fixed_order() {
    let dir = tempfile::tempdir().unwrap();
    let losses = |name: &str, threads: &str| {
        let out = dir.path().join(name);
        let mut args = small_run(out.to_str().unwrap(), "3");
        if !threads.is_empty() {
            args.extend(["--generator-threads", threads]);
        }
        succeeds(&args);
        logged(&out, "total")
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect::<Vec<f64>>()
    };
    let (two, again, one, default) = (
        losses("a.safetensors", "2"),
        losses("b.safetensors", "2"),
        losses("c.safetensors", "1"),
        losses("d.safetensors", ""),
    );
    // Training on the CPU keeps one generator by default, and the state records the count.
    assert_eq!(default, one);
    let state = read_json(&dir.path().join("a.json"));
    assert_eq!(state["generator_threads"].as_u64(), Some(2));
    // Reproducible whatever the threads' timing.
    assert_eq!(two, again);
    // Step 0 comes from thread 0, whose stream is the single generator's; step 1 from thread 1.
    assert_eq!(two[0], one[0]);
    assert_ne!(two[1], one[1]);
    fails_with(
        &[
            "train",
            "--out",
            "x.safetensors",
            "--generator-threads",
            "0",
        ],
        "--generator-threads",
    );
}
