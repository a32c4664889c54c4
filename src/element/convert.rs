//! Raw video buffers to tensors and back. Rows are copied stride-aware, so padded buffers work.

use crate::cpu_slices::floats;
use crate::eight_bit::quantise;
use gst_video::prelude::*;
use gst_video::{VideoConverter, VideoFormat, VideoFrameRef, VideoInfo};
use tch::{Kind, Tensor};

/// Input formats read directly (packed RGB); listed first in the `sink` caps so that upstream
/// picks one of them when it can.
pub const VIDEO_FORMATS: &[VideoFormat] = &[
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Argb,
    VideoFormat::Abgr,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
];

/// Positions of R, G and B within a pixel of a packed RGB format.
fn rgb_offsets(format: VideoFormat) -> Option<[i64; 3]> {
    Some(match format {
        VideoFormat::Rgb | VideoFormat::Rgba | VideoFormat::Rgbx => [0, 1, 2],
        VideoFormat::Bgr | VideoFormat::Bgra | VideoFormat::Bgrx => [2, 1, 0],
        VideoFormat::Argb | VideoFormat::Xrgb => [1, 2, 3],
        VideoFormat::Abgr | VideoFormat::Xbgr => [3, 2, 1],
        _ => return None,
    })
}

/// Maps `buffer` as a frame of `info`; a buffer too small for it is an error saying so.
fn readable_frame<'a>(
    buffer: &'a gst::BufferRef,
    info: &'a VideoInfo,
) -> anyhow::Result<VideoFrameRef<&'a gst::BufferRef>> {
    VideoFrameRef::from_buffer_ref_readable(buffer, info).map_err(|_| {
        anyhow::anyhow!(
            "buffer of {} bytes does not hold a {}x{} {:?} frame",
            buffer.size(),
            info.width(),
            info.height(),
            info.format()
        )
    })
}

/// Copies plane 0 of a mapped frame into a contiguous [H, W * bytes_per_pixel] byte vector.
fn packed_plane(
    buffer: &gst::BufferRef,
    info: &VideoInfo,
    bytes_per_pixel: usize,
) -> anyhow::Result<Vec<u8>> {
    let frame = readable_frame(buffer, info)?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0)?;
    let row = w * bytes_per_pixel;
    let mut out = Vec::with_capacity(row * h);
    for y in 0..h {
        out.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    Ok(out)
}

/// Every raw format the `sink` pad accepts: the packed RGB ones first, then all others (YUV,
/// planar, high bit depth), which [`VideoReader`] converts with GStreamer's own converter.
pub fn sink_formats() -> Vec<VideoFormat> {
    let mut formats = VIDEO_FORMATS.to_vec();
    formats.extend(VideoFormat::iter_raw().filter(|f| !VIDEO_FORMATS.contains(f)));
    formats
}

/// Reads video buffers of any raw format as RGB tensors. Formats other than packed RGB go
/// through a `VideoConverter` to RGBx first; converter and target buffer are kept while the
/// caps stay the same.
#[derive(Default)]
pub struct VideoReader {
    conversion: Option<Conversion>,
}

/// Converting one input format to RGBx.
struct Conversion {
    from: VideoInfo,
    to: VideoInfo,
    converter: VideoConverter,
    /// Reused for every frame: the tensor is copied out of it before the next one.
    target: gst::Buffer,
}

impl Conversion {
    fn new(from: &VideoInfo) -> anyhow::Result<Self> {
        let to = VideoInfo::builder(VideoFormat::Rgbx, from.width(), from.height())
            .fps(from.fps())
            .par(from.par())
            .interlace_mode(from.interlace_mode())
            .build()?;
        let converter = VideoConverter::new(from, &to, None).map_err(|e| {
            anyhow::anyhow!(
                "cannot convert {:?} video to RGB ({e}): put videoconvert before omnimatte",
                from.format()
            )
        })?;
        let target = gst::Buffer::with_size(to.size())?;
        Ok(Self {
            from: from.clone(),
            to,
            converter,
            target,
        })
    }
}

impl VideoReader {
    /// A video buffer as [3, H, W] float RGB in [0, 1].
    pub fn frame_to_tensor(
        &mut self,
        buffer: &gst::BufferRef,
        info: &VideoInfo,
    ) -> anyhow::Result<Tensor> {
        if rgb_offsets(info.format()).is_some() {
            return frame_to_tensor(buffer, info);
        }
        let conversion = match &mut self.conversion {
            Some(c) if c.from == *info => c,
            slot => slot.insert(Conversion::new(info)?),
        };
        let source = readable_frame(buffer, info)?;
        {
            let target = conversion
                .target
                .get_mut()
                .expect("the target buffer is only shared while it is read below");
            let mut target = VideoFrameRef::from_buffer_ref_writable(target, &conversion.to)
                .map_err(|_| anyhow::anyhow!("cannot map an RGBx frame"))?;
            conversion.converter.frame_ref(&source, &mut target);
        }
        frame_to_tensor(&conversion.target, &conversion.to)
    }
}

