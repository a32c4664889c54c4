//! `omnimatte eval`: decomposes every video of a dataset with ground truth and reports the
//! effect IoU (reference metric), reconstruction PSNR and background PSNR, next to the
//! mask-only baseline (each layer = the input mask, no effects). Prints a table, writes JSON.

use crate::layer_args::LayerArgs;
use crate::progress::{bar, training_step};
use anyhow::Context;
use gstomnimatte::background::BackgroundEstimate;
use gstomnimatte::clip::ClipSpec;
use gstomnimatte::composite::{composite, detail_transfer};
use gstomnimatte::dataset::{read_video, video_dirs, Video};
use gstomnimatte::defaults;
use gstomnimatte::eval::{
    aligned_video, alpha_error, alpha_in_mask, alpha_on_object, background_ghost, decompose,
    decompose_with, effect_iou, effect_iou_over_time, label_maps, mask_only_layers,
    reconstruction_psnr, removal_psnr, remove_object, video_camera_shifts, video_stream_shifts,
    whole_video_median, Decomposition,
};
use gstomnimatte::metrics::{effect_region, psnr};
use gstomnimatte::model::loading::{
    fine_tuned_weights, load_model, parse_device, LoadedModel, WeightsSource,
};
use gstomnimatte::model::precision::hold_for_inference;
use gstomnimatte::model::PrecisionChoice;
use gstomnimatte::stabilise::{CameraMotion, CameraShifts};
use gstomnimatte::stream::{Inference, StreamConfig};
use gstomnimatte::ttt::{
    fine_tune, leave_out_layers, ContinuousConfig, FineTuneConfig, PacedTraining, TrainingFrames,
    WeightsSnapshot,
};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Tensor};

