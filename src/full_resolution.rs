//! The streaming output at full resolution in one pass over the pixels: the working-size layers
//! brought to the frame's size (alpha by the guided filter, colour bilinear: `crate::alpha`),
//! made opaque inside their masks (`alpha::mask_guided`), detail transferred and composited
//! (`crate::composite`). The arithmetic is those tensor functions', which stay the reference
//! (tests/full_resolution.rs compares). Written with libtorch's element-wise operators the same
//! work is about 25 full-size passes over memory and took 60 ms a 720p frame on this project's
//! 2-core machine; here each output row is made from its inputs in one go, on every core.

use crate::alpha::{
    linear_model, luminance, mask_guided, upsample_layers, Upsampling, GUIDED_EPSILON,
    GUIDED_RADIUS,
};
use crate::composite::{composite, detail_transfer};
use crate::cpu_slices::{bytes, floats, floats_mut};
use tch::{Device, Kind, Tensor};

/// A frame's layers at full resolution, colours in [0, 1].
pub struct FullResolution {
    /// [L, 4, H, W] straight-alpha RGBA, detail transferred.
    pub layers: Tensor,
    /// [3, H, W] the residual background (detail transferred).
    pub background: Tensor,
    /// [3, H, W] the layers composited over the residual background.
    pub reconstruction: Tensor,
}

/// `network` [L, 4, h, w] (the network's layers in [0, 1]) to the size of `frame` [3, H, W],
/// with mask guidance where `labels` [H, W] (u8, 0 background, k object k) are given, over the
/// background estimate `background` [3, H, W], detail transferred to `frame`. CPU tensors only.
/// Equals `upsample_layers`, `mask_guided`, `detail_transfer` and `composite` in turn.
pub fn full_resolution_layers(
    network: &Tensor,
    frame: &Tensor,
    background: &Tensor,
    labels: Option<&Tensor>,
    upsampling: Upsampling,
    threads: usize,
) -> FullResolution {
    let (l, _, h, w) = network.size4().expect("layers are [L, 4, h, w]");
    let (_, big_h, big_w) = frame.size3().expect("the frame is [3, H, W]");
    let cpu_floats = |t: &Tensor| {
        assert_eq!(
            t.device(),
            Device::Cpu,
            "full_resolution_layers runs on the CPU"
        );
        t.to_kind(Kind::Float).contiguous()
    };
    let network = cpu_floats(network);
    let frame = cpu_floats(frame);
    let background = cpu_floats(background);
    let labels = labels.map(|t| t.to_kind(Kind::Uint8).contiguous());
    let colour = network.narrow(1, 0, 3).contiguous();
    let (alpha_a, alpha_b) = alpha_coefficients(&network, &frame, upsampling);

    let opts = (Kind::Float, Device::Cpu);
    let mut layers = Tensor::empty([l, 4, big_h, big_w], opts);
    let mut residual_background = Tensor::empty([3, big_h, big_w], opts);
    let mut reconstruction = Tensor::empty([3, big_h, big_w], opts);
    if big_h * big_w == 0 {
        // Nothing to compute (and no plane to split into bands).
        return FullResolution {
            layers,
            background: residual_background,
            reconstruction,
        };
    }
    let inputs = Inputs {
        layers: l as usize,
        small: (h as usize, w as usize),
        width: big_w as usize,
        colour: floats(&colour),
        alpha_a: floats(&alpha_a),
        alpha_b: floats(&alpha_b),
        frame: floats(&frame),
        background: floats(&background),
        labels: labels.as_ref().map(bytes),
        rows: BilinearTaps::new(h as usize, big_h as usize),
        columns: BilinearTaps::new(w as usize, big_w as usize),
    };
    let (big_h, big_w) = (big_h as usize, big_w as usize);
    // Bands of whole rows, one per thread; every output plane is split at the same rows.
    let band_rows = big_h.div_ceil(threads.max(1)).max(1);
    let mut bands: Vec<Vec<&mut [f32]>> = (0..big_h.div_ceil(band_rows)).map(|_| vec![]).collect();
    let planes = floats_mut(&mut layers)
        .chunks_exact_mut(big_h * big_w)
        .chain(floats_mut(&mut residual_background).chunks_exact_mut(big_h * big_w))
        .chain(floats_mut(&mut reconstruction).chunks_exact_mut(big_h * big_w));
    for plane in planes {
        for (band, rows) in bands.iter_mut().zip(plane.chunks_mut(band_rows * big_w)) {
            band.push(rows);
        }
    }
    std::thread::scope(|scope| {
        let inputs = &inputs;
        let handles: Vec<_> = bands
            .into_iter()
            .enumerate()
            .map(|(i, band)| scope.spawn(move || inputs.band(i * band_rows, band)))
            .collect();
        // Joined here: a scoped thread not joined may outlive the scope's return (median.rs).
        for handle in handles {
            handle.join().expect("a full-resolution thread panicked");
        }
    });
    FullResolution {
        layers,
        background: residual_background,
        reconstruction,
    }
}

