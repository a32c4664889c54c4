//! The streaming state the sink pads, the worker and the src pads' threads share: the pairing
//! of frames with masks, and the rules of flushing, shutdown and failure, in one type with one
//! mutex and one condition variable. Errors come back as [`Failure`]s; the element posts them.

use super::pairing::{Pairing, Timed, VideoItem, Work};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Frames allowed to wait in the element before the chain functions block (back-pressure).
pub const MAX_QUEUED_FRAMES: usize = 16;

/// While `before-output` training runs, the worker takes no frames, yet the chains must not
/// block on it: an application's EOS (gst-launch-1.0 -e on Ctrl-C) holds the pipeline's state
/// lock until each source's streaming thread has left our chain, and the sinks, still waiting
/// to preroll, need that lock to go to PLAYING once training ends (issue 14, item 1). So during
/// training the chains keep taking frames, up to this many bytes of them queued for the worker;
/// frames still wait for their masks as usual (a stalled mask stream ends in `mask-timeout`).
pub const TRAINING_QUEUE_BYTES: usize = 1 << 30;

/// A refused buffer or event: the flow to return upstream, and the error to post, if any.
#[derive(Debug)]
pub struct Failure {
    pub flow: gst::FlowError,
    pub error: Option<(gst::StreamError, String)>,
}

impl Failure {
    fn flow(flow: gst::FlowError) -> Self {
        Self { flow, error: None }
    }

    fn error(kind: gst::StreamError, message: String) -> Self {
        Self {
            flow: gst::FlowError::Error,
            error: Some((kind, message)),
        }
    }
}

type Flow = Result<gst::FlowSuccess, Failure>;

#[derive(Default)]
struct State {
    pairing: Pairing,
    video_flushing: bool,
    mask_flushing: bool,
    /// The worker is processing an item (flush-stop waits for it).
    busy: bool,
    /// The worker runs `before-output` training (see [`TRAINING_QUEUE_BYTES`]).
    training: bool,
    shutdown: bool,
    /// When the last mask arrived: the video side gives up on masks after `mask-timeout`.
    last_mask: Option<Instant>,
    /// The first failure downstream or in the worker, returned by the chain functions until a
    /// flush clears it.
    flow: Option<gst::FlowError>,
}

impl State {
    /// Pairs what can be paired; a pairing error fails the stream.
    fn pair(&mut self) -> Result<(), Failure> {
        self.pairing.pair().map_err(|msg| {
            self.flow = Some(gst::FlowError::Error);
            Failure::error(gst::StreamError::Format, msg)
        })
    }

    /// Whether the chains must wait before taking more: too many frames wait for masks, or
    /// for the worker (which, while it trains, may take up to [`TRAINING_QUEUE_BYTES`]).
    fn backed_up(&self) -> bool {
        if self.training {
            self.pairing.frames_waiting_for_masks() > MAX_QUEUED_FRAMES
                || self.pairing.queued_work_bytes() > TRAINING_QUEUE_BYTES
        } else {
            self.pairing.queued_frames() > MAX_QUEUED_FRAMES
        }
    }

    /// What a chain function returns once its item is queued.
    fn current_flow(&self, flushing: bool) -> Flow {
        match self.flow {
            Some(err) => Err(Failure::flow(err)),
            None if flushing => Err(Failure::flow(gst::FlowError::Flushing)),
            None => Ok(gst::FlowSuccess::Ok),
        }
    }
}

/// See the module documentation.
#[derive(Default)]
pub struct Streaming {
    state: Mutex<State>,
    changed: Condvar,
}

impl Streaming {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// A new stream (READY to PAUSED): nothing queued, nothing failed.
    pub fn start(&self) {
        *self.lock() = State::default();
        self.changed.notify_all();
    }

    /// Stops everything: the worker returns from [`next_work`](Self::next_work), chain
    /// functions stop waiting.
    pub fn shut_down(&self) {
        let mut s = self.lock();
        s.shutdown = true;
        s.video_flushing = true;
        s.mask_flushing = true;
        self.changed.notify_all();
    }

