//! Saving and loading the network's weights as safetensors.
//!
//! Loading checks every tensor of the model against the file before copying anything, so a
//! wrong or truncated file fails with the file's name and the first mismatched tensor,
//! and a model is never left half-loaded.

use anyhow::{bail, Context};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn, Kind, Tensor};

/// How the tensors are stored on disk (the compute precision is `model::Precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// 32-bit floats: a bit-exact round trip.
    F32,
    /// 16-bit floats: half the size, for bundled weights.
    F16,
}

/// Writes every variable of `vs` to `path` (names sorted, tensors on the CPU).
pub fn save(vs: &nn::VarStore, path: &Path, storage: Storage) -> anyhow::Result<()> {
    let kind = match storage {
        Storage::F32 => Kind::Float,
        Storage::F16 => Kind::Half,
    };
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.detach().to_device(tch::Device::Cpu).to_kind(kind)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Tensor::write_safetensors(&named, path)
        .with_context(|| format!("writing weights to {}", path.display()))
}

/// The header metadata key that says how many test-time training steps fitted a weights file
/// to one video (absent in pretrained files).
const FINE_TUNED_STEPS: &str = "fine_tuned_steps";

/// Writes `vs` as [`save`] does and marks the file as fine-tuned on one video by `steps` test-
/// time training steps, so that whoever loads it later runs it as after that training
/// (`output-frame=auto` hides the frame, no mirror averaging).
pub fn save_fine_tuned(
    vs: &nn::VarStore,
    path: &Path,
    storage: Storage,
    steps: u64,
) -> anyhow::Result<()> {
    save(vs, path, storage)?;
    add_metadata(path, FINE_TUNED_STEPS, &steps.to_string())
        .with_context(|| format!("marking {} as fine-tuned", path.display()))
}

/// The test-time training steps a weights file was fine-tuned with ([`save_fine_tuned`]); 0
/// for pretrained weights.
pub fn fine_tuned_steps(path: &Path) -> anyhow::Result<u64> {
    let header = read_header(path)?;
    match header["__metadata__"][FINE_TUNED_STEPS].as_str() {
        None => Ok(0),
        Some(steps) => steps.parse().with_context(|| {
            format!(
                "weights file {}: {FINE_TUNED_STEPS} {steps:?} is not a number",
                path.display()
            )
        }),
    }
}

/// Sets `key` in a safetensors file's `__metadata__` (string values, as the format asks). The
/// tensors' offsets count from the header's end, so only the header is rewritten.
fn add_metadata(path: &Path, key: &str, value: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)?;
    let mut header = read_header(path)?;
    let old_len = 8 + u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let map = header
        .as_object_mut()
        .context("the safetensors header is not an object")?;
    let metadata = map
        .entry("__metadata__")
        .or_insert_with(|| serde_json::json!({}));
    metadata[key] = value.into();
    let mut text = serde_json::to_vec(&header)?;
    // The format aligns the tensors' data to 8 bytes, padding the header with spaces.
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - old_len);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[old_len..]);
    std::fs::write(path, out)?;
    Ok(())
}

/// Loads `path` into `vs`. Every variable must be present with its exact shape; the file may
/// hold no extra tensors. 16-bit files are widened to the model's kind, and the weights of a
/// network without the background input load into one with it (zeros for the background's
/// channels: [`super::background_input`]).
pub fn load(vs: &mut nn::VarStore, path: &Path) -> anyhow::Result<()> {
    let file = path.display();
    let tensors = Tensor::read_safetensors(path)
        .with_context(|| format!("weights file {file} is not a readable safetensors file"))?;
    let mut by_name: HashMap<String, Tensor> = tensors.into_iter().collect();

    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in &vars {
        let Some(stored) = by_name.get_mut(name) else {
            bail!("weights file {file} does not fit this model: tensor `{name}` is missing");
        };
        if let Some(wider) = super::background_input::widen(name, stored, &var.size()) {
            *stored = wider;
        }
        if stored.size() != var.size() {
            bail!(
                "weights file {file} does not fit this model: tensor `{name}` has shape {:?}, the model needs {:?}",
                stored.size(),
                var.size()
            );
        }
        if !stored.is_floating_point() {
            bail!(
                "weights file {file} does not fit this model: tensor `{name}` is {:?}, not floating point",
                stored.kind()
            );
        }
        // NaN or Inf weights would give black layers and perfect-looking scores.
        let finite = stored
            .to_kind(tch::Kind::Float)
            .isfinite()
            .all()
            .int64_value(&[])
            != 0;
        if !finite {
            bail!("weights file {file} is broken: tensor `{name}` holds NaN or infinite values");
        }
    }
    if by_name.len() > vars.len() {
        let known: std::collections::HashSet<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        let mut extra: Vec<&String> = by_name
            .keys()
            .filter(|n| !known.contains(n.as_str()))
            .collect();
        extra.sort();
        bail!(
            "weights file {file} does not fit this model: unexpected tensor `{}` (was it saved with another configuration?)",
            extra[0]
        );
    }

    tch::no_grad(|| {
        for (name, mut var) in vars {
            let stored = by_name.remove(&name).expect("checked above");
            var.copy_(&stored.to_device(var.device()).to_kind(var.kind()));
        }
    });
    Ok(())
}

/// The size a weights file's positional tables were learnt at (height, width), read from the
/// safetensors header alone, so that a model of the right shape can be built before loading.
pub fn learnt_size(path: &Path) -> anyhow::Result<(i64, i64)> {
    let header = read_header(path)?;
    let file = path.display();
    let rows = |name: &str| -> anyhow::Result<i64> {
        header[name]["shape"][0].as_i64().with_context(|| {
            format!("weights file {file} does not fit this model: tensor `{name}` is missing")
        })
    };
    let stride = super::ModelConfig::STRIDE;
    Ok((
        rows("image_position.y")? * stride,
        rows("image_position.x")? * stride,
    ))
}

/// Whether a weights file's network sees the background (its image encoder takes six
/// channels), read from the safetensors header alone.
pub fn sees_background(path: &Path) -> anyhow::Result<bool> {
    let header = read_header(path)?;
    let name = super::background_input::FIRST_CONVOLUTION;
    let channels = header[name]["shape"][1].as_i64().with_context(|| {
        format!(
            "weights file {} does not fit this model: tensor `{name}` is missing",
            path.display()
        )
    })?;
    Ok(channels == 6)
}

/// The JSON header of a safetensors file (names, shapes, offsets).
fn read_header(path: &Path) -> anyhow::Result<serde_json::Value> {
    use std::io::Read;
    let file = path.display();
    let mut f =
        std::fs::File::open(path).with_context(|| format!("opening weights file {file}"))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .with_context(|| format!("weights file {file} is not a readable safetensors file"))?;
    let len = u64::from_le_bytes(len);
    anyhow::ensure!(
        len < 100 << 20,
        "weights file {file} is not a readable safetensors file (header of {len} bytes)"
    );
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header).with_context(|| {
        format!("weights file {file} is not a readable safetensors file (truncated header)")
    })?;
    serde_json::from_slice(&header).with_context(|| {
        format!("weights file {file} is not a readable safetensors file (bad header)")
    })
}
