//! A clip's label maps ([H, W] uint8: 0 = background, k = object k) read one frame at a time,
//! held up to a budget and beyond it written into a file read back as needed
//! ([`ByteStackBuilder`]): two minutes of 1080p are 6 GB even at a byte a pixel.
//!
//! A mask folder is either per-object folders of binary PNGs (the Omnimatte `mask/01/`,
//! `mask/02/`, ... layout; object 1 back-most, front objects win where masks overlap) or one
//! folder of label PNGs: gray levels (8 or 16 bits) or a palette PNG's indices (DAVIS's
//! layout). A folder of binary masks (every value 0 or white) is one object's: that is only
//! known once every file is read, so each map is stored as read and the choice is made as the
//! maps are given out.

use crate::byte_stack::{ByteStack, ByteStackBuilder};
use crate::dataset::{ensure_same_size, pngs, subdirs};
use crate::label_png::{read_mask_png, StoredMask};
use anyhow::bail;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Objects inferred from the labels are at most this many: every object is a layer the
/// network decomposes, and a higher label is far more often a mask stored another way (gray
/// levels spread over 0-255 for visibility, colours) than that many objects.
pub const MAX_INFERRED_OBJECTS: usize = 32;

/// A white pixel of a binary mask as stored here, whatever the file's bit depth.
const WHITE: i64 = 255;

/// The label maps of a clip, in order.
pub struct LabelMaps {
    stack: ByteStack,
    /// Every map is a binary mask of one object, stored as 0 and [`WHITE`].
    binary: bool,
    /// The highest label stored (before the binary maps' white becomes object 1).
    highest_stored: i64,
}

impl LabelMaps {
    /// The label maps of the mask folder `dir` (the layouts above), held while they come to at
    /// most `hold_bytes`, else kept in a file in `spill_dir`. With `size` (height, width) masks
    /// of another size but the same shape are brought to it, each pixel taking its nearest mask
    /// pixel's label: segmenters often run at a lower resolution than the video.
    pub fn read_folder(
        dir: &Path,
        hold_bytes: u64,
        spill_dir: &Path,
        size: Option<(i64, i64)>,
    ) -> anyhow::Result<Self> {
        let mut maps = LabelMapsBuilder::new(hold_bytes, spill_dir, size);
        let object_dirs = subdirs(dir, "")?;
        if object_dirs.is_empty() {
            let files = pngs(dir)?;
            anyhow::ensure!(!files.is_empty(), "{}: no mask PNGs", dir.display());
            read_label_pngs(dir, &files, &mut maps)?;
        } else {
            read_object_folders(&object_dirs, &mut maps)?;
        }
        maps.finish()
    }

    pub fn len(&self) -> i64 {
        self.stack.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the maps are held in memory (else in their file).
    pub fn held(&self) -> bool {
        matches!(self.stack, ByteStack::Held(_))
    }

    /// The maps' (height, width).
    pub fn height_width(&self) -> (i64, i64) {
        let shape = self.stack.shape();
        (shape[0], shape[1])
    }

    /// Map `t`, [H, W] uint8.
    pub fn get(&self, t: i64) -> anyhow::Result<Tensor> {
        let stored = self.stack.get(t)?;
        Ok(if self.binary {
            stored.eq(WHITE).to_kind(Kind::Uint8)
        } else {
            stored
        })
    }

    /// The highest label in any map.
    pub fn highest(&self) -> i64 {
        if self.binary {
            self.highest_stored.min(1)
        } else {
            self.highest_stored
        }
    }

    /// Every map, [T, H, W] uint8.
    pub fn to_tensor(&self) -> anyhow::Result<Tensor> {
        let maps = (0..self.len())
            .map(|t| self.get(t))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Tensor::stack(&maps, 0))
    }

