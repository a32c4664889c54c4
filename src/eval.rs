//! Scoring decompositions of videos with ground truth (the `omnimatte eval` command).

use crate::background::{layers_cover, whole_video_background};
use crate::composite::composite;
use crate::dataset::Video;
use crate::metrics::{effect_region, iou, psnr};
use crate::model::OmnimatteNet;
use crate::stabilise::{estimate_camera_shifts, CameraShift, CameraShifts, StreamStabiliser};
use crate::stream::{Decomposer, FrameLayers, StreamConfig};
use tch::{Device, Kind, Tensor};

/// A decomposition of a whole video: layers [L, T, 4, H, W] and reconstructions [T, 3, H, W].
pub struct Decomposition {
    pub layers: Tensor,
    /// The network's own layers [L, T, 4, H, W], before mask guidance and detail transfer.
    pub network_layers: Tensor,
    /// The residual backgrounds [T, 3, H, W]: with `layers` they reproduce the frames.
    pub residual_backgrounds: Tensor,
    /// The clean backgrounds [T, 3, H, W]: the estimate of each frame.
    pub clean_backgrounds: Tensor,
    /// After detail transfer (reproduces the input up to 8-bit rounding).
    pub reconstruction: Tensor,
    /// The network's layers over the background estimate, before detail transfer.
    pub network_reconstruction: Tensor,
}

pub use crate::working::label_maps;

/// Runs the streaming decomposer over a whole video.
/// `plate`: a clean background [3, H, W] to use instead of the masked median.
pub fn decompose(
    net: &OmnimatteNet,
    video: &Video,
    config: &StreamConfig,
    plate: Option<&Tensor>,
    device: Device,
) -> anyhow::Result<Decomposition> {
    decompose_with(net, video, config, plate, device, |_| Ok(()))
}

/// [`decompose`], calling `after_frame` with the decomposer after each frame it takes: where
/// the live mode's training steps go ([`crate::ttt::PacedTraining::after_frame`]).
pub fn decompose_with(
    net: &OmnimatteNet,
    video: &Video,
    config: &StreamConfig,
    plate: Option<&Tensor>,
    device: Device,
    mut after_frame: impl FnMut(&mut Decomposer) -> anyhow::Result<()>,
) -> anyhow::Result<Decomposition> {
    let mut decomposer = Decomposer::new(config.clone(), device)?;
    if let Some(plate) = plate {
        decomposer.set_background_plate(plate);
    }
    let labels = label_maps(&video.masks);
    let mut outputs = Vec::new();
    for t in 0..video.frames.size()[0] {
        outputs.extend(decomposer.push(net, &video.frames.get(t), &labels.get(t))?);
        after_frame(&mut decomposer)?;
    }
    outputs.extend(decomposer.finish(net)?);
    // Per-frame tensors stacked on the CPU along `dim`.
    let stack = |dim: i64, f: fn(&FrameLayers) -> Tensor| {
        Tensor::stack(
            &outputs
                .iter()
                .map(|o| f(o).to_device(Device::Cpu))
                .collect::<Vec<_>>(),
            dim,
        )
    };
    Ok(Decomposition {
        layers: stack(1, |o| o.layers.shallow_clone()),
        network_layers: stack(1, |o| o.network_layers()),
        residual_backgrounds: stack(0, |o| o.background.shallow_clone()),
        clean_backgrounds: stack(0, |o| o.background_estimate.shallow_clone()),
        reconstruction: stack(0, |o| o.reconstruction.shallow_clone()),
        network_reconstruction: stack(0, |o| o.network_reconstruction()),
    })
}

/// The camera's shifts over a video ([`estimate_camera_shifts`]; `None`: a static camera).
pub fn video_camera_shifts(video: &Video) -> anyhow::Result<Option<CameraShifts>> {
    let covered = covered_by_masks(video);
    estimate_camera_shifts(video.frames.size()[0], |t| {
        Ok((video.frames.get(t), covered.get(t)))
    })
}