#[derive(clap::Args)]
pub struct EvalArgs {
    /// A video folder (Omnimatte layout with gt/ and bg.png) or a folder of them.
    #[arg(long)]
    data: PathBuf,
    /// Weights (safetensors); default: the bundled weights.
    #[arg(long, default_value = "")]
    weights: String,
    #[command(flatten)]
    layers: LayerArgs,
    /// Write the scores here as JSON, again after each video (`"complete": false` until the
    /// last is in), so that a run stopped part way keeps what it measured.
    #[arg(long)]
    json: Option<PathBuf>,
    /// auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Test-time training steps before decomposing, comma-separated: each count is a separate
    /// run from the pretrained weights (its own lambda_m schedule), e.g. 0,100,200,500.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    ttt_steps: Vec<u64>,
    /// Clips per test-time training step.
    #[arg(long, default_value_t = 1)]
    ttt_batch: usize,
    /// Test-time training learning rate (the paper's 5e-4 is for batch 32).
    #[arg(long, default_value_t = defaults::TTT_LEARNING_RATE)]
    ttt_lr: f64,
    /// lambda_m at the first test-time training step (tenfold less at 0.1 N and 0.2 N).
    #[arg(long, default_value_t = defaults::TTT_MASK_WEIGHT)]
    ttt_mask_weight: f64,
    /// Weight of a test-time term, not in the paper: 1 - alpha inside each mask eroded by 3
    /// pixels (of a thinner object, its middle line), never decayed (0: off, the paper's
    /// objective).
    #[arg(long, default_value_t = defaults::TTT_INTERIOR_OPACITY)]
    ttt_interior_opacity: f64,
    /// Steps over which the test-time training learning rate rises linearly to --ttt-lr (0:
    /// none, the paper's constant rate), for --ttt-steps and the live training alike.
    #[arg(long, default_value_t = defaults::TTT_WARMUP_STEPS)]
    ttt_warmup_steps: u64,
    /// Use the true background (bg.png; not one that moves, bg/) as a clean plate, for
    /// test-time training and for the decomposition, instead of the masked temporal median:
    /// separates what the network does from what a shadow-stained median background costs.
    #[arg(long, conflicts_with = "background_estimate")]
    clean_plate: bool,
    /// The background estimate: stream (a median of recent frames, what the element
    /// computes live), whole-video (one median over the whole video) or whole-video-layers
    /// (that median made again without the effects the layers over it found: what
    /// `decompose` uses by default).
    #[arg(long, default_value = "stream")]
    background_estimate: BackgroundEstimate,
    /// Compute precision: fp32, bf16 or auto (bf16 where the CPU has it, fp32 on a GPU).
    #[arg(long, default_value = "fp32")]
    precision: PrecisionChoice,
    /// Also decompose each video (without test-time training) in this precision and report the
    /// PSNR between the two runs' layers, RGBA over all frames ("vs dB"): how far the choice of
    /// precision moves the output.
    #[arg(long)]
    versus_precision: Option<PrecisionChoice>,
    /// Score the element's live test-time training (`ttt=background`): after each frame
    /// inference takes, this many training steps on the most recent `--live-frames` frames,
    /// their background leaving out the effects a frozen copy of the network as loaded finds
    /// in them, the weights handed over after `--live-first-swap-steps` steps and then every
    /// `--live-swap-steps`: what the element does on a machine whose trainer makes that many
    /// steps while inference makes a frame (the element trains as fast as its thread runs). 0: off. Uses the `--ttt-*` settings for the rest; `--ttt-steps` must be 0.
    #[arg(long, default_value_t = 0)]
    live_steps_per_frame: u32,
    /// Recent frames the live training keeps (the element's `ttt-frames`).
    #[arg(long, default_value_t = defaults::TTT_FRAMES)]
    live_frames: usize,
    /// Steps before the live training's first hand-over of weights (`ttt-first-swap-steps`).
    #[arg(long, default_value_t = defaults::TTT_FIRST_SWAP_STEPS)]
    live_first_swap_steps: u64,
    /// Share of the live training's clips drawn among the newest frames (those inference
    /// decomposes next and their neighbours); 0: the whole window alike.
    #[arg(long, default_value_t = defaults::TTT_RECENT_SHARE)]
    live_recent_share: f64,
    /// Steps between two hand-overs of the live training's weights (`ttt-swap-steps`).
    #[arg(long, default_value_t = defaults::TTT_SWAP_STEPS)]
    live_swap_steps: u64,
    /// The live training's lambda_m schedule N (decays at 0.1 N and 0.2 N; `ttt-steps`).
    #[arg(long, default_value_t = defaults::TTT_STEPS)]
    live_schedule_steps: u64,
    /// How the live mode infers once tuned weights are in: as-tuned (as the element does:
    /// `--output-frame` and `--mirror-average` as after test-time training, by default the
    /// output frame hidden), frame-as-before (the output frame as the untuned weights ran, no
    /// mirror averaging: the element before session 34) or unchanged (as the untuned weights
    /// ran).
    #[arg(long, default_value = "as-tuned")]
    live_inference_once_tuned: LiveInference,
    /// Only the videos whose folder name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    gstomnimatte::allocator::keep_freed_memory();
    let live = args.live_steps_per_frame > 0;
    anyhow::ensure!(
        !live || args.ttt_steps.iter().all(|&steps| steps == 0),
        "--live-steps-per-frame scores the live mode alone: leave --ttt-steps at 0"
    );
    let device = parse_device(&args.device)?;
    let LoadedModel {
        vs,
        net,
        source,
        precision,
    } = load_model(
        &args.weights,
        device,
        ClipSpec::default().length,
        args.precision,
    )?;
    println!("precision: {}", precision.name());
    if let Some(warning) = precision.emulation_warning(device) {
        eprintln!("warning: {warning}");
    }
    // Weights fine-tuned before (`decompose --save-weights`) run as after test-time training.
    let tuned_file = fine_tuned_weights(&args.weights);
    let versus = args
        .versus_precision
        .map(|p| load_model(&args.weights, device, ClipSpec::default().length, p))
        .transpose()?;
    if let Some(v) = &versus {
        println!("layers compared with a run in {}", v.precision.name());
    }
    // With test-time training every count starts from a copy of the pretrained weights.
    // Without it the weights only serve inference: held as the element holds them (bf16 once,
    // convolutions channels-last on the CPU), so the scores are the element's.
    let pretrained = if !live && args.ttt_steps.iter().all(|&steps| steps == 0) {
        hold_for_inference(&vs, precision);
        if let Some(v) = &versus {
            hold_for_inference(&v.vs, v.precision);
        }
        None
    } else {
        Some(WeightsSnapshot::take(&vs, 0))
    };
    match &source {
        WeightsSource::File(p) => println!("weights: {}", p.display()),
        WeightsSource::RandomInit => println!("weights: NONE FOUND, random initialisation"),
    }
    println!(
        "{:<24} {:>3} {:>5} {:>10} {:>10} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>7} {:>8} {:>7}",
        "video",
        "obj",
        "ttt",
        "IoU model",
        "IoU masks",
        "prec",
        "recall",
        "beyond",
        "alpha",
        "on obj",
        "ghost",
        "rm dB",
        "mask rm",
        "net dB",
        "bg dB",
        "train s",
        "s"
    );
    let settings = settings_json(&args, &source, device, precision.name());
    let mut rows = Vec::new();
    let dirs: Vec<_> = video_dirs(&args.data)?
        .into_iter()
        .filter(|d| {
            let name = d.file_name().unwrap_or_default().to_string_lossy();
            args.only.is_empty() || args.only.iter().any(|o| name.contains(o.as_str()))
        })
        .collect();
    anyhow::ensure!(
        !dirs.is_empty(),
        "no video folders in {}",
        args.data.display()
    );
    for dir in dirs {
        let video = read_video(&dir)?;
        // A shaking camera: the network and the background medians see the frames and masks
        // moved onto the first frame, and the outputs are made where each frame shows them.
        // The stream (the element's way) takes the shifts its stabiliser finds frame by frame
        // (the element's decomposer, following the camera, finds the same); the whole clip's
        // estimates (`decompose`'s) the whole clip's. Test-time training and the whole-video
        // medians see the video aligned by the same shifts.
        let streamed = args.background_estimate == BackgroundEstimate::Stream;
        let camera = match (args.layers.stabilise, streamed) {
            (false, _) => None,
            (true, false) => video_camera_shifts(&video)?,
            (true, true) => video_stream_shifts(&video),
        };
        if let Some(c) = &camera {
            eprintln!(
                "{}: the camera moves by up to {:.2} pixels: frames aligned to the first",
                dir.display(),
                c.largest()
            );
        }
        // As `decompose`: a pan leaves the first frame's view, in which the whole clip's
        // medians are made, so its background is made as the frames come.
        let background_estimate = match camera
            .as_ref()
            .is_some_and(CameraShifts::leave_the_first_view)
        {
            true => BackgroundEstimate::Stream,
            false => args.background_estimate,
        };
        let aligned = camera.as_ref().map(|c| aligned_video(&video, c));
        let seen = aligned.as_ref().unwrap_or(&video);
        let motion = camera
            .clone()
            .map_or(CameraMotion::Still, CameraMotion::Given);
        let background = video
            .background
            .as_ref()
            .with_context(|| format!("{}: no bg.png (nor bg/)", dir.display()))?;
        let gt = video
            .gt_layers
            .as_ref()
            .with_context(|| format!("{}: no gt/layer_NN", dir.display()))?;
        let objects = video.masks.size()[0] as usize;
        let truth_regions = effect_region(gt, background); // [L, T, 1, H, W]
        let baseline = effect_iou(&mask_only_layers(&video), gt, background, &video.masks);
        // What `network_alpha_in_mask` would be for perfect layers (below 1 where masks bleed
        // or lag): a property of the video, the same for every ttt count.
        let truth_alpha_in_mask = alpha_in_mask(gt, &video.masks);
        let quantile = args.layers.whole_video_quantile;
        let median = whole_video_median(seen, None, quantile);
        let plate = if args.clean_plate {
            Some(video.still_background().with_context(|| {
                format!(
                    "{}: --clean-plate needs one background for every frame (bg.png); this \
                     video's moves with its camera (bg/)",
                    dir.display()
                )
            })?)
        } else {
            match background_estimate {
                BackgroundEstimate::WholeVideo => Some(median.shallow_clone()),
                BackgroundEstimate::WholeVideoLayers => {
                    // The first pass: the network as loaded, before any test-time training, over
                    // the masks-only median (as `decompose` runs it: without residual effects).
                    let config = args.layers.first_pass_config(objects, tuned_file);
                    let first =
                        tch::no_grad(|| decompose(&net, seen, &config, Some(&median), device))?;
                    Some(whole_video_median(seen, Some(&first.layers), quantile))
                }
                BackgroundEstimate::Stream => None,
            }
        };
        // The whole video's estimate: the second pass's where there is one.
        let bg = match (&plate, background_estimate) {
            (Some(second), BackgroundEstimate::WholeVideoLayers) => psnr(second, background),
            _ => psnr(&median, background),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for &steps in &args.ttt_steps {
            if let Some(pretrained) = &pretrained {
                pretrained.load_into(&vs)?;
            }
            // Training's dropout draws from libtorch's one generator: seeded afresh for each
            // run, so a video scores the same whichever videos ran before it (`--only`).
            tch::manual_seed(0);
            let started = Instant::now();
            if steps > 0 {
                let (h, w) = (args.layers.working_height, args.layers.working_width);
                let mut frames = TrainingFrames::new(
                    seen.frames.size()[0] as usize,
                    args.layers.background_quantile,
                )
                .matching_exposure(args.layers.exposure_match);
                // The plate first: over it, no frame is held for a median.
                if let Some(plate) = &plate {
                    frames.set_background_plate(&plate.to_device(device), h, w);
                }
                // The label maps the decomposition gets, so training sees what inference will.
                frames.push_video(
                    &seen.frames.to_device(device),
                    &label_maps(&seen.masks).to_device(device),
                    objects,
                    h,
                    w,
                );
                if plate.is_none() {
                    // The network as loaded, before this video's training, finds the effects
                    // the training background leaves out.
                    leave_out_layers(
                        &mut frames,
                        &net,
                        args.layers.stream_config(objects, tuned_file).clip,
                        args.layers.output_frame.resolve(tuned_file),
                    )?;
                }
                let tune = FineTuneConfig {
                    batch_size: args.ttt_batch,
                    learning_rate: args.ttt_lr,
                    mask_weight: args.ttt_mask_weight,
                    interior_opacity: args.ttt_interior_opacity,
                    warmup_steps: args.ttt_warmup_steps,
                    ..FineTuneConfig::new(steps)
                };
                let progress = bar(steps, &format!("test-time training steps on {name}"))?;
                fine_tune(&vs, &net, &mut frames, &tune, |p| {
                    training_step(&progress, p);
                    ControlFlow::Continue(())
                })?;
                // Cleared, so that the table on standard output stays whole on a terminal.
                progress.finish_and_clear();
            }
            let train_seconds = started.elapsed().as_secs_f64();
            let config = StreamConfig {
                camera: motion.clone(),
                ..args.layers.stream_config(objects, steps > 0 || tuned_file)
            };
            let (result, live_steps) = match &pretrained {
                Some(pretrained) if live => {
                    let mut paced = PacedTraining::new(
                        net.config().clone(),
                        pretrained,
                        device,
                        args.live_config(config.clip),
                        args.live_steps_per_frame,
                    )?;
                    if let Some(plate) = &plate {
                        paced.set_background_plate(
                            &plate.to_device(device),
                            args.layers.working_height,
                            args.layers.working_width,
                        );
                    }
                    match args.live_inference_once_tuned {
                        LiveInference::AsTuned => {
                            paced.set_inference_once_tuned(args.layers.inference(true))
                        }
                        LiveInference::FrameAsBefore => paced.set_inference_once_tuned(Inference {
                            mirror_average: false,
                            ..config.inference()
                        }),
                        LiveInference::Unchanged => {}
                    }
                    let result =
                        decompose_with(&net, &video, &config, plate.as_ref(), device, |d| {
                            paced.after_frame(d, &vs)
                        })?;
                    (result, paced.steps())
                }
                _ => (
                    tch::no_grad(|| decompose(&net, &video, &config, plate.as_ref(), device))?,
                    steps,
                ),
            };
            let seconds = started.elapsed().as_secs_f64();
            let model = effect_iou(&result.layers, gt, background, &video.masks);
            let by_quarter = effect_iou_over_time(&result.layers, gt, background, &video.masks, 4);
            let edits = Edits::measure(&result, &video, gt, background, &truth_regions);
            // The layers as output reproduce the input (detail transfer); what the network
            // itself explains is its composite before the transfer.
            let recon = reconstruction_psnr(&result.network_reconstruction, &video.frames);
            let versus_db = match &versus {
                Some(v) if steps == 0 => {
                    let other = tch::no_grad(|| {
                        decompose(&v.net, &video, &config, plate.as_ref(), device)
                    })?;
                    psnr(&result.layers, &other.layers)
                }
                _ => f64::NAN,
            };
            if versus_db.is_finite() {
                println!("{name:<24} layers vs the other precision: {versus_db:.2} dB");
            }
            println!(
                "{name:<24} {objects:>3} {live_steps:>5} {:>10.3} {:>10.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.2} {:>7.2} {:>7.2} {recon:>8.2} {bg:>7.2} {train_seconds:>8.1} {seconds:>7.1}",
                model.effect_iou, baseline.effect_iou, model.precision, model.recall, model.beyond_mask_recall,
                edits.network_alpha_in_mask, edits.network_alpha_on_object, edits.ghost_clean, edits.removal_psnr, edits.mask_only_removal_psnr
            );
            rows.push(serde_json::json!({
                "video": name, "objects": objects, "camera_shift_pixels": camera.as_ref().map_or(0.0, |c| c.largest()), "ttt_steps": steps, "mirror_average": config.mirror_average,
                "live_steps_per_frame": args.live_steps_per_frame, "live_steps": live_steps,
                "ttt_interior_opacity": args.ttt_interior_opacity, "ttt_warmup_steps": args.ttt_warmup_steps,
                "effect_iou": model.effect_iou,
                "effect_iou_per_object": &model.per_object[..objects.min(8)],
                "effect_iou_by_quarter": by_quarter,
                "effect_precision": model.precision, "effect_recall": model.recall,
                "beyond_mask_recall": model.beyond_mask_recall, "mask_only_beyond_mask_recall": baseline.beyond_mask_recall,
                "network_alpha_in_mask": edits.network_alpha_in_mask,
                "network_alpha_on_object": edits.network_alpha_on_object,
                "truth_alpha_in_mask": truth_alpha_in_mask,
                "output_alpha_in_mask": edits.output_alpha_in_mask, "alpha_error": edits.alpha_error,
                "ghost_clean": edits.ghost_clean, "ghost_residual": edits.ghost_residual,
                "removal_psnr": edits.removal_psnr, "mask_only_removal_psnr": edits.mask_only_removal_psnr,
                "mask_only_effect_precision": baseline.precision, "mask_only_effect_recall": baseline.recall,
                "mask_only_effect_iou": baseline.effect_iou, "reconstruction_psnr": recon,
                "background_psnr": bg, "train_seconds": train_seconds, "seconds": seconds,
                "layers_psnr_versus_precision": versus_db,
            }));
        }
        // Each video's scores reach the file as soon as it is scored: a long run stopped
        // part way keeps what it measured.
        if let Some(path) = &args.json {
            write_scores(path, &settings, &rows, &args.ttt_steps, false)?;
        }
    }
    for &steps in &args.ttt_steps {
        let mean = |key: &str| mean_over(&rows, steps, key);
        let versus_mean = mean("layers_psnr_versus_precision");
        if versus_mean.is_finite() {
            println!("mean layers vs the other precision: {versus_mean:.2} dB");
        }
        println!(
            "{:<24} {:>3} {steps:>5} {:>10.3} {:>10.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>6.2} {:>7.2} {:>7.2} {:>8.2} {:>7.2} {:>8.1} {:>7.1}",
            "mean",
            "",
            mean("effect_iou"),
            mean("mask_only_effect_iou"),
            mean("effect_precision"),
            mean("effect_recall"),
            mean("beyond_mask_recall"),
            mean("network_alpha_in_mask"),
            mean("network_alpha_on_object"),
            mean("ghost_clean"),
            mean("removal_psnr"),
            mean("mask_only_removal_psnr"),
            mean("reconstruction_psnr"),
            mean("background_psnr"),
            mean("train_seconds"),
            mean("seconds")
        );
    }
    if let Some(path) = &args.json {
        write_scores(path, &settings, &rows, &args.ttt_steps, true)?;
        println!("scores: {}", path.display());
    }
    Ok(())
}

/// The mean of `key` over the scored rows of `steps` test-time steps (NaN where none).
fn mean_over(rows: &[serde_json::Value], steps: u64, key: &str) -> f64 {
    let of_n: Vec<_> = rows
        .iter()
        .filter(|r| r["ttt_steps"].as_u64() == Some(steps))
        .collect();
    of_n.iter()
        .map(|r| r[key].as_f64().unwrap_or(f64::NAN))
        .sum::<f64>()
        / of_n.len() as f64
}

/// Writes the scores so far to `path` (through a temporary file, so that a run stopped
/// while writing leaves the previous file whole): the run's `settings`, each video's `rows`,
/// their means per test-time step count, and whether every video is in (`complete`).
fn write_scores(
    path: &Path,
    settings: &serde_json::Value,
    rows: &[serde_json::Value],
    ttt_steps: &[u64],
    complete: bool,
) -> anyhow::Result<()> {
    let mut means = serde_json::Map::new();
    for &steps in ttt_steps {
        let mean = |key: &str| mean_over(rows, steps, key);
        let m = serde_json::json!({
            "effect_iou": mean("effect_iou"), "mask_only_effect_iou": mean("mask_only_effect_iou"),
            "effect_precision": mean("effect_precision"), "effect_recall": mean("effect_recall"),
            "beyond_mask_recall": mean("beyond_mask_recall"),
            "network_alpha_in_mask": mean("network_alpha_in_mask"), "output_alpha_in_mask": mean("output_alpha_in_mask"),
            "network_alpha_on_object": mean("network_alpha_on_object"),
            "truth_alpha_in_mask": mean("truth_alpha_in_mask"),
            "alpha_error": mean("alpha_error"),
            "ghost_clean": mean("ghost_clean"), "ghost_residual": mean("ghost_residual"),
            "removal_psnr": mean("removal_psnr"), "mask_only_removal_psnr": mean("mask_only_removal_psnr"),
            "reconstruction_psnr": mean("reconstruction_psnr"), "background_psnr": mean("background_psnr"),
            "train_seconds_per_video": mean("train_seconds"), "seconds_per_video": mean("seconds"),
            "live_steps_per_video": mean("live_steps"),
            "layers_psnr_versus_precision": mean("layers_psnr_versus_precision"),
        });
        means.insert(steps.to_string(), m);
    }
    let mut report = settings.clone();
    report["mean"] = means[&ttt_steps[0].to_string()].clone();
    report["mean_by_ttt_steps"] = serde_json::Value::Object(means);
    report["videos"] = serde_json::Value::Array(rows.to_vec());
    report["complete"] = serde_json::Value::Bool(complete);
    gstomnimatte::whole_file::replace(path, serde_json::to_string_pretty(&report)?)
}

/// The run's settings, as the scores file records them beside the scores.
fn settings_json(
    args: &EvalArgs,
    source: &WeightsSource,
    device: Device,
    precision: &str,
) -> serde_json::Value {
    let weights = match source {
        WeightsSource::File(p) => p.display().to_string(),
        WeightsSource::RandomInit => "random-init".into(),
    };
    serde_json::json!({
        "weights": weights, "working_size": [args.layers.working_height, args.layers.working_width],
        "device": format!("{device:?}"), "precision": precision,
        "alpha_mode": format!("{:?}", args.layers.alpha_mode), "upsampling": format!("{:?}", args.layers.upsampling), "output_frame": format!("{:?}", args.layers.output_frame), "background_median": format!("{:?}", args.layers.background_median), "background_frames": args.layers.background_frames, "background_quantile": args.layers.background_quantile, "whole_video_quantile": args.layers.whole_video_quantile, "mirror_average": args.layers.mirror_average, "exposure_match": args.layers.exposure_match, "residual_shadows": args.layers.residual_shadows, "residual_reflections": args.layers.residual_reflections, "background_warm_up": args.layers.background_warm_up, "stabilise": args.layers.stabilise, "clear_still_ground": args.layers.clear_still_ground, "clean_plate": args.clean_plate, "background_estimate": format!("{:?}", args.background_estimate), "ttt_batch": args.ttt_batch, "ttt_learning_rate": args.ttt_lr, "ttt_mask_weight": args.ttt_mask_weight,
        "live_steps_per_frame": args.live_steps_per_frame, "live_frames": args.live_frames, "live_first_swap_steps": args.live_first_swap_steps, "live_swap_steps": args.live_swap_steps, "live_recent_share": args.live_recent_share, "ttt_warmup_steps": args.ttt_warmup_steps, "live_schedule_steps": args.live_schedule_steps, "live_inference_once_tuned": format!("{:?}", args.live_inference_once_tuned),
    })
}

/// How the live mode infers once tuned weights are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LiveInference {
    /// As after test-time training, what the element does (`--output-frame auto` hides the
    /// frame; no mirror averaging).
    AsTuned,
    /// The output frame as the untuned weights ran, no mirror averaging: the element's rule
    /// before session 34.
    FrameAsBefore,
    /// As the untuned weights ran.
    Unchanged,
}