    // ----- the video pad -----------------------------------------------------------------------

    /// Queues a video frame, then waits while too many frames are queued (the worker or the
    /// masks lag), but not longer than `mask_timeout` for masks that stopped coming (zero waits
    /// forever).
    pub fn push_video_frame(&self, frame: Timed, mask_timeout: Duration) -> Flow {
        let mut s = self.lock();
        if s.video_flushing {
            return Err(Failure::flow(gst::FlowError::Flushing));
        }
        s.pairing.video.push_back(VideoItem::Frame(frame));
        let paired = s.pair();
        self.changed.notify_all();
        paired?;
        let waiting_since = Instant::now();
        while s.backed_up() && !s.video_flushing && !s.shutdown && s.flow.is_none() {
            s = self.wait_for_a_mask(s, waiting_since, mask_timeout, "")?;
        }
        let flushing = s.video_flushing;
        s.current_flow(flushing)
    }

    /// At the video's end: waits while frames still wait for their masks, but not longer than
    /// `mask_timeout` without a mask arriving (zero waits forever). Without this a short stream
    /// (no more than the queue's frames) whose mask source stalls would never end.
    pub fn wait_for_last_masks(&self, mask_timeout: Duration) -> Result<(), Failure> {
        let mut s = self.lock();
        let waiting_since = Instant::now();
        while s.pairing.frame_waiting_for_mask().is_some()
            && !s.video_flushing
            && !s.shutdown
            && s.flow.is_none()
        {
            s = self.wait_for_a_mask(s, waiting_since, mask_timeout, "the video ended and ")?;
        }
        Ok(())
    }

