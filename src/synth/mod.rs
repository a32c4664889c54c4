//! Synthetic scenes with ground truth for pretraining and testing. Objects on paths that may
//! occlude each other, and effects attached to each object (shadows, reflections), rendered as
//! one RGBA layer per object so that the frames are the layers composited over the background.
//!
//! Three families (docs/training.md says why):
//! - `classic`: textured gradient backgrounds, 2 to 4 simple shapes, one light, toy shadows
//!   below or behind, rough masks. The fixed in-distribution test set is drawn from it.
//! - `world`: photographic backgrounds and object textures, walking people among the shapes,
//!   light from any side with shadows 0.2x to 3x the object's height, hard to very soft,
//!   contact shadows, glossy floors and rippled water, camera noise, blur, flicker and block
//!   artefacts, and the mask errors of real segmenters; objects may enter and leave the frame.
//! - `transfer`: `world` scenes from families training never draws: photographs of another
//!   source, blob shapes, and two lights. The `transfer` test set is drawn from it.
//!
//! Everything is generated on the fly from a seed; `dataset` writes scenes to disk.

mod batch;
mod camera;
mod effects;
mod mask_errors;
mod object;
mod pan;
mod photos;
mod texture;
mod world;

pub use batch::{training_batch, TrainingBatchSpec};
pub use effects::EffectKind;
pub use pan::{generate_panned, window, PannedScene};
pub use photos::PhotoLibrary;

use crate::composite::composite;
use effects::EffectStyle;
use object::Object;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::rc::Rc;
use tch::{Kind, Tensor};

/// Which generator draws a scene (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SceneFamily {
    Classic,
    World,
    Transfer,
}

impl std::str::FromStr for SceneFamily {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "classic" => Ok(Self::Classic),
            "world" => Ok(Self::World),
            "transfer" => Ok(Self::Transfer),
            other => anyhow::bail!("scene family {other:?}: expected classic, world or transfer"),
        }
    }
}

/// What scenes to make.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub height: i64,
    pub width: i64,
    pub frames: i64,
    /// Objects per scene, inclusive range.
    pub min_objects: usize,
    pub max_objects: usize,
    /// None: each scene draws shadows, reflections or both at random.
    pub effects: Option<EffectKind>,
    /// Make the input masks rough (classic: dilated, eroded or shifted; world and transfer:
    /// a segmenter's errors), as real masks are.
    pub rough_masks: bool,
    pub family: SceneFamily,
    /// Photographs for `world` and `transfer` backgrounds and textures; without them those
    /// families fall back to procedural textures.
    pub photos: Option<Rc<PhotoLibrary>>,
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
            family: SceneFamily::Classic,
            photos: None,
        }
    }
}

impl SynthConfig {
    /// How many objects a scene has, drawn from the inclusive range.
    fn draw_object_count(&self, rng: &mut StdRng) -> usize {
        rng.random_range(self.min_objects..=self.max_objects.max(self.min_objects))
    }

