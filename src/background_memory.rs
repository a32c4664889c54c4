//! What the background looked like at pixels the streaming window never sees free.
//!
//! The streaming background is the masked median of a window of recent frames
//! ([`crate::background::BackgroundModel`]). Where an object stays on a pixel for the whole
//! window (it stopped, or it is slow), no frame of the window shows the background there and
//! the estimate is a fill from the surroundings: a smooth patch with the object's outline,
//! which the background pad shows and the layers are composited over. Before the object came,
//! the pixel was often seen free. This memory keeps, per pixel, the last few values seen free in
//! frames that have left the window, so that the estimate can use them there instead of a fill.
//! It costs [`MEMORY_SAMPLES`] frames at 8 bits, and is read only where the window has nothing.

use crate::median::{masked_quantile_u8, masked_quantile_u8_at, Median};

/// Values kept per pixel: their quantile (the window's) is used, robust to one stray value
/// among them (an effect the layers did not find, camera noise).
pub const MEMORY_SAMPLES: usize = 4;

/// The last [`MEMORY_SAMPLES`] free values of every pixel of frames that left the window.
pub struct FreeMemory {
    channels: usize,
    pixels: usize,
    /// Planar [C, H, W] bytes per sample slot.
    values: Vec<Vec<u8>>,
    /// [H, W] per sample slot: 1 while the slot holds no value for the pixel (the median's
    /// "covered").
    empty: Vec<Vec<u8>>,
    /// [H, W]: the slot the pixel's next free value goes to (its oldest).
    next: Vec<u8>,
}

impl FreeMemory {
    /// An empty memory of frames of `channels` x `pixels`.
    pub fn new(channels: usize, pixels: usize) -> Self {
        Self {
            channels,
            pixels,
            values: vec![vec![0; channels * pixels]; MEMORY_SAMPLES],
            empty: vec![vec![1; pixels]; MEMORY_SAMPLES],
            next: vec![0; pixels],
        }
    }

    /// Whether the memory is for frames of this many channels and pixels.
    pub fn fits(&self, channels: usize, pixels: usize) -> bool {
        self.channels == channels && self.pixels == pixels
    }

    /// Remembers the pixels `covered` ([H, W], non-zero: covered) leaves free in `frame`
    /// (planar [C, H, W] bytes), a frame that leaves the window.
    pub fn remember(&mut self, frame: &[u8], covered: &[u8]) {
        assert_eq!(
            frame.len(),
            self.channels * self.pixels,
            "a frame of another size"
        );
        assert_eq!(covered.len(), self.pixels, "a coverage map of another size");
        for p in (0..self.pixels).filter(|&p| covered[p] == 0) {
            let slot = self.next[p] as usize;
            for c in 0..self.channels {
                self.values[slot][c * self.pixels + p] = frame[c * self.pixels + p];
            }
            self.empty[slot][p] = 0;
            self.next[p] = ((slot + 1) % MEMORY_SAMPLES) as u8;
        }
    }

    /// Where `median` (the window's quantile `quantile`) saw nothing and the memory holds
    /// values, their quantile instead; those pixels then count as seen.
    pub fn fill_unseen(&self, median: &mut Median, quantile: f64, threads: usize) {
        self.fill_where_unseen(median, |values, empty, channels, pixels| {
            masked_quantile_u8(values, empty, channels, pixels, quantile, threads)
        });
    }

    /// The same for a `median` of the pixels `at` alone
    /// ([`crate::median::masked_quantile_u8_at`]).
    pub fn fill_unseen_at(&self, median: &mut Median, at: &[usize], quantile: f64, threads: usize) {
        self.fill_where_unseen(median, |values, empty, channels, pixels| {
            masked_quantile_u8_at(values, empty, channels, pixels, at, quantile, threads)
        });
    }

    /// `median`'s pixels it saw nothing at take what `remembered` makes of the memory's
    /// values and emptiness (its quantile, of the same pixels as `median`).
    fn fill_where_unseen(
        &self,
        median: &mut Median,
        remembered: impl FnOnce(&[&[u8]], &[&[u8]], usize, usize) -> Median,
    ) {
        if median.seen.iter().all(|&s| s) {
            return;
        }
        let values: Vec<&[u8]> = self.values.iter().map(Vec::as_slice).collect();
        let empty: Vec<&[u8]> = self.empty.iter().map(Vec::as_slice).collect();
        let remembered = remembered(&values, &empty, self.channels, self.pixels);
        let pixels = median.seen.len();
        for p in 0..pixels {
            if !median.seen[p] && remembered.seen[p] {
                for c in 0..self.channels {
                    median.values[c * pixels + p] = remembered.values[c * pixels + p];
                }
                median.seen[p] = true;
            }
        }
    }
}
