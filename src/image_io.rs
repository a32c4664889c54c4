//! 8-bit PNG files (and JPEG frames) as tensors: what the element (clean plates), the CLI and
//! the synthetic scenes' photographs read and write. Knows nothing of the folder layouts built
//! on it.

use anyhow::{bail, Context};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use tch::{Kind, Tensor};

/// Writes [C, H, W] in [0, 1] (C = 1, 3 or 4) as an 8-bit PNG.
pub fn write_png(path: &Path, image: &Tensor) -> anyhow::Result<()> {
    let size = image.size();
    anyhow::ensure!(size.len() == 3, "image must be [C, H, W], got {size:?}");
    let (c, h, w) = (size[0], size[1], size[2]);
    let color = match c {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        _ => bail!("cannot write {c} channels as PNG"),
    };
    let bytes = (image * 255.0)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .permute([1, 2, 0])
        .contiguous();
    let mut data = vec![0u8; (c * h * w) as usize];
    let len = data.len();
    bytes.copy_data(&mut data, len);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), w as u32, h as u32);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&data))
        .with_context(|| format!("writing {}", path.display()))
}

/// A PNG file's first image as the decoder gives it with `transformations`: its rows of bytes
/// and what they hold.
pub fn decode_png(
    path: &Path,
    transformations: png::Transformations,
) -> anyhow::Result<(Vec<u8>, png::OutputInfo)> {
    let mut reader = png_reader(path, transformations)?;
    let mut data = vec![0u8; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut data)
        .with_context(|| format!("decoding {}", path.display()))?;
    Ok((data, info))
}

/// A PNG file opened and its header read, to be decoded with `transformations`.
fn png_reader(
    path: &Path,
    transformations: png::Transformations,
) -> anyhow::Result<png::Reader<File>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(transformations);
    decoder
        .read_info()
        .with_context(|| format!("reading {}", path.display()))
}

/// Reads an 8-bit PNG as its bytes [C, H, W] (gray, RGB or RGBA as stored; 16-bit cut to 8).
pub fn read_png_8bit(path: &Path) -> anyhow::Result<Tensor> {
    let (mut data, info) = decode_png(
        path,
        png::Transformations::EXPAND | png::Transformations::STRIP_16,
    )?;
    let c = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => bail!("{}: unsupported PNG colour type {other:?}", path.display()),
    };
    let (h, w) = (info.height as i64, info.width as i64);
    data.truncate((c * h * w) as usize);
    Ok(channels_first(&data, h, w, c))
}

/// Reads an 8-bit PNG as [C, H, W] in [0, 1] (gray, RGB or RGBA as stored).
pub fn read_png(path: &Path) -> anyhow::Result<Tensor> {
    read_png_8bit(path).map(|bytes| unit_range(&bytes))
}

/// Reads a JPEG file as its RGB bytes [3, H, W] (a gray JPEG as three equal channels).
pub fn read_jpeg_8bit(path: &Path) -> anyhow::Result<Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let options = zune_jpeg::zune_core::options::DecoderOptions::default()
        .jpeg_set_out_colorspace(zune_jpeg::zune_core::colorspace::ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_jpeg::zune_core::bytestream::ZCursor::new(&bytes),
        options,
    );
    let rgb = decoder
        .decode()
        .map_err(|e| anyhow::anyhow!("decoding {}: {e:?}", path.display()))?;
    let (w, h) = decoder
        .dimensions()
        .with_context(|| format!("decoding {}: no size", path.display()))?;
    anyhow::ensure!(
        rgb.len() == 3 * w * h,
        "decoding {}: {} bytes for {w}x{h} RGB",
        path.display(),
        rgb.len()
    );
    Ok(channels_first(&rgb, h as i64, w as i64, 3))
}

/// Reads a JPEG file as RGB [3, H, W] in [0, 1] (a gray JPEG as three equal channels).
pub fn read_jpeg(path: &Path) -> anyhow::Result<Tensor> {
    read_jpeg_8bit(path).map(|bytes| unit_range(&bytes))
}

/// Interleaved rows of bytes [H, W, C] as [C, H, W] bytes.
fn channels_first(data: &[u8], h: i64, w: i64, c: i64) -> Tensor {
    Tensor::from_slice(data)
        .view([h, w, c])
        .permute([2, 0, 1])
        .contiguous()
}

/// Bytes as floats in [0, 1].
pub fn unit_range(bytes: &Tensor) -> Tensor {
    bytes.to_kind(Kind::Float) / 255.0
}

/// A PNG or, by its name, a JPEG file's (height, width), read from its header alone.
pub fn image_size(path: &Path) -> anyhow::Result<(i64, i64)> {
    if is_jpeg(path) {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut decoder =
            zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(&bytes));
        decoder
            .decode_headers()
            .map_err(|e| anyhow::anyhow!("decoding {}: {e:?}", path.display()))?;
        let (w, h) = decoder
            .dimensions()
            .with_context(|| format!("decoding {}: no size", path.display()))?;
        Ok((h as i64, w as i64))
    } else {
        let reader = png_reader(path, png::Transformations::IDENTITY)?;
        let info = reader.info();
        Ok((info.height as i64, info.width as i64))
    }
}

/// Whether `path` names a JPEG file (.jpg or .jpeg, any case).
pub fn is_jpeg(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
}

/// Reads a PNG or, by its name, a JPEG file as its bytes [C, H, W].
pub fn read_image_8bit(path: &Path) -> anyhow::Result<Tensor> {
    if is_jpeg(path) {
        read_jpeg_8bit(path)
    } else {
        read_png_8bit(path)
    }
}
