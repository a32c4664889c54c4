//! `omnimatte synth`: writes synthetic scenes with ground truth in the Omnimatte layout.

use anyhow::Context;
use gstomnimatte::dataset::{write_panned_scene, write_scene};
use gstomnimatte::synth::{
    generate, generate_panned, EffectKind, PhotoLibrary, SceneFamily, SynthConfig,
};
use std::path::{Path, PathBuf};
use std::rc::Rc;

#[derive(clap::Args)]
pub struct SynthArgs {
    /// Output folder; videos go to OUT/<prefix>0000, OUT/<prefix>0001, ...
    #[arg(long)]
    out: PathBuf,
    /// Name prefix of the video folders.
    #[arg(long, default_value = "video_")]
    prefix: String,
    #[arg(long, default_value_t = 4)]
    videos: u64,
    /// Seed of the first video; video i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 128)]
    height: i64,
    #[arg(long, default_value_t = 224)]
    width: i64,
    #[arg(long, default_value_t = 24)]
    frames: i64,
    #[arg(long, default_value_t = 2)]
    min_objects: usize,
    #[arg(long, default_value_t = 4)]
    max_objects: usize,
    /// shadows, reflections, both, or mixed (each video draws one).
    #[arg(long, default_value = "mixed")]
    effects: String,
    /// Exact masks instead of rough ones.
    #[arg(long)]
    exact_masks: bool,
    /// Scene family: classic, world or transfer (see `src/synth/mod.rs`).
    #[arg(long, default_value = "classic")]
    family: SceneFamily,
    /// Photographs (scripts/photos.sh): world scenes use PHOTOS/train, transfer scenes
    /// PHOTOS/transfer; where the folder is missing they use procedural textures (with a warning).
    #[arg(long, default_value = "data/photos")]
    photos: PathBuf,
    /// A panning camera: DOWN,RIGHT pixels a frame (negative: up, left; e.g. 0,1.5). The scene
    /// is made larger and seen through a window of --height x --width that moves by whole
    /// pixels; each frame's true background goes to bg/ (eval scores against it). An object
    /// the window never shows is left out, its effects kept in the backgrounds.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "DOWN,RIGHT",
        allow_negative_numbers = true
    )]
    pan: Option<Vec<f64>>,
}

/// The photographs of `family` under `root`, or None (with a warning where they are missing).
pub fn photo_library(root: &Path, family: SceneFamily) -> anyhow::Result<Option<Rc<PhotoLibrary>>> {
    let dir = match family {
        SceneFamily::Classic => return Ok(None),
        SceneFamily::World => root.join("train"),
        SceneFamily::Transfer => root.join("transfer"),
    };
    if !dir.is_dir() {
        eprintln!(
            "warning: no photographs at {} (scripts/photos.sh fetches them): {family:?} scenes use procedural textures",
            dir.display()
        );
        return Ok(None);
    }
    Ok(Some(Rc::new(PhotoLibrary::load(&dir)?)))
}

pub fn parse_effects(name: &str) -> anyhow::Result<Option<EffectKind>> {
    Ok(match name {
        "shadows" => Some(EffectKind::Shadows),
        "reflections" => Some(EffectKind::Reflections),
        "both" => Some(EffectKind::Both),
        "mixed" => None,
        other => anyhow::bail!("effects `{other}`: expected shadows, reflections, both or mixed"),
    })
}

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let cfg = SynthConfig {
        height: args.height,
        width: args.width,
        frames: args.frames,
        min_objects: args.min_objects,
        max_objects: args.max_objects,
        effects: parse_effects(&args.effects)?,
        rough_masks: !args.exact_masks,
        family: args.family,
        photos: photo_library(&args.photos, args.family)?,
    };
    let pan = match args.pan.as_deref() {
        None => None,
        Some(&[down, right]) if down.is_finite() && right.is_finite() => Some([down, right]),
        Some(other) => anyhow::bail!("--pan {other:?}: expected DOWN,RIGHT pixels a frame"),
    };
    for i in 0..args.videos {
        let dir = args.out.join(format!("{}{i:04}", args.prefix));
        let seed = args.seed + i;
        let written = match pan {
            None => {
                let scene = generate(&cfg, seed);
                write_scene(&dir, &scene).map(|()| scene)
            }
            Some(speed) => {
                let panned = generate_panned(&cfg, seed, speed);
                anyhow::ensure!(
                    panned.scene.layers.size()[0] > 0,
                    "seed {seed}: the panning window never shows an object; try another seed"
                );
                write_panned_scene(&dir, &panned).map(|()| panned.scene)
            }
        };
        let scene = written.with_context(|| format!("writing {}", dir.display()))?;
        println!(
            "{}: {} objects, {:?}, {} frames of {}x{}{}",
            dir.display(),
            scene.layers.size()[0],
            scene.effects,
            args.frames,
            args.height,
            args.width,
            pan.map_or(String::new(), |[d, r]| format!(
                ", panning {d},{r} pixels a frame"
            ))
        );
    }
    Ok(())
}
