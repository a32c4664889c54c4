//! The Omnimatte folder layout, written and read as PNG files:
//!
//! ```text
//! VIDEO/rgb/00000.png              frames (RGB)
//! VIDEO/mask/01/00000.png          object 1's mask (8-bit, 0 or 255), object 1 back-most
//! VIDEO/bg.png                     background (synthetic scenes)
//! VIDEO/bg/00000.png               or each frame's background (a camera that moves)
//! VIDEO/gt/layer_01/00000.png      ground-truth RGBA layer of object 1 with its effects
//! VIDEO/gt/region_01/00000.png     ground-truth region of object 1 with its effects (0 or 255)
//! ```

use crate::image_io::{is_jpeg, read_image_8bit, unit_range};
pub use crate::image_io::{read_png, write_png};
use crate::label_png::{read_mask_png, StoredMask};
use crate::synth::{PannedScene, Scene};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// A video read from disk. Colours in [0, 1].
pub struct Video {
    /// [T, 3, H, W]
    pub frames: Tensor,
    /// [L, T, 1, H, W] in {0, 1}
    pub masks: Tensor,
    /// Each frame's true background [T, 3, H, W], when the folder has bg.png (a still camera:
    /// one image for every frame) or bg/ (one a frame: a camera that moves).
    pub background: Option<Tensor>,
    /// [L, T, 4, H, W], when the folder has gt/layer_NN
    pub gt_layers: Option<Tensor>,
}

impl Video {
    /// The one true background [3, H, W] of every frame: None where there is none, or where it
    /// moves (bg/ with frames that differ: a camera that pans).
    pub fn still_background(&self) -> Option<Tensor> {
        let each = self.background.as_ref()?;
        let first = each.get(0);
        each.equal(&first.expand_as(each)).then_some(first)
    }
}

fn frame_name(i: i64) -> String {
    format!("{i:05}.png")
}

/// Writes a synthetic scene in the Omnimatte layout.
pub fn write_scene(dir: &Path, scene: &Scene) -> anyhow::Result<()> {
    write_png(&dir.join("bg.png"), &scene.background)?;
    write_frames_and_truth(dir, scene)
}

/// Writes a scene seen by a panning camera in the Omnimatte layout, each frame's background in
/// bg/.
pub fn write_panned_scene(dir: &Path, panned: &PannedScene) -> anyhow::Result<()> {
    for f in 0..panned.backgrounds.size()[0] {
        write_png(
            &dir.join("bg").join(frame_name(f)),
            &panned.backgrounds.get(f),
        )?;
    }
    write_frames_and_truth(dir, &panned.scene)
}

/// A scene's frames, masks, true layers and true regions.
fn write_frames_and_truth(dir: &Path, scene: &Scene) -> anyhow::Result<()> {
    let t = scene.frames.size()[0];
    let l = scene.layers.size()[0];
    for f in 0..t {
        let name = frame_name(f);
        write_png(&dir.join("rgb").join(&name), &scene.frames.get(f))?;
        for k in 0..l {
            let obj = format!("{:02}", k + 1);
            write_png(
                &dir.join("mask").join(&obj).join(&name),
                &scene.masks.get(k).get(f),
            )?;
            write_png(
                &dir.join("gt").join(format!("layer_{obj}")).join(&name),
                &scene.layers.get(k).get(f),
            )?;
            write_png(
                &dir.join("gt").join(format!("region_{obj}")).join(&name),
                &scene.regions.get(k).get(f),
            )?;
        }
    }
    Ok(())
}

/// Sorted PNG files of a folder. A numbered sequence (every name a number) must have no gap:
/// a missing frame would shift every later one onto the wrong time.
pub(crate) fn pngs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    sequence(dir, |p| {
        p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
    })
}

/// Sorted frame files of a folder: its PNGs, or its JPEGs (DAVIS's and many datasets' frames),
/// never a mix of the two.
pub fn frame_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let png = pngs(dir)?;
    let jpeg = sequence(dir, is_jpeg)?;
    anyhow::ensure!(
        png.is_empty() || jpeg.is_empty(),
        "{}: both PNG and JPEG frames ({} and {}); keep one sequence in the folder",
        dir.display(),
        png.len(),
        jpeg.len()
    );
    Ok(if png.is_empty() { jpeg } else { png })
}