/// The same as [`full_resolution_layers`] with libtorch's operators, on any device (GPUs run
/// this): the reference. `masks` [L, H, W] in {0, 1} for mask guidance.
pub fn full_resolution_with_tensors(
    network: &Tensor,
    frame: &Tensor,
    background: &Tensor,
    masks: Option<Tensor>,
    upsampling: Upsampling,
) -> FullResolution {
    let upsampled = upsample_layers(network, frame, upsampling);
    let guided = match masks {
        Some(masks) => mask_guided(&upsampled, &masks.unsqueeze(1)),
        None => upsampled,
    };
    let (layers, background) = detail_transfer(
        &guided.unsqueeze(0),
        &background.unsqueeze(0),
        &frame.unsqueeze(0),
    );
    let reconstruction = composite(&layers, &background).squeeze_dim(0);
    FullResolution {
        layers: layers.squeeze_dim(0),
        background: background.squeeze_dim(0),
        reconstruction,
    }
}

/// The alpha of layer i at a full-resolution pixel is clamp(a_i I + b_i, 0, 1), a_i and b_i
/// sampled bilinearly from these working-size planes [L, h, w] and I the frame's luminance:
/// the guided filter's linear model (`alpha::guided_upsample`), or a = 0 and b = the alpha
/// itself for bilinear upsampling and for frames of the working size (which are not resized).
fn alpha_coefficients(
    network: &Tensor,
    frame: &Tensor,
    upsampling: Upsampling,
) -> (Tensor, Tensor) {
    let alpha = network.narrow(1, 3, 1);
    let (h, w) = (alpha.size()[2], alpha.size()[3]);
    let same_size = frame.size()[1..] == [h, w];
    if upsampling == Upsampling::Bilinear || same_size {
        return (alpha.zeros_like(), alpha.contiguous());
    }
    // The luminance's area average, taken as the average's luminance: one pass over the frame.
    let small_guide = luminance(&frame.adaptive_avg_pool2d([h, w]));
    let (a, b) = linear_model(&small_guide, &alpha, GUIDED_RADIUS, GUIDED_EPSILON);
    (a.contiguous(), b.contiguous())
}

/// PyTorch's bilinear sampling without corner alignment along one axis: output index i reads
/// source indices `low[i]` and `high[i]` with weights `w_low[i]` and `w_high[i]`.
struct BilinearTaps {
    low: Vec<usize>,
    high: Vec<usize>,
    w_low: Vec<f32>,
    w_high: Vec<f32>,
}

impl BilinearTaps {
    fn new(source: usize, output: usize) -> Self {
        let scale = source as f32 / output as f32;
        let mut taps = Self {
            low: Vec::with_capacity(output),
            high: Vec::with_capacity(output),
            w_low: Vec::with_capacity(output),
            w_high: Vec::with_capacity(output),
        };
        for i in 0..output {
            let position = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
            let low = (position as usize).min(source - 1);
            let fraction = position - low as f32;
            taps.low.push(low);
            taps.high.push((low + 1).min(source - 1));
            taps.w_low.push(1.0 - fraction);
            taps.w_high.push(fraction);
        }
        taps
    }
}

