//! Clips and hidden frames (paper Sec. 3.1, reference data pipeline).
//!
//! A clip is `length` frames taken every `gap` source frames (default 5 every 3: it spans 13
//! frames). Some frames are hidden; the network predicts every object's layer for them from
//! the frames it sees and from all the masks. The paper's inference hides all but the first two
//! frames ([1,1,0,0,0]) and keeps output index 2: frame f is predicted from the images of f-6
//! and f-3 and the masks of f, f+3 and f+6. Near the start of a video the flipped pattern
//! ([0,0,0,1,1]) serves, looking ahead instead of back. By default this project also shows the
//! network frame f itself ([`OutputFrame`]).

use rand::seq::index::sample;
use rand::Rng;

/// Frames visible in the "predict" pattern; the first hidden one is the output.
pub const PREDICT_VISIBLE: usize = 2;

/// Clip geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipSpec {
    /// Frames per clip (T).
    pub length: usize,
    /// Source frames between consecutive clip frames.
    pub gap: usize,
}

impl Default for ClipSpec {
    fn default() -> Self {
        Self { length: 5, gap: 3 }
    }
}

impl ClipSpec {
    pub fn new(length: usize, gap: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            length > PREDICT_VISIBLE,
            "clip length {length} must exceed the {PREDICT_VISIBLE} visible frames of the predict pattern"
        );
        anyhow::ensure!(gap >= 1, "clip gap must be at least 1");
        Ok(Self { length, gap })
    }

    /// Source frames a clip spans: (length - 1) * gap + 1.
    pub fn span(&self) -> usize {
        (self.length - 1) * self.gap + 1
    }

    /// Frames of look-back the predict pattern needs for its visible images (6 by default).
    pub fn look_back(&self) -> usize {
        PREDICT_VISIBLE * self.gap
    }

    /// Frames of look-ahead the predict pattern needs for its masks (6 by default).
    pub fn look_ahead(&self) -> usize {
        (self.length - PREDICT_VISIBLE - 1) * self.gap
    }
}

/// Which frames of a clip the network sees during training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HiddenPattern {
    /// Pretraining: `count` frames hidden at random.
    Random { count: usize },
    /// Test-time training: [1,1,0,0,0], flipped to [0,0,0,1,1] half of the time.
    Predict,
    /// Pretraining that also draws what inference shows the network: with probability
    /// `inference_share` the pattern of [`inference_plan`] with the output frame seen
    /// ([1,1,1,0,0], flipped half of the time), otherwise `count` frames hidden at random.
    /// Random patterns teach every slot; inference only ever asks for one of two.
    RandomOrInference { count: usize, inference_share: f64 },
}

impl HiddenPattern {
    /// The visibility of each clip frame (true = seen).
    pub fn sample<R: Rng>(&self, length: usize, rng: &mut R) -> Vec<bool> {
        match *self {
            HiddenPattern::Random { count } => {
                let mut visible = vec![true; length];
                for i in sample(rng, length, count.min(length)) {
                    visible[i] = false;
                }
                visible
            }
            HiddenPattern::Predict => predict_visibility(length, rng.random_bool(0.5)),
            HiddenPattern::RandomOrInference {
                count,
                inference_share,
            } => {
                // No draw at share 0, so that runs without it take the same random stream
                // as before the option existed.
                if inference_share > 0.0 && rng.random_bool(inference_share.min(1.0)) {
                    inference_visibility(length, rng.random_bool(0.5))
                } else {
                    HiddenPattern::Random { count }.sample(length, rng)
                }
            }
        }
    }
}

/// [1,1,0,...,0], or its mirror [0,...,0,1,1] when `flipped`.
pub fn predict_visibility(length: usize, flipped: bool) -> Vec<bool> {
    let mut visible: Vec<bool> = (0..length).map(|i| i < PREDICT_VISIBLE).collect();
    if flipped {
        visible.reverse();
    }
    visible
}

/// What inference shows the network with the output frame seen: the predict pattern with its
/// output slot ([`inference_plan`]'s `output_index`) seen too: [1,1,1,0,...,0] or its mirror.
pub fn inference_visibility(length: usize, flipped: bool) -> Vec<bool> {
    let mut visible = predict_visibility(length, flipped);
    visible[output_slot(length, flipped)] = true;
    visible
}

/// The slot whose layers are the output frame's: the first hidden slot of the predict
/// pattern, or the last one when it is flipped.
fn output_slot(length: usize, flipped: bool) -> usize {
    if flipped {
        length - PREDICT_VISIBLE - 1
    } else {
        PREDICT_VISIBLE
    }
}

/// Source frames of a training clip starting at `start` (clamped to the video).
pub fn clip_frames(spec: ClipSpec, start: usize, video_len: usize) -> Vec<usize> {
    (0..spec.length)
        .map(|k| (start + k * spec.gap).min(video_len.saturating_sub(1)))
        .collect()
}

