//! The element's properties and how they become a model, a stream config and training
//! configs. Defaults come from [`crate::defaults`].

use crate::alpha::{AlphaMode, Upsampling};
use crate::background::BackgroundMedian;
use crate::clip::{ClipSpec, OutputFrame, OutputFrameChoice};
use crate::defaults;
use crate::model::loading::{fine_tuned_weights, load_model, parse_device, LoadedModel};
use crate::model::PrecisionChoice;
use crate::residual_effects::ResidualEffects;
use crate::stabilise::CameraMotion;
use crate::stream::{Inference, StreamConfig};
use crate::ttt::{ContinuousConfig, FineTuneConfig};
use anyhow::Context;
use gst::glib;
use std::path::PathBuf;
use tch::{Device, Tensor};

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

/// The `alpha-mode` property (see [`crate::alpha::AlphaMode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOmnimatteAlphaMode")]
pub enum AlphaModeSetting {
    #[default]
    #[enum_value(
        name = "Mask-guided: each object opaque inside its mask, with the mask's edge; the network's alpha adds the effects outside it",
        nick = "mask-guided"
    )]
    MaskGuided,
    #[enum_value(
        name = "Network: the network's alpha alone (the paper's behaviour)",
        nick = "network"
    )]
    Network,
}

/// The `background-mode` property: what the `background` pad carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOmnimatteBackgroundMode")]
pub enum BackgroundMode {
    #[default]
    #[enum_value(
        name = "Clean: the background estimate of the frame (masked median or clean plate), nothing of any object or its effects",
        nick = "clean"
    )]
    Clean,
    #[enum_value(
        name = "Residual: the estimate plus what of the frame the layers do not explain; with the layers it reproduces the frame exactly",
        nick = "residual"
    )]
    Residual,
}

/// The `background-median` property (see [`crate::background::BackgroundMedian`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOmnimatteBackgroundMedian")]
pub enum BackgroundMedianSetting {
    #[enum_value(
        name = "Masks: the median of the pixels no input mask covers (the paper's)",
        nick = "masks"
    )]
    Masks,
    #[default]
    #[enum_value(
        name = "Layers: also leaves out the effects the layers found, once each frame's layers are made (fewer shadows left in the background)",
        nick = "layers"
    )]
    Layers,
}

/// The `upsampling` property (see [`crate::alpha::Upsampling`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOmnimatteUpsampling")]
pub enum UpsamplingSetting {
    #[default]
    #[enum_value(
        name = "Guided: alpha refined by a guided filter on the full-resolution frame (edges follow the image)",
        nick = "guided"
    )]
    Guided,
    #[enum_value(name = "Bilinear: a plain resize", nick = "bilinear")]
    Bilinear,
}

/// The `output-frame` property (see [`crate::clip::OutputFrameChoice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOmnimatteOutputFrame")]
pub enum OutputFrameSetting {
    #[default]
    #[enum_value(
        name = "Auto: visible, but hidden when test-time training is on or the weights were fine-tuned before (its losses train only hidden frames)",
        nick = "auto"
    )]
    Auto,
    #[enum_value(
        name = "Hidden: the network predicts a frame's layers from the other frames' images and the masks (the paper's inference)",
        nick = "hidden"
    )]
    Hidden,
    #[enum_value(
        name = "Visible: the network also sees the frame it decomposes",
        nick = "visible"
    )]
    Visible,
}

/// The `precision` property (see [`crate::model::PrecisionChoice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOmnimattePrecision")]
pub enum PrecisionSetting {
    #[default]
    #[enum_value(
        name = "Auto: bf16 where the CPU has AMX-BF16 or AVX512-BF16 or the CUDA device computes bf16, fp32 otherwise",
        nick = "auto"
    )]
    Auto,
    #[enum_value(name = "fp32: 32-bit floats throughout", nick = "fp32")]
    Fp32,
    #[enum_value(
        name = "bf16: convolutions, matmuls and attention in bf16 (emulated and many times slower on a CPU without AMX-BF16 or AVX512-BF16: a warning on the bus says so)",
        nick = "bf16"
    )]
    Bf16,
}

