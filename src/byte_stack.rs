//! A sequence of same-shape byte tensors (a clip's frames, its label maps) gathered one at a
//! time: held in memory up to a budget, then all written into a file no folder lists and read
//! back as needed. A minute of 1080p is gigabytes even at a byte a sample.

use anyhow::Context;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Items written one after another into a file no folder lists (it goes when the process
/// does).
pub struct SpillFile {
    file: File,
    len: i64,
    shape: Vec<i64>,
}

impl SpillFile {
    pub fn len(&self) -> i64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each item's shape.
    pub fn shape(&self) -> &[i64] {
        &self.shape
    }

    /// Item `t`, uint8 of [`Self::shape`].
    pub fn get(&self, t: i64) -> anyhow::Result<Tensor> {
        anyhow::ensure!((0..self.len).contains(&t), "item {t} of {}", self.len);
        let bytes = self.shape.iter().product::<i64>() as usize;
        let mut item = vec![0u8; bytes];
        self.file
            .read_exact_at(&mut item, t as u64 * bytes as u64)
            .with_context(|| format!("reading item {t} back from its spill file"))?;
        Ok(Tensor::from_slice(&item).view(self.shape.as_slice()))
    }
}

/// The items gathered, in order.
pub enum ByteStack {
    Held(Vec<Tensor>),
    Spilled(SpillFile),
}

impl ByteStack {
    pub fn len(&self) -> i64 {
        match self {
            Self::Held(items) => items.len() as i64,
            Self::Spilled(file) => file.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each item's shape (empty when there are none).
    pub fn shape(&self) -> Vec<i64> {
        match self {
            Self::Held(items) => items.first().map_or_else(Vec::new, |item| item.size()),
            Self::Spilled(file) => file.shape().to_vec(),
        }
    }

    /// Item `t`, uint8.
    pub fn get(&self, t: i64) -> anyhow::Result<Tensor> {
        match self {
            Self::Held(items) => Ok(items[t as usize].shallow_clone()),
            Self::Spilled(file) => file.get(t),
        }
    }
}

/// Gathers uint8 tensors of the first one's shape: held while their bytes come to at most
/// `hold_bytes`, then all written into a file in `spill_dir` that is removed from its folder
/// at once, so that no run leaves it behind, even when killed.
pub struct ByteStackBuilder {
    hold_bytes: u64,
    spill_dir: PathBuf,
    /// What the items are, for messages ("frames", "label maps").
    what: &'static str,
    held: Vec<Tensor>,
    spilled: Option<File>,
    len: i64,
    shape: Vec<i64>,
}

impl ByteStackBuilder {
    pub fn new(hold_bytes: u64, spill_dir: &Path, what: &'static str) -> Self {
        Self {
            hold_bytes,
            spill_dir: spill_dir.to_path_buf(),
            what,
            held: Vec::new(),
            spilled: None,
            len: 0,
            shape: Vec::new(),
        }
    }

    /// How many items were pushed.
    pub fn len(&self) -> i64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds the next item: uint8 of the first item's shape.
    pub fn push(&mut self, item: Tensor) -> anyhow::Result<()> {
        anyhow::ensure!(
            item.kind() == Kind::Uint8,
            "{} must be bytes, not {:?}",
            self.what,
            item.kind()
        );
        if self.len == 0 {
            self.shape = item.size();
        }
        anyhow::ensure!(
            item.size() == self.shape,
            "{} {} is {:?}, the first {:?}",
            self.what,
            self.len,
            item.size(),
            self.shape
        );
        self.len += 1;
        if let Some(file) = self.spilled.as_mut() {
            return write_item(file, &item, self.what);
        }
        self.held.push(item);
        let bytes = self.len as u64 * self.shape.iter().product::<i64>() as u64;
        if bytes > self.hold_bytes {
            let mut file = self.spill_file()?;
            for held in std::mem::take(&mut self.held) {
                write_item(&mut file, &held, self.what)?;
            }
            self.spilled = Some(file);
        }
        Ok(())
    }

    /// The items pushed, in order (an error if there were none).
    pub fn finish(self) -> anyhow::Result<ByteStack> {
        Ok(match self.spilled {
            Some(mut file) => {
                file.flush()?;
                ByteStack::Spilled(SpillFile {
                    file,
                    len: self.len,
                    shape: self.shape,
                })
            }
            None if self.held.is_empty() => anyhow::bail!("no {}", self.what),
            None => ByteStack::Held(self.held),
        })
    }

    /// A new file in the spill folder, unlinked at once.
    fn spill_file(&self) -> anyhow::Result<File> {
        std::fs::create_dir_all(&self.spill_dir)
            .with_context(|| format!("creating {}", self.spill_dir.display()))?;
        let name = format!(".omnimatte-{}-{}", self.what, std::process::id());
        let path = self.spill_dir.join(name.replace(' ', "-"));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {} for the {}", path.display(), self.what))?;
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        Ok(file)
    }
}

/// Appends `item`'s bytes to `file`.
fn write_item(file: &mut File, item: &Tensor, what: &str) -> anyhow::Result<()> {
    let bytes = Vec::<u8>::try_from(item.contiguous().view([-1]))?;
    file.write_all(&bytes)
        .with_context(|| format!("writing the {what} to their spill file (is the disk full?)"))
}