    /// How many objects the maps describe ([`objects_of`]).
    pub fn object_count(&self, given: Option<usize>) -> anyhow::Result<usize> {
        objects_of(self.highest(), given, || {
            let mut present = vec![false; 256];
            for t in 0..self.len() {
                let map = self.get(t)?;
                for label in
                    Vec::<i64>::try_from(map.internal_unique(false, false).0.to_kind(Kind::Int64))?
                {
                    present[label as usize] = true;
                }
            }
            Ok((0..256).filter(|&l| present[l as usize]).collect())
        })
    }
}

/// Label maps [T, H, W] (uint8) of a mask folder, held whole ([`LabelMaps::read_folder`]).
pub fn read_label_maps(dir: &Path) -> anyhow::Result<Tensor> {
    LabelMaps::read_folder(dir, u64::MAX, dir, None)?.to_tensor()
}

/// How many objects label maps [T, H, W] describe ([`objects_of`]).
pub fn object_count(labels: &Tensor, given: Option<usize>) -> anyhow::Result<usize> {
    objects_of(labels.max().int64_value(&[]), given, || {
        Ok(Vec::try_from(
            labels.internal_unique(true, false).0.to_kind(Kind::Int64),
        )?)
    })
}

/// How many objects maps whose highest label is `highest` describe: `given`, which must hold
/// every label, or else their highest label (at least 1, at most [`MAX_INFERRED_OBJECTS`]).
/// `present` lists the labels, for the error message only: on a long clip it takes a while.
fn objects_of(
    highest: i64,
    given: Option<usize>,
    present: impl FnOnce() -> anyhow::Result<Vec<i64>>,
) -> anyhow::Result<usize> {
    let highest = highest as usize;
    match given {
        Some(objects) => {
            anyhow::ensure!(
                highest <= objects,
                "the masks hold label {highest} but --objects is {objects}"
            );
            Ok(objects)
        }
        None => {
            if highest > MAX_INFERRED_OBJECTS {
                let present = present().unwrap_or_default();
                bail!(
                    "the masks hold label {highest} (the values in them: {present:?}), but labels \
                     are 0 = background and k = object k; store them so (a palette PNG's indices \
                     are read as labels), or give --objects {highest} if there are that many \
                     objects"
                );
            }
            Ok(highest.max(1))
        }
    }
}

/// Gathers label maps one at a time into [`LabelMaps`].
pub struct LabelMapsBuilder {
    stack: ByteStackBuilder,
    /// The frames' (height, width), where the maps are brought to them.
    size: Option<(i64, i64)>,
    highest_stored: i64,
    /// Whether every map pushed is a binary mask stored as 0 and [`WHITE`].
    binary: bool,
}

impl LabelMapsBuilder {
    pub fn new(hold_bytes: u64, spill_dir: &Path, size: Option<(i64, i64)>) -> Self {
        Self {
            stack: ByteStackBuilder::new(hold_bytes, spill_dir, "label maps"),
            size,
            highest_stored: 0,
            binary: true,
        }
    }

    /// Adds the next map, [H, W] uint8: labels, or with `binary` a binary mask as 0 and 255.
    pub fn push(&mut self, map: Tensor, binary: bool) -> anyhow::Result<()> {
        let map = match self.size {
            Some(size) => self.fit(map, size)?,
            None => map,
        };
        self.highest_stored = self.highest_stored.max(map.max().int64_value(&[]));
        self.binary &= binary;
        self.stack.push(map)
    }

    /// `map` at the frames' size: as it is, or scaled (nearest neighbour) when it has their
    /// shape.
    fn fit(&self, map: Tensor, (height, width): (i64, i64)) -> anyhow::Result<Tensor> {
        let (h, w) = (map.size()[0], map.size()[1]);
        if (h, w) == (height, width) {
            return Ok(map);
        }
        let same_shape = ((width * h) as f64 / (height * w) as f64 - 1.0).abs() < 0.01;
        anyhow::ensure!(
            same_shape,
            "frames are {width}x{height} but masks {w}x{h}: they must have the same size or at \
             least the same shape"
        );
        if self.stack.is_empty() {
            eprintln!("masks {w}x{h} scaled to the frames' {width}x{height} (nearest neighbour)");
        }
        Ok(map
            .view([1, 1, h, w])
            .to_kind(Kind::Float)
            .upsample_nearest2d([height, width], None, None)
            .view([height, width])
            .to_kind(Kind::Uint8))
    }

