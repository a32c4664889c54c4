//! Saving and loading weights as safetensors: bit-exact round trip, clear errors.

mod common;

use common::seeded_net;
use gstomnimatte::model::loading::fine_tuned_weights;
use gstomnimatte::model::weights::{fine_tuned_steps, load, save, save_fine_tuned, Storage};
use gstomnimatte::model::{ModelConfig, OmnimatteNet};
use tch::{nn, Device, Tensor};

fn all_equal(a: &nn::VarStore, b: &nn::VarStore) -> bool {
    let vb = b.variables();
    a.variables().iter().all(|(name, t)| vb[name].equal(t))
}

#[test]
fn round_trip_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let (vs_a, _) = seeded_net(1);
    save(&vs_a, &path, Storage::F32).unwrap();
    let (mut vs_b, _) = seeded_net(2);
    assert!(!all_equal(&vs_a, &vs_b));
    load(&mut vs_b, &path).unwrap();
    assert!(all_equal(&vs_a, &vs_b));
}

/// Fine-tuned weights say so in their header, and load exactly like any others.
#[test]
fn fine_tuned_weights_are_marked_and_load_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, tuned) = (
        dir.path().join("plain.safetensors"),
        dir.path().join("tuned.safetensors"),
    );
    let (vs_a, _) = seeded_net(1);
    save(&vs_a, &plain, Storage::F32).unwrap();
    save_fine_tuned(&vs_a, &tuned, Storage::F32, 500).unwrap();
    assert_eq!(fine_tuned_steps(&plain).unwrap(), 0);
    assert_eq!(fine_tuned_steps(&tuned).unwrap(), 500);
    assert!(!fine_tuned_weights(plain.to_str().unwrap()));
    assert!(fine_tuned_weights(tuned.to_str().unwrap()));
    // The bundled weights (empty setting) are the pretrained ones.
    assert!(!fine_tuned_weights(""));
    let (mut vs_b, _) = seeded_net(2);
    load(&mut vs_b, &tuned).unwrap();
    assert!(all_equal(&vs_a, &vs_b));
}

#[test]
fn half_precision_halves_the_file_and_stays_close() {
    let dir = tempfile::tempdir().unwrap();
    let (f32_path, f16_path) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    let (vs_a, _) = seeded_net(1);
    save(&vs_a, &f32_path, Storage::F32).unwrap();
    save(&vs_a, &f16_path, Storage::F16).unwrap();
    let (s32, s16) = (
        std::fs::metadata(&f32_path).unwrap().len(),
        std::fs::metadata(&f16_path).unwrap().len(),
    );
    assert!(s16 * 2 <= s32 + 100_000, "{s16} vs {s32}");
    let (mut vs_b, _) = seeded_net(2);
    load(&mut vs_b, &f16_path).unwrap();
    let vb = vs_b.variables();
    for (name, t) in vs_a.variables() {
        let diff = (&t - &vb[&name]).abs().max().double_value(&[]);
        assert!(
            diff <= 1e-3 * (1.0 + t.abs().max().double_value(&[])),
            "{name}: {diff}"
        );
    }
}

#[test]
fn a_truncated_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.safetensors");
    let (vs, _) = seeded_net(1);
    save(&vs, &path, Storage::F32).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (mut other, _) = seeded_net(2);
    let err = format!("{:#}", load(&mut other, &path).unwrap_err());
    assert!(err.contains("broken.safetensors"), "{err}");

    std::fs::write(&path, b"not a weights file").unwrap();
    let err = format!("{:#}", load(&mut other, &path).unwrap_err());
    assert!(err.contains("broken.safetensors"), "{err}");
}

#[test]
fn a_file_for_another_model_names_the_first_mismatched_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.safetensors");
    // Same architecture learnt at 64x64: the x and y positional tables are shorter.
    let vs_small = nn::VarStore::new(Device::Cpu);
    let cfg = ModelConfig {
        train_height: 64,
        train_width: 64,
        ..ModelConfig::default()
    };
    OmnimatteNet::new(&vs_small.root(), cfg).unwrap();
    save(&vs_small, &path, Storage::F32).unwrap();
    let (mut vs, _) = seeded_net(1);
    let before: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect();
    let err = format!("{:#}", load(&mut vs, &path).unwrap_err());
    assert!(
        err.contains("other.safetensors") && err.contains("image_position.x"),
        "{err}"
    );
    assert!(err.contains("[4, 96]") && err.contains("[8, 96]"), "{err}");
    // Nothing was half-loaded.
    let after = vs.variables();
    assert!(before.iter().all(|(n, t)| after[n].equal(t)));

    // A missing tensor is named too.
    let missing = dir.path().join("missing.safetensors");
    let tensors: Vec<(String, Tensor)> = before
        .into_iter()
        .filter(|(n, _)| n != "hidden_embedding")
        .collect();
    Tensor::write_safetensors(&tensors, &missing).unwrap();
    let err = format!("{:#}", load(&mut vs, &missing).unwrap_err());
    assert!(
        err.contains("missing.safetensors") && err.contains("`hidden_embedding` is missing"),
        "{err}"
    );
}
