//! Pairs video frames with masks by running time, keeping video-side events in order with the
//! frames around them, and hands the worker its work in stream order.

use gst::prelude::*;
use gst_video::VideoInfo;
use std::collections::VecDeque;

/// A buffer with what pairing and conversion need to know about it.
pub struct Timed {
    pub buffer: gst::Buffer,
    pub running_time: Option<gst::ClockTime>,
    pub info: VideoInfo,
}

/// What the worker does, in stream order.
pub enum Work {
    Frame {
        video: Timed,
        mask: Timed,
    },
    /// Downstream events of the video stream (segment, tags, ...), sent on every src pad.
    Event(gst::Event),
    /// New video caps: finish the frames of the old size, then announce RGBA caps of the new.
    Caps(VideoInfo),
    StreamStart(gst::Event),
    /// End of stream: produce every pending frame, then send EOS.
    Drain,
    /// After a flush: forget the window.
    Reset,
}

/// Items from the video pad, waiting for masks.
pub enum VideoItem {
    Frame(Timed),
    Other(Work),
}

/// The pairing queues (kept by [`super::streaming::Streaming`] under its mutex).
#[derive(Default)]
pub struct Pairing {
    pub video: VecDeque<VideoItem>,
    pub masks: VecDeque<Timed>,
    pub work: VecDeque<Work>,
    pub mask_eos: bool,
    /// The video stream's end went to the worker: masks beyond it are not needed.
    pub video_done: bool,
    /// A flushing seek went upstream and the mask pad has not flushed yet: the masks queued
    /// now are from before the seek, so nothing pairs until the mask flush has passed.
    pub mask_flush_pending: bool,
}

impl Pairing {
    /// Frames waiting in the pairing and in the worker's queue.
    pub fn queued_frames(&self) -> usize {
        self.video
            .iter()
            .filter(|i| matches!(i, VideoItem::Frame(_)))
            .count()
            + self
                .work
                .iter()
                .filter(|w| matches!(w, Work::Frame { .. }))
                .count()
    }

    /// Frames waiting for their masks (not yet handed to the worker).
    pub fn frames_waiting_for_masks(&self) -> usize {
        self.video
            .iter()
            .filter(|i| matches!(i, VideoItem::Frame(_)))
            .count()
    }

    /// Bytes of the video frames handed to the worker and not yet taken.
    pub fn queued_work_bytes(&self) -> usize {
        self.work
            .iter()
            .map(|w| match w {
                Work::Frame { video, .. } => video.buffer.size(),
                _ => 0,
            })
            .sum()
    }

    /// The running time of the first frame that waits for its mask, if one does.
    pub fn frame_waiting_for_mask(&self) -> Option<Option<gst::ClockTime>> {
        self.video.iter().find_map(|item| match item {
            VideoItem::Frame(frame) => Some(frame.running_time),
            VideoItem::Other(_) => None,
        })
    }

    /// Moves everything that can go to the worker: events in order, frames with their masks.
    /// Errors say which stream lacks what.
    pub fn pair(&mut self) -> Result<(), String> {
        while let Some(item) = self.video.front() {
            match item {
                VideoItem::Other(_) => {
                    let Some(VideoItem::Other(work)) = self.video.pop_front() else {
                        unreachable!()
                    };
                    self.video_done |= matches!(work, Work::Drain);
                    self.work.push_back(work);
                }
                VideoItem::Frame(_) if self.mask_flush_pending => return Ok(()),
                VideoItem::Frame(frame) => {
                    let Some(mask) = self.masks.front() else {
                        if self.mask_eos {
                            return Err(format!(
                                "missing mask: the mask stream ended before the video frame at running time {}; every frame needs a mask",
                                display_time(frame.running_time)
                            ));
                        }
                        return Ok(());
                    };
                    check_match(frame, mask)?;
                    let Some(VideoItem::Frame(video)) = self.video.pop_front() else {
                        unreachable!()
                    };
                    let mask = self.masks.pop_front().expect("checked above");
                    self.work.push_back(Work::Frame { video, mask });
                }
            }
        }
        Ok(())
    }
}

fn display_time(t: Option<gst::ClockTime>) -> String {
    t.map_or_else(|| "none".to_string(), |t| t.to_string())
}

/// A frame and a mask belong together when their running times are less than one frame apart:
/// two live sources start at slightly different times (measured: 33 ms apart at 25 fps), while
/// a missing mask shifts the next one by a whole frame and is an error.
fn check_match(frame: &Timed, mask: &Timed) -> Result<(), String> {
    let (vw, vh, mw, mh) = (
        frame.info.width(),
        frame.info.height(),
        mask.info.width(),
        mask.info.height(),
    );
    if (vw, vh) != (mw, mh) {
        return Err(format!(
            "mask size {mw}x{mh} does not match the video size {vw}x{vh}"
        ));
    }
    let (Some(v), Some(m)) = (frame.running_time, mask.running_time) else {
        return Ok(()); // untimed streams pair in order
    };
    let frame_duration = frame
        .buffer
        .duration()
        .or_else(|| {
            let fps = frame.info.fps();
            (fps.numer() > 0).then(|| {
                gst::ClockTime::SECOND.mul_div_floor(fps.denom() as u64, fps.numer() as u64)
            })?
        })
        .unwrap_or(gst::ClockTime::from_mseconds(1));
    if m + frame_duration <= v {
        return Err(format!(
            "mask at running time {m} has no video frame (the next frame is at {v}): mask and video are not aligned"
        ));
    }
    if v + frame_duration <= m {
        return Err(format!(
            "missing mask for the video frame at running time {v} (the next mask is at {m}): every frame needs a mask"
        ));
    }
    Ok(())
}
