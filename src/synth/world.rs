//! `world` and `transfer` scenes (see the module above): photographs, walkers, light from any
//! side, camera artefacts and segmenter errors. `transfer` draws the held-out families.

use super::effects::EffectStyle;
use super::object::{Object, ShapeFamily};
use super::{
    camera, input_masks, mask_errors, render, texture, visible_part, Scene, SceneFamily,
    SynthConfig,
};
use crate::composite::composite;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::Tensor;

/// Keeps `world` scene k apart from `classic` scene k (they would otherwise share draws).
const SEED_SALT: u64 = 0x05ee_d0f3_017d;

pub fn generate(cfg: &SynthConfig, seed: u64) -> Scene {
    let transfer = cfg.family == SceneFamily::Transfer;
    let mut rng = StdRng::seed_from_u64(seed ^ SEED_SALT ^ u64::from(transfer));
    let (h, w, t) = (cfg.height, cfg.width, cfg.frames);
    let background = photo_or_texture(cfg, &mut rng, h, w, 0.85)
        .unwrap_or_else(|| texture::background(&mut rng, h, w));
    let n = cfg.draw_object_count(&mut rng);
    let kind = cfg.draw_effects(&mut rng);
    let style = EffectStyle::random_world(&mut rng, h, transfer);
    let shapes = if transfer {
        ShapeFamily::Transfer
    } else {
        ShapeFamily::World
    };
    let mut objects: Vec<Object> = (0..n)
        .map(|_| {
            let colour = photo_or_texture(cfg, &mut rng, h, w, 0.5)
                .unwrap_or_else(|| texture::object_colour(&mut rng, h, w));
            Object::random_world(&mut rng, h, w, shapes, colour)
        })
        .collect();
    // Objects standing higher in the picture are further away: back to front by base row.
    objects.sort_by(|a, b| a.base(0).total_cmp(&b.base(0)));

    let rendered = render(&objects, &style, kind, h, w, t);
    let clean = composite(
        &rendered.layers.unsqueeze(0),
        &background.view([1, 1, 3, h, w]),
    )
    .squeeze_dim(0);
    let frames = camera::record(&mut rng, &clean);
    let visible = visible_part(&rendered.silhouettes);
    let masks = input_masks(cfg, visible, |m| mask_errors::segmenter_masks(&mut rng, m));
    Scene {
        frames,
        background,
        layers: rendered.layers,
        masks,
        regions: rendered.regions,
        effects: kind,
    }
}

/// A crop of a photograph with probability `p` when the config has photographs.
fn photo_or_texture(cfg: &SynthConfig, rng: &mut StdRng, h: i64, w: i64, p: f64) -> Option<Tensor> {
    let photos = cfg.photos.as_ref()?;
    rng.random_bool(p).then(|| photos.crop(rng, h, w))
}
