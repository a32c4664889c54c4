//! Scoring decompositions of videos with ground truth (the `omnimatte eval` command).

use crate::background::masked_temporal_median;
use crate::dataset::Video;
use crate::metrics::{effect_region, iou, psnr};
use crate::model::OmnimatteNet;
use crate::stream::{Decomposer, StreamConfig};
use tch::{Device, Kind, Tensor};

/// A decomposition of a whole video: layers [L, T, 4, H, W] and reconstructions [T, 3, H, W].
pub struct Decomposition {
    pub layers: Tensor,
    /// After detail transfer (reproduces the input up to 8-bit rounding).
    pub reconstruction: Tensor,
    /// The network's layers over the background estimate, before detail transfer.
    pub network_reconstruction: Tensor,
}

/// Label map [T, H, W] (uint8) from per-object masks [L, T, 1, H, W]: front objects win.
pub fn label_maps(masks: &Tensor) -> Tensor {
    let l = masks.size()[0];
    let mut labels = masks
        .get(0)
        .squeeze_dim(1)
        .zeros_like()
        .to_kind(Kind::Uint8);
    for k in 0..l {
        let m = masks.get(k).squeeze_dim(1).gt(0.5);
        let _ = labels.masked_fill_(&m, k + 1);
    }
    labels
}

/// Runs the streaming decomposer over a whole video.
/// `plate`: a clean background [3, H, W] to use instead of the masked median.
pub fn decompose(
    net: &OmnimatteNet,
    video: &Video,
    config: &StreamConfig,
    plate: Option<&Tensor>,
    device: Device,
) -> anyhow::Result<Decomposition> {
    let mut decomposer = Decomposer::new(config.clone(), device)?;
    if let Some(plate) = plate {
        decomposer.set_background_plate(plate);
    }
    let labels = label_maps(&video.masks);
    let mut outputs = Vec::new();
    for t in 0..video.frames.size()[0] {
        outputs.extend(decomposer.push(net, &video.frames.get(t), &labels.get(t))?);
    }
    outputs.extend(decomposer.finish(net)?);
    // Per-frame tensors stacked on the CPU along `dim`.
    let stack = |dim: i64, f: fn(&crate::stream::FrameLayers) -> Tensor| {
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
        reconstruction: stack(0, |o| o.reconstruction.shallow_clone()),
        network_reconstruction: stack(0, |o| o.network_reconstruction()),
    })
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
    /// Mean over objects of the layer's alpha inside the object's own input mask: how opaque
    /// the object is in its own layer (1: the whole object is there; the masks alone score 1).
    pub alpha_in_mask: f64,
}

/// Effect IoU of predicted layers [L, T, 4, H, W] against the ground truth, both composited over
/// the true background; ground-truth regions are made by the same rule from the true layers.
/// `masks` [L, T, 1, H, W] are the input masks, for the recall beyond them.
pub fn effect_iou(
    predicted: &Tensor,
    gt_layers: &Tensor,
    background: &Tensor,
    masks: &Tensor,
) -> Scores {
    let l = gt_layers.size()[0] as usize;
    let mut per_object = [f64::NAN; 8];
    let (mut sum, mut precision, mut recall, mut beyond) = (0.0, 0.0, 0.0, 0.0);
    let mut alpha_in_mask = 0.0;
    for k in 0..l {
        let mask = masks.get(k as i64).gt(0.5).to_kind(Kind::Float);
        let alpha = predicted.get(k as i64).narrow(1, 3, 1);
        let covered = mask.sum(Kind::Float).double_value(&[]);
        alpha_in_mask += if covered == 0.0 {
            1.0
        } else {
            (alpha * &mask).sum(Kind::Float).double_value(&[]) / covered
        };
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
        alpha_in_mask: alpha_in_mask / l as f64,
    }
}

/// Background PSNR of the masked temporal median of the whole video against the truth.
pub fn background_psnr(video: &Video, truth: &Tensor) -> f64 {
    let covered = video.masks.sum_dim_intlist(0, false, Kind::Float).gt(0.0);
    psnr(
        &masked_temporal_median(&video.frames, &covered).image,
        truth,
    )
}

/// Reconstruction PSNR over all frames.
pub fn reconstruction_psnr(reconstruction: &Tensor, frames: &Tensor) -> f64 {
    psnr(reconstruction, frames)
}
