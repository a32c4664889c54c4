//! The frames test-time training fits where the camera pans: moved onto one view a stretch at a
//! time. Moved onto the first frame's view, as a shake's frames are, a pan's later frames show
//! that view's ground less and less and their own border repeated more and more, and a median
//! in that view holds the ground the camera has left; the stream's decomposer moves its view on
//! with the pan (`src/stream.rs`), and training does the same (session 51).

use super::TrainingFrames;
use crate::stabilise::CameraShifts;
use std::ops::Range;
use tch::{Device, Tensor};

/// How to make the frames of one view: sizes and settings as [`TrainingFrames`] takes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewSettings {
    pub objects: usize,
    pub working_height: i64,
    pub working_width: i64,
    pub background_quantile: f64,
    pub exposure_match: bool,
}

/// A view training sees frames moved onto: frame `view`'s, and the frames it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingView {
    pub view: i64,
    pub frames: Range<i64>,
}

/// The views of a clip of `len` frames whose camera moved by `camera` (None: still): one, the
/// first frame's, holding every frame, unless the camera leaves it; then one per stretch of
/// the clip ([`CameraShifts::stretches`]) in its middle frame's view, holding its own frames
/// and its neighbours' (a stretch's median then has more frames than its own few, each within
/// about two stretches' reach of the view).
pub fn training_views(camera: Option<&CameraShifts>, len: i64) -> Vec<TrainingView> {
    let one_view = vec![TrainingView {
        view: 0,
        frames: 0..len,
    }];
    let stretches = match camera {
        Some(camera) if camera.leave_the_first_view() => camera.stretches(),
        _ => return one_view,
    };
    if stretches.len() == 1 {
        return one_view;
    }
    (0..stretches.len())
        .map(|i| {
            let own = &stretches[i];
            let first = stretches[i.saturating_sub(1)].start;
            let last = stretches[(i + 1).min(stretches.len() - 1)].end;
            TrainingView {
                view: (own.start + own.end - 1) / 2,
                frames: first..last,
            }
        })
        .collect()
}

/// The training frames of each view of [`training_views`]: frame `t` as it came ([3, H, W] in
/// [0, 1] and its label map [H, W], from `frame_and_labels`) moved onto the view, on `device`.
pub fn frames_in_views(
    camera: Option<&CameraShifts>,
    len: i64,
    settings: ViewSettings,
    device: Device,
    mut frame_and_labels: impl FnMut(i64) -> anyhow::Result<(Tensor, Tensor)>,
) -> anyhow::Result<Vec<TrainingFrames>> {
    training_views(camera, len)
        .into_iter()
        .map(|TrainingView { view, frames }| {
            let count = (frames.end - frames.start) as usize;
            let mut held = TrainingFrames::new(count, settings.background_quantile)
                .matching_exposure(settings.exposure_match);
            for t in frames {
                let (frame, labels) = frame_and_labels(t)?;
                let (frame, labels) = match camera {
                    Some(camera) => camera.against(t, view).align_frame(&frame, &labels),
                    None => (frame, labels),
                };
                held.push_video_frame(
                    &frame.to_device(device),
                    &labels.to_device(device),
                    settings.objects,
                    settings.working_height,
                    settings.working_width,
                );
            }
            Ok(held)
        })
        .collect()
}