/// A random training clip start: every start whose clip fits the video is equally likely;
/// videos shorter than a clip start at 0 (and their clips are clamped).
pub fn random_start<R: Rng>(spec: ClipSpec, video_len: usize, rng: &mut R) -> usize {
    let last = video_len.saturating_sub(spec.span());
    rng.random_range(0..=last)
}

/// A training clip start that favours the newest frames: with probability `recent_share`
/// one of the clips that lie within the newest two spans, otherwise [`random_start`]. A
/// trainer that streams ahead of inference by a few frames fits the frames it is about to
/// decompose (and their neighbours) rather than the whole window alike. No draw at share 0,
/// so that such runs take [`random_start`]'s random stream.
pub fn recency_biased_start<R: Rng>(
    spec: ClipSpec,
    video_len: usize,
    recent_share: f64,
    rng: &mut R,
) -> usize {
    if recent_share > 0.0 && rng.random_bool(recent_share.min(1.0)) {
        let last = video_len.saturating_sub(spec.span());
        let first = video_len.saturating_sub(2 * spec.span());
        rng.random_range(first..=last)
    } else {
        random_start(spec, video_len, rng)
    }
}

/// Whether inference lets the network see the frame it decomposes.
///
/// The paper hides it: frame f's layers are predicted from other frames' images and every
/// mask, because the game's losses are paid on hidden frames only, so only there does its
/// training teach the network to make layers. This project's pretraining also supervises the
/// layers of the frames the network sees (the synthetic scenes' true layers, `supervision.rs`),
/// and the network learnt to use the image of a frame it sees far more than the images of
/// other frames: on the validation set, seeing the output frame scores effect IoU +0.020 and
/// recall beyond the masks +0.087 (docs/measurements.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFrame {
    /// As in the paper: the network does not see frame f.
    Hidden,
    /// The network also sees frame f.
    #[default]
    Visible,
}

/// What a user asks for: a fixed [`OutputFrame`], or `auto`: visible, but hidden after
/// test-time training, whose losses (the game's alone, on hidden frames) do not train the
/// layers of frames the network sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFrameChoice {
    #[default]
    Auto,
    Hidden,
    Visible,
}

impl OutputFrameChoice {
    /// The output frame's visibility for weights that were (`fine_tuned`) or were not
    /// fine-tuned on the video by test-time training.
    pub fn resolve(self, fine_tuned: bool) -> OutputFrame {
        match self {
            OutputFrameChoice::Hidden => OutputFrame::Hidden,
            OutputFrameChoice::Visible => OutputFrame::Visible,
            OutputFrameChoice::Auto if fine_tuned => OutputFrame::Hidden,
            OutputFrameChoice::Auto => OutputFrame::Visible,
        }
    }
}

impl std::str::FromStr for OutputFrameChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "hidden" => Ok(Self::Hidden),
            "visible" => Ok(Self::Visible),
            other => anyhow::bail!("output frame {other:?}: expected auto, hidden or visible"),
        }
    }
}

/// How inference produces one output frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferencePlan {
    /// Source frame of each clip slot (clamped to the video).
    pub frames: Vec<usize>,
    /// Which slots the network sees.
    pub visible: Vec<bool>,
    /// The slot whose output is frame f.
    pub output_index: usize,
}

/// The clip that predicts frame `f` of a video of `video_len` frames (`video_len` = None for
/// a stream of unknown length: indices are then clamped at the start only).
///
/// From frame look_back() on, the predict pattern looks back: slots f-6, f-3 visible, f the
/// output, f+3, f+6 hidden (masks only). Before that, the flipped pattern looks ahead: the
/// output slot is the last hidden one and the images of f+3 and f+6 are seen. Slots outside
/// the video are clamped to its first or last frame; a clamped visible slot may then show the
/// output frame itself, which only helps. `output` says whether the output slot itself is seen.
pub fn inference_plan(
    spec: ClipSpec,
    f: usize,
    video_len: Option<usize>,
    output: OutputFrame,
) -> InferencePlan {
    let flipped = f < spec.look_back();
    let output_index = output_slot(spec.length, flipped);
    let last = video_len.map_or(i64::MAX, |n| n.saturating_sub(1) as i64);
    let frames = (0..spec.length)
        .map(|k| {
            let offset = (k as i64 - output_index as i64) * spec.gap as i64;
            (f as i64 + offset).clamp(0, last) as usize
        })
        .collect();
    let visible = match output {
        OutputFrame::Visible => inference_visibility(spec.length, flipped),
        OutputFrame::Hidden => predict_visibility(spec.length, flipped),
    };
    InferencePlan {
        frames,
        visible,
        output_index,
    }
}
