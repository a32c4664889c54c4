//! Objects of a synthetic scene: a silhouette shape, a textured colour, a smooth path.

use super::texture;
use rand::rngs::StdRng;
use rand::Rng;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy)]
enum Shape {
    Ellipse,
    Rectangle,
    Triangle,
    /// An upright capsule with a head: roughly a person or a bottle.
    Figure,
}

/// One moving object.
pub struct Object {
    shape: Shape,
    /// Half width and half height in pixels.
    half: (f64, f64),
    /// Colour field [3, H, W] (only the silhouette's pixels are used).
    pub colour: Tensor,
    /// Centre at frame 0, velocity per frame, and a sinusoidal sway.
    start: (f64, f64),
    velocity: (f64, f64),
    sway: (f64, f64, f64),
    bounds: (f64, f64),
}

impl Object {
    pub fn random(rng: &mut StdRng, h: i64, w: i64) -> Self {
        let shape = match rng.random_range(0..4) {
            0 => Shape::Ellipse,
            1 => Shape::Rectangle,
            2 => Shape::Triangle,
            _ => Shape::Figure,
        };
        let hh = rng.random_range(h as f64 / 10.0..h as f64 / 5.0);
        let hw = rng.random_range(w as f64 / 24.0..w as f64 / 10.0).max(3.0);
        // Keep room below the object for its shadow or reflection.
        let cy = rng.random_range(hh + 2.0..(h as f64 * 0.6).max(hh + 3.0));
        let cx = rng.random_range(hw..w as f64 - hw);
        let speed = rng.random_range(0.5..2.5) * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        Self {
            shape,
            half: (hw, hh),
            colour: texture::object_colour(rng, h, w),
            start: (cx, cy),
            velocity: (speed, rng.random_range(-0.3..0.3)),
            sway: (
                rng.random_range(0.0..3.0),
                rng.random_range(0.1..0.4),
                rng.random_range(0.0..std::f64::consts::TAU),
            ),
            bounds: (w as f64, h as f64),
        }
    }

    /// Centre at frame t: linear motion with a sway, reflected at the picture's edges.
    pub fn centre(&self, t: i64) -> (f64, f64) {
        let bounce = |p: f64, lo: f64, hi: f64| {
            let span = (hi - lo).max(1.0);
            let m = (p - lo).rem_euclid(2.0 * span);
            lo + if m > span { 2.0 * span - m } else { m }
        };
        let t = t as f64;
        let x = self.start.0
            + self.velocity.0 * t
            + self.sway.0 * (self.sway.1 * t + self.sway.2).sin();
        let y = self.start.1 + self.velocity.1 * t;
        (
            bounce(x, self.half.0, self.bounds.0 - self.half.0),
            bounce(y, self.half.1 + 1.0, self.bounds.1 * 0.65),
        )
    }

    /// The row of the object's base (where it touches the ground) at frame t.
    pub fn base(&self, t: i64) -> f64 {
        self.centre(t).1 + self.half.1
    }

    /// Binary silhouette [1, H, W] at frame t, given pixel coordinates ys, xs [1, H, W].
    pub fn silhouette(&self, t: i64, ys: &Tensor, xs: &Tensor) -> Tensor {
        let (cx, cy) = self.centre(t);
        let (hw, hh) = self.half;
        let dx = (xs - cx) / hw;
        let dy = (ys - cy) / hh;
        let inside = match self.shape {
            Shape::Ellipse => (dx.square() + dy.square()).le(1.0),
            Shape::Rectangle => dx.abs().le(1.0).logical_and(&dy.abs().le(1.0)),
            // Apex at the top, base at the bottom.
            Shape::Triangle => dy
                .abs()
                .le(1.0)
                .logical_and(&dx.abs().le_tensor(&((&dy + 1.0) / 2.0))),
            Shape::Figure => {
                let body = dx
                    .abs()
                    .le(0.7)
                    .logical_and(&dy.ge(-0.4))
                    .logical_and(&dy.le(1.0));
                let head = (dx.square() / 0.25 + (&dy + 0.7).square() / 0.09).le(1.0);
                body.logical_or(&head)
            }
        };
        inside.to_kind(Kind::Float)
    }
}