/// Sorted files of a folder that `wanted` picks, a numbered sequence without gaps.
fn sequence(dir: &Path, wanted: impl Fn(&Path) -> bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| wanted(p))
        .collect();
    files.sort();
    // Names that are one prefix and a number (00001.png, frame_1.png ... frame_10.png, as
    // ffmpeg's %d writes them) go in the numbers' order, not the names': "10" sorts before "2".
    let numbered: Option<Vec<(String, u64)>> = files.iter().map(|f| numbered_name(f)).collect();
    let numbers = numbered.filter(|n| n.iter().all(|(prefix, _)| *prefix == n[0].0));
    if let Some(numbers) = numbers {
        // A stable sort: a number written twice keeps its names' order for the error below.
        let mut by_number: Vec<(u64, PathBuf)> =
            numbers.into_iter().map(|(_, n)| n).zip(files).collect();
        by_number.sort_by_key(|(n, _)| *n);
        let numbers: Vec<u64>;
        (numbers, files) = by_number.into_iter().unzip();
        for (pair, names) in numbers.windows(2).zip(files.windows(2)) {
            anyhow::ensure!(
                pair[1] != pair[0],
                "{}: {} and {} are both frame {}",
                dir.display(),
                names[0].file_name().unwrap_or_default().to_string_lossy(),
                names[1].file_name().unwrap_or_default().to_string_lossy(),
                pair[0]
            );
            anyhow::ensure!(
                pair[1] == pair[0] + 1,
                "{}: the numbered sequence has a gap between {} and {} (frame {} is missing); every frame must be there",
                dir.display(),
                names[0].file_name().unwrap_or_default().to_string_lossy(),
                names[1].file_name().unwrap_or_default().to_string_lossy(),
                pair[0] + 1
            );
        }
    }
    Ok(files)
}

/// A file name's stem split into its text and the number it ends with, if it ends with one.
fn numbered_name(file: &Path) -> Option<(String, u64)> {
    let stem = file.file_stem()?.to_str()?;
    let text = stem.trim_end_matches(|c: char| c.is_ascii_digit());
    let number = stem[text.len()..].parse().ok()?;
    Some((text.to_string(), number))
}

/// Sorted sub-folders of `dir` whose names start with `prefix`.
pub(crate) fn subdirs(dir: &Path, prefix: &str) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The images' bytes [N, channels, H, W], each copied into the stack as it is read: a long
/// 1080p clip is gigabytes even at a byte a sample, and must not be held twice.
pub(crate) fn read_stack(files: &[PathBuf], channels: i64) -> anyhow::Result<Tensor> {
    let mut first: Option<(Tensor, &PathBuf)> = None;
    stack_each(files.iter().collect(), |f| {
        let image = read_image_channels(f, channels)?;
        match &first {
            Some((first, first_file)) => ensure_same_size(&image, f, first, first_file, 1)?,
            None => first = Some((image.shallow_clone(), f)),
        }
        Ok(image)
    })
}

/// An image file's bytes [channels, H, W]: gray given as three equal channels for RGB, alpha
/// left off, the first channel for gray.
pub fn read_image_channels(file: &Path, channels: i64) -> anyhow::Result<Tensor> {
    let image = read_image_8bit(file)?;
    let c = image.size()[0];
    Ok(match (c, channels) {
        (c, want) if c == want => image,
        (_, 1) => image.narrow(0, 0, 1),
        (1, 3) => image.expand([3, -1, -1], false).copy(),
        (4, 3) => image.narrow(0, 0, 3),
        _ => bail!("{}: {c} channels, expected {channels}", file.display()),
    })
}

/// Every image of a sequence has the first one's height and width (dimensions `hw..hw + 2`).
fn ensure_one_size(images: &[Tensor], files: &[PathBuf], hw: usize) -> anyhow::Result<()> {
    if let (Some(first), Some(first_file)) = (images.first(), files.first()) {
        for (image, file) in images.iter().zip(files) {
            ensure_same_size(image, file, first, first_file, hw)?;
        }
    }
    Ok(())
}

/// `image` (read from `file`) has the height and width of `first` (dimensions `hw..hw + 2`).
pub(crate) fn ensure_same_size(
    image: &Tensor,
    file: &Path,
    first: &Tensor,
    first_file: &Path,
    hw: usize,
) -> anyhow::Result<()> {
    let (size, want) = (image.size(), first.size());
    anyhow::ensure!(
        size[hw..] == want[hw..],
        "{} is {}x{} but {} is {}x{}: every image of a sequence must have the same size",
        file.display(),
        size[hw + 1],
        size[hw],
        first_file.display(),
        want[hw + 1],
        want[hw]
    );
    Ok(())
}

