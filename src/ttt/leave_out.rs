//! The background test-time training composites over, made a second time: a median under the
//! masks alone keeps every effect that stays on a pixel most of the held frames (a slow
//! object's shadow), and a game played over that background has nothing left to explain
//! there, so it learns to drop the shadow. As `decompose`'s `whole-video-layers` does for its
//! plate, the network is run once zero-shot over the frames held, and what its layers cover
//! is left out of the median too (docs/measurements.md, session 30).

use super::TrainingFrames;
use crate::background::layers_cover;
use crate::clip::{ClipSpec, OutputFrame};
use crate::composite::to_unit;
use crate::model::OmnimatteNet;
use crate::stream::{Decomposer, StreamConfig};
use crate::working::label_maps;
use tch::Tensor;

/// Decomposes every frame held in `frames` with `net` as streaming inference does (`clip`;
/// `output` says whether the network sees the frame it decomposes), over the frames' current
/// background, and leaves what the layers cover out of that background
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
        // The held frames are at the working size already: a decomposer at that size over
        // their background as a plate runs the network as inference does, each frame's
        // encodings shared between the clips that use them.
        let background = to_unit(&frames.background().squeeze_dim(0)); // [3, h, w]
        let [_, h, w] = background.size()[..] else {
            unreachable!("the background is [3, h, w]")
        };
        let (first_image, first_masks) = frames.frame(0);
        let objects = first_masks.size()[0];
        let mut decomposer = Decomposer::new(
            StreamConfig {
                clip,
                working_height: h,
                working_width: w,
                objects: objects as usize,
                output_frame: output,
                mirror_average: false,
                ..StreamConfig::default()
            },
            first_image.device(),
        )?;
        decomposer.set_background_plate(&background);
        let mut covers = Vec::with_capacity(n);
        for i in 0..n {
            let (image, masks) = frames.frame(i);
            // The label map the masks came from (they do not overlap: each is an object
            // covering most of a working pixel).
            let labels = label_maps(&masks.unsqueeze(1)).squeeze_dim(0);
            let outs = decomposer.push(net, &to_unit(&image.squeeze_dim(0)), &labels)?;
            covers.extend(outs.iter().map(|out| layers_cover(&out.network_working)));
        }
        let outs = decomposer.finish(net)?;
        covers.extend(outs.iter().map(|out| layers_cover(&out.network_working)));
        Ok(covers)
    })?;
    for (f, covered) in covers.iter().enumerate() {
        frames.cover_background(n - 1 - f, covered);
    }
    Ok(())
}
