//! Synthetic scenes with ground truth (issue: pretraining data). A static textured background,
//! 2 to 4 textured objects on smooth paths that may occlude each other, and effects attached to
//! each object (cast or drop shadows, reflections), rendered as one RGBA layer per object so that
//! the frames are exactly the layers composited over the background.
//!
//! Everything is generated on the fly from a seed; `dataset` writes scenes to disk.

mod batch;
mod effects;
mod object;
mod texture;

pub use batch::{training_batch, TrainingBatchSpec};
pub use effects::EffectKind;

use crate::composite::composite;
use effects::EffectStyle;
use object::Object;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::{Kind, Tensor};

/// What scenes to make.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    pub height: i64,
    pub width: i64,
    pub frames: i64,
    /// Objects per scene, inclusive range.
    pub min_objects: usize,
    pub max_objects: usize,
    /// None: each scene draws shadows, reflections or both at random.
    pub effects: Option<EffectKind>,
    /// Make the input masks rough (dilated, eroded or shifted), as real masks are.
    pub rough_masks: bool,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            height: 128,
            width: 128,
            frames: 24,
            min_objects: 2,
            max_objects: 4,
            effects: None,
            rough_masks: true,
        }
    }
}

/// A generated scene. Colours in [0, 1]; L objects, back-most first.
pub struct Scene {
    /// [T, 3, H, W]
    pub frames: Tensor,
    /// [3, H, W]
    pub background: Tensor,
    /// Ground-truth layers, object and its effects: [L, T, 4, H, W], straight alpha.
    pub layers: Tensor,
    /// Input masks (visible part of each object, possibly rough): [L, T, 1, H, W] in {0, 1}.
    pub masks: Tensor,
    /// Ground-truth region of each object with its effects: [L, T, 1, H, W] in {0, 1}.
    pub regions: Tensor,
    pub effects: EffectKind,
}

/// Effects with less opacity than this do not count in an object's region.
pub const REGION_ALPHA: f64 = 0.05;

/// Generates the scene of `seed`: the same seed gives the same scene.
pub fn generate(cfg: &SynthConfig, seed: u64) -> Scene {
    tch::no_grad(|| generate_inner(cfg, seed))
}

fn generate_inner(cfg: &SynthConfig, seed: u64) -> Scene {
    let mut rng = StdRng::seed_from_u64(seed);
    let (h, w, t) = (cfg.height, cfg.width, cfg.frames);
    let background = texture::background(&mut rng, h, w);
    let n = rng.random_range(cfg.min_objects..=cfg.max_objects.max(cfg.min_objects));
    let kind = cfg.effects.unwrap_or_else(|| match rng.random_range(0..3) {
        0 => EffectKind::Shadows,
        1 => EffectKind::Reflections,
        _ => EffectKind::Both,
    });
    let style = EffectStyle::random(&mut rng, h);
    let mut objects: Vec<Object> = (0..n).map(|_| Object::random(&mut rng, h, w)).collect();
    // Objects standing higher in the picture are further away: back to front by base row.
    objects.sort_by(|a, b| a.base(0).total_cmp(&b.base(0)));

    let (ys01, xs01) = texture::grid(h, w);
    let ys = ys01 * (h - 1) as f64;
    let xs = xs01 * (w - 1) as f64;
    let mut layers = Vec::with_capacity(n);
    let mut silhouettes = Vec::with_capacity(n);
    let mut regions = Vec::with_capacity(n);
    for object in &objects {
        let mut layer_t = Vec::with_capacity(t as usize);
        let mut sil_t = Vec::with_capacity(t as usize);
        let mut region_t = Vec::with_capacity(t as usize);
        for f in 0..t {
            let sil = object.silhouette(f, &ys, &xs);
            let base = object.base(f);
            // Effects first, object on top of them, within the object's own layer.
            let (mut rgb, mut alpha) = (
                Tensor::zeros([3, h, w], (Kind::Float, tch::Device::Cpu)),
                sil.zeros_like(),
            );
            if matches!(kind, EffectKind::Shadows | EffectKind::Both) {
                let a = effects::shadow(&style, &sil, base, &ys, &xs);
                (rgb, alpha) = over(
                    &Tensor::zeros([3, h, w], (Kind::Float, tch::Device::Cpu)),
                    &a,
                    &rgb,
                    &alpha,
                );
            }
            if matches!(kind, EffectKind::Reflections | EffectKind::Both) {
                let (c, a) = effects::reflection(&style, &object.colour, &sil, base, &ys, &xs);
                (rgb, alpha) = over(&c, &a, &rgb, &alpha);
            }
            let effect_alpha = alpha.shallow_clone();
            (rgb, alpha) = over(&object.colour, &sil, &rgb, &alpha);
            region_t.push(
                sil.logical_or(&effect_alpha.ge(REGION_ALPHA))
                    .to_kind(Kind::Float),
            );
            layer_t.push(Tensor::cat(&[rgb, alpha], 0));
            sil_t.push(sil);
        }
        layers.push(Tensor::stack(&layer_t, 0));
        silhouettes.push(Tensor::stack(&sil_t, 0));
        regions.push(Tensor::stack(&region_t, 0));
    }
    let layers = Tensor::stack(&layers, 0); // [L, T, 4, H, W]
    let silhouettes = Tensor::stack(&silhouettes, 0); // [L, T, 1, H, W]
    let frames = composite(&layers.unsqueeze(0), &background.view([1, 1, 3, h, w])).squeeze_dim(0);

    // Visible masks: each silhouette minus the objects in front of it.
    let in_front = silhouettes.flip([0]).cumsum(0, Kind::Float).flip([0]) - &silhouettes;
    let visible = &silhouettes * in_front.eq(0.0).to_kind(Kind::Float);
    let masks = if cfg.rough_masks {
        Tensor::stack(
            &(0..n as i64)
                .map(|i| roughen(&mut rng, &visible.get(i)))
                .collect::<Vec<_>>(),
            0,
        )
    } else {
        visible
    };
    Scene {
        frames,
        background,
        layers,
        masks,
        regions: Tensor::stack(&regions, 0),
        effects: kind,
    }
}

/// `top` (colour, alpha) over `bottom`, straight alpha (Porter-Duff over).
fn over(
    top_rgb: &Tensor,
    top_a: &Tensor,
    bottom_rgb: &Tensor,
    bottom_a: &Tensor,
) -> (Tensor, Tensor) {
    let alpha: Tensor = top_a + bottom_a * (1.0 - top_a);
    let premult: Tensor = top_rgb * top_a + bottom_rgb * bottom_a * (1.0 - top_a);
    let rgb = premult / alpha.clamp_min(1e-6);
    (rgb.clamp(0.0, 1.0), alpha)
}

/// Real masks are imperfect: dilate, erode or shift one object's masks [T, 1, H, W] a little.
fn roughen(rng: &mut StdRng, masks: &Tensor) -> Tensor {
    let k = [3, 5][rng.random_range(0..2)];
    let pool = |m: &Tensor| m.max_pool2d([k, k], [1, 1], [k / 2, k / 2], [1, 1], false);
    match rng.random_range(0..4) {
        0 => masks.shallow_clone(),
        1 => pool(masks),
        2 => pool(&masks.neg()).neg(),
        _ => {
            let (dy, dx) = (rng.random_range(-2..=2), rng.random_range(-2..=2));
            masks.roll([dy, dx], [2, 3])
        }
    }
}
