//! Effects an object casts on the scene: shadows (its silhouette projected by the scene's light,
//! soft, semi-transparent black) and reflections (mirrored about its base, fading out).

use rand::rngs::StdRng;
use rand::Rng;
use tch::{Kind, Tensor};

/// Which effects a scene's objects have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectKind {
    Shadows,
    Reflections,
    Both,
}

/// The scene's light: one direction for every shadow.
#[derive(Debug, Clone, Copy)]
pub enum Light {
    /// Shadow cast on the ground below the base: length relative to the object's height, and
    /// horizontal lean per pixel of length.
    Cast { length: f64, lean: f64 },
    /// Shadow offset behind the object, as from a light in front of it.
    Drop { dx: f64, dy: f64 },
}

/// Effect strengths for one scene.
#[derive(Debug, Clone, Copy)]
pub struct EffectStyle {
    pub light: Light,
    /// Shadow opacity in (0, 1).
    pub shadow_strength: f64,
    /// Box blur size of the shadow's edge (odd, pixels).
    pub shadow_softness: i64,
    /// Reflection opacity at the base, and how many pixels it takes to fade out.
    pub reflection_strength: f64,
    pub reflection_length: f64,
}

impl EffectStyle {
    pub fn random(rng: &mut StdRng, h: i64) -> Self {
        let light = if rng.random_bool(0.7) {
            Light::Cast {
                length: rng.random_range(0.4..1.3),
                lean: rng.random_range(-1.2..1.2),
            }
        } else {
            let d = h as f64 / 16.0;
            Light::Drop {
                dx: rng.random_range(-2.0 * d..2.0 * d),
                dy: rng.random_range(d * 0.5..d * 1.5),
            }
        };
        Self {
            light,
            shadow_strength: rng.random_range(0.3..0.75),
            shadow_softness: [1, 3, 5][rng.random_range(0..3)],
            reflection_strength: rng.random_range(0.3..0.7),
            reflection_length: rng.random_range(0.5..1.5) * h as f64 / 4.0,
        }
    }
}

/// Samples `image` [C, H, W] at source pixel coordinates (ys, xs) [1, H, W] (bilinear, zero outside).
fn sample(image: &Tensor, ys: &Tensor, xs: &Tensor) -> Tensor {
    let size = image.size();
    let (h, w) = (size[1] as f64, size[2] as f64);
    let gx = xs * (2.0 / (w - 1.0)) - 1.0;
    let gy = ys * (2.0 / (h - 1.0)) - 1.0;
    let grid = Tensor::stack(&[gx.squeeze_dim(0), gy.squeeze_dim(0)], -1).unsqueeze(0); // [1, H, W, 2]
    Tensor::grid_sampler(&image.unsqueeze(0), &grid, 0, 0, true).squeeze_dim(0)
}

/// The shadow's opacity [1, H, W] for a silhouette whose base is at row `base`.
pub fn shadow(
    style: &EffectStyle,
    silhouette: &Tensor,
    base: f64,
    ys: &Tensor,
    xs: &Tensor,
) -> Tensor {
    let projected = match style.light {
        Light::Cast { length, lean } => {
            // A ground point d rows below the base shows the silhouette point d / length above it.
            let d = ys - base;
            let src_y = base - &d / length;
            let src_x = xs - &d * lean;
            sample(silhouette, &src_y, &src_x) * d.gt(0.0).to_kind(Kind::Float)
        }
        Light::Drop { dx, dy } => sample(silhouette, &(ys - dy), &(xs - dx)),
    };
    let k = style.shadow_softness;
    let soft = projected
        .unsqueeze(0)
        .avg_pool2d([k, k], [1, 1], [k / 2, k / 2], false, false, None::<i64>)
        .squeeze_dim(0);
    soft.clamp(0.0, 1.0) * style.shadow_strength
}

/// The reflection's colour [3, H, W] and opacity [1, H, W]: the object mirrored about its base.
pub fn reflection(
    style: &EffectStyle,
    colour: &Tensor,
    silhouette: &Tensor,
    base: f64,
    ys: &Tensor,
    xs: &Tensor,
) -> (Tensor, Tensor) {
    let d = ys - base;
    let src_y = base - &d;
    let rgba = sample(
        &Tensor::cat(&[colour * silhouette, silhouette.shallow_clone()], 0),
        &src_y,
        xs,
    );
    let fade =
        (&d / -style.reflection_length + 1.0).clamp(0.0, 1.0) * d.gt(0.0).to_kind(Kind::Float);
    let alpha = rgba.narrow(0, 3, 1);
    // Straight colour: undo the premultiplication that bilinear sampling of colour*alpha gave.
    let rgb = rgba.narrow(0, 0, 3) / alpha.clamp_min(1e-6);
    (
        rgb.clamp(0.0, 1.0),
        alpha * fade * style.reflection_strength,
    )
}
