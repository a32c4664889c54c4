//! The masked temporal median of 8-bit frames, by a sorting network run on many pixels at once.
//!
//! The background estimate (supplementary Sec. 4) is a per-pixel median over up to a few dozen
//! frames of the values no mask covers. libtorch's `nanmedian` over float frames took 0.8 s for
//! 16 frames at 720p on one core (a gather and a selection per pixel). Here every pixel's N
//! values are sorted by the same fixed network of compare-exchanges (Batcher's odd-even merge
//! sort), applied to a tile of pixels at a time so that each compare-exchange is one vector
//! min and max over the tile. Covered values are replaced by 255 before sorting, so they sort
//! last and the median of a pixel's `n` uncovered values is its sorted value at (n - 1) / 2,
//! the lower median, as libtorch's median is; another quantile q is the sorted value at
//! [`quantile_rank`]. The element's and the command line's frames are 8-bit, so working in 8
//! bits loses nothing.

/// Pixels sorted together: one compare-exchange is a min and a max over this many bytes.
const TILE: usize = 256;

/// Compare-exchange pairs (i, j), i < j, of Batcher's odd-even merge sort of `n` (a power of
/// two) elements: after applying them in order, element i <= element j for all i < j.
fn odd_even_merge_sort_network(n: usize) -> Vec<(usize, usize)> {
    debug_assert!(n.is_power_of_two());
    let mut pairs = Vec::new();
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            for j in (k % p..n - k).step_by(2 * k) {
                for i in 0..k.min(n - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        pairs.push((i + j, i + j + k));
                    }
                }
            }
            k /= 2;
        }
        p *= 2;
    }
    pairs
}

/// The rank, among `n` sorted values, of their quantile `q` in [0, 1]: the nearest rank to
/// (n - 1) q, ties to the lower one, so that q = 0.5 is the lower median (libtorch's).
pub fn quantile_rank(n: usize, q: f64) -> usize {
    debug_assert!(n > 0 && (0.0..=1.0).contains(&q));
    (((n - 1) as f64 * q - 0.5).ceil().max(0.0) as usize).min(n - 1)
}

/// The result of [`masked_quantile_u8`].
pub struct Median {
    /// Planar [C, H, W]: each pixel's quantile (the median at 0.5) over the frames that do not
    /// cover it, 0 where every frame covers it.
    pub values: Vec<u8>,
    /// [H, W]: whether any frame left the pixel uncovered.
    pub seen: Vec<bool>,
}

/// Per channel and pixel, the quantile `quantile` ([`quantile_rank`]; 0.5: the lower median)
/// of the values of `frames` (each planar [C, H, W], `channels * pixels` bytes) at pixels their
/// `covered` map ([H, W], non-zero = covered) leaves free. Work is split over `threads` threads
/// by bands of pixels.
pub fn masked_quantile_u8(
    frames: &[&[u8]],
    covered: &[&[u8]],
    channels: usize,
    pixels: usize,
    quantile: f64,
    threads: usize,
) -> Median {
    assert_eq!(frames.len(), covered.len(), "one coverage map per frame");
    assert!(!frames.is_empty(), "a median needs at least one frame");
    assert!(frames.len() <= u16::MAX as usize, "at most 65535 frames");
    for (f, c) in frames.iter().zip(covered) {
        assert_eq!(f.len(), channels * pixels, "a frame is [C, H, W] bytes");
        assert_eq!(c.len(), pixels, "a coverage map is [H, W] bytes");
    }
    let width = frames.len().next_power_of_two();
    let network = odd_even_merge_sort_network(width);
    // ranks[n]: where the quantile of n free values sorts (unused for n = 0).
    let ranks: Vec<usize> = (0..=frames.len())
        .map(|n| {
            if n == 0 {
                0
            } else {
                quantile_rank(n, quantile)
            }
        })
        .collect();
    let mut values = vec![0u8; channels * pixels];
    let mut seen = vec![false; pixels];
    // Bands of whole tiles, one per thread.
    let band = pixels.div_ceil(threads.max(1)).div_ceil(TILE) * TILE;
    // Each band's thread is joined before the scope ends: a scoped thread that is not joined
    // may still be exiting after the scope returns (the element's tests check that no thread
    // outlives it).
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let mut outputs: Vec<&mut [u8]> = values.chunks_mut(pixels).collect();
        let mut seen_rest: &mut [bool] = &mut seen;
        let mut start = 0;
        while start < pixels {
            let end = (start + band).min(pixels);
            let (seen_band, rest) = seen_rest.split_at_mut(end - start);
            seen_rest = rest;
            let out_bands: Vec<&mut [u8]> = outputs
                .iter_mut()
                .map(|plane| {
                    let taken = std::mem::take(plane);
                    let (head, tail) = taken.split_at_mut(end - start);
                    *plane = tail;
                    head
                })
                .collect();
            let (network, ranks) = (&network, &ranks);
            handles.push(scope.spawn(move || {
                median_band(
                    frames,
                    covered,
                    pixels,
                    start..end,
                    network,
                    width,
                    ranks,
                    out_bands,
                    seen_band,
                )
            }));
            start = end;
        }
        for handle in handles {
            handle.join().expect("a median thread panicked");
        }
    });
    Median { values, seen }
}