/// The shifts a stream's stabiliser gives a video's frames, one after the other
/// ([`StreamStabiliser`], as a [`Decomposer`] whose camera is
/// [`CameraMotion::Followed`](crate::stabilise::CameraMotion::Followed) finds them); `None`
/// where it leaves every frame as it came.
pub fn video_stream_shifts(video: &Video) -> Option<CameraShifts> {
    let covered = covered_by_masks(video);
    let mut stabiliser = StreamStabiliser::new();
    let shifts: Vec<CameraShift> = (0..video.frames.size()[0])
        .map(|t| stabiliser.follow(&video.frames.get(t), &covered.get(t)))
        .collect();
    let camera = CameraShifts::new(shifts);
    (camera.largest() > 0.0).then_some(camera)
}

/// [T, H, W] bool: where any object's mask covers each frame.
fn covered_by_masks(video: &Video) -> Tensor {
    video.masks.amax([0], false).squeeze_dim(1).gt(0.5)
}

/// A video's frames and masks moved onto its first frame (what test-time training and the
/// whole-video medians see); its clean background and true layers as they were.
pub fn aligned_video(video: &Video, camera: &CameraShifts) -> Video {
    let t_len = video.frames.size()[0];
    let frames: Vec<Tensor> = (0..t_len)
        .map(|t| camera.at(t).align(&video.frames.get(t)))
        .collect();
    let masks: Vec<Tensor> = (0..t_len)
        .map(|t| camera.at(t).align_nearest(&video.masks.select(1, t)))
        .collect();
    Video {
        frames: Tensor::stack(&frames, 0),
        masks: Tensor::stack(&masks, 1),
        background: video.background.as_ref().map(|b| b.shallow_clone()),
        gt_layers: video.gt_layers.as_ref().map(|g| g.shallow_clone()),
    }
}

/// The mask-only baseline: each layer is the frame where the object's mask is, transparent elsewhere.
pub fn mask_only_layers(video: &Video) -> Tensor {
    let frames = video
        .frames
        .unsqueeze(0)
        .expand([video.masks.size()[0], -1, -1, -1, -1], false);
    Tensor::cat(&[frames, video.masks.shallow_clone()], 2)
}

/// Scores of one video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Mean effect IoU over objects (and frames pooled per object).
    pub effect_iou: f64,
    /// Per-object effect IoU.
    pub per_object: [f64; 8],
    pub objects: usize,
    /// Mean over objects of the share of the predicted region that is in the true one
    /// (low: layers take pixels that are not theirs) ...
    pub precision: f64,
    /// ... and of the true region the predicted one covers (low: effects left out).
    pub recall: f64,
    /// Of the true region outside the object's input mask (its effects, mostly), the share the
    /// predicted region covers: what the layers found beyond the masks. Masks alone score 0.
    pub beyond_mask_recall: f64,
}

/// Mean over objects of a layer's alpha inside the object's own input mask: how opaque the
/// object is in its own layer (1: the whole object is there; the masks alone score 1).
/// `layers` [L, T, 4, H, W], `masks` [L, T, 1, H, W].
pub fn alpha_in_mask(layers: &Tensor, masks: &Tensor) -> f64 {
    mean_alpha_over(layers, &masks.gt(0.5))
}

/// True alpha at or above which a pixel is the object's own body, not its edge or an effect.
pub const OPAQUE_ALPHA: f64 = 0.9;

/// Mean over objects of a layer's alpha where the object's input mask and its true layer
/// agree that the object is there (true alpha >= [`OPAQUE_ALPHA`]): how much of the object
/// itself its layer holds. Unlike [`alpha_in_mask`] it does not ask for alpha where a rough
/// mask is wrong (bleeding past the object, a lagging mask), where the truth has none either:
/// the true layers score at least [`OPAQUE_ALPHA`] here (1 for opaque objects), and below 1
/// in [`alpha_in_mask`] when masks are rough.
/// `layers` and `truth` [L, T, 4, H, W], `masks` [L, T, 1, H, W].
pub fn alpha_on_object(layers: &Tensor, truth: &Tensor, masks: &Tensor) -> f64 {
    let body = masks
        .gt(0.5)
        .logical_and(&truth.narrow(2, 3, 1).ge(OPAQUE_ALPHA));
    mean_alpha_over(layers, &body)
}

