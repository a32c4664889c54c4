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
    /// A walking person: head, torso, and arms and legs that swing with the frames
    /// (`world` scenes). `cadence` radians per frame, `phase` at frame 0.
    Walker {
        cadence: f64,
        phase: f64,
    },
    /// A smooth star-shaped blob, radius 1 + sum_k a_k cos(k theta + phi_k), turning slowly:
    /// the shape family held out of training (`transfer` scenes only).
    Blob {
        harmonics: [(f64, f64); 3],
        spin: f64,
    },
}

/// Which shapes a scene's objects are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeFamily {
    /// Training scenes: the classic shapes and walkers, walkers most often.
    World,
    /// Transfer scenes: held-out blobs and walkers.
    Transfer,
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
    /// Reflected at the picture's edges; otherwise it may enter or leave the frame.
    bounce: bool,
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
            bounce: true,
        }
    }

    /// An object of a `world` or `transfer` scene: more shapes and sizes (walkers above all),
    /// a photographic or procedural `colour`, and a third of them walking in or out of frame.
    pub fn random_world(
        rng: &mut StdRng,
        h: i64,
        w: i64,
        family: ShapeFamily,
        colour: Tensor,
    ) -> Self {
        let walker = || Shape::Walker {
            cadence: 0.0,
            phase: 0.0,
        };
        let shape = match (family, rng.random_range(0..10)) {
            (ShapeFamily::World, 0) => Shape::Ellipse,
            (ShapeFamily::World, 1) => Shape::Rectangle,
            (ShapeFamily::World, 2) => Shape::Triangle,
            (ShapeFamily::World, 3 | 4) => Shape::Figure,
            (ShapeFamily::Transfer, 0..=4) => Shape::Blob {
                harmonics: [(); 3].map(|_| {
                    (
                        rng.random_range(0.0..0.25),
                        rng.random_range(0.0..std::f64::consts::TAU),
                    )
                }),
                spin: rng.random_range(-0.08..0.08),
            },
            _ => walker(),
        };
        let shape = match shape {
            Shape::Walker { .. } => Shape::Walker {
                cadence: rng.random_range(0.25..0.6),
                phase: rng.random_range(0.0..std::f64::consts::TAU),
            },
            other => other,
        };
        let hh = rng.random_range(h as f64 / 10.0..h as f64 / 3.5);
        let hw = match shape {
            // A person is about a third as wide as tall (limbs included).
            Shape::Walker { .. } => hh * rng.random_range(0.3..0.45),
            _ => rng.random_range(w as f64 / 24.0..w as f64 / 8.0).max(3.0),
        };
        let bounce = rng.random_bool(0.7);
        let cy = rng.random_range(hh + 2.0..(h as f64 * 0.75).max(hh + 3.0));
        let cx = if bounce {
            rng.random_range(hw..w as f64 - hw)
        } else {
            rng.random_range(-hw..w as f64 + hw)
        };
        let speed = rng.random_range(0.5..3.0) * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        Self {
            shape,
            half: (hw, hh),
            colour,
            start: (cx, cy),
            velocity: (speed, rng.random_range(-0.3..0.3)),
            sway: (
                rng.random_range(0.0..2.0),
                rng.random_range(0.1..0.4),
                rng.random_range(0.0..std::f64::consts::TAU),
            ),
            bounds: (w as f64, h as f64),
            bounce,
        }
    }

    /// Half width and half height in pixels.
    pub fn half_size(&self) -> (f64, f64) {
        self.half
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
        if !self.bounce {
            return (x, y);
        }
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
            Shape::Walker { cadence, phase } => {
                // In units of the half height, so that limbs keep their proportions.
                let ux = (xs - cx) / hh;
                let swing = (cadence * t as f64 + phase).sin();
                let (leg, arm) = (0.3 * swing, 0.22 * swing);
                let limbs = [
                    ((0.0, -0.62), (0.0, 0.05), 0.14), // torso
                    ((0.0, 0.05), (leg, 0.96), 0.08),  // legs
                    ((0.0, 0.05), (-leg, 0.96), 0.08),
                    ((0.0, -0.5), (-arm, 0.0), 0.06), // arms
                    ((0.0, -0.5), (arm, 0.0), 0.06),
                ];
                let head = (ux.square() + (&dy + 0.8).square()).le(0.18 * 0.18);
                limbs.iter().fold(head, |inside, &(a, b, r)| {
                    inside.logical_or(&capsule(&ux, &dy, a, b, r))
                })
            }
            Shape::Blob { harmonics, spin } => {
                let theta = dy.atan2(&dx) + spin * t as f64;
                let radius = harmonics
                    .iter()
                    .zip([2.0, 3.0, 5.0])
                    .fold(theta.ones_like(), |r, (&(a, phi), k)| {
                        r + (&theta * k + phi).cos() * a
                    });
                (dx.square() + dy.square()).sqrt().le_tensor(&radius)
            }
        };
        inside.to_kind(Kind::Float)
    }
}

/// Points within `r` of the segment a-b (coordinates (x, y) in the same units as ux, uy).
fn capsule(ux: &Tensor, uy: &Tensor, a: (f64, f64), b: (f64, f64), r: f64) -> Tensor {
    let (ex, ey) = (b.0 - a.0, b.1 - a.1);
    let len2 = (ex * ex + ey * ey).max(1e-9);
    let px = ux - a.0;
    let py = uy - a.1;
    let s = ((&px * ex + &py * ey) / len2).clamp(0.0, 1.0);
    ((px - &s * ex).square() + (py - &s * ey).square()).le(r * r)
}
