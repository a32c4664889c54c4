//! A clip's frames as 8-bit RGB, held in memory, or for a clip too large to hold read again from
//! their files (or from a file they were decoded into) each time one is needed: a minute of
//! 1080p is gigabytes even at a byte a sample, and `decompose` reads every frame two or three
//! times (its background's two passes, then the layers).

use crate::dataset::{frame_files, read_image_channels, read_stack};
use crate::image_io::image_size;
use anyhow::Context;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The frames of a clip, in order.
pub enum FrameSequence {
    /// Each frame [3, H, W] uint8.
    Held(Vec<Tensor>),
    /// The frame files (PNG or JPEG), every one `height` x `width` by its header.
    Files {
        files: Vec<PathBuf>,
        height: i64,
        width: i64,
    },
    /// Decoded frames written one after another as [3, H, W] bytes into a file no folder
    /// lists (it goes when the process does).
    Spilled {
        file: File,
        len: i64,
        height: i64,
        width: i64,
    },
}

impl FrameSequence {
    /// The frames of the folder `dir` (its PNGs or its JPEGs, in their numbers' order): held
    /// when their bytes come to at most `hold_bytes`, else left in their files, whose headers
    /// are all read first so that a frame of another size is named before any work.
    pub fn open(dir: &Path, hold_bytes: u64) -> anyhow::Result<Self> {
        let files = frame_files(dir)?;
        let Some(first) = files.first() else {
            anyhow::bail!("{}: no PNG or JPEG frames", dir.display());
        };
        let (height, width) = image_size(first)?;
        if files.len() as u64 * 3 * (height * width) as u64 <= hold_bytes {
            return Ok(Self::Held(read_stack(&files, 3)?.unbind(0)));
        }
        for file in &files[1..] {
            let (h, w) = image_size(file)?;
            anyhow::ensure!(
                (h, w) == (height, width),
                "{} is {w}x{h} but {} is {width}x{height}: every image of a sequence must have \
                 the same size",
                file.display(),
                first.display()
            );
        }
        Ok(Self::Files {
            files,
            height,
            width,
        })
    }

    pub fn len(&self) -> i64 {
        match self {
            Self::Held(frames) => frames.len() as i64,
            Self::Files { files, .. } => files.len() as i64,
            Self::Spilled { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frames' (height, width).
    pub fn height_width(&self) -> (i64, i64) {
        match self {
            Self::Held(frames) => frames
                .first()
                .map_or((0, 0), |frame| (frame.size()[1], frame.size()[2])),
            Self::Files { height, width, .. } | Self::Spilled { height, width, .. } => {
                (*height, *width)
            }
        }
    }

    /// Frame `t` as [3, H, W] uint8.
    pub fn frame_8bit(&self, t: i64) -> anyhow::Result<Tensor> {
        match self {
            Self::Held(frames) => Ok(frames[t as usize].shallow_clone()),
            Self::Files {
                files,
                height,
                width,
            } => {
                let file = &files[t as usize];
                let frame = read_image_channels(file, 3)?;
                // The header said so; the data must too.
                anyhow::ensure!(
                    frame.size()[1..] == [*height, *width],
                    "{}: decoded as {:?}, its header said {width}x{height}",
                    file.display(),
                    frame.size()
                );
                Ok(frame)
            }
            Self::Spilled {
                file,
                height,
                width,
                ..
            } => {
                let bytes = (3 * height * width) as usize;
                let mut frame = vec![0u8; bytes];
                file.read_exact_at(&mut frame, t as u64 * bytes as u64)
                    .with_context(|| format!("reading decoded frame {t} back"))?;
                Ok(Tensor::from_slice(&frame).view([3, *height, *width]))
            }
        }
    }
}

/// Gathers decoded frames one at a time into a [`FrameSequence`]: held while their bytes come
/// to at most `hold_bytes`, then all written into a file in `spill_dir` that is removed from
/// its folder at once.
pub struct FrameCollector {
    hold_bytes: u64,
    spill_dir: PathBuf,
    held: Vec<Tensor>,
    spilled: Option<File>,
    len: i64,
    height: i64,
    width: i64,
}

impl FrameCollector {
    pub fn new(hold_bytes: u64, spill_dir: &Path) -> Self {
        Self {
            hold_bytes,
            spill_dir: spill_dir.to_path_buf(),
            held: Vec::new(),
            spilled: None,
            len: 0,
            height: 0,
            width: 0,
        }
    }

    /// Adds the next frame, [3, H, W] uint8 of the first frame's size.
    pub fn push(&mut self, frame: Tensor) -> anyhow::Result<()> {
        let size = frame.size();
        anyhow::ensure!(
            size.len() == 3 && size[0] == 3 && frame.kind() == Kind::Uint8,
            "a frame must be [3, H, W] bytes, not {size:?} {:?}",
            frame.kind()
        );
        if self.len == 0 {
            (self.height, self.width) = (size[1], size[2]);
        }
        anyhow::ensure!(
            size[1..] == [self.height, self.width],
            "frame {} is {}x{}, the first {}x{}",
            self.len,
            size[2],
            size[1],
            self.width,
            self.height
        );
        self.len += 1;
        if let Some(file) = self.spilled.as_mut() {
            return write_frame(file, &frame);
        }
        self.held.push(frame);
        let bytes = self.len as u64 * 3 * (self.height * self.width) as u64;
        if bytes > self.hold_bytes {
            let mut file = self.spill_file()?;
            for held in std::mem::take(&mut self.held) {
                write_frame(&mut file, &held)?;
            }
            self.spilled = Some(file);
        }
        Ok(())
    }

    /// The frames pushed, in order.
    pub fn finish(self) -> anyhow::Result<FrameSequence> {
        Ok(match self.spilled {
            Some(mut file) => {
                file.flush()?;
                FrameSequence::Spilled {
                    file,
                    len: self.len,
                    height: self.height,
                    width: self.width,
                }
            }
            None if self.held.is_empty() => anyhow::bail!("no frames"),
            None => FrameSequence::Held(self.held),
        })
    }

    /// A new file in the spill folder, unlinked at once: no run leaves it behind.
    fn spill_file(&self) -> anyhow::Result<File> {
        std::fs::create_dir_all(&self.spill_dir)
            .with_context(|| format!("creating {}", self.spill_dir.display()))?;
        let path = self
            .spill_dir
            .join(format!(".omnimatte-frames-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {} for the decoded frames", path.display()))?;
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        Ok(file)
    }
}

/// Appends `frame`'s bytes ([3, H, W] uint8) to `file`.
fn write_frame(file: &mut File, frame: &Tensor) -> anyhow::Result<()> {
    let bytes = Vec::<u8>::try_from(frame.contiguous().view([-1]))?;
    file.write_all(&bytes)
        .context("writing the decoded frames (is the disk full?)")
}