/// The stored values of a sequence of mask PNGs.
fn read_mask_stack(files: &[PathBuf]) -> anyhow::Result<Vec<StoredMask>> {
    let masks = files
        .iter()
        .map(|f| read_mask_png(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let values: Vec<Tensor> = masks.iter().map(|m| m.values.shallow_clone()).collect();
    ensure_one_size(&values, files, 0)?;
    Ok(masks)
}

/// [T, H, W] bool: one object's binary masks (0 or 255, any bit depth, or palette indices).
fn read_object_masks(files: &[PathBuf]) -> anyhow::Result<Tensor> {
    stack_each(read_mask_stack(files)?, |m| Ok(m.covered()))
}

/// Stacks what `convert` makes of each item, [N, ...], letting each item go once converted: a
/// long clip's masks are held once, not twice.
fn stack_each<T>(
    items: Vec<T>,
    mut convert: impl FnMut(T) -> anyhow::Result<Tensor>,
) -> anyhow::Result<Tensor> {
    let n = items.len() as i64;
    let mut items = items.into_iter();
    let Some(first) = items.next() else {
        bail!("nothing to stack");
    };
    let first = convert(first)?;
    let size: Vec<i64> = [n].into_iter().chain(first.size()).collect();
    let stack = Tensor::empty(size.as_slice(), (first.kind(), first.device()));
    stack.get(0).f_copy_(&first)?;
    for (i, item) in items.enumerate() {
        stack.get(i as i64 + 1).f_copy_(&convert(item)?)?;
    }
    Ok(stack)
}

/// Reads a video folder in the Omnimatte layout.
pub fn read_video(dir: &Path) -> anyhow::Result<Video> {
    let frame_files = frame_files(&dir.join("rgb"))?;
    anyhow::ensure!(
        !frame_files.is_empty(),
        "{}: no frames in rgb/",
        dir.display()
    );
    let frames = unit_range(&read_stack(&frame_files, 3)?);
    let mask_dirs = subdirs(&dir.join("mask"), "")?;
    anyhow::ensure!(
        !mask_dirs.is_empty(),
        "{}: no object folders in mask/",
        dir.display()
    );
    let masks = mask_dirs
        .iter()
        .map(|d| {
            let files = pngs(d)?;
            anyhow::ensure!(
                files.len() == frame_files.len(),
                "{}: {} masks for {} frames",
                d.display(),
                files.len(),
                frame_files.len()
            );
            Ok(read_object_masks(&files)?.unsqueeze(1).to_kind(Kind::Float))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let background = read_backgrounds(dir, frame_files.len())?;
    if let Some(background) = &background {
        let (want, got) = (&frames.size()[2..], &background.size()[2..]);
        anyhow::ensure!(
            want == got,
            "{}: the background is {got:?}, the frames {want:?} (height, width)",
            dir.display()
        );
    }
    let layer_dirs = subdirs(&dir.join("gt"), "layer_")?;
    let gt_layers = if layer_dirs.is_empty() {
        None
    } else {
        Some(Tensor::stack(
            &layer_dirs
                .iter()
                .map(|d| {
                    let files = pngs(d)?;
                    anyhow::ensure!(
                        files.len() == frame_files.len(),
                        "{}: {} ground-truth layers for {} frames",
                        d.display(),
                        files.len(),
                        frame_files.len()
                    );
                    read_stack(&files, 4).map(|bytes| unit_range(&bytes))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            0,
        ))
    };
    Ok(Video {
        frames,
        masks: Tensor::stack(&masks, 0),
        background,
        gt_layers,
    })
}

/// Each of `frames` frames' true background [T, 3, H, W] in [0, 1]: VIDEO/bg/ (one a frame),
/// else VIDEO/bg.png for every frame (not copied), else None.
fn read_backgrounds(dir: &Path, frames: usize) -> anyhow::Result<Option<Tensor>> {
    let each = dir.join("bg");
    if each.is_dir() {
        let files = pngs(&each)?;
        anyhow::ensure!(
            files.len() == frames,
            "{}: {} backgrounds for {frames} frames",
            each.display(),
            files.len()
        );
        return Ok(Some(unit_range(&read_stack(&files, 3)?)));
    }
    let one = dir.join("bg.png");
    if !one.exists() {
        return Ok(None);
    }
    let background = unit_range(&read_stack(&[one], 3)?);
    Ok(Some(background.expand([frames as i64, -1, -1, -1], false)))
}

/// The frames [T, 3, H, W] in [0, 1] of a folder of PNG or JPEG frames (in their numbers'
/// order).
pub fn read_frames(dir: &Path) -> anyhow::Result<Tensor> {
    read_frames_8bit(dir).map(|bytes| unit_range(&bytes))
}

/// The same frames as their bytes [T, 3, H, W] (uint8): a quarter of the memory.
pub fn read_frames_8bit(dir: &Path) -> anyhow::Result<Tensor> {
    let files = frame_files(dir)?;
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no PNG or JPEG frames",
        dir.display()
    );
    read_stack(&files, 3)
}

/// Video folders under `root`: `root` itself if it has rgb/, else its sub-folders that do.
pub fn video_dirs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if root.join("rgb").is_dir() {
        return Ok(vec![root.to_path_buf()]);
    }
    let dirs: Vec<PathBuf> = subdirs(root, "")?
        .into_iter()
        .filter(|d| d.join("rgb").is_dir())
        .collect();
    anyhow::ensure!(
        !dirs.is_empty(),
        "{}: no video folders (with rgb/) found",
        root.display()
    );
    Ok(dirs)
}
