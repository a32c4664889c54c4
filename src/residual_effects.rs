//! Effects the network left in the background, found in the frame's residual.
//!
//! The network sees each frame's difference to the background estimate, yet zero-shot it
//! renders the soft shadow below an object that its training scenes taught it, and leaves a
//! long shadow cast in another direction in the background (docs/measurements.md, session 39:
//! on the validation set's world scenes the streaks are plain in the difference, and in no
//! layer); it leaves much of a bright object's reflection there too (session 41). These are
//! rules, not the paper's. Outside every mask, a pixel farther from the estimate than
//! [`RESIDUAL_THRESHOLD`] and joined to an object's mask through such pixels goes to that
//! object's layer where the layer that explains it has more alpha than every layer there:
//! - a **shadow** where the pixel is darker than the estimate: a black layer whose alpha
//!   explains the darkening;
//! - a **reflection** where it is brighter and its difference to the estimate points towards
//!   the object's colour (within [`REFLECTION_COSINE`]): a layer of the object's mean colour
//!   whose alpha explains the difference. A reflection mixes the object's colour into the
//!   ground's; brighter residual in other directions (the estimate's noise, a shadow the
//!   estimate kept) is left alone: measured, brighter residual taken whatever its colour cost
//!   twice the precision.
//!
//! Effects are near their objects and move with them, so the connection carries the
//! association the game would otherwise have to learn. A pixel two objects reach goes to the
//! one from whose centre it lies most nearly in the frame's shadow direction (one light casts
//! every shadow the same way), or, where the frame shows too little shadow to tell the
//! direction, to the one whose mask is nearer (by the path through the residual).

use tch::{Kind, Tensor};

/// How far the frame must be from the background (Euclidean over RGB in [0, 1]) for a pixel
/// to count as residual: 10 of 255. Chosen on the validation set from 6, 10 and 20
/// (docs/measurements.md, session 39).
pub const RESIDUAL_THRESHOLD: f64 = 10.0 / 255.0;

/// How far from its object's mask a residual effect may reach, as a share of the working
/// height: 48 pixels at the default 128 (shadows up to three times an object's height reach
/// further; beyond this the link to one object is too weak to trust).
pub const RESIDUAL_REACH: f64 = 0.375;

/// The least cosine between a brighter pixel's difference to the estimate and the object's
/// colour's difference to it for the pixel to count as the object's reflection. Chosen on the
/// validation sets from 0.9 and 0.97 (docs/measurements.md, session 41).
pub const REFLECTION_COSINE: f64 = 0.97;

/// The least number of shadow pixels only one mask reaches from which a frame's shadow
/// direction is read; with fewer, a pixel two masks reach goes to the nearer one.
pub const DIRECTION_EVIDENCE: f64 = 20.0;

/// Which residual effects are given to the objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResidualEffects {
    /// Darker residual, as black layers.
    pub shadows: bool,
    /// Brighter residual of the object's colour, as layers of that colour.
    pub reflections: bool,
}

impl ResidualEffects {
    /// Whether any kind is on.
    pub fn any(&self) -> bool {
        self.shadows || self.reflections
    }
}

