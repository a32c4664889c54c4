//! Photographs as backgrounds and object textures, so that scenes look like the world and not
//! only like this generator's gradients (scripts/photos.sh fetches them from Debian packages).

use crate::image_io::read_png;
use anyhow::Context;
use rand::rngs::StdRng;
use rand::Rng;
use std::path::Path;
use tch::Tensor;

/// Every PNG of one folder, in memory as [3, H, W] in [0, 1].
pub struct PhotoLibrary {
    photos: Vec<Tensor>,
    source: String,
}

impl std::fmt::Debug for PhotoLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PhotoLibrary({} photos from {})",
            self.len(),
            self.source
        )
    }
}

impl PhotoLibrary {
    /// Reads every `*.png` in `dir` (sorted by name, so that draws are reproducible).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading the photo folder {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "png"))
            .collect();
        paths.sort();
        anyhow::ensure!(!paths.is_empty(), "no PNG photos in {}", dir.display());
        let photos = paths
            .iter()
            .map(|p| read_png(p).map(|img| to_rgb(&img)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            photos,
            source: dir.display().to_string(),
        })
    }

    pub fn len(&self) -> usize {
        self.photos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.photos.is_empty()
    }

    /// An `h` x `w` view of a random photo: a random window covering 30% to 100% of its
    /// shorter side, mirrored half the time, resized; brightness and contrast jittered a little.
    pub fn crop(&self, rng: &mut StdRng, h: i64, w: i64) -> Tensor {
        let photo = &self.photos[rng.random_range(0..self.photos.len())];
        let (ph, pw) = (photo.size()[1], photo.size()[2]);
        // The largest window of the target's aspect ratio that fits, then a random share of it.
        let fit = (ph as f64 / h as f64).min(pw as f64 / w as f64);
        let scale = fit * rng.random_range(0.3..1.0);
        let (ch, cw) = (
            ((h as f64 * scale) as i64).clamp(2, ph),
            ((w as f64 * scale) as i64).clamp(2, pw),
        );
        let top = rng.random_range(0..=ph - ch);
        let left = rng.random_range(0..=pw - cw);
        let mut view = photo
            .narrow(1, top, ch)
            .narrow(2, left, cw)
            .unsqueeze(0)
            .upsample_bilinear2d([h, w], false, None, None)
            .squeeze_dim(0);
        if rng.random_bool(0.5) {
            view = view.flip([2]);
        }
        let gain = rng.random_range(0.75..1.2);
        let offset = rng.random_range(-0.08..0.08);
        (view * gain + offset).clamp(0.0, 1.0)
    }
}

/// Gray, gray+alpha, RGB or RGBA -> RGB.
fn to_rgb(image: &Tensor) -> Tensor {
    match image.size()[0] {
        1 | 2 => image.narrow(0, 0, 1).repeat([3, 1, 1]),
        _ => image.narrow(0, 0, 3),
    }
}