/// [`masked_quantile_u8`] of the pixels `at` (indices into the frames' `pixels`) alone: its
/// `values` are planar [C, at.len()], its `seen` [at.len()]. For a few pixels whose coverage
/// changed, without sorting the rest again.
pub fn masked_quantile_u8_at(
    frames: &[&[u8]],
    covered: &[&[u8]],
    channels: usize,
    pixels: usize,
    at: &[usize],
    quantile: f64,
    threads: usize,
) -> Median {
    let gather = |bytes: &[u8], planes: usize| -> Vec<u8> {
        (0..planes)
            .flat_map(|plane| at.iter().map(move |&p| bytes[plane * pixels + p]))
            .collect()
    };
    let frames: Vec<Vec<u8>> = frames.iter().map(|f| gather(f, channels)).collect();
    let covered: Vec<Vec<u8>> = covered.iter().map(|c| gather(c, 1)).collect();
    let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let covered: Vec<&[u8]> = covered.iter().map(Vec::as_slice).collect();
    masked_quantile_u8(&frames, &covered, channels, at.len(), quantile, threads)
}

/// The quantile (`ranks`, by count of free values) of the pixels `range` of every channel,
/// into `out` (one slice per channel, the band's length) and `seen`.
#[allow(clippy::too_many_arguments)]
fn median_band(
    frames: &[&[u8]],
    covered: &[&[u8]],
    pixels: usize,
    range: std::ops::Range<usize>,
    network: &[(usize, usize)],
    width: usize,
    ranks: &[usize],
    mut out: Vec<&mut [u8]>,
    seen: &mut [bool],
) {
    // lanes[k][p]: the k-th value of pixel p of the tile; rows past the frames stay 255.
    let mut lanes = vec![[255u8; TILE]; width];
    let mut uncovered = [0u16; TILE];
    for tile_start in range.clone().step_by(TILE) {
        let len = TILE.min(range.end - tile_start);
        let at = tile_start - range.start;
        uncovered[..len].fill(0);
        for c in covered {
            for (n, &cov) in uncovered[..len]
                .iter_mut()
                .zip(&c[tile_start..tile_start + len])
            {
                *n += (cov == 0) as u16;
            }
        }
        for (s, &n) in seen[at..at + len].iter_mut().zip(&uncovered[..len]) {
            *s = n > 0;
        }
        for (channel, plane) in out.iter_mut().enumerate() {
            let offset = channel * pixels + tile_start;
            // The network moved values into the padding rows last time: they sort last again.
            for lane in &mut lanes[frames.len()..] {
                lane.fill(255);
            }
            for ((lane, frame), cov) in lanes.iter_mut().zip(frames).zip(covered) {
                let values = &frame[offset..offset + len];
                let covers = &cov[tile_start..tile_start + len];
                for ((l, &v), &c) in lane[..len].iter_mut().zip(values).zip(covers) {
                    *l = if c == 0 { v } else { 255 };
                }
            }
            for &(i, j) in network {
                let (low, high) = lanes.split_at_mut(j);
                let (a, b) = (&mut low[i], &mut high[0]);
                for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                    let (lo, hi) = ((*x).min(*y), (*x).max(*y));
                    *x = lo;
                    *y = hi;
                }
            }
            for (p, o) in plane[at..at + len].iter_mut().enumerate() {
                let n = uncovered[p] as usize;
                *o = if n == 0 { 0 } else { lanes[ranks[n]][p] };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_half_quantile_is_the_lower_median() {
        for n in 1..40 {
            assert_eq!(quantile_rank(n, 0.5), (n - 1) / 2, "n = {n}");
        }
        assert_eq!(quantile_rank(16, 0.75), 11);
        assert_eq!(quantile_rank(5, 1.0), 4);
        assert_eq!(quantile_rank(5, 0.0), 0);
    }

    #[test]
    fn the_quantile_at_some_pixels_is_the_whole_ones_there() {
        // 5 frames of 2 channels x 7 pixels, some covered.
        let (channels, pixels) = (2, 7);
        let frames: Vec<Vec<u8>> = (0..5u8)
            .map(|f| {
                (0..14u8)
                    .map(|i| i.wrapping_mul(37).wrapping_add(f * 91))
                    .collect()
            })
            .collect();
        let covered: Vec<Vec<u8>> = (0..5u8)
            .map(|f| (0..7u8).map(|p| ((p + f) % 3 == 0) as u8).collect())
            .collect();
        let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let covered: Vec<&[u8]> = covered.iter().map(Vec::as_slice).collect();
        let whole = masked_quantile_u8(&frames, &covered, channels, pixels, 0.5, 1);
        let at = [6, 1, 3];
        let some = masked_quantile_u8_at(&frames, &covered, channels, pixels, &at, 0.5, 2);
        for (i, &p) in at.iter().enumerate() {
            assert_eq!(some.seen[i], whole.seen[p]);
            for c in 0..channels {
                assert_eq!(some.values[c * at.len() + i], whole.values[c * pixels + p]);
            }
        }
    }

    #[test]
    fn the_network_sorts_every_permutation_of_zeros_and_ones() {
        // The 0-1 principle: a network that sorts every 0/1 sequence sorts everything.
        for n in [1usize, 2, 4, 8, 16] {
            let network = odd_even_merge_sort_network(n);
            for bits in 0u32..(1 << n) {
                let mut v: Vec<u8> = (0..n).map(|i| ((bits >> i) & 1) as u8).collect();
                for &(i, j) in &network {
                    if v[i] > v[j] {
                        v.swap(i, j);
                    }
                }
                assert!(v.windows(2).all(|w| w[0] <= w[1]), "n={n} bits={bits:b}");
            }
        }
    }
}