/// `layers` [L, 4, h, w] (straight RGBA in [0, 1]) with the residual effects of the `kinds`
/// added where no layer has as much alpha. `frame` and `background` [3, h, w] in [0, 1] (the
/// background at the frame's exposure), `masks` [L, 1, h, w] in {0, 1}: all at the working size.
pub fn add_residual_effects(
    layers: &Tensor,
    frame: &Tensor,
    background: &Tensor,
    masks: &Tensor,
    kinds: ResidualEffects,
) -> Tensor {
    if !kinds.any() {
        return layers.shallow_clone();
    }
    let h = frame.size()[1];
    let reach = (RESIDUAL_REACH * h as f64).round() as i64;
    let inside = masks.gt(0.5); // [L, 1, h, w]
    let free = inside.any_dims(Some([0i64].as_slice()), true).logical_not(); // [1, 1, h, w]
    let difference = (frame - background).unsqueeze(0); // [1, 3, h, w]
    let distance = difference
        .square()
        .sum_dim_intlist(1, true, Kind::Float)
        .sqrt(); // [1, 1, h, w]
    let residual = distance.gt(RESIDUAL_THRESHOLD).logical_and(&free);
    let brightness = |image: &Tensor| image.mean_dim(0, true, Kind::Float).unsqueeze(0);
    let (seen, expected) = (brightness(frame), brightness(background)); // [1, 1, h, w]
    let darker = seen.lt_tensor(&expected);
    let nearest = reach_through(&inside, &residual, reach); // [L, 1, h, w]
    let reached = along_shadow_direction(&inside, &residual, reach, &nearest, &darker);

    // Where any layer already explains the residual as well, the network's attribution
    // stands: an effect between crowded objects is not given to the nearest mask as well.
    let network_alpha = layers.narrow(1, 3, 1).amax(&[0i64][..], true); // [1, 1, h, w]

    let mut out = layers.shallow_clone();
    if kinds.shadows {
        // A black layer of alpha a over the background b shows (1 - a) b: a = 1 - frame / b.
        let alpha = (seen.divide(&expected.clamp_min(1e-3)) * -1.0 + 1.0).clamp(0.0, 1.0);
        let takes = reached
            .logical_and(&darker)
            .logical_and(&alpha.gt_tensor(&network_alpha));
        let black = Tensor::cat(&[frame.zeros_like().unsqueeze(0), alpha], 1);
        out = black.expand_as(layers).where_self(&takes, &out);
    }
    if kinds.reflections {
        let (reflection, fits) = reflection_layers(frame, background, &inside, &difference);
        let alpha = reflection.narrow(1, 3, 1);
        let takes = reached
            .logical_and(&darker.logical_not())
            .logical_and(&fits)
            .logical_and(&alpha.gt_tensor(&network_alpha));
        out = reflection.where_self(&takes, &out);
    }
    out
}

/// `nearest` [L, 1, h, w] (each residual pixel's nearest mask, from [`reach_through`]) with
/// every pixel that more than one mask reaches within `reach` given instead to the object from
/// whose centre it lies most nearly in the frame's shadow direction: one light casts every
/// object's shadow the same way, so a shadow passing beside another object stays its caster's
/// (docs/measurements.md, session 42). The direction is the summed offset, from their object's
/// centre, of the darker residual pixels only one mask reaches; where there are fewer than
/// [`DIRECTION_EVIDENCE`] of them, or no direction, `nearest` stands. `inside` [L, 1, h, w],
/// `residual` and `darker` [1, 1, h, w], all bool.
fn along_shadow_direction(
    inside: &Tensor,
    residual: &Tensor,
    reach: i64,
    nearest: &Tensor,
    darker: &Tensor,
) -> Tensor {
    let (l, h, w) = (inside.size()[0], inside.size()[2], inside.size()[3]);
    if l < 2 {
        return nearest.shallow_clone();
    }
    // Each object's reach on its own, as if no other object were there.
    let each: Vec<Tensor> = (0..l)
        .map(|k| reach_through(&inside.narrow(0, k, 1), residual, reach))
        .collect();
    let each = Tensor::cat(&each, 0); // [L, 1, h, w]
    let reachers = each.sum_dim_intlist(0, true, Kind::Float);
    let shared = reachers.gt(1.5); // [1, 1, h, w]

    let float = (Kind::Float, inside.device());
    let ys = Tensor::arange(h, float).view([1, 1, h, 1]);
    let xs = Tensor::arange(w, float).view([1, 1, 1, w]);
    let mask = inside.to_kind(Kind::Float);
    let area = mask
        .sum_dim_intlist(&[2i64, 3][..], true, Kind::Float)
        .clamp_min(1.0);
    let centre = |coordinate: &Tensor| {
        (&mask * coordinate).sum_dim_intlist(&[2i64, 3][..], true, Kind::Float) / &area
    }; // [L, 1, 1, 1]
    let (dy, dx) = (&ys - centre(&ys), &xs - centre(&xs)); // [L, 1, h, w]

    let sure = each
        .logical_and(&shared.logical_not())
        .logical_and(darker)
        .to_kind(Kind::Float);
    if sure.sum(Kind::Float).double_value(&[]) < DIRECTION_EVIDENCE {
        return nearest.shallow_clone();
    }
    let (vy, vx) = (
        (&sure * &dy).sum(Kind::Float).double_value(&[]),
        (&sure * &dx).sum(Kind::Float).double_value(&[]),
    );
    let length = vy.hypot(vx);
    if length < 1e-6 {
        return nearest.shallow_clone();
    }
    let cosine = (&dy * (vy / length) + &dx * (vx / length))
        / (dy.square() + dx.square()).sqrt().clamp_min(1e-3);
    // Only the objects that reach a pixel compete for it.
    let cosine = cosine.where_self(&each, &Tensor::full([1], -2.0, float));
    let best = cosine.argmax(0, true); // [1, 1, h, w]
    let objects = Tensor::arange(l, (Kind::Int64, inside.device())).view([l, 1, 1, 1]);
    objects
        .eq_tensor(&best)
        .logical_and(&each)
        .where_self(&shared, nearest)
}