/// Mean over objects of each layer's mean alpha inside its `region` [L, T, 1, H, W] (bool);
/// an object whose region is empty counts as 1 (nothing of it is missing).
fn mean_alpha_over(layers: &Tensor, region: &Tensor) -> f64 {
    let l = region.size()[0];
    let mut sum = 0.0;
    for k in 0..l {
        let inside = region.get(k).to_kind(Kind::Float);
        let covered = inside.sum(Kind::Float).double_value(&[]);
        sum += if covered == 0.0 {
            1.0
        } else {
            (layers.get(k).narrow(1, 3, 1) * &inside)
                .sum(Kind::Float)
                .double_value(&[])
                / covered
        };
    }
    sum / l as f64
}

/// Mean absolute error (0-1) of the layers' alpha [L, T, 4, H, W] against the true layers':
/// most of it sits at edges, so it measures how well edges land where the truth has them.
pub fn alpha_error(layers: &Tensor, truth: &Tensor) -> f64 {
    (layers.narrow(2, 3, 1) - truth.narrow(2, 3, 1))
        .abs()
        .mean(Kind::Float)
        .double_value(&[])
}

/// Ghosts in a background output [T, 3, H, W]: the mean absolute difference (0-255 scale) to
/// the true background (each frame's [T, 3, H, W], or one [3, H, W] for all) inside the union
/// of the objects' true regions (`regions` [L, T, 1, H, W]), where objects and their effects
/// were.
pub fn background_ghost(backgrounds: &Tensor, truth: &Tensor, regions: &Tensor) -> f64 {
    let inside = regions.gt(0.5).any_dim(0, false).to_kind(Kind::Float); // [T, 1, H, W]
    let n = inside.sum(Kind::Float).double_value(&[]) * 3.0;
    if n == 0.0 {
        return 0.0;
    }
    ((backgrounds - truth).abs() * &inside)
        .sum(Kind::Float)
        .double_value(&[])
        / n
        * 255.0
}

/// Object removal: the frames [T, 3, H, W] with object `k` (0-based) and its effects taken
/// out: every other layer [L, T, 4, H, W] composited, back to front, over a background that is
/// the clean estimate where layer k was (by its alpha) and the residual background elsewhere.
/// So what layer k held goes, with the clean background behind it, and what it missed (a
/// shadow left in the residual background) stays; the rest of the frame keeps its detail.
/// (The residual background cannot serve alone: detail transfer moves every colour by the same
/// fraction, so behind an opaque layer it holds a ghost of the object.)
pub fn remove_object(layers: &Tensor, residual: &Tensor, clean: &Tensor, k: i64) -> Tensor {
    let l = layers.size()[0];
    let alpha = layers.get(k).narrow(1, 3, 1); // [T, 1, H, W]
    let behind: Tensor = &alpha * clean + (1.0 - &alpha) * residual;
    let others: Vec<i64> = (0..l).filter(|&j| j != k).collect();
    if others.is_empty() {
        return behind;
    }
    let kept = layers.index_select(0, &Tensor::from_slice(&others).to_device(layers.device()));
    // composite works on [B, L, ...]: frames are the batch here.
    composite(&kept.transpose(0, 1), &behind)
}

/// PSNR of a removal [T, 3, H, W] against the true video without that object, inside the
/// removed object's true region `region` [T, 1, H, W] (its object and effects); None when
/// the object is nowhere in the video.
pub fn removal_psnr(removed: &Tensor, truth: &Tensor, region: &Tensor) -> Option<f64> {
    let inside = region.gt(0.5).to_kind(Kind::Float);
    let n = inside.sum(Kind::Float).double_value(&[]) * 3.0;
    if n == 0.0 {
        return None;
    }
    let mse = ((removed - truth).square() * &inside)
        .sum(Kind::Float)
        .double_value(&[])
        / n;
    Some(10.0 * (1.0 / mse.max(1e-12)).log10())
}

