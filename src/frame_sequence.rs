//! A clip's frames as 8-bit RGB, held in memory, or for a clip too large to hold read again from
//! their files (or from a file they were decoded into) each time one is needed: a minute of
//! 1080p is gigabytes even at a byte a sample, and `decompose` reads every frame two or three
//! times (its background's two passes, then the layers).

use crate::byte_stack::{ByteStack, ByteStackBuilder};
use crate::dataset::{frame_files, read_image_channels, read_stack};
use crate::image_io::image_size;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The frames of a clip, in order.
pub enum FrameSequence {
    /// Decoded frames [3, H, W] uint8, held or in a file no folder lists.
    Decoded(ByteStack),
    /// The frame files (PNG or JPEG), every one `height` x `width` by its header.
    Files {
        files: Vec<PathBuf>,
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
            return Ok(Self::Decoded(ByteStack::Held(
                read_stack(&files, 3)?.unbind(0),
            )));
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
            Self::Decoded(frames) => frames.len(),
            Self::Files { files, .. } => files.len() as i64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frames' (height, width).
    pub fn height_width(&self) -> (i64, i64) {
        match self {
            Self::Decoded(frames) => match frames.shape()[..] {
                [_, h, w] => (h, w),
                _ => (0, 0),
            },
            Self::Files { height, width, .. } => (*height, *width),
        }
    }

    /// Frame `t` as [3, H, W] uint8.
    pub fn frame_8bit(&self, t: i64) -> anyhow::Result<Tensor> {
        match self {
            Self::Decoded(frames) => frames.get(t),
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
        }
    }
}

/// Gathers decoded frames one at a time into a [`FrameSequence`]: held while their bytes come
/// to at most `hold_bytes`, then all written into a file in `spill_dir` ([`ByteStackBuilder`]).
pub struct FrameCollector(ByteStackBuilder);

impl FrameCollector {
    pub fn new(hold_bytes: u64, spill_dir: &Path) -> Self {
        Self(ByteStackBuilder::new(hold_bytes, spill_dir, "frames"))
    }

    /// Adds the next frame, [3, H, W] uint8 of the first frame's size.
    pub fn push(&mut self, frame: Tensor) -> anyhow::Result<()> {
        let size = frame.size();
        anyhow::ensure!(
            size.len() == 3 && size[0] == 3 && frame.kind() == Kind::Uint8,
            "a frame must be [3, H, W] bytes, not {size:?} {:?}",
            frame.kind()
        );
        self.0.push(frame)
    }

    /// The frames pushed, in order.
    pub fn finish(self) -> anyhow::Result<FrameSequence> {
        Ok(FrameSequence::Decoded(self.0.finish()?))
    }
}