impl EvalArgs {
    /// The live training the `--live-*` and `--ttt-*` flags ask for, on clips `clip`.
    fn live_config(&self, clip: ClipSpec) -> ContinuousConfig {
        ContinuousConfig {
            frames: self.live_frames,
            first_swap: self.live_first_swap_steps,
            swap_every: self.live_swap_steps,
            schedule_steps: self.live_schedule_steps,
            batch_size: self.ttt_batch,
            clip,
            learning_rate: self.ttt_lr,
            mask_weight: self.ttt_mask_weight,
            interior_opacity: self.ttt_interior_opacity,
            warmup_steps: self.ttt_warmup_steps,
            recent_share: self.live_recent_share,
            background_quantile: self.layers.background_quantile,
            exposure_match: self.layers.exposure_match,
            // As `leave_out_layers` runs the network as loaded before `--ttt-steps`.
            zero_shot_output: self
                .layers
                .output_frame
                .resolve(fine_tuned_weights(&self.weights)),
            seed: 0,
        }
    }
}

/// What an editor gets from a decomposition: how opaque objects are, ghosts in the background
/// outputs, and object removal scored against the truth.
struct Edits {
    /// Mean alpha inside each object's mask: the network's own, and the output layers'.
    network_alpha_in_mask: f64,
    output_alpha_in_mask: f64,
    /// The network's alpha where the mask and the truth agree the object is (rough masks
    /// bleed and lag; there the true layer has no alpha either).
    network_alpha_on_object: f64,
    /// Mean absolute alpha error of the output layers against the true layers.
    alpha_error: f64,
    /// Mean absolute difference (0-255) to the true background inside the objects' regions.
    ghost_clean: f64,
    ghost_residual: f64,
    /// Mean over objects of the PSNR, inside the removed object's true region, of the video
    /// with that object removed against the true video without it; and the same for the
    /// mask-only layers.
    removal_psnr: f64,
    mask_only_removal_psnr: f64,
}

