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
use crate::stabilise::CameraMotion;
use crate::stream::{Decomposer, FrameLayers, StreamConfig};
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
        let (first_image, first_masks) = frames.frame(0);
        let mut decomposer = working_decomposer(
            first_image,
            first_masks,
            clip,
            output,
            frames.matches_exposure(),
        )?;
        decomposer.set_background_plate(&background);
        let mut covers = Vec::with_capacity(n);
        for i in 0..n {
            let (image, masks) = frames.frame(i);
            let outs = push_training_frame(&mut decomposer, net, image, masks)?;
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

/// A decomposer for training frames like `image` [1, 3, h, w] with `masks` [L, 1, h, w]: at
/// their working size, on their device, without mirror averaging or the warm-up, matching
/// exposure as the training does (`exposure_match`, [`TrainingFrames::matches_exposure`]).
pub(super) fn working_decomposer(
    image: &Tensor,
    masks: &Tensor,
    clip: ClipSpec,
    output: OutputFrame,
    exposure_match: bool,
) -> anyhow::Result<Decomposer> {
    let [_, _, h, w] = image.size()[..] else {
        anyhow::bail!("a training frame is not [1, 3, h, w]")
    };
    Decomposer::new(
        StreamConfig {
            clip,
            working_height: h,
            working_width: w,
            objects: masks.size()[0] as usize,
            output_frame: output,
            mirror_average: false,
            exposure_match,
            // Covers as soon as a frame's look-ahead came (the live mode's training waits for
            // them; it was measured so); over a plate nothing is held anyway.
            warm_up_frames: 0,
            // Training frames come aligned where the camera shakes (they are what the
            // network saw).
            camera: CameraMotion::Still,
            ..StreamConfig::default()
        },
        image.device(),
    )
}

/// Pushes a training frame (image [1, 3, h, w] in [-1, 1], masks [L, 1, h, w]) into a
/// [`working_decomposer`], as the label map the masks came from (they do not overlap: each is
/// an object covering most of a working pixel).
pub(super) fn push_training_frame(
    decomposer: &mut Decomposer,
    net: &OmnimatteNet,
    image: &Tensor,
    masks: &Tensor,
) -> anyhow::Result<Vec<FrameLayers>> {
    let labels = label_maps(&masks.unsqueeze(1)).squeeze_dim(0);
    decomposer.push(net, &to_unit(&image.squeeze_dim(0)), &labels)
}