    /// Shadows, reflections or both, as configured or drawn per scene.
    fn draw_effects(&self, rng: &mut StdRng) -> EffectKind {
        self.effects
            .unwrap_or_else(|| match rng.random_range(0..3) {
                0 => EffectKind::Shadows,
                1 => EffectKind::Reflections,
                _ => EffectKind::Both,
            })
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
    tch::no_grad(|| match cfg.family {
        SceneFamily::Classic => generate_classic(cfg, seed),
        SceneFamily::World | SceneFamily::Transfer => world::generate(cfg, seed),
    })
}

fn generate_classic(cfg: &SynthConfig, seed: u64) -> Scene {
    let mut rng = StdRng::seed_from_u64(seed);
    let (h, w, t) = (cfg.height, cfg.width, cfg.frames);
    let background = texture::background(&mut rng, h, w);
    let n = cfg.draw_object_count(&mut rng);
    let kind = cfg.draw_effects(&mut rng);
    let style = EffectStyle::random(&mut rng, h);
    let mut objects: Vec<Object> = (0..n).map(|_| Object::random(&mut rng, h, w)).collect();
    // Objects standing higher in the picture are further away: back to front by base row.
    objects.sort_by(|a, b| a.base(0).total_cmp(&b.base(0)));

    let rendered = render(&objects, &style, kind, h, w, t);
    let frames = composite(
        &rendered.layers.unsqueeze(0),
        &background.view([1, 1, 3, h, w]),
    )
    .squeeze_dim(0);
    let visible = visible_part(&rendered.silhouettes);
    let masks = input_masks(cfg, visible, |m| roughen(&mut rng, m));
    Scene {
        frames,
        background,
        layers: rendered.layers,
        masks,
        regions: rendered.regions,
        effects: kind,
    }
}

/// The input masks of a scene: each object's visible part [L, T, 1, H, W], made rough by
/// `rough` (one object's [T, 1, H, W] at a time) when the config asks for rough masks.
fn input_masks(
    cfg: &SynthConfig,
    visible: Tensor,
    mut rough: impl FnMut(&Tensor) -> Tensor,
) -> Tensor {
    if !cfg.rough_masks {
        return visible;
    }
    let n = visible.size()[0];
    Tensor::stack(
        &(0..n).map(|i| rough(&visible.get(i))).collect::<Vec<_>>(),
        0,
    )
}

/// Each silhouette [L, T, 1, H, W] minus the objects in front of it.
fn visible_part(silhouettes: &Tensor) -> Tensor {
    let in_front = silhouettes.flip([0]).cumsum(0, Kind::Float).flip([0]) - silhouettes;
    silhouettes * in_front.eq(0.0).to_kind(Kind::Float)
}

/// The objects' true layers [L, T, 4, H, W], silhouettes [L, T, 1, H, W] and regions.
struct Rendered {
    layers: Tensor,
    silhouettes: Tensor,
    regions: Tensor,
}

/// Renders each object (back to front) with its effects into its own layer, frame by frame:
/// shadows first, then the reflection, then the object on top of them.
fn render(
    objects: &[Object],
    style: &EffectStyle,
    kind: EffectKind,
    h: i64,
    w: i64,
    t: i64,
) -> Rendered {
    let (ys01, xs01) = texture::grid(h, w);
    let ys = ys01 * (h - 1) as f64;
    let xs = xs01 * (w - 1) as f64;
    let transparent = || Tensor::zeros([3, h, w], (Kind::Float, tch::Device::Cpu));
    let (mut layers, mut silhouettes, mut regions) = (vec![], vec![], vec![]);
    for object in objects {
        let (mut layer_t, mut sil_t, mut region_t) = (vec![], vec![], vec![]);
        for f in 0..t {
            let sil = object.silhouette(f, &ys, &xs);
            let base = object.base(f);
            let (mut rgb, mut alpha) = (transparent(), sil.zeros_like());
            if matches!(kind, EffectKind::Shadows | EffectKind::Both) {
                let mut shadow = effects::shadow(style, &sil, base, &ys, &xs);
                if style.contact_strength > 0.0 {
                    let (centre_x, _) = object.centre(f);
                    let half_width = object.half_size().0;
                    let contact =
                        effects::contact_shadow(style, base, centre_x, half_width, &ys, &xs);
                    shadow = &shadow + &contact - &shadow * &contact;
                }
                (rgb, alpha) = over(&transparent(), &shadow, &rgb, &alpha);
            }
            if matches!(kind, EffectKind::Reflections | EffectKind::Both) {
                // Ripples travel down the water from frame to frame.
                let phase = 0.6 * f as f64;
                let (c, a) =
                    effects::reflection(style, &object.colour, &sil, base, phase, &ys, &xs);
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
    Rendered {
        layers: Tensor::stack(&layers, 0),
        silhouettes: Tensor::stack(&silhouettes, 0),
        regions: Tensor::stack(&regions, 0),
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