/// A packed RGB video buffer as [3, H, W] float RGB in [0, 1].
pub fn frame_to_tensor(buffer: &gst::BufferRef, info: &VideoInfo) -> anyhow::Result<Tensor> {
    let format = info.format();
    let offsets = rgb_offsets(format).ok_or_else(|| {
        anyhow::anyhow!("{format:?} is not packed RGB: read it through VideoReader")
    })?;
    let bpp = info.format_info().pixel_stride()[0] as usize;
    let bytes = packed_plane(buffer, info, bpp)?;
    let (w, h) = (info.width() as i64, info.height() as i64);
    let pixels = Tensor::from_slice(&bytes).view([h, w, bpp as i64]);
    let rgb = if offsets == [0, 1, 2] {
        pixels.narrow(2, 0, 3)
    } else {
        pixels.index_select(2, &Tensor::from_slice(&offsets))
    };
    // Contiguous planar layout: a channels-last view would send the convolutions down a
    // slower path (measured: about 15% of the network time). Planar in bytes first, then one
    // conversion to float and one scaling in place (at 720p each full-size float pass counts).
    let mut planar = rgb.permute([2, 0, 1]).contiguous().to_kind(Kind::Float);
    let _ = planar.g_div_scalar_(255.0);
    Ok(planar)
}

/// A GRAY8 mask buffer as an [H, W] uint8 label map.
pub fn mask_to_tensor(buffer: &gst::BufferRef, info: &VideoInfo) -> anyhow::Result<Tensor> {
    anyhow::ensure!(
        info.format() == VideoFormat::Gray8,
        "mask must be GRAY8, got {:?}",
        info.format()
    );
    let bytes = packed_plane(buffer, info, 1)?;
    Ok(Tensor::from_slice(&bytes).view([info.height() as i64, info.width() as i64]))
}

/// Images [C, H, W] float in [0, 1] (C = 3 or 4) to packed RGBA buffers; 3-channel images
/// get opaque alpha. One pass per image over its planar floats, written straight into the
/// buffer's bytes (the tensor route took five full-size float passes and two copies), the
/// images shared between two threads (the worker's other core idles otherwise).
pub fn tensors_to_rgba_buffers(images: &[Tensor]) -> Vec<gst::Buffer> {
    let planar: Vec<Tensor> = images
        .iter()
        .map(|image| {
            image
                .to_device(tch::Device::Cpu)
                .to_kind(Kind::Float)
                .contiguous()
        })
        .collect();
    let floats: Vec<&[f32]> = planar.iter().map(floats).collect();
    let pixels: Vec<usize> = planar
        .iter()
        .map(|p| {
            let (c, h, w) = p.size3().expect("images are [C, H, W]");
            debug_assert!(c == 3 || c == 4, "RGB or RGBA images");
            (h * w) as usize
        })
        .collect();
    let half = floats.len().div_ceil(2);
    let convert = |range: std::ops::Range<usize>| -> Vec<Vec<u8>> {
        range.map(|i| to_rgba(floats[i], pixels[i])).collect()
    };
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| convert(half..floats.len()));
        (convert(0..half), second.join().expect("conversion thread"))
    });
    first
        .into_iter()
        .chain(second)
        .map(gst::Buffer::from_mut_slice)
        .collect()
}

/// Planar channels (3 or 4 planes of `pixels`) to packed RGBA bytes.
fn to_rgba(planar: &[f32], pixels: usize) -> Vec<u8> {
    // Compiled for AVX2 where the CPU has it (see `eight_bit::quantise_all`).
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the feature `to_rgba_avx2` is compiled for.
        return unsafe { to_rgba_avx2(planar, pixels) };
    }
    pack_rgba(planar, pixels)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn to_rgba_avx2(planar: &[f32], pixels: usize) -> Vec<u8> {
    pack_rgba(planar, pixels)
}

#[inline(always)]
fn pack_rgba(planar: &[f32], pixels: usize) -> Vec<u8> {
    let mut rgba = vec![255u8; pixels * 4];
    if pixels == 0 {
        return rgba;
    }
    let planes: Vec<&[f32]> = planar.chunks_exact(pixels).take(4).collect();
    let (r, g, b) = (planes[0], planes[1], planes[2]);
    let pixels = rgba.chunks_exact_mut(4).zip(r).zip(g).zip(b);
    match planes.get(3) {
        Some(a) => {
            for ((((px, &r), &g), &b), &a) in pixels.zip(*a) {
                px.copy_from_slice(&[quantise(r), quantise(g), quantise(b), quantise(a)]);
            }
        }
        None => {
            for (((px, &r), &g), &b) in pixels {
                px[..3].copy_from_slice(&[quantise(r), quantise(g), quantise(b)]);
            }
        }
    }
    rgba
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed bytes equal libtorch's rounding of the same floats, clamped, for RGB (opaque)
    /// and RGBA images, values outside [0, 1] and exact halves included.
    #[test]
    fn packing_rounds_as_libtorch() {
        gst::init().unwrap();
        tch::manual_seed(3);
        let (h, w) = (5, 7);
        for channels in [3, 4] {
            let image = Tensor::rand([channels, h, w], (Kind::Float, tch::Device::Cpu)) * 1.2 - 0.1;
            // Halves of 8-bit steps, where rounding to even and rounding half up differ.
            let halves = Tensor::from_slice(&[0.5f32, 1.5, 2.5, 3.5, 126.5, 253.5, 254.5]) / 255.0;
            image.get(0).get(0).copy_(&halves);
            let buffers = tensors_to_rgba_buffers(std::slice::from_ref(&image));
            let bytes = buffers[0].map_readable().unwrap().to_vec();
            let mut expected = (&image * 255.0)
                .round()
                .clamp(0.0, 255.0)
                .to_kind(Kind::Uint8);
            if channels == 3 {
                expected = Tensor::cat(
                    &[
                        expected,
                        Tensor::full([1, h, w], 255, (Kind::Uint8, tch::Device::Cpu)),
                    ],
                    0,
                );
            }
            let expected =
                Vec::<u8>::try_from(expected.permute([1, 2, 0]).contiguous().view(-1)).unwrap();
            assert_eq!(bytes, expected, "{channels} channels");
        }
    }
}