    /// One wait of the video side: for a change, or, while frames wait for their masks, for a
    /// mask at most until `mask_timeout` has passed without one since `waiting_since` (then the
    /// stream fails; zero waits forever). `when` starts the error message.
    fn wait_for_a_mask<'a>(
        &self,
        s: MutexGuard<'a, State>,
        waiting_since: Instant,
        mask_timeout: Duration,
        when: &str,
    ) -> Result<MutexGuard<'a, State>, Failure> {
        let waiting_for = s.pairing.frame_waiting_for_mask();
        if mask_timeout.is_zero() || waiting_for.is_none() {
            return Ok(self.wait(s));
        }
        let mut s = s;
        let stalled = s.last_mask.map_or(waiting_since, |t| t.max(waiting_since));
        let Some(left) = mask_timeout.checked_sub(stalled.elapsed()) else {
            let message = format!(
                "missing mask: {when}no mask arrived for {} ms while {} frames wait for theirs (the first at running time {}); the mask stream stalled (property mask-timeout)",
                mask_timeout.as_millis(),
                s.pairing.queued_frames(),
                waiting_for
                    .flatten()
                    .map_or_else(|| "none".to_string(), |t| t.to_string())
            );
            s.flow = Some(gst::FlowError::Error);
            self.changed.notify_all();
            return Err(Failure::error(gst::StreamError::Failed, message));
        };
        Ok(self
            .changed
            .wait_timeout(s, left)
            .unwrap_or_else(|e| e.into_inner())
            .0)
    }

    /// Queues a serialized video-side item (event, caps, end of stream) behind the frames that
    /// wait for masks.
    pub fn push_video_item(&self, work: Work) -> Result<(), Failure> {
        let mut s = self.lock();
        s.pairing.video.push_back(VideoItem::Other(work));
        let paired = s.pair();
        self.changed.notify_all();
        paired
    }

    /// FLUSH_START on the video pad: drops what waits and wakes everybody.
    pub fn video_flush_start(&self) {
        let mut s = self.lock();
        s.video_flushing = true;
        s.pairing.video.clear();
        s.pairing.work.clear();
        self.changed.notify_all();
    }

    /// FLUSH_STOP on the video pad: waits for the worker to finish the item under way (so
    /// nothing stale follows), clears the failure and restarts the window.
    pub fn video_flush_stop(&self) {
        let mut s = self.lock();
        while s.busy && !s.shutdown {
            s = self.wait(s);
        }
        s.video_flushing = false;
        s.pairing.video_done = false;
        s.flow = None;
        s.pairing.work.push_back(Work::Reset);
        self.changed.notify_all();
    }

    // ----- the mask pad ------------------------------------------------------------------------

    /// Queues a mask, then waits while too many masks are queued. A mask after the video's end
    /// returns EOS, which tells an endless mask source to stop.
    pub fn push_mask(&self, mask: Timed) -> Flow {
        let mut s = self.lock();
        if s.mask_flushing {
            return Err(Failure::flow(gst::FlowError::Flushing));
        }
        if s.pairing.video_done {
            return Err(Failure::flow(gst::FlowError::Eos));
        }
        s.last_mask = Some(Instant::now());
        s.pairing.masks.push_back(mask);
        let paired = s.pair();
        self.changed.notify_all();
        paired?;
        while s.pairing.masks.len() > MAX_QUEUED_FRAMES
            && !s.mask_flushing
            && !s.shutdown
            && s.flow.is_none()
        {
            s = self.wait(s);
        }
        let flushing = s.mask_flushing;
        s.current_flow(flushing)
    }

    /// EOS on the mask pad: frames still without a mask are an error.
    pub fn mask_eos(&self) -> Result<(), Failure> {
        let mut s = self.lock();
        s.pairing.mask_eos = true;
        let paired = s.pair();
        self.changed.notify_all();
        paired
    }

    pub fn mask_flush_start(&self) {
        let mut s = self.lock();
        s.mask_flushing = true;
        s.pairing.masks.clear();
        self.changed.notify_all();
    }

    /// FLUSH_STOP on the mask pad: frames that arrived after the video's flush may now pair.
    pub fn mask_flush_stop(&self) -> Result<(), Failure> {
        let mut s = self.lock();
        s.mask_flushing = false;
        s.pairing.mask_eos = false;
        s.pairing.mask_flush_pending = false;
        let paired = s.pair();
        self.changed.notify_all();
        paired
    }

    /// A flushing seek goes upstream: both branches will flush, in any order, so nothing pairs
    /// until the mask branch has flushed (no frame meets a mask from before the seek).
    pub fn flushing_seek_sent(&self) {
        self.lock().pairing.mask_flush_pending = true;
    }

    /// The seek failed upstream: no flush will come.
    pub fn flushing_seek_failed(&self) -> Result<(), Failure> {
        let mut s = self.lock();
        s.pairing.mask_flush_pending = false;
        let paired = s.pair();
        self.changed.notify_all();
        paired
    }

    // ----- the worker --------------------------------------------------------------------------

    /// The worker's next item, waiting for one; None at shutdown. Marks the worker busy.
    pub fn next_work(&self) -> Option<Work> {
        let mut s = self.lock();
        s.busy = false;
        self.changed.notify_all();
        loop {
            if s.shutdown {
                return None;
            }
            if let Some(work) = s.pairing.work.pop_front() {
                s.busy = true;
                return Some(work);
            }
            s = self.wait(s);
        }
    }

    /// The worker starts or ends `before-output` training: the chains' back-pressure follows.
    pub fn set_training(&self, training: bool) {
        self.lock().training = training;
        self.changed.notify_all();
    }

    /// Whether work in progress should stop (test-time training checks between steps).
    pub fn cancelled(&self) -> bool {
        let s = self.lock();
        s.shutdown || s.video_flushing
    }

    /// A failure in the worker or downstream: the chain functions return it from now on.
    /// Returns false when it is only the flush under way (nothing to report).
    pub fn fail(&self, err: gst::FlowError) -> bool {
        let mut s = self.lock();
        if err == gst::FlowError::Flushing && s.video_flushing {
            return false;
        }
        let first = s.flow.is_none();
        s.flow = Some(err);
        self.changed.notify_all();
        first
    }
}
