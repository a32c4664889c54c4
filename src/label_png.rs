//! Mask PNGs read as the values they store, not the colours those values stand for.
//!
//! Segmenters and datasets store masks in several ways: 8-bit gray label maps (this project's
//! own), palette PNGs whose index k is object k (DAVIS, YouTube-VOS), 16-bit gray label maps,
//! 1-bit or 8-bit binary masks of one object. Read as images (palette expanded to colours,
//! 16 bits cut to their high byte) they silently become other labels: DAVIS's object 2 is
//! pure green, whose red channel reads as background. So masks are read here sample by sample,
//! before any colour conversion.

use crate::image_io::decode_png;
use anyhow::bail;
use std::path::Path;
use tch::Tensor;

/// The values one mask PNG stores.
pub struct StoredMask {
    /// [H, W]: palette indices, or gray levels at the file's bit depth; uint8 up to 8 bits,
    /// int32 at 16 (a long 1080p clip's masks stay a byte a pixel).
    pub values: Tensor,
    /// Whether the values are palette indices.
    pub palette: bool,
    /// The largest value the file's bit depth holds (1 for 1-bit, 255 for 8-bit, ...).
    pub full_scale: i64,
}

impl StoredMask {
    /// [H, W] bool: the pixels a binary mask of one object covers: a palette index other than 0,
    /// or a gray level at least half the bit depth's full scale.
    pub fn covered(&self) -> Tensor {
        if self.palette {
            self.values.ne(0)
        } else {
            self.values.ge((self.full_scale + 1) / 2)
        }
    }
}

/// Reads a mask PNG. Colour (RGB, RGBA) files are read when every pixel is gray (R = G = B), and
/// are an error otherwise: which colour stands for which object is not in the file (a palette
/// PNG says it by its indices).
pub fn read_mask_png(path: &Path) -> anyhow::Result<StoredMask> {
    // No expansion: a palette's indices and the gray levels as stored.
    let (data, info) = decode_png(path, png::Transformations::IDENTITY)?;
    let samples = match info.color_type {
        png::ColorType::Indexed | png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
    };
    let bits = info.bit_depth as usize;
    let (h, w) = (info.height as usize, info.width as usize);
    let sample = |y: usize, x: usize, i: usize| -> i32 {
        let row = &data[y * info.line_size..(y + 1) * info.line_size];
        let bit = (x * samples + i) * bits;
        match bits {
            16 => i32::from(u16::from_be_bytes([row[bit / 8], row[bit / 8 + 1]])),
            8 => i32::from(row[bit / 8]),
            // 1, 2 or 4 bits, packed from the most significant bit on.
            _ => i32::from((row[bit / 8] >> (8 - bits - bit % 8)) & ((1u8 << bits) - 1)),
        }
    };
    let mut values: Vec<i32> = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let v = sample(y, x, 0);
            if samples >= 3 && (sample(y, x, 1) != v || sample(y, x, 2) != v) {
                bail!(
                    "{}: a colour mask (pixel {x},{y} is not gray): store labels as gray levels \
                     (0 = background, k = object k) or as a palette PNG's indices",
                    path.display()
                );
            }
            values.push(v);
        }
    }
    let values = if bits <= 8 {
        Tensor::from_slice(&values.iter().map(|&v| v as u8).collect::<Vec<u8>>())
    } else {
        Tensor::from_slice(&values)
    };
    Ok(StoredMask {
        values: values.view([h as i64, w as i64]),
        palette: info.color_type == png::ColorType::Indexed,
        full_scale: (1i64 << bits) - 1,
    })
}
