//! `omnimatte eval`: decomposes every video of a dataset with ground truth and reports the
//! effect IoU (reference metric), reconstruction PSNR and background PSNR, next to the
//! mask-only baseline (each layer = the input mask, no effects). Prints a table, writes JSON.

use anyhow::Context;
use gstomnimatte::dataset::{read_video, video_dirs};
use gstomnimatte::element::settings::{Settings, WeightsSource};
use gstomnimatte::eval::{
    background_psnr, decompose, effect_iou, mask_only_layers, reconstruction_psnr,
};
use gstomnimatte::stream::StreamConfig;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A video folder (Omnimatte layout with gt/ and bg.png) or a folder of them.
    #[arg(long)]
    data: PathBuf,
    /// Weights (safetensors); default: the bundled weights.
    #[arg(long, default_value = "")]
    weights: String,
    #[arg(long, default_value_t = 128)]
    working_height: i64,
    #[arg(long, default_value_t = 224)]
    working_width: i64,
    /// Write the scores here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    gstomnimatte::allocator::keep_freed_memory();
    let settings = Settings {
        weights: args.weights.clone(),
        device: args.device.clone(),
        ..Settings::default()
    };
    let device = settings.device()?;
    let (_vs, net, source) = settings.load_model(device)?;
    match &source {
        WeightsSource::File(p) => println!("weights: {}", p.display()),
        WeightsSource::RandomInit => println!("weights: NONE FOUND, random initialisation"),
    }
    println!(
        "{:<28} {:>3} {:>10} {:>10} {:>10} {:>9} {:>7}",
        "video", "obj", "IoU model", "IoU masks", "net dB", "bg dB", "s"
    );
    let mut rows = Vec::new();
    for dir in video_dirs(&args.data)? {
        let video = read_video(&dir)?;
        let background = video
            .background
            .as_ref()
            .with_context(|| format!("{}: no bg.png", dir.display()))?;
        let gt = video
            .gt_layers
            .as_ref()
            .with_context(|| format!("{}: no gt/layer_NN", dir.display()))?;
        let objects = video.masks.size()[0] as usize;
        let config = StreamConfig {
            working_height: args.working_height,
            working_width: args.working_width,
            objects,
            ..StreamConfig::default()
        };
        let started = Instant::now();
        let result = tch::no_grad(|| decompose(&net, &video, &config, device))?;
        let seconds = started.elapsed().as_secs_f64();
        let model = effect_iou(&result.layers, gt, background);
        let baseline = effect_iou(&mask_only_layers(&video), gt, background);
        // The layers as output reproduce the input (detail transfer); what the network itself
        // explains is its composite before the transfer.
        let recon = reconstruction_psnr(&result.network_reconstruction, &video.frames);
        let bg = background_psnr(&video, background);
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        println!(
            "{name:<28} {objects:>3} {:>10.3} {:>10.3} {recon:>10.2} {bg:>9.2} {seconds:>7.1}",
            model.effect_iou, baseline.effect_iou
        );
        rows.push(serde_json::json!({
            "video": name, "objects": objects, "effect_iou": model.effect_iou,
            "effect_iou_per_object": &model.per_object[..objects.min(8)],
            "mask_only_effect_iou": baseline.effect_iou, "reconstruction_psnr": recon,
            "background_psnr": bg, "seconds": seconds,
        }));
    }
    let mean = |key: &str| {
        rows.iter()
            .map(|r| r[key].as_f64().unwrap_or(f64::NAN))
            .sum::<f64>()
            / rows.len() as f64
    };
    let (m_iou, b_iou, m_rec, m_bg, m_s) = (
        mean("effect_iou"),
        mean("mask_only_effect_iou"),
        mean("reconstruction_psnr"),
        mean("background_psnr"),
        mean("seconds"),
    );
    println!(
        "{:<28} {:>3} {m_iou:>10.3} {b_iou:>10.3} {m_rec:>10.2} {m_bg:>9.2} {m_s:>7.1}",
        "mean", ""
    );
    if let Some(path) = &args.json {
        let weights = match &source {
            WeightsSource::File(p) => p.display().to_string(),
            WeightsSource::RandomInit => "random-init".into(),
        };
        let report = serde_json::json!({
            "weights": weights, "working_size": [args.working_height, args.working_width],
            "mean": { "effect_iou": m_iou, "mask_only_effect_iou": b_iou, "reconstruction_psnr": m_rec,
                      "background_psnr": m_bg, "seconds_per_video": m_s },
            "videos": rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("scores: {}", path.display());
    }
    Ok(())
}