/// Effect IoU of predicted layers [L, T, 4, H, W] against the ground truth, both composited over
/// the true background (each frame's [T, 3, H, W], or one [3, H, W] for all); ground-truth
/// regions are made by the same rule from the true layers. `masks` [L, T, 1, H, W] are the
/// input masks, for the recall beyond them.
pub fn effect_iou(
    predicted: &Tensor,
    gt_layers: &Tensor,
    background: &Tensor,
    masks: &Tensor,
) -> Scores {
    let l = gt_layers.size()[0] as usize;
    let mut per_object = [f64::NAN; 8];
    let (mut sum, mut precision, mut recall, mut beyond) = (0.0, 0.0, 0.0, 0.0);
    for k in 0..l {
        let region = effect_region(&predicted.get(k as i64), background);
        let truth = effect_region(&gt_layers.get(k as i64), background);
        let outside = truth.logical_and(&masks.get(k as i64).le(0.5));
        let outside_total = outside.sum(Kind::Float).double_value(&[]);
        beyond += if outside_total == 0.0 {
            1.0
        } else {
            region
                .logical_and(&outside)
                .sum(Kind::Float)
                .double_value(&[])
                / outside_total
        };
        let score = iou(&region, &truth);
        let both = region
            .logical_and(&truth)
            .sum(Kind::Float)
            .double_value(&[]);
        let share = |of: &Tensor| {
            let n = of.sum(Kind::Float).double_value(&[]);
            if n == 0.0 {
                1.0
            } else {
                both / n
            }
        };
        precision += share(&region);
        recall += share(&truth);
        if k < per_object.len() {
            per_object[k] = score;
        }
        sum += score;
    }
    Scores {
        effect_iou: sum / l as f64,
        per_object,
        objects: l,
        precision: precision / l as f64,
        recall: recall / l as f64,
        beyond_mask_recall: beyond / l as f64,
    }
}

/// [`effect_iou`] over `parts` consecutive stretches of the frames (the last takes the
/// remainder): how the layers' quality moves along a video, which the live test-time training
/// changes as it goes (its weights at frame t have trained on frames before t only).
pub fn effect_iou_over_time(
    predicted: &Tensor,
    gt_layers: &Tensor,
    background: &Tensor,
    masks: &Tensor,
    parts: i64,
) -> Vec<f64> {
    let frames = gt_layers.size()[1];
    let length = frames / parts;
    if length == 0 {
        return Vec::new();
    }
    (0..parts)
        .map(|p| {
            let start = p * length;
            let n = if p == parts - 1 {
                frames - start
            } else {
                length
            };
            // Each frame's background goes with its frame; one for all stays.
            let background = match background.dim() {
                4 => background.narrow(0, start, n),
                _ => background.shallow_clone(),
            };
            effect_iou(
                &predicted.narrow(1, start, n),
                &gt_layers.narrow(1, start, n),
                &background,
                &masks.narrow(1, start, n),
            )
            .effect_iou
        })
        .collect()
}

/// The masked temporal median of a whole video ([`whole_video_background`]): what `eval`
/// scores as the background estimate, and decomposes with when asked for the whole video's.
/// With `first_pass`, the layers [L, T, 4, H, W] of a decomposition over it, it also leaves
/// out what they hold ([`layers_cover`]): the second median of
/// [`crate::background::BackgroundEstimate::WholeVideoLayers`]. `quantile`: which quantile of
/// a pixel's free values (0.5: the median).
pub fn whole_video_median(video: &Video, first_pass: Option<&Tensor>, quantile: f64) -> Tensor {
    let covered = video.masks.sum_dim_intlist(0, false, Kind::Float).gt(0.0);
    whole_video_background(video.frames.size()[0], quantile, |t| {
        let masks = covered.get(t);
        let covered = match first_pass {
            Some(layers) => masks.logical_or(&layers_cover(&layers.select(1, t))),
            None => masks,
        };
        (video.frames.get(t), covered)
    })
}

/// Reconstruction PSNR over all frames.
pub fn reconstruction_psnr(reconstruction: &Tensor, frames: &Tensor) -> f64 {
    psnr(reconstruction, frames)
}
