//! Training batches of clips cut from freshly generated scenes (pretraining, Sec. 3.3).

use super::{generate, SceneFamily, SynthConfig};
use crate::augment::RandomCrop;
use crate::background::masked_temporal_median;
use crate::clip::{clip_frames, random_start, ClipSpec, HiddenPattern};
use crate::supervision::premultiply;
use crate::train::Batch;
use rand::rngs::StdRng;
use rand::Rng;
use tch::{Kind, Tensor};

/// How to cut training clips.
#[derive(Debug, Clone)]
pub struct TrainingBatchSpec {
    pub scenes: SynthConfig,
    pub clip: ClipSpec,
    pub batch_size: usize,
    pub hidden: HiddenPattern,
    /// Crop augmentation of each clip; None trains on whole frames.
    pub crop: Option<RandomCrop>,
    /// Share of clips drawn from the `world` family; the rest from `scenes.family`.
    pub world_share: f64,
    /// Whether to estimate the background shown to a network that sees it: the masked median
    /// of the scene's frames, as inference estimates it ([`Batch::shown_background`]).
    pub shown_background: bool,
    /// Share of clips whose shown background median leaves out, beside the masks, the
    /// scene's true effect regions: what `decompose`'s second median approximates (docs/
    /// training.md, sitting 13). Decided from each scene's seed, so runs that differ only in
    /// it train on the same scenes.
    pub median_without_effects_share: f64,
}

/// A batch of `batch_size` clips, each from a new scene; all scenes of a batch have the same
/// number of objects (drawn per batch) so that their masks stack.
pub fn training_batch(spec: &TrainingBatchSpec, rng: &mut StdRng) -> Batch {
    let objects = rng.random_range(
        spec.scenes.min_objects..=spec.scenes.max_objects.max(spec.scenes.min_objects),
    );
    let scenes = SynthConfig {
        frames: spec.clip.span() as i64,
        min_objects: objects,
        max_objects: objects,
        ..spec.scenes.clone()
    };
    let (mut frames, mut masks, mut backgrounds, mut visible, mut targets, mut shown) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for _ in 0..spec.batch_size {
        let family = if rng.random_bool(spec.world_share.clamp(0.0, 1.0)) {
            SceneFamily::World
        } else {
            spec.scenes.family
        };
        let seed: u64 = rng.random();
        let scene = generate(
            &SynthConfig {
                family,
                ..scenes.clone()
            },
            seed,
        );
        let start = random_start(spec.clip, scene.frames.size()[0] as usize, rng);
        let idx: Vec<i64> = clip_frames(spec.clip, start, scene.frames.size()[0] as usize)
            .into_iter()
            .map(|i| i as i64)
            .collect();
        let idx = Tensor::from_slice(&idx);
        frames.push(scene.frames.index_select(0, &idx) * 2.0 - 1.0);
        masks.push(scene.masks.index_select(1, &idx));
        targets.push(premultiply(&scene.layers.index_select(1, &idx)));
        backgrounds.push(scene.background.unsqueeze(0) * 2.0 - 1.0);
        if spec.shown_background {
            // Every frame of the scene, masked by its input masks (with their errors), and for
            // a share of scenes by their true effects too.
            let mut covered = scene.masks.sum_dim_intlist(0, false, Kind::Float).gt(0.0);
            if leaves_out_effects(seed, spec.median_without_effects_share) {
                let effects = scene.regions.sum_dim_intlist(0, false, Kind::Float).gt(0.0);
                covered = covered.logical_or(&effects);
            }
            let estimate = masked_temporal_median(&scene.frames, &covered).image;
            shown.push(estimate.unsqueeze(0) * 2.0 - 1.0);
        }
        let v: Vec<f32> = spec
            .hidden
            .sample(spec.clip.length, rng)
            .into_iter()
            .map(|v| v as u8 as f32)
            .collect();
        visible.push(Tensor::from_slice(&v));
    }
    let batch = Batch {
        frames: Tensor::stack(&frames, 0),
        masks: Tensor::stack(&masks, 0),
        background: Tensor::stack(&backgrounds, 0),
        visible: Tensor::stack(&visible, 0).to_kind(Kind::Float),
        targets: Some(Tensor::stack(&targets, 0)),
        shown_background: spec.shown_background.then(|| Tensor::stack(&shown, 0)),
    };
    match spec.crop {
        Some(crop) => crop.apply(&batch, rng),
        None => batch,
    }
}

/// Whether the scene of `seed` is one of the `share` whose shown median leaves out its effects:
/// from the seed alone, so the draw takes nothing from the stream of scenes.
fn leaves_out_effects(seed: u64, share: f64) -> bool {
    // The seed's top 53 bits as a uniform number in [0, 1).
    ((seed >> 11) as f64 / (1u64 << 53) as f64) < share
}
