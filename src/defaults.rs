//! Every default a user sees, in one place: the element's properties, the streaming core's
//! `StreamConfig` and the CLI's flags all read them from here.

/// The network's working resolution (multiples of 16): the bundled weights' positional tables
/// are resized to it; outputs come back at the input size by detail transfer.
pub const WORKING_HEIGHT: i64 = 128;
pub const WORKING_WIDTH: i64 = 224;
pub const OBJECTS: usize = 2;
/// Recent frames in the masked-median background reservoir.
pub const BACKGROUND_FRAMES: usize = 16;
/// Frames held at the start of a stream before the first output, so that the first frames'
/// background is the median of this many frames, each decomposed once first to leave its
/// effects out of it (`StreamConfig::warm_up_frames`). Measured with 16 on the validation sets
/// (docs/measurements.md, session 43).
pub const BACKGROUND_WARM_UP: usize = 16;
/// Which quantile of a pixel's free values is its background while streaming (the element, and
/// its test-time training's own estimate): the paper's median. The 0.75 quantile (brighter
/// values: it leaves out shadows that lie on a pixel in most frames) was level on the
/// validation set streaming, with precision lower (session 37, with `exposure-match`), and lost
/// on the transfer set of held-out families without it (-0.0067, SE 0.0025; session 29).
pub const BACKGROUND_QUANTILE: f64 = 0.5;
/// The same for a whole clip's estimate (`decompose`'s, which its test-time training also
/// trains over): the 0.75 quantile. With each frame's estimate brought to its exposure
/// (`exposure-match`) it no longer costs precision, where it did without (session 29): +0.0023
/// and +0.0024 effect IoU on the two validation sets (SE 0.0005, 0.0011), +0.0016 on the
/// transfer set (SE 0.0008), a fifth less ghost, and +0.02 after 200 test-time steps on four
/// validation videos (docs/measurements.md, session 37).
pub const WHOLE_VIDEO_QUANTILE: f64 = 0.75;
/// Whether `decompose`, `eval` and the element align a shaking camera's frames to the first
/// before decomposing (`stabilise.rs`; docs/measurements.md, sessions 47 and 48).
pub const STABILISE: bool = true;
/// Clear the layers' alpha on ground nothing crossed ([`crate::still_ground`]) while the
/// median makes the background: +0.014 effect IoU on a fresh validation set (39 of 48 videos
/// better), +0.005 and +0.023 on the test sets, precision up, recall beyond the masks down
/// 0.02-0.04 (docs/measurements.md, session 57).
pub const CLEAR_STILL_GROUND: bool = true;
/// `auto`: CUDA when there is one, else the CPU.
pub const DEVICE: &str = "auto";
pub const PROCESSING_LATENCY_MS: u32 = 500;
/// Long enough for a mask branch that loads a segmentation model before its first mask.
pub const MASK_TIMEOUT_MS: u32 = 30_000;
/// Average the layers of each clip and of its mirror image: +0.006 effect IoU on the
/// validation set, precision and recall both up, for twice the network's work
/// (docs/measurements.md). Zero-shot only: see [`crate::mirror::averages`].
pub const MIRROR_AVERAGE: bool = true;
/// Bring the background estimate to each frame's exposure ([`crate::exposure`]): real
/// cameras hunt for exposure (the real clip's wall drifts by about 12 of 255), and a median
/// shows the scene at the frames' typical exposure (docs/measurements.md, session 35).
pub const EXPOSURE_MATCH: bool = true;
/// Give each object the darkening outside every mask that joins its mask
/// ([`crate::residual_effects`]): long shadows the network leaves in the background.
/// Measured on the validation sets (docs/measurements.md, session 39).
pub const RESIDUAL_SHADOWS: bool = true;
/// Give each object the brighter residual of its colour outside every mask that joins its
/// mask ([`crate::residual_effects`]): reflections the network leaves in the background.
/// Measured on the validation sets (docs/measurements.md, session 41).
pub const RESIDUAL_REFLECTIONS: bool = true;

/// Test-time training: the paper's learning rate (supplementary Sec. 3).
pub const TTT_LEARNING_RATE: f64 = 5e-4;
/// The reference fine-tunes synthetic videos for 200 steps, real ones for 1000. Measured here
/// (docs/measurements.md): with the 850-step weights, after 100 or 200 steps the layers scored
/// below zero-shot, after 500 above; with the 18500-step weights (bundled in session 15), 500
/// steps scored +0.120 over zero-shot on 8 validation videos (all better), 40 steps +0.051;
/// on the test sets +0.051 and +0.070 (in-distribution 0.798 -> 0.850, transfer 0.646 -> 0.715,
/// all 20 videos each; sessions 16-18).
pub const TTT_STEPS: u64 = 500;
/// lambda_m at the start of test-time training (tenfold less at 0.1 N, again at 0.2 N). The
/// paper: 0.1.
pub const TTT_MASK_WEIGHT: f64 = 0.1;
/// Weight of the interior-opacity term in test-time training (`crate::interior_opacity`, not
/// in the paper; 0 gives the paper's objective). 0.1 since session 21: with 500 steps it kept
/// the network's alpha on the bodies at 0.935 against 0.906 without it on 8 validation videos
/// (-0.002 effect IoU, SE 0.002) and at 0.959 against 0.911 on the whole transfer test set
/// (-0.001 effect IoU, SE 0.003; docs/measurements.md, session 21).
pub const TTT_INTERIOR_OPACITY: f64 = 0.1;
/// Steps over which test-time training's learning rate rises linearly to its full value
/// (`crate::train::TrainConfig::warmup_steps`); 0: none, the paper's constant rate. Over 40
/// steps in the live mode at one step a frame: +0.004 effect IoU (SE 0.005, 5 of 8 videos
/// better; docs/measurements.md, session 33), level, so off.
pub const TTT_WARMUP_STEPS: u64 = 0;
/// Share of the live training's clips drawn among the newest frames
/// (`crate::clip::recency_biased_start`); 0: the whole window alike. Half of them at one step
/// a frame: -0.004 effect IoU (SE 0.003, 3 of 8 videos better; the third quarter of the videos
/// -0.024), so none (docs/measurements.md, session 33).
pub const TTT_RECENT_SHARE: f64 = 0.0;
pub const TTT_FRAMES: usize = 60;
pub const TTT_SWAP_STEPS: u64 = 20;
/// Steps the live training takes before its first hand-over of weights to inference (then one
/// every [`TTT_SWAP_STEPS`]). Until session 32 it handed over at 20: on the 8 live-scoring
/// videos at one step a frame, the quarter of each video mostly decomposed with the 20-step
/// weights scored -0.074 effect IoU against zero-shot (SE 0.039, 2 of 8 better), the next two
/// quarters (40 steps and later) -0.003 and +0.001. Handing over first at 40: +0.014 (SE
/// 0.007) there, +0.011 (SE 0.006) on 8 videos it was not chosen on (docs/measurements.md,
/// session 32). With the output frame hidden from the first swap on (session 34), 20 again:
/// -0.013 (SE 0.006, 2 of 8 better). Training itself is the same either way; only what
/// inference runs changes.
pub const TTT_FIRST_SWAP_STEPS: u64 = 40;
pub const TTT_BATCH: usize = 1;
