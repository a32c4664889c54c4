//! Building the network and loading its weights: the device, the default-weights search, and
//! what was loaded. Used by the element and every CLI command alike.

use super::{weights, ModelConfig, OmnimatteNet, Precision, PrecisionChoice};
use anyhow::Context;
use std::path::{Path, PathBuf};
use tch::{nn, Device};

/// Where the bundled pretrained weights live in a source checkout.
pub const BUNDLED_WEIGHTS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/weights/omnimatte.safetensors");

/// The file name of the bundled weights in a data directory.
const WEIGHTS_FILE: &str = "omnimatte.safetensors";

/// Where to look for the default weights, in order: `$GST_OMNIMATTE_DATADIR` alone when it is
/// set (a relocated install, or a test), else the data directory `meson install` put them in
/// (compiled in by meson), then the source checkout.
pub fn default_weights_candidates() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("GST_OMNIMATTE_DATADIR") {
        return vec![PathBuf::from(dir).join(WEIGHTS_FILE)];
    }
    let installed =
        option_env!("OMNIMATTE_INSTALL_DATADIR").map(|d| PathBuf::from(d).join(WEIGHTS_FILE));
    installed
        .into_iter()
        .chain([PathBuf::from(BUNDLED_WEIGHTS)])
        .collect()
}

/// How the weights were obtained, for the log and for a loud warning.
pub enum WeightsSource {
    File(PathBuf),
    /// No weights file exists: random initialisation (seeded), useless for real decompositions.
    RandomInit,
}

/// A network ready to run.
pub struct LoadedModel {
    pub vs: nn::VarStore,
    pub net: OmnimatteNet,
    pub source: WeightsSource,
    pub precision: Precision,
}

/// Builds the network on `device` and loads `weights` (empty: the bundled weights, or a seeded
/// random initialisation where none exist). The model takes the size its positional tables
/// were learnt at from the weights file; `clip_length` frames must fit its time table.
pub fn load_model(
    weights: &str,
    device: Device,
    clip_length: usize,
    precision: PrecisionChoice,
) -> anyhow::Result<LoadedModel> {
    let path = if weights.is_empty() {
        default_weights_candidates()
            .into_iter()
            .find(|p| p.exists())
    } else {
        let path = PathBuf::from(weights);
        anyhow::ensure!(
            path.exists(),
            "weights file {} does not exist",
            path.display()
        );
        Some(path)
    };
    let (train_height, train_width) = match &path {
        Some(p) => weights::learnt_size(p)?,
        None => (
            ModelConfig::default().train_height,
            ModelConfig::default().train_width,
        ),
    };
    let background_input = match &path {
        Some(p) => weights::sees_background(p)?,
        None => false,
    };
    let precision = precision.resolve(device);
    let config = ModelConfig {
        max_frames: ModelConfig::default().max_frames.max(clip_length as i64),
        train_height,
        train_width,
        precision,
        background_input,
        ..ModelConfig::default()
    };
    tch::manual_seed(0);
    let mut vs = nn::VarStore::new(device);
    let net = OmnimatteNet::new(&vs.root(), config)?;
    let source = match path {
        Some(path) => {
            weights::load(&mut vs, &path)
                .with_context(|| format!("loading weights {}", path.display()))?;
            WeightsSource::File(path)
        }
        None => WeightsSource::RandomInit,
    };
    Ok(LoadedModel {
        vs,
        net,
        source,
        precision,
    })
}

/// Whether the weights the `weights` setting names (empty: the bundled, pretrained ones) were
/// fine-tuned on a video by test-time training ([`weights::save_fine_tuned`]). A file whose
/// header cannot be read counts as not fine-tuned: loading it fails with its own message.
pub fn fine_tuned_weights(weights: &str) -> bool {
    !weights.is_empty() && weights::fine_tuned_steps(Path::new(weights)).is_ok_and(|n| n > 0)
}

/// "auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N".
pub fn parse_device(name: &str) -> anyhow::Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        _ => {
            let index = match name.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse::<usize>().ok())
                    .with_context(|| {
                        format!("device `{name}`: expected auto, cpu, cuda or cuda:N")
                    })?,
                None => anyhow::bail!("device `{name}`: expected auto, cpu, cuda or cuda:N"),
            };
            let count = tch::Cuda::device_count() as usize;
            anyhow::ensure!(
                index < count,
                "device `{name}` was asked for, but {} (is this a CUDA build? see scripts/setup.sh --cuda)",
                if count == 0 { "no CUDA device is available".to_string() } else { format!("only {count} CUDA devices exist") }
            );
            Ok(Device::Cuda(index))
        }
    }
}