impl Edits {
    fn measure(
        result: &Decomposition,
        video: &Video,
        gt: &Tensor,
        background: &Tensor,
        truth_regions: &Tensor,
    ) -> Self {
        let (frames, masks) = (&video.frames, &video.masks);
        let l = gt.size()[0];
        let t = frames.size()[0];
        // The mask-only decomposition over the same clean backgrounds, with detail transfer.
        let (mask_layers, mask_backgrounds) = detail_transfer(
            &mask_only_layers(video).transpose(0, 1),
            &result.clean_backgrounds,
            frames,
        );
        let true_bg = background.expand([t, -1, -1, -1], false);
        let (mut removal, mut mask_removal) = (Vec::new(), Vec::new());
        for k in 0..l {
            let others: Vec<i64> = (0..l).filter(|&j| j != k).collect();
            let truth = match others.is_empty() {
                true => true_bg.shallow_clone(),
                false => composite(
                    &gt.index_select(0, &Tensor::from_slice(&others))
                        .transpose(0, 1),
                    &true_bg,
                ),
            };
            let region = truth_regions.get(k);
            let model = remove_object(
                &result.layers,
                &result.residual_backgrounds,
                &result.clean_backgrounds,
                k,
            );
            removal.extend(removal_psnr(&model, &truth, &region));
            let masks_only = remove_object(
                &mask_layers.transpose(0, 1),
                &mask_backgrounds,
                &result.clean_backgrounds,
                k,
            );
            mask_removal.extend(removal_psnr(&masks_only, &truth, &region));
        }
        Self {
            network_alpha_in_mask: alpha_in_mask(&result.network_layers, masks),
            output_alpha_in_mask: alpha_in_mask(&result.layers, masks),
            network_alpha_on_object: alpha_on_object(&result.network_layers, gt, masks),
            alpha_error: alpha_error(&result.layers, gt),
            ghost_clean: background_ghost(&result.clean_backgrounds, background, truth_regions),
            ghost_residual: background_ghost(
                &result.residual_backgrounds,
                background,
                truth_regions,
            ),
            removal_psnr: mean(&removal),
            mask_only_removal_psnr: mean(&mask_removal),
        }
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}
