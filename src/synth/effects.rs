//! Effects an object casts on the scene: shadows (its silhouette projected by the scene's light,
//! soft, semi-transparent black), contact shadows where it touches the ground, and reflections
//! (mirrored about its base, fading out, rippled on water).

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
    /// Shadow cast on the ground: rows of shadow per row of object height (negative: the
    /// shadow falls up the picture, away from a light in front), and horizontal lean per row.
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
    /// A second light's shadow, at `second_strength` of the first's opacity (held-out style:
    /// `transfer` scenes only).
    pub second_light: Option<Light>,
    /// Opacity of the dark patch where an object touches the ground (0: none).
    pub contact_strength: f64,
    /// Water: horizontal displacement of the reflection (pixels) and its wavelength (rows).
    pub ripple_amplitude: f64,
    pub ripple_wavelength: f64,
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
            second_light: None,
            contact_strength: 0.0,
            ripple_amplitude: 0.0,
            ripple_wavelength: 1.0,
        }
    }

    /// Effects of a `world` scene: light from any side, shadows 0.2x to 3x the object's
    /// height, hard to very soft, contact shadows, glossy floors or rippled water; with
    /// `two_lights`, a second shadow (the held-out style of `transfer` scenes).
    pub fn random_world(rng: &mut StdRng, h: i64, two_lights: bool) -> Self {
        let scale = h as f64 / 128.0;
        let ground_light = |rng: &mut StdRng| {
            // Direction of the shadow in the picture: anywhere but nearly horizontal, where a
            // ground projection degenerates.
            let length = rng.random_range(0.2..3.0);
            let mut angle: f64 = rng.random_range(-1.3..1.3);
            if rng.random_bool(0.35) {
                angle += std::f64::consts::PI; // towards the top: light in front
            }
            Light::Cast {
                length: length * angle.cos(),
                lean: angle.tan(),
            }
        };
        let light = ground_light(rng);
        let second_light = two_lights.then(|| ground_light(rng));
        let softness = [1, 3, 5, 7, 11, 15][rng.random_range(0..6)];
        let water = rng.random_bool(0.4);
        Self {
            light,
            shadow_strength: rng.random_range(0.25..0.8),
            shadow_softness: ((softness as f64 * scale).round() as i64) | 1,
            reflection_strength: rng.random_range(0.2..0.7),
            reflection_length: rng.random_range(0.5..2.0) * h as f64 / 4.0,
            second_light,
            contact_strength: if rng.random_bool(0.7) {
                rng.random_range(0.2..0.7)
            } else {
                0.0
            },
            ripple_amplitude: if water {
                rng.random_range(0.5..3.0) * scale
            } else {
                0.0
            },
            ripple_wavelength: rng.random_range(3.0..9.0) * scale,
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
    let projected = project(style.light, silhouette, base, ys, xs);
    let projected = match style.second_light {
        // Where both shadows fall the ground is darker still, as under two lights.
        Some(second) => {
            let other = project(second, silhouette, base, ys, xs);
            &projected + &other - &projected * &other
        }
        None => projected,
    };
    soften(&projected, style.shadow_softness) * style.shadow_strength
}

/// The silhouette as `light` lays it on the ground (opacity 0 or 1, bilinear at the edges).
fn project(light: Light, silhouette: &Tensor, base: f64, ys: &Tensor, xs: &Tensor) -> Tensor {
    match light {
        Light::Cast { length, lean } => {
            // A ground point d rows from the base shows the silhouette point d / length above it,
            // on the side of the base the shadow falls.
            let d = ys - base;
            let height = &d / length;
            let src_y = -&height + base;
            let src_x = xs - &d * lean;
            sample(silhouette, &src_y, &src_x) * height.gt(0.0).to_kind(Kind::Float)
        }
        Light::Drop { dx, dy } => sample(silhouette, &(ys - dy), &(xs - dx)),
    }
}

/// A box blur of size `k` (odd) and a clamp to [0, 1].
fn soften(alpha: &Tensor, k: i64) -> Tensor {
    alpha
        .unsqueeze(0)
        .avg_pool2d([k, k], [1, 1], [k / 2, k / 2], false, false, None::<i64>)
        .squeeze_dim(0)
        .clamp(0.0, 1.0)
}

/// The dark patch [1, H, W] under an object of half width `half_width` whose base is at
/// (`base`, `centre_x`): an ellipse a little wider than the object, softened.
pub fn contact_shadow(
    style: &EffectStyle,
    base: f64,
    centre_x: f64,
    half_width: f64,
    ys: &Tensor,
    xs: &Tensor,
) -> Tensor {
    let (rx, ry) = (half_width * 1.2, (half_width * 0.3).max(1.5));
    let ellipse = (((xs - centre_x) / rx).square() + ((ys - base) / ry).square())
        .le(1.0)
        .to_kind(Kind::Float);
    soften(&ellipse, 3) * style.contact_strength
}

/// The reflection's colour [3, H, W] and opacity [1, H, W]: the object mirrored about its base.
/// `ripple_phase` moves the ripples from frame to frame.
pub fn reflection(
    style: &EffectStyle,
    colour: &Tensor,
    silhouette: &Tensor,
    base: f64,
    ripple_phase: f64,
    ys: &Tensor,
    xs: &Tensor,
) -> (Tensor, Tensor) {
    let d = ys - base;
    let src_y = base - &d;
    // On water the mirror image sways sideways with the ripples; on a glossy floor it does not.
    let src_x = if style.ripple_amplitude > 0.0 {
        xs + (&d * (std::f64::consts::TAU / style.ripple_wavelength) + ripple_phase).sin()
            * style.ripple_amplitude
    } else {
        xs.shallow_clone()
    };
    let rgba = sample(
        &Tensor::cat(&[colour * silhouette, silhouette.shallow_clone()], 0),
        &src_y,
        &src_x,
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
