//! The flags that say how layers are made, shared by `decompose` and `eval` so that both run
//! the decomposition the same way.

use gstomnimatte::alpha::{AlphaMode, Upsampling};
use gstomnimatte::background::BackgroundMedian;
use gstomnimatte::clip::OutputFrameChoice;
use gstomnimatte::defaults;
use gstomnimatte::residual_effects::ResidualEffects;
use gstomnimatte::stabilise::CameraMotion;
use gstomnimatte::stream::{Inference, StreamConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct LayerArgs {
    #[arg(long, default_value_t = defaults::WORKING_HEIGHT)]
    pub working_height: i64,
    #[arg(long, default_value_t = defaults::WORKING_WIDTH)]
    pub working_width: i64,
    /// mask-guided (objects opaque inside their masks, the network's alpha adds the effects)
    /// or network (the network's alpha alone, the paper's behaviour).
    #[arg(long, default_value = "mask-guided")]
    pub alpha_mode: AlphaMode,
    /// guided (alpha follows the frame's edges) or bilinear: how layers reach the input size
    /// (equal at the working size).
    #[arg(long, default_value = "guided")]
    pub upsampling: Upsampling,
    /// Whether the network sees the frame it decomposes: visible, hidden (the paper's
    /// inference) or auto (visible, hidden after test-time training).
    #[arg(long, default_value = "auto")]
    pub output_frame: OutputFrameChoice,
    /// What the background median leaves out: masks (the pixels the input masks cover, the
    /// paper's) or layers (those and the effects the layers found, once each frame is made,
    /// and in the frames after it not made yet where its effects were).
    #[arg(long, default_value = "layers")]
    pub background_median: BackgroundMedian,
    /// Recent frames in the background's masked median while streaming (the element's
    /// `background-frames`; with `decompose`, only for `--background-estimate stream`).
    #[arg(long, default_value_t = defaults::BACKGROUND_FRAMES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub background_frames: usize,
    /// Which quantile of the values a pixel shows free of the masks is its background in the
    /// streaming estimate and in test-time training's own (0.5: the paper's median; the
    /// element's `background-quantile`).
    #[arg(long, default_value_t = defaults::BACKGROUND_QUANTILE, value_parser = parse_quantile)]
    pub background_quantile: f64,
    /// The same for the whole clip's estimate (`--background-estimate whole-video` and
    /// `whole-video-layers`, which test-time training over it also uses): higher than the
    /// median prefers the brighter values, which leaves out shadows that lie on a pixel in most
    /// frames. 0.75 against the median, with `--exposure-match`: +0.002 effect IoU on both
    /// validation sets and the test sets, a fifth less ghost (docs/measurements.md, session 37).
    /// With `--exposure-match false` the median suits better: without the matching, 0.75 cost
    /// precision on the transfer set (session 29).
    #[arg(long, default_value_t = defaults::WHOLE_VIDEO_QUANTILE, value_parser = parse_quantile)]
    pub whole_video_quantile: f64,
    /// Also decompose each clip's mirror image and average the two sets of layers: true or
    /// false (twice the network's work; docs/measurements.md measures what it gives). Not
    /// after test-time training, which fits the network to the video, not to its mirror image.
    #[arg(long, default_value_t = defaults::MIRROR_AVERAGE, action = clap::ArgAction::Set)]
    pub mirror_average: bool,
    /// Bring the background estimate to each frame's exposure (per channel, the median ratio
    /// of the frame to the estimate where no mask covers it) before the network and the
    /// outputs use it, and test-time training's to each frame it trains on: true or false
    /// (the element's `exposure-match`; docs/measurements.md).
    #[arg(long, default_value_t = defaults::EXPOSURE_MATCH, action = clap::ArgAction::Set)]
    pub exposure_match: bool,
    /// Give each object the darkening outside every mask that joins its mask (within 3/8 of
    /// the working height), where the network's layers leave it in the background: long
    /// shadows cast away from where the training scenes put them. True or false (the
    /// element's `residual-shadows`; docs/measurements.md, session 39). With
    /// `--background-estimate whole-video-layers`, the final layers only: the estimate's first
    /// pass runs without (session 40).
    #[arg(long, default_value_t = defaults::RESIDUAL_SHADOWS, action = clap::ArgAction::Set)]
    pub residual_shadows: bool,
    /// Give each object the brighter residual outside every mask that joins its mask and
    /// points from the background towards the object's colour (within 3/8 of the working
    /// height), where the network's layers leave it in the background: the reflections of
    /// bright objects. True or false (the element's `residual-reflections`;
    /// docs/measurements.md, session 41). With `--background-estimate whole-video-layers`, the
    /// final layers only, as `--residual-shadows`.
    #[arg(long, default_value_t = defaults::RESIDUAL_REFLECTIONS, action = clap::ArgAction::Set)]
    pub residual_reflections: bool,
    /// Frames held at the start before the first output while streaming (at most
    /// `--background-frames`): each is decomposed once first, so that the first frames'
    /// background is the median of this many frames without their objects' effects. 0 outputs
    /// from the look-ahead on (the element's `background-warm-up`; only `--background-estimate
    /// stream` with `decompose`; docs/measurements.md, session 43).
    #[arg(long, default_value_t = defaults::BACKGROUND_WARM_UP)]
    pub background_warm_up: usize,
    /// Follow a shaking, panning or drifting camera (each frame's translation, turn and zoom
    /// against the first, over the pixels no mask covers), decompose the frames and masks
    /// moved onto one view, and move the outputs back to their frames. A clip where fewer than
    /// a quarter of the frames moved by 1/4 pixel, or whose ground has no texture to align by,
    /// is left exactly as it is. True or false. `decompose` finds the whole clip's motion
    /// first, and where it leaves the first frame's view (a pan) makes the background as the
    /// frames come instead of over the whole clip; `eval --background-estimate stream` follows
    /// the camera frame by frame as the element's `stabilise` does (a frame is moved while a
    /// quarter of the frames up to it moved; docs/measurements.md, sessions 47-50).
    #[arg(long, default_value_t = defaults::STABILISE, action = clap::ArgAction::Set)]
    pub stabilise: bool,
    /// Clear every layer's alpha outside the masks where the frame shows the background
    /// estimate and at least half of the frames the median holds show it too: ground nothing
    /// crossed, where the network puts soft alpha nothing casts. True or false (the element's
    /// `clear-still-ground`; only the streaming estimate, `--background-estimate stream`;
    /// docs/measurements.md, sessions 56-57).
    #[arg(long, default_value_t = defaults::CLEAR_STILL_GROUND, action = clap::ArgAction::Set)]
    pub clear_still_ground: bool,
}

impl LayerArgs {
    /// The streaming decomposition of `objects` objects these flags ask for, with weights
    /// that were (`fine_tuned`) or were not fine-tuned on the video.
    pub fn stream_config(&self, objects: usize, fine_tuned: bool) -> StreamConfig {
        let inference = self.inference(fine_tuned);
        StreamConfig {
            working_height: self.working_height,
            working_width: self.working_width,
            objects,
            alpha_mode: self.alpha_mode,
            upsampling: self.upsampling,
            output_frame: inference.output_frame,
            background_median: self.background_median,
            background_frames: self.background_frames,
            background_quantile: self.background_quantile,
            mirror_average: inference.mirror_average,
            exposure_match: self.exposure_match,
            residual: ResidualEffects {
                shadows: self.residual_shadows,
                reflections: self.residual_reflections,
            },
            warm_up_frames: self.background_warm_up,
            // `decompose` and `eval` give the whole clip's shifts where they find a shaking
            // camera (`--stabilise`), or follow it as the element does (`eval`'s stream).
            camera: CameraMotion::Still,
            clear_still_ground: self.clear_still_ground,
            ..StreamConfig::default()
        }
    }

    /// The first pass of the whole clip's estimate made twice (`whole-video-layers`): the same
    /// decomposition without residual effects. That pass's layers only say what the second
    /// estimate leaves out, and the rule's darkening left out as well left pixels with no
    /// free frame, which then took the fill; the final pass adds the effects
    /// (docs/measurements.md, session 40).
    pub fn first_pass_config(&self, objects: usize, fine_tuned: bool) -> StreamConfig {
        StreamConfig {
            residual: ResidualEffects::default(),
            // Its layers only say what the second estimate leaves out (and over the first
            // estimate, a plate, the rule does not run).
            clear_still_ground: false,
            ..self.stream_config(objects, fine_tuned)
        }
    }

    /// How these flags run the network with weights that were (`fine_tuned`) or were not
    /// fine-tuned on the video.
    pub fn inference(&self, fine_tuned: bool) -> Inference {
        Inference::for_weights(self.output_frame, self.mirror_average, fine_tuned)
    }
}

/// A quantile in [0, 1].
fn parse_quantile(s: &str) -> Result<f64, String> {
    let q: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if (0.0..=1.0).contains(&q) {
        Ok(q)
    } else {
        Err(format!("a quantile is in [0, 1], not {q}"))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_quantile, LayerArgs};
    use clap::Parser;
    use gstomnimatte::defaults;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        layers: LayerArgs,
    }

    /// The whole clip's estimate is the brighter quantile and streaming keeps the median
    /// (session 37); each flag sets only its own.
    #[test]
    fn the_whole_clip_and_the_stream_have_their_own_background_quantiles() {
        let layers = Command::parse_from(["omnimatte"]).layers;
        assert_eq!(layers.whole_video_quantile, defaults::WHOLE_VIDEO_QUANTILE);
        assert_eq!(layers.background_quantile, defaults::BACKGROUND_QUANTILE);
        assert_eq!(
            layers.stream_config(2, false).background_quantile,
            defaults::BACKGROUND_QUANTILE
        );
        let layers = Command::parse_from(["omnimatte", "--whole-video-quantile", "0.5"]).layers;
        assert_eq!(layers.whole_video_quantile, 0.5);
        assert_eq!(layers.background_quantile, defaults::BACKGROUND_QUANTILE);
    }

    /// Residual effects are the final pass's: the whole clip's first pass runs without them
    /// whatever the flags, and each flag still reaches the decomposition itself.
    #[test]
    fn the_whole_clip_first_pass_runs_without_residual_effects() {
        let layers = Command::parse_from(["omnimatte"]).layers;
        assert!(layers.stream_config(2, false).residual.shadows);
        assert!(layers.stream_config(2, false).residual.reflections);
        let first = layers.first_pass_config(2, false);
        assert!(!first.residual.shadows);
        assert!(!first.residual.reflections);
        assert_eq!(first.objects, 2);
        assert_eq!(first.background_quantile, defaults::BACKGROUND_QUANTILE);
        let layers = Command::parse_from(["omnimatte", "--residual-shadows", "false"]).layers;
        assert!(!layers.stream_config(2, false).residual.shadows);
        assert!(layers.stream_config(2, false).residual.reflections);
        let layers = Command::parse_from(["omnimatte", "--residual-reflections", "false"]).layers;
        assert!(layers.stream_config(2, false).residual.shadows);
        assert!(!layers.stream_config(2, false).residual.reflections);
    }

    #[test]
    fn a_quantile_outside_zero_to_one_or_not_a_number_is_refused_with_a_reason() {
        assert_eq!(parse_quantile("0.75"), Ok(0.75));
        assert!(parse_quantile("1.5").unwrap_err().contains("[0, 1]"));
        assert!(parse_quantile("high").unwrap_err().contains("not a number"));
    }
}