impl From<PrecisionSetting> for PrecisionChoice {
    fn from(setting: PrecisionSetting) -> Self {
        match setting {
            PrecisionSetting::Auto => PrecisionChoice::Auto,
            PrecisionSetting::Fp32 => PrecisionChoice::Fp32,
            PrecisionSetting::Bf16 => PrecisionChoice::Bf16,
        }
    }
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
    pub background_warm_up: u32,
    /// Which quantile of a pixel's free values is its background (0.5: the paper's median).
    pub background_quantile: f64,
    /// A clean plate (PNG of the empty scene, the frames' size); empty = the median estimate.
    pub background_plate: String,
    pub processing_latency_ms: u32,
    /// How long the video side waits for a mask that does not come; 0 waits forever.
    pub mask_timeout_ms: u32,
    pub ttt: TttMode,
    pub ttt_frames: u32,
    pub ttt_steps: u32,
    pub ttt_swap_steps: u32,
    pub ttt_first_swap_steps: u32,
    pub ttt_batch: u32,
    pub ttt_learning_rate: f64,
    pub ttt_mask_weight: f64,
    pub ttt_interior_opacity: f64,
    pub ttt_warmup_steps: u32,
    /// Compute precision of the network.
    pub precision: PrecisionSetting,
    pub alpha_mode: AlphaModeSetting,
    pub background_mode: BackgroundMode,
    pub background_median: BackgroundMedianSetting,
    pub upsampling: UpsamplingSetting,
    pub output_frame: OutputFrameSetting,
    pub mirror_average: bool,
    pub exposure_match: bool,
    pub residual_shadows: bool,
    pub residual_reflections: bool,
    pub stabilise: bool,
    pub clear_still_ground: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let clip = ClipSpec::default();
        Self {
            weights: String::new(),
            device: defaults::DEVICE.into(),
            objects: defaults::OBJECTS as u32,
            working_height: defaults::WORKING_HEIGHT as u32,
            working_width: defaults::WORKING_WIDTH as u32,
            clip_length: clip.length as u32,
            clip_gap: clip.gap as u32,
            background_frames: defaults::BACKGROUND_FRAMES as u32,
            background_warm_up: defaults::BACKGROUND_WARM_UP as u32,
            background_quantile: defaults::BACKGROUND_QUANTILE,
            background_plate: String::new(),
            processing_latency_ms: defaults::PROCESSING_LATENCY_MS,
            mask_timeout_ms: defaults::MASK_TIMEOUT_MS,
            ttt: TttMode::Off,
            ttt_frames: defaults::TTT_FRAMES as u32,
            ttt_steps: defaults::TTT_STEPS as u32,
            ttt_swap_steps: defaults::TTT_SWAP_STEPS as u32,
            ttt_first_swap_steps: defaults::TTT_FIRST_SWAP_STEPS as u32,
            ttt_batch: defaults::TTT_BATCH as u32,
            ttt_learning_rate: defaults::TTT_LEARNING_RATE,
            ttt_mask_weight: defaults::TTT_MASK_WEIGHT,
            ttt_interior_opacity: defaults::TTT_INTERIOR_OPACITY,
            ttt_warmup_steps: defaults::TTT_WARMUP_STEPS as u32,
            precision: PrecisionSetting::default(),
            alpha_mode: AlphaModeSetting::default(),
            background_mode: BackgroundMode::default(),
            background_median: BackgroundMedianSetting::default(),
            upsampling: UpsamplingSetting::default(),
            output_frame: OutputFrameSetting::default(),
            mirror_average: defaults::MIRROR_AVERAGE,
            exposure_match: defaults::EXPOSURE_MATCH,
            residual_shadows: defaults::RESIDUAL_SHADOWS,
            residual_reflections: defaults::RESIDUAL_REFLECTIONS,
            stabilise: defaults::STABILISE,
            clear_still_ground: defaults::CLEAR_STILL_GROUND,
        }
    }
}

impl Settings {
    pub fn clip(&self) -> anyhow::Result<ClipSpec> {
        ClipSpec::new(self.clip_length as usize, self.clip_gap as usize)
    }

    pub fn stream_config(&self) -> anyhow::Result<StreamConfig> {
        // Weights fine-tuned on a video before (`decompose --save-weights`) run as after
        // test-time training, and so does `before-output` (nothing leaves before it trained);
        // `background` starts with the weights as loaded and runs as
        // `inference_once_tuned` says from its first swap on.
        let fine_tuned = self.ttt == TttMode::BeforeOutput || fine_tuned_weights(&self.weights);
        let inference = self.inference(fine_tuned);
        Ok(StreamConfig {
            clip: self.clip()?,
            working_height: self.working_height as i64,
            working_width: self.working_width as i64,
            objects: self.objects as usize,
            background_frames: self.background_frames as usize,
            background_quantile: self.background_quantile,
            alpha_mode: match self.alpha_mode {
                AlphaModeSetting::MaskGuided => AlphaMode::MaskGuided,
                AlphaModeSetting::Network => AlphaMode::Network,
            },
            upsampling: match self.upsampling {
                UpsamplingSetting::Guided => Upsampling::Guided,
                UpsamplingSetting::Bilinear => Upsampling::Bilinear,
            },
            output_frame: inference.output_frame,
            background_median: match self.background_median {
                BackgroundMedianSetting::Masks => BackgroundMedian::Masks,
                BackgroundMedianSetting::Layers => BackgroundMedian::Layers,
            },
            mirror_average: inference.mirror_average,
            exposure_match: self.exposure_match,
            residual: ResidualEffects {
                shadows: self.residual_shadows,
                reflections: self.residual_reflections,
            },
            warm_up_frames: self.background_warm_up as usize,
            camera: CameraMotion::streamed(self.stabilise),
            clear_still_ground: self.clear_still_ground,
            ..StreamConfig::default()
        })
    }