    /// The maps pushed, in order.
    pub fn finish(self) -> anyhow::Result<LabelMaps> {
        Ok(LabelMaps {
            stack: self.stack.finish()?,
            binary: self.binary,
            highest_stored: self.highest_stored,
        })
    }
}

/// One folder of label PNGs (or of one object's binary masks) into `maps`.
fn read_label_pngs(
    dir: &Path,
    files: &[PathBuf],
    maps: &mut LabelMapsBuilder,
) -> anyhow::Result<()> {
    // A 16-bit binary mask's white is label 65535 unless every mask is binary: known at the end.
    let mut wide_white: Option<i64> = None;
    let mut first: Option<(Tensor, &Path)> = None;
    for file in files {
        let mask = read_mask_png(file)?;
        ensure_size(&mask, file, &mut first)?;
        let binary = is_binary(&mask);
        let stored = if binary {
            if mask.full_scale > WHITE {
                wide_white = Some(mask.full_scale);
            }
            mask.values.eq(mask.full_scale).to_kind(Kind::Uint8) * WHITE
        } else {
            let highest = mask.values.max().int64_value(&[]);
            if highest > 255 {
                return Err(label_above_255(dir, highest));
            }
            mask.values.to_kind(Kind::Uint8)
        };
        maps.push(stored, binary)?;
    }
    match wide_white.filter(|_| !maps.binary) {
        Some(highest) => Err(label_above_255(dir, highest)),
        None => Ok(()),
    }
}

/// A label that no 8-bit label map holds.
fn label_above_255(dir: &Path, label: i64) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: label {label} in a mask; labels are 0 = background and k = object k, at most 255",
        dir.display()
    )
}

/// Whether a mask is one object's binary mask: gray levels (not palette indices) of at least
/// 8 bits, every one 0 or white (a 1-bit mask's 1 is label 1 anyway).
fn is_binary(mask: &StoredMask) -> bool {
    !mask.palette
        && mask.full_scale >= WHITE
        && mask
            .values
            .eq(0)
            .logical_or(&mask.values.eq(mask.full_scale))
            .all()
            .int64_value(&[])
            == 1
}

/// Per-object folders of binary masks into `maps`, frame by frame: object k's pixels are label
/// k, and the later folder wins where masks overlap.
fn read_object_folders(object_dirs: &[PathBuf], maps: &mut LabelMapsBuilder) -> anyhow::Result<()> {
    let folders = object_dirs
        .iter()
        .map(|d| pngs(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let count = folders[0].len();
    for (d, files) in object_dirs.iter().zip(&folders) {
        anyhow::ensure!(
            files.len() == count && count > 0,
            "{}: {} masks, but {} has {count}",
            d.display(),
            files.len(),
            object_dirs[0].display()
        );
    }
    let mut first: Option<(Tensor, &Path)> = None;
    for t in 0..count {
        let mut labels: Option<Tensor> = None;
        for (k, files) in folders.iter().enumerate() {
            let mask = read_mask_png(&files[t])?;
            ensure_size(&mask, &files[t], &mut first)?;
            let covered = mask.covered();
            let l = labels.get_or_insert_with(|| covered.zeros_like().to_kind(Kind::Uint8));
            let _ = l.masked_fill_(&covered, k as i64 + 1);
        }
        maps.push(labels.expect("at least one object folder"), false)?;
    }
    Ok(())
}

/// Every mask of a folder has the first one's size (`first` keeps the first's values and file).
fn ensure_size<'a>(
    mask: &StoredMask,
    file: &'a Path,
    first: &mut Option<(Tensor, &'a Path)>,
) -> anyhow::Result<()> {
    let (want, first_file) = first.get_or_insert_with(|| (mask.values.shallow_clone(), file));
    ensure_same_size(&mask.values, file, want, first_file, 0)
}
