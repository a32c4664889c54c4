//! Raw video buffers to tensors and back. Rows are copied stride-aware, so padded buffers work.

use gst_video::prelude::*;
use gst_video::{VideoFormat, VideoFrameRef, VideoInfo};
use tch::{Kind, Tensor};

/// Input formats the `sink` pad accepts without conversion.
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

/// Copies plane 0 of a mapped frame into a contiguous [H, W * bytes_per_pixel] byte vector.
fn packed_plane(
    buffer: &gst::BufferRef,
    info: &VideoInfo,
    bytes_per_pixel: usize,
) -> anyhow::Result<Vec<u8>> {
    let frame = VideoFrameRef::from_buffer_ref_readable(buffer, info).map_err(|_| {
        anyhow::anyhow!(
            "buffer of {} bytes does not hold a {}x{} {:?} frame",
            buffer.size(),
            info.width(),
            info.height(),
            info.format()
        )
    })?;
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

/// A video buffer as [3, H, W] float RGB in [0, 1].
pub fn frame_to_tensor(buffer: &gst::BufferRef, info: &VideoInfo) -> anyhow::Result<Tensor> {
    let format = info.format();
    let offsets = rgb_offsets(format).ok_or_else(|| {
        anyhow::anyhow!("unsupported video format {format:?}: put videoconvert before omnimatte")
    })?;
    let bpp = info.format_info().pixel_stride()[0] as usize;
    let bytes = packed_plane(buffer, info, bpp)?;
    let (w, h) = (info.width() as i64, info.height() as i64);
    let pixels = Tensor::from_slice(&bytes).view([h, w, bpp as i64]);
    let rgb = pixels.index_select(2, &Tensor::from_slice(&offsets));
    Ok(rgb.permute([2, 0, 1]).to_kind(Kind::Float) / 255.0)
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

/// [C, H, W] float in [0, 1] (C = 3 or 4) to a packed RGBA buffer; 3 channels get opaque alpha.
pub fn tensor_to_rgba_buffer(image: &Tensor) -> anyhow::Result<gst::Buffer> {
    let size = image.size();
    let (c, h, w) = (size[0], size[1], size[2]);
    let rgba = if c == 3 {
        Tensor::cat(
            &[image.shallow_clone(), image.ones_like().narrow(0, 0, 1)],
            0,
        )
    } else {
        image.shallow_clone()
    };
    let bytes = (rgba * 255.0)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .permute([1, 2, 0])
        .to_device(tch::Device::Cpu)
        .contiguous();
    let len = (h * w * 4) as usize;
    let mut data = vec![0u8; len];
    bytes.copy_data(&mut data, len);
    Ok(gst::Buffer::from_mut_slice(data))
}