    /// How `ttt=background` infers once it swapped tuned weights in: as weights fine-tuned on
    /// the video do (`output-frame=auto` hides the frame, no mirror averaging). Its training
    /// teaches only hidden frames' layers: hiding the frame from the first swap on scored +0.07
    /// to +0.15 effect IoU in the later quarters of 96-frame videos at one step a frame
    /// (docs/measurements.md, sessions 33-34).
    pub fn inference_once_tuned(&self) -> Inference {
        self.inference(true)
    }

    /// How the network runs with weights that were (`fine_tuned`) or were not fine-tuned on
    /// the video.
    fn inference(&self, fine_tuned: bool) -> Inference {
        Inference::for_weights(self.output_frame_choice(), self.mirror_average, fine_tuned)
    }

    fn output_frame_choice(&self) -> OutputFrameChoice {
        match self.output_frame {
            OutputFrameSetting::Auto => OutputFrameChoice::Auto,
            OutputFrameSetting::Hidden => OutputFrameChoice::Hidden,
            OutputFrameSetting::Visible => OutputFrameChoice::Visible,
        }
    }

    /// Whether the network as loaded, before any test-time training, sees the frame it
    /// decomposes (the zero-shot pass that makes the training background).
    pub fn zero_shot_output_frame(&self) -> OutputFrame {
        self.output_frame_choice()
            .resolve(fine_tuned_weights(&self.weights))
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
            mask_weight: self.ttt_mask_weight,
            interior_opacity: self.ttt_interior_opacity,
            warmup_steps: self.ttt_warmup_steps as u64,
            ..FineTuneConfig::new(self.ttt_steps as u64)
        })
    }

    /// The `background` training worker.
    pub fn continuous_config(&self) -> anyhow::Result<ContinuousConfig> {
        Ok(ContinuousConfig {
            frames: self.ttt_frames as usize,
            first_swap: self.ttt_first_swap_steps as u64,
            swap_every: self.ttt_swap_steps as u64,
            schedule_steps: self.ttt_steps as u64,
            batch_size: self.ttt_batch as usize,
            clip: self.clip()?,
            learning_rate: self.ttt_learning_rate,
            mask_weight: self.ttt_mask_weight,
            interior_opacity: self.ttt_interior_opacity,
            warmup_steps: self.ttt_warmup_steps as u64,
            recent_share: defaults::TTT_RECENT_SHARE,
            background_quantile: self.background_quantile,
            exposure_match: self.exposure_match,
            zero_shot_output: self.zero_shot_output_frame(),
            seed: 0,
        })
    }

    /// The device the `device` property names. Asking for CUDA where there is none is an error.
    pub fn device(&self) -> anyhow::Result<Device> {
        parse_device(&self.device)
    }

    /// Builds the network on the `device` property's device and loads the weights.
    pub fn load_model(&self, device: Device) -> anyhow::Result<LoadedModel> {
        load_model(
            &self.weights,
            device,
            self.clip()?.length,
            self.precision.into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::OutputFrame;

    /// `output-frame=auto` shows the network the frame unless test-time training is on, in
    /// either mode; an explicit choice holds whatever `ttt` is.
    #[test]
    fn output_frame_auto_follows_the_ttt_mode() {
        let output_frame = |output_frame, ttt| {
            Settings {
                output_frame,
                ttt,
                ..Settings::default()
            }
            .stream_config()
            .unwrap()
            .output_frame
        };
        use OutputFrameSetting::{Auto, Hidden, Visible};
        assert_eq!(output_frame(Auto, TttMode::Off), OutputFrame::Visible);
        assert_eq!(
            output_frame(Auto, TttMode::BeforeOutput),
            OutputFrame::Hidden
        );
        // `background` starts with the weights as loaded.
        assert_eq!(
            output_frame(Auto, TttMode::Background),
            OutputFrame::Visible
        );
        assert_eq!(
            output_frame(Visible, TttMode::Background),
            OutputFrame::Visible
        );
        assert_eq!(output_frame(Hidden, TttMode::Off), OutputFrame::Hidden);
    }

    /// `ttt=background` hides the frame under `auto` from its first swap on, as tuned weights
    /// run elsewhere; an explicit `visible` holds.
    #[test]
    fn the_live_mode_hides_the_output_frame_once_tuned_under_auto() {
        let once_tuned = |output_frame| {
            Settings {
                output_frame,
                ttt: TttMode::Background,
                ..Settings::default()
            }
            .inference_once_tuned()
            .output_frame
        };
        use OutputFrameSetting::{Auto, Hidden, Visible};
        assert_eq!(once_tuned(Auto), OutputFrame::Hidden);
        assert_eq!(once_tuned(Hidden), OutputFrame::Hidden);
        assert_eq!(once_tuned(Visible), OutputFrame::Visible);
    }

    /// Mirror averaging is for the pretrained network only: test-time training turns it off
    /// (`background` once it swaps tuned weights in), and `mirror-average=false` holds
    /// without it.
    #[test]
    fn mirror_averaging_stops_with_test_time_training() {
        let mirror = |mirror_average, ttt| {
            Settings {
                mirror_average,
                ttt,
                ..Settings::default()
            }
            .stream_config()
            .unwrap()
            .mirror_average
        };
        assert!(mirror(true, TttMode::Off));
        assert!(!mirror(true, TttMode::BeforeOutput));
        assert!(mirror(true, TttMode::Background), "until the first swap");
        assert!(!mirror(false, TttMode::Off));
        let tuned = Settings {
            mirror_average: true,
            ttt: TttMode::Background,
            ..Settings::default()
        }
        .inference_once_tuned();
        assert!(!tuned.mirror_average, "from the first swap");
    }

    /// The background quantile reaches both the stream and test-time training.
    #[test]
    fn the_background_quantile_reaches_streaming_and_test_time_training() {
        let settings = Settings {
            background_quantile: 0.6,
            ..Settings::default()
        };
        assert_eq!(settings.stream_config().unwrap().background_quantile, 0.6);
        assert_eq!(
            settings.continuous_config().unwrap().background_quantile,
            0.6
        );
        assert_eq!(
            Settings::default().background_quantile,
            defaults::BACKGROUND_QUANTILE
        );
    }

    /// Each kind of residual effect has its own property, and each reaches the stream alone.
    #[test]
    fn residual_shadows_and_reflections_reach_the_stream_each_on_its_own() {
        let config = Settings::default().stream_config().unwrap();
        assert_eq!(config.residual.shadows, defaults::RESIDUAL_SHADOWS);
        assert_eq!(config.residual.reflections, defaults::RESIDUAL_REFLECTIONS);
        let config = |residual_shadows, residual_reflections| {
            let config = Settings {
                residual_shadows,
                residual_reflections,
                ..Settings::default()
            }
            .stream_config()
            .unwrap();
            (config.residual.shadows, config.residual.reflections)
        };
        assert_eq!(config(true, false), (true, false));
        assert_eq!(config(false, true), (false, true));
    }

    #[test]
    fn the_live_training_hands_over_first_after_ttt_first_swap_steps_then_every_swap_steps() {
        let config = Settings::default().continuous_config().unwrap();
        assert_eq!(config.first_swap, defaults::TTT_FIRST_SWAP_STEPS);
        let settings = Settings {
            ttt_first_swap_steps: 5,
            ttt_swap_steps: 3,
            ..Settings::default()
        };
        let config = settings.continuous_config().unwrap();
        let hand_overs: Vec<u64> = (0..=12).filter(|&s| config.hands_over_at(s)).collect();
        assert_eq!(hand_overs, [5, 8, 11]);
    }

    #[test]
    fn the_warm_up_reaches_both_training_modes() {
        let settings = Settings {
            ttt_warmup_steps: 30,
            ..Settings::default()
        };
        assert_eq!(settings.fine_tune_config().unwrap().warmup_steps, 30);
        assert_eq!(settings.continuous_config().unwrap().warmup_steps, 30);
        assert_eq!(
            Settings::default()
                .continuous_config()
                .unwrap()
                .warmup_steps,
            defaults::TTT_WARMUP_STEPS
        );
    }

    /// Weights fine-tuned on a video before run as after test-time training, with `ttt=off`.
    #[test]
    fn fine_tuned_weights_run_as_after_test_time_training() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tuned.safetensors");
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _ = vs.root().zeros("w", &[2]);
        crate::model::weights::save_fine_tuned(&vs, &path, crate::model::weights::Storage::F32, 40)
            .unwrap();
        let config = Settings {
            weights: path.to_string_lossy().into(),
            ..Settings::default()
        }
        .stream_config()
        .unwrap();
        assert_eq!(config.output_frame, OutputFrame::Hidden);
        assert!(!config.mirror_average);
    }
}
