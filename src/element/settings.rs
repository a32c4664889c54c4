//! The element's properties, their defaults, and how they become a model and a stream config.

use crate::clip::ClipSpec;
use crate::model::{weights, ModelConfig, OmnimatteNet};
use crate::stream::StreamConfig;
use crate::ttt::{ContinuousConfig, FineTuneConfig};
use anyhow::Context;
use gst::glib;
use std::path::PathBuf;
use tch::{nn, Device, Tensor};

pub const DEFAULT_OBJECTS: u32 = 2;
pub const DEFAULT_WORKING_HEIGHT: u32 = 128;
pub const DEFAULT_WORKING_WIDTH: u32 = 224;
pub const DEFAULT_BACKGROUND_FRAMES: u32 = 16;
pub const DEFAULT_PROCESSING_LATENCY_MS: u32 = 500;
/// Long enough for a mask branch that loads a segmentation model before its first mask.
pub const DEFAULT_MASK_TIMEOUT_MS: u32 = 30_000;
pub const DEFAULT_DEVICE: &str = "auto";
pub const DEFAULT_TTT_FRAMES: u32 = 60;
/// The reference fine-tunes synthetic videos for 200 steps, real ones for 1000. Measured here
/// (README): after 100 or 200 steps the layers scored below zero-shot, after 500 above.
pub const DEFAULT_TTT_STEPS: u32 = 500;
pub const DEFAULT_TTT_SWAP_STEPS: u32 = 20;
pub const DEFAULT_TTT_BATCH: u32 = 1;
pub const DEFAULT_TTT_LEARNING_RATE: f64 = 5e-4;

/// Test-time training mode (the `ttt` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOmnimatteTtt")]
pub enum TttMode {
    #[default]
    #[enum_value(
        name = "Off: the pretrained weights as they are (zero-shot)",
        nick = "off"
    )]
    Off,
    #[enum_value(
        name = "Before output: fine-tune on the first ttt-frames frames for ttt-steps steps, then output everything (files)",
        nick = "before-output"
    )]
    BeforeOutput,
    #[enum_value(
        name = "Background: fine-tune continuously on recent frames while streaming, swapping weights in every ttt-swap-steps steps (live)",
        nick = "background"
    )]
    Background,
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// safetensors file; empty = the bundled weights ([`default_weights_candidates`]).
    pub weights: String,
    /// "auto", "cpu" or "cuda:N".
    pub device: String,
    pub objects: u32,
    pub working_height: u32,
    pub working_width: u32,
    pub clip_length: u32,
    pub clip_gap: u32,
    pub background_frames: u32,
    /// A clean plate (PNG of the empty scene, the frames' size); empty = the median estimate.
    pub background_plate: String,
    pub processing_latency_ms: u32,
    /// How long the video side waits for a mask that does not come; 0 waits forever.
    pub mask_timeout_ms: u32,
    pub ttt: TttMode,
    pub ttt_frames: u32,
    pub ttt_steps: u32,
    pub ttt_swap_steps: u32,
    pub ttt_batch: u32,
    pub ttt_learning_rate: f64,
}

impl Default for Settings {
    fn default() -> Self {
        let clip = ClipSpec::default();
        Self {
            weights: String::new(),
            device: DEFAULT_DEVICE.into(),
            objects: DEFAULT_OBJECTS,
            working_height: DEFAULT_WORKING_HEIGHT,
            working_width: DEFAULT_WORKING_WIDTH,
            clip_length: clip.length as u32,
            clip_gap: clip.gap as u32,
            background_frames: DEFAULT_BACKGROUND_FRAMES,
            background_plate: String::new(),
            processing_latency_ms: DEFAULT_PROCESSING_LATENCY_MS,
            mask_timeout_ms: DEFAULT_MASK_TIMEOUT_MS,
            ttt: TttMode::Off,
            ttt_frames: DEFAULT_TTT_FRAMES,
            ttt_steps: DEFAULT_TTT_STEPS,
            ttt_swap_steps: DEFAULT_TTT_SWAP_STEPS,
            ttt_batch: DEFAULT_TTT_BATCH,
            ttt_learning_rate: DEFAULT_TTT_LEARNING_RATE,
        }
    }
}

/// How the weights were obtained, for the log and for a loud warning.
pub enum WeightsSource {
    File(PathBuf),
    /// No weights file exists: random initialisation (seeded), useless for real decompositions.
    RandomInit,
}

impl Settings {
    pub fn clip(&self) -> anyhow::Result<ClipSpec> {
        ClipSpec::new(self.clip_length as usize, self.clip_gap as usize)
    }

    pub fn stream_config(&self) -> anyhow::Result<StreamConfig> {
        Ok(StreamConfig {
            clip: self.clip()?,
            working_height: self.working_height as i64,
            working_width: self.working_width as i64,
            objects: self.objects as usize,
            background_frames: self.background_frames as usize,
            ..StreamConfig::default()
        })
    }

    /// The clean plate [3, H, W] in [0, 1], if the `background-plate` property names one.
    pub fn plate(&self) -> anyhow::Result<Option<Tensor>> {
        if self.background_plate.is_empty() {
            return Ok(None);
        }
        let path = PathBuf::from(&self.background_plate);
        let image = crate::image_io::read_png(&path)
            .with_context(|| format!("reading the background plate {}", path.display()))?;
        anyhow::ensure!(
            image.size()[0] >= 3,
            "the background plate {} is not an RGB image",
            path.display()
        );
        Ok(Some(image.narrow(0, 0, 3)))
    }

    /// The `before-output` training run.
    pub fn fine_tune_config(&self) -> anyhow::Result<FineTuneConfig> {
        Ok(FineTuneConfig {
            batch_size: self.ttt_batch as usize,
            clip: self.clip()?,
            learning_rate: self.ttt_learning_rate,
            ..FineTuneConfig::new(self.ttt_steps as u64)
        })
    }

    /// The `background` training worker.
    pub fn continuous_config(&self) -> anyhow::Result<ContinuousConfig> {
        Ok(ContinuousConfig {
            frames: self.ttt_frames as usize,
            swap_every: self.ttt_swap_steps as u64,
            schedule_steps: self.ttt_steps as u64,
            batch_size: self.ttt_batch as usize,
            clip: self.clip()?,
            learning_rate: self.ttt_learning_rate,
            seed: 0,
        })
    }

    /// The device the `device` property names. Asking for CUDA where there is none is an error.
    pub fn device(&self) -> anyhow::Result<Device> {
        parse_device(&self.device)
    }

    /// Builds the network on `device` and loads the weights. The model takes the size its
    /// positional tables were learnt at from the weights file.
    pub fn load_model(
        &self,
        device: Device,
    ) -> anyhow::Result<(nn::VarStore, OmnimatteNet, WeightsSource)> {
        let clip = self.clip()?;
        let path = if self.weights.is_empty() {
            default_weights_candidates()
                .into_iter()
                .find(|p| p.exists())
        } else {
            let path = PathBuf::from(&self.weights);
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
        let config = ModelConfig {
            max_frames: ModelConfig::default().max_frames.max(clip.length as i64),
            train_height,
            train_width,
            ..ModelConfig::default()
        };
        tch::manual_seed(0);
        let mut vs = nn::VarStore::new(device);
        let net = OmnimatteNet::new(&vs.root(), config)?;
        let Some(path) = path else {
            return Ok((vs, net, WeightsSource::RandomInit));
        };
        weights::load(&mut vs, &path)
            .with_context(|| format!("loading weights {}", path.display()))?;
        Ok((vs, net, WeightsSource::File(path)))
    }
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