/// Each object's reflection layer [L, 4, h, w]: its mean colour c in the frame (inside its
/// mask) with the alpha a that best explains the difference d = frame - background as
/// a (c - b), and where that explanation holds [L, 1, h, w]: d points towards c - b within
/// [`REFLECTION_COSINE`] (an object absent from the frame has none).
fn reflection_layers(
    frame: &Tensor,
    background: &Tensor,
    inside: &Tensor,
    difference: &Tensor,
) -> (Tensor, Tensor) {
    let (l, h, w) = (inside.size()[0], frame.size()[1], frame.size()[2]);
    let mask = inside.to_kind(Kind::Float);
    let area = mask.sum_dim_intlist(&[2i64, 3][..], true, Kind::Float); // [L, 1, 1, 1]
    let colour = (frame.unsqueeze(0) * &mask).sum_dim_intlist(&[2i64, 3][..], true, Kind::Float)
        / area.clamp_min(1.0); // [L, 3, 1, 1]
    let toward = &colour - background.unsqueeze(0); // [L, 3, h, w]
    let along = (difference * &toward).sum_dim_intlist(1, true, Kind::Float); // [L, 1, h, w]
    let squared = |t: &Tensor| t.square().sum_dim_intlist(1, true, Kind::Float);
    let (toward_sq, difference_sq) = (squared(&toward), squared(difference));
    let cosine = &along / (&toward_sq * difference_sq).sqrt().clamp_min(1e-6);
    let alpha = (&along / toward_sq.clamp_min(1e-6)).clamp(0.0, 1.0);
    let fits = cosine.gt(REFLECTION_COSINE).logical_and(&area.gt(0.0));
    let layer = Tensor::cat(&[colour.expand([l, 3, h, w], false), alpha], 1);
    (layer, fits)
}

