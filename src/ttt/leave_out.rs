//! The background test-time training composites over, made a second time: a median under the
//! masks alone keeps every effect that stays on a pixel most of the held frames (a slow
//! object's shadow), and a game played over that background has nothing left to explain
//! there, so it learns to drop the shadow. As `decompose`'s `whole-video-layers` does for its
//! plate, the network is run once zero-shot over the frames held, and what its layers cover
//! is left out of the median too (docs/measurements.md, session 30).

use super::TrainingFrames;
use crate::background::layers_cover;
use crate::clip::{inference_plan, ClipSpec, OutputFrame};
use crate::composite::to_unit;
use crate::model::OmnimatteNet;
use tch::{Kind, Tensor};

/// Decomposes every frame held in `frames` with `net` as inference does (the clip of
/// [`inference_plan`], `output` saying whether the network sees the frame it decomposes), over
/// the frames' current background, and leaves what the layers cover out of that background
/// ([`TrainingFrames::cover_background`]). Nothing to do over a clean plate.
pub fn leave_out_layers(
    frames: &mut TrainingFrames,
    net: &OmnimatteNet,
    clip: ClipSpec,
    output: OutputFrame,
) -> anyhow::Result<()> {
    if frames.has_plate() || frames.is_empty() {
        return Ok(());
    }
    let n = frames.len();
    let covers = tch::no_grad(|| -> anyhow::Result<Vec<Tensor>> {
        let background = frames.background(); // [1, 3, h, w]
        let device = background.device();
        (0..n)
            .map(|f| {
                let plan = inference_plan(clip, f, Some(n), output);
                let (images, masks) = frames.clip(&plan.frames);
                let visible: Vec<f32> = plan.visible.iter().map(|&v| v as u8 as f32).collect();
                let visible = Tensor::from_slice(&visible).view([1, -1]).to_device(device);
                let input = net.image_input(&images, &background).unsqueeze(0);
                let rgba = net.forward_frame(
                    &input,
                    &masks.unsqueeze(0),
                    &visible,
                    plan.output_index as i64,
                )?; // [1, L, 4, h, w] in [-1, 1]
                Ok(layers_cover(&to_unit(
                    &rgba.squeeze_dim(0).to_kind(Kind::Float),
                )))
            })
            .collect()
    })?;
    for (f, covered) in covers.iter().enumerate() {
        frames.cover_background(n - 1 - f, covered);
    }
    Ok(())
}