/// Everything a band of rows reads.
struct Inputs<'a> {
    layers: usize,
    /// The working size (h, w).
    small: (usize, usize),
    /// The output width W.
    width: usize,
    /// [L, 3, h, w] the network's colours.
    colour: &'a [f32],
    /// [L, h, w] each, see `alpha_coefficients`.
    alpha_a: &'a [f32],
    alpha_b: &'a [f32],
    /// [3, H, W] each.
    frame: &'a [f32],
    background: &'a [f32],
    /// [H, W] object labels, for mask guidance.
    labels: Option<&'a [u8]>,
    rows: BilinearTaps,
    columns: BilinearTaps,
}

/// Below it a denominator of detail transfer is taken as this (`composite::detail_transfer`).
const EPS: f32 = 1e-12;

/// Working-size rows brought to the output width, for the two source rows the current output
/// row blends (source rows only advance as output rows do, so each is widened about once).
struct WidenedRows {
    /// Which source row each slot holds.
    row: [Option<usize>; 2],
    /// Per slot, the 5 L planes' rows (for each layer 3 colours, a, b), each W wide.
    values: [Vec<f32>; 2],
}

impl Inputs<'_> {
    /// Slot holding source row `y` widened, widening it into a slot not holding `other`.
    fn widened(&self, cache: &mut WidenedRows, y: usize, other: usize) -> usize {
        if let Some(slot) = cache.row.iter().position(|&r| r == Some(y)) {
            return slot;
        }
        let slot = if cache.row[0] == Some(other) { 1 } else { 0 };
        let (small_h, small_w) = self.small;
        let small_plane = small_h * small_w;
        let columns = &self.columns;
        let planes = (0..self.layers).flat_map(|i| {
            (0..3)
                .map(move |c| &self.colour[(i * 3 + c) * small_plane..][..small_plane])
                .chain([
                    &self.alpha_a[i * small_plane..][..small_plane],
                    &self.alpha_b[i * small_plane..][..small_plane],
                ])
        });
        for (plane, out) in planes.zip(cache.values[slot].chunks_exact_mut(self.width)) {
            let row = &plane[y * small_w..][..small_w];
            for (((o, &lo), &hi), (&wl, &wh)) in out
                .iter_mut()
                .zip(&columns.low)
                .zip(&columns.high)
                .zip(columns.w_low.iter().zip(&columns.w_high))
            {
                *o = wl * row[lo] + wh * row[hi];
            }
        }
        cache.row[slot] = Some(y);
        slot
    }

    /// Rows `first..` of the output planes in `band`: L x 4 layer planes, then 3 background
    /// planes, then 3 reconstruction planes, each holding the band's rows.
    fn band(&self, first: usize, band: Vec<&mut [f32]>) {
        // The loops below are plain element-wise loops; compiled for AVX2 and FMA they run on
        // 8 floats at a time where the CPU has them (the default target has only SSE2).
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the features `band_avx2` is compiled for.
            return unsafe { self.band_avx2(first, band) };
        }
        self.band_rows(first, band)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn band_avx2(&self, first: usize, band: Vec<&mut [f32]>) {
        self.band_rows(first, band)
    }

    #[inline(always)]
    fn band_rows(&self, first: usize, mut band: Vec<&mut [f32]>) {
        let (l, big_w) = (self.layers, self.width);
        let big_plane = self.frame.len() / 3;
        let rows = band[0].len() / big_w;
        let mut cache = WidenedRows {
            row: [None, None],
            values: [vec![0.0; l * 5 * big_w], vec![0.0; l * 5 * big_w]],
        };
        let mut guide = vec![0.0f32; big_w];
        let mut recon = vec![0.0f32; big_w];
        let mut up = vec![0.0f32; big_w];
        let mut keep = vec![0.0f32; big_w];
        for r in 0..rows {
            let y = first + r;
            let at = y * big_w;
            let span = r * big_w..(r + 1) * big_w;
            let (y0, y1) = (self.rows.low[y], self.rows.high[y]);
            let (wy0, wy1) = (self.rows.w_low[y], self.rows.w_high[y]);
            let s0 = self.widened(&mut cache, y0, y1);
            let s1 = self.widened(&mut cache, y1, y0);
            let (top, bottom) = (&cache.values[s0], &cache.values[s1]);
            // Plane k of layer i at this output row: the two widened rows blended vertically.
            let blend = |out: &mut [f32], i: usize, k: usize| {
                let at = (i * 5 + k) * big_w;
                lerp_rows(out, &top[at..][..big_w], &bottom[at..][..big_w], wy0, wy1);
            };
            let frame = |c: usize| &self.frame[c * big_plane + at..][..big_w];
            for (((g, &r), &gr), &b) in guide.iter_mut().zip(frame(0)).zip(frame(1)).zip(frame(2)) {
                *g = (r + gr + b) / 3.0;
            }
            let labels = self.labels.map(|labels| &labels[at..][..big_w]);
            // The layers' alpha and colour at full resolution, clamped to [0, 1] as detail
            // transfer clamps them.
            for i in 0..l {
                let alpha = &mut band[i * 4 + 3][span.clone()];
                blend(&mut up, i, 3); // a
                blend(&mut keep, i, 4); // b
                for (((o, &a), &b), &g) in alpha.iter_mut().zip(&up).zip(&keep).zip(&guide) {
                    *o = (a * g + b).clamp(0.0, 1.0);
                }
                if let Some(labels) = labels {
                    let object = (i + 1) as u8;
                    for (o, &label) in alpha.iter_mut().zip(labels) {
                        if label == object {
                            *o = 1.0;
                        }
                    }
                }
                for c in 0..3 {
                    let out = &mut band[i * 4 + c][span.clone()];
                    blend(out, i, c);
                    for o in out.iter_mut() {
                        *o = o.clamp(0.0, 1.0);
                    }
                }
            }
            for c in 0..3 {
                let bg = &self.background[c * big_plane + at..][..big_w];
                // Algorithm 1 over the clamped background, back to front.
                for (o, &b) in recon.iter_mut().zip(bg) {
                    *o = b.clamp(0.0, 1.0);
                }
                composite_row(&mut recon, &band, span.clone(), l, c);
                // Detail transfer: every colour moves towards 1 (or 0) by the same fraction.
                for (((u, k), &rc), &f) in
                    up.iter_mut().zip(keep.iter_mut()).zip(&recon).zip(frame(c))
                {
                    let residual = f - rc;
                    let rise = residual.max(0.0) / (1.0 - rc).max(EPS);
                    let fall = (-residual).max(0.0) / rc.max(EPS);
                    *u = rise;
                    *k = 1.0 - (rise + fall);
                }
                for i in 0..l {
                    let out = &mut band[i * 4 + c][span.clone()];
                    for ((o, &k), &u) in out.iter_mut().zip(&keep).zip(&up) {
                        *o = *o * k + u;
                    }
                }
                for (((o, &b), &k), &u) in recon.iter_mut().zip(bg).zip(&keep).zip(&up) {
                    *o = b.clamp(0.0, 1.0) * k + u;
                }
                band[l * 4 + c][span.clone()].copy_from_slice(&recon);
                // The reconstruction: the detail-transferred layers over their background.
                composite_row(&mut recon, &band, span.clone(), l, c);
                band[l * 4 + 3 + c][span.clone()].copy_from_slice(&recon);
            }
        }
    }
}

/// Algorithm 1 on colour channel `c` of one row: the rows `span` of the band's `layers` layer
/// planes (L x 4, RGBA) composited back to front over `recon`, which holds the background's row.
#[inline(always)]
fn composite_row(
    recon: &mut [f32],
    band: &[&mut [f32]],
    span: std::ops::Range<usize>,
    layers: usize,
    c: usize,
) {
    for i in 0..layers {
        let alpha = &band[i * 4 + 3][span.clone()];
        let colour = &band[i * 4 + c][span.clone()];
        for ((o, &a), &v) in recon.iter_mut().zip(alpha).zip(colour) {
            *o = a * v + (1.0 - a) * *o;
        }
    }
}

/// out = w_top top + w_bottom bottom, element-wise.
#[inline(always)]
fn lerp_rows(out: &mut [f32], top: &[f32], bottom: &[f32], w_top: f32, w_bottom: f32) {
    for ((o, &t), &b) in out.iter_mut().zip(top).zip(bottom) {
        *o = w_top * t + w_bottom * b;
    }
}