/// The pixels of `through` [1, 1, h, w] (bool; none inside a mask) that each object's mask
/// in `inside` [L, 1, h, w] (bool) reaches in at most `steps` 8-connected steps through them:
/// [L, 1, h, w] bool. A pixel goes to the object that reaches it first, the lower index where
/// two reach it in the same step. One breadth-first search on the CPU: at the working size a few
/// hundred kilobytes, where growing the masks step by step with tensors cost a pass over the
/// frame per step.
fn reach_through(inside: &Tensor, through: &Tensor, steps: i64) -> Tensor {
    let (l, h, w) = (inside.size()[0], inside.size()[2], inside.size()[3]);
    let (hu, wu) = (h as usize, w as usize);
    let bytes = |t: &Tensor| -> Vec<u8> {
        let t = t
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Uint8)
            .contiguous();
        let mut v = vec![0u8; t.numel()];
        t.copy_data(&mut v, t.numel());
        v
    };
    let device = inside.device();
    let inside = bytes(inside);
    let passable = bytes(through);
    // owner[p] = k + 1 for a pixel of `through` object k reached; the queue holds (pixel,
    // object, steps so far), seeded with every mask's pixels in object order, so that in each
    // step the lower index claims first.
    let mut owner = vec![0u8; hu * wu];
    let mut queue = std::collections::VecDeque::new();
    for k in 0..l as usize {
        let plane = &inside[k * hu * wu..(k + 1) * hu * wu];
        queue.extend(
            plane
                .iter()
                .enumerate()
                .filter(|(_, &m)| m != 0)
                .map(|(p, _)| (p, k, 0i64)),
        );
    }
    while let Some((p, k, d)) = queue.pop_front() {
        if d == steps {
            continue;
        }
        let (y, x) = (p / wu, p % wu);
        for dy in -1i64..=1 {
            for dx in -1i64..=1 {
                let (ny, nx) = (y as i64 + dy, x as i64 + dx);
                if ny < 0 || nx < 0 || ny >= h || nx >= w {
                    continue;
                }
                let q = ny as usize * wu + nx as usize;
                if passable[q] != 0 && owner[q] == 0 {
                    owner[q] = k as u8 + 1;
                    queue.push_back((q, k, d + 1));
                }
            }
        }
    }
    let owner = Tensor::from_slice(&owner)
        .view([1, 1, h, w])
        .to_device(device);
    let objects = Tensor::arange_start(1, l + 1, (Kind::Uint8, device)).view([l, 1, 1, 1]);
    owner.eq_tensor(&objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    const OPTS: (Kind, Device) = (Kind::Float, Device::Cpu);
    const SHADOWS: ResidualEffects = ResidualEffects {
        shadows: true,
        reflections: false,
    };
    const REFLECTIONS: ResidualEffects = ResidualEffects {
        shadows: false,
        reflections: true,
    };

    /// Grey ground 32x32 (a reach of 12 pixels), object 1 at columns 2..6 and object 2 at
    /// columns 24..28 (rows 4..12), the network's layers grey and transparent.
    fn scene() -> (Tensor, Tensor, Tensor, Tensor) {
        let background = Tensor::full([3, 32, 32], 0.6, OPTS);
        let frame = background.copy();
        let masks = Tensor::zeros([2, 1, 32, 32], OPTS);
        let _ = masks.get(0).narrow(1, 4, 8).narrow(2, 2, 4).fill_(1.0);
        let _ = masks.get(1).narrow(1, 4, 8).narrow(2, 24, 4).fill_(1.0);
        let _ = frame.narrow(1, 4, 8).narrow(2, 2, 4).fill_(0.9);
        let _ = frame.narrow(1, 4, 8).narrow(2, 24, 4).fill_(0.2);
        let layers = Tensor::cat(
            &[
                Tensor::full([2, 3, 32, 32], 0.5, OPTS),
                Tensor::zeros([2, 1, 32, 32], OPTS),
            ],
            1,
        );
        (layers, frame, background, masks)
    }

    fn alpha_at(layers: &Tensor, k: i64, y: i64, x: i64) -> f64 {
        layers.double_value(&[k, 3, y, x])
    }

    #[test]
    fn a_shadow_joined_to_an_object_goes_to_its_layer_with_the_alpha_of_its_darkening() {
        let (layers, frame, background, masks) = scene();
        // A shadow right of object 1, touching its mask: 0.6 -> 0.45 is alpha 0.25.
        let _ = frame.narrow(1, 6, 4).narrow(2, 6, 8).fill_(0.45);
        let out = add_residual_effects(&layers, &frame, &background, &masks, SHADOWS);
        assert!((alpha_at(&out, 0, 7, 10) - 0.25).abs() < 1e-5);
        assert_eq!(alpha_at(&out, 1, 7, 10), 0.0, "not object 2's");
        assert_eq!(out.double_value(&[0, 0, 7, 10]), 0.0, "a shadow is black");
        // Nothing else changed: the masks' pixels and the ground away from the shadow.
        let changed = (&out - &layers).abs().gt(0.0).sum(Kind::Float);
        assert_eq!(
            changed.double_value(&[]),
            4.0 * 8.0 * 4.0,
            "32 pixels, 4 channels"
        );
    }

    #[test]
    fn a_dark_patch_apart_from_every_object_stays_in_the_background() {
        let (layers, frame, background, masks) = scene();
        let _ = frame.narrow(1, 20, 6).narrow(2, 12, 6).fill_(0.3);
        let out = add_residual_effects(&layers, &frame, &background, &masks, SHADOWS);
        assert!(out.equal(&layers));
    }

    #[test]
    fn with_shadows_alone_brighter_residual_and_darkening_below_the_threshold_are_left_alone() {
        let (layers, frame, background, masks) = scene();
        let _ = frame.narrow(1, 6, 4).narrow(2, 6, 4).fill_(0.8);
        // 0.6 - 0.005 on every channel: a distance of 0.0087, under 10/255.
        let _ = frame.narrow(1, 6, 4).narrow(2, 10, 4).fill_(0.595);
        let out = add_residual_effects(&layers, &frame, &background, &masks, SHADOWS);
        assert!(out.equal(&layers));
    }

    #[test]
    fn residual_between_two_objects_goes_to_the_nearer_one() {
        let (layers, frame, background, masks) = scene();
        // A dark band from object 1's mask (its last column 5) to object 2's (first 24).
        let _ = frame.narrow(1, 8, 2).narrow(2, 6, 18).fill_(0.3);
        let out = add_residual_effects(&layers, &frame, &background, &masks, SHADOWS);
        for x in 6..24 {
            let (one, two) = (alpha_at(&out, 0, 8, x), alpha_at(&out, 1, 8, x));
            assert!((one > 0.0) != (two > 0.0), "column {x}: exactly one owner");
            assert_eq!(one > 0.0, x < 15, "column {x}: the nearer object");
        }
    }

    #[test]
    fn a_shadow_both_masks_reach_goes_to_the_object_it_runs_away_from_along_the_light() {
        let (layers, frame, background, masks) = scene();
        // Light from the left: object 1's shadow runs right along rows 7 and 8 (its centre's
        // rows) up to object 2's mask (column 24), and object 2's from its mask to the edge.
        let _ = frame.narrow(1, 7, 2).narrow(2, 6, 18).fill_(0.45);
        let _ = frame.narrow(1, 7, 2).narrow(2, 28, 4).fill_(0.45);
        let out = add_residual_effects(&layers, &frame, &background, &masks, SHADOWS);
        // Both masks reach columns 12..17 (12 steps each); the nearer mask would have taken
        // 15..17 for object 2, but they lie behind object 2 and ahead of object 1.
        for x in 6..18 {
            assert!(
                alpha_at(&out, 0, 7, x) > 0.0,
                "column {x}: object 1's shadow"
            );
            assert_eq!(alpha_at(&out, 1, 7, x), 0.0, "column {x}: not object 2's");
        }
        // Only object 2 reaches 18..23: the rule cannot give them back (a limit of the reach).
        assert!(alpha_at(&out, 1, 7, 20) > 0.0);
        assert!(alpha_at(&out, 1, 7, 30) > 0.0, "object 2's own shadow");
    }

    #[test]
    fn with_too_little_shadow_to_read_a_direction_the_nearer_mask_takes_a_shared_pixel() {
        let (layers, frame, background, masks) = scene();
        // One row from mask to mask: both reach 12..17, and only one mask reaches 12 pixels
        // of it (6..11 and 18..23), fewer than a direction needs.
        let _ = frame.narrow(1, 7, 1).narrow(2, 6, 18).fill_(0.45);
        let out = add_residual_effects(&layers, &frame, &background, &masks, SHADOWS);
        assert!(alpha_at(&out, 1, 7, 17) > 0.0, "nearer to object 2's mask");
        assert_eq!(alpha_at(&out, 0, 7, 17), 0.0);
    }

    #[test]
    fn the_networks_alpha_stays_where_any_layer_has_more_and_the_reach_is_bounded() {
        let (layers, mut frame, background, masks) = scene();
        // Object 2's mask absent; a long shadow from object 1 along rows 12 and 13 to the
        // right edge.
        let _ = masks.get(1).zero_();
        frame.copy_(&background);
        let _ = frame.narrow(1, 4, 8).narrow(2, 2, 4).fill_(0.9);
        let _ = frame.narrow(1, 12, 2).narrow(2, 2, 30).fill_(0.45);
        let alpha_plane = |k: i64, y: i64| layers.get(k).narrow(0, 3, 1).narrow(1, y, 1);
        let _ = alpha_plane(0, 12).narrow(2, 8, 2).fill_(0.9);
        // Object 2's layer already explains the darkening at two pixels of row 13.
        let _ = alpha_plane(1, 13).narrow(2, 8, 2).fill_(0.3);
        let out = add_residual_effects(&layers, &frame, &background, &masks, SHADOWS);
        assert!(
            (alpha_at(&out, 0, 12, 8) - 0.9).abs() < 1e-6,
            "its own 0.9 kept"
        );
        assert_eq!(alpha_at(&out, 0, 13, 8), 0.0, "object 2's 0.3 stands");
        assert!((alpha_at(&out, 1, 13, 8) - 0.3).abs() < 1e-6);
        assert!((alpha_at(&out, 0, 13, 10) - 0.25).abs() < 1e-5);
        assert!((alpha_at(&out, 0, 12, 12) - 0.25).abs() < 1e-5);
        // 12 steps from the mask's last pixel (row 11, column 5): column 17 on row 12.
        assert!(alpha_at(&out, 0, 12, 17) > 0.0);
        assert_eq!(alpha_at(&out, 0, 12, 18), 0.0);
    }

    #[test]
    fn a_brighter_patch_of_an_objects_colour_joined_to_it_is_its_reflection() {
        let (layers, frame, background, masks) = scene();
        // Below object 1 (grey 0.9 over 0.6 ground), touching its mask: 0.6 -> 0.75 is half
        // way to its colour.
        let _ = frame.narrow(1, 12, 4).narrow(2, 2, 4).fill_(0.75);
        let out = add_residual_effects(&layers, &frame, &background, &masks, REFLECTIONS);
        assert!((alpha_at(&out, 0, 13, 3) - 0.5).abs() < 1e-5);
        assert!(
            (out.double_value(&[0, 0, 13, 3]) - 0.9).abs() < 1e-5,
            "the object's colour"
        );
        assert_eq!(alpha_at(&out, 1, 13, 3), 0.0, "not object 2's");
        let changed = (&out - &layers).abs().gt(0.0).sum(Kind::Float);
        assert_eq!(
            changed.double_value(&[]),
            4.0 * 16.0,
            "16 pixels, 4 channels"
        );
        // Shadows alone leave it in the background.
        let out = add_residual_effects(&layers, &frame, &background, &masks, SHADOWS);
        assert!(out.equal(&layers));
    }

    #[test]
    fn brighter_residual_of_another_colour_or_beside_a_darker_object_is_no_reflection() {
        let (layers, frame, background, masks) = scene();
        // Beside object 1, only the red channel brighter: it points away from grey.
        let _ = frame.get(0).narrow(0, 12, 4).narrow(1, 2, 4).fill_(0.75);
        // Below object 2 (0.2 over 0.6 ground), brighter: away from its colour.
        let _ = frame.narrow(1, 12, 4).narrow(2, 24, 4).fill_(0.75);
        let both = ResidualEffects {
            shadows: true,
            reflections: true,
        };
        let out = add_residual_effects(&layers, &frame, &background, &masks, both);
        assert!(out.equal(&layers));
    }

    #[test]
    fn no_kind_leaves_the_layers_alone() {
        let (layers, frame, background, masks) = scene();
        let _ = frame.narrow(1, 6, 4).narrow(2, 6, 8).fill_(0.45);
        let _ = frame.narrow(1, 12, 4).narrow(2, 2, 4).fill_(0.75);
        let out = add_residual_effects(
            &layers,
            &frame,
            &background,
            &masks,
            ResidualEffects::default(),
        );
        assert!(out.equal(&layers));
    }
}
