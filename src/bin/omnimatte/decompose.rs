//! `omnimatte decompose`: a video and its masks in, one RGBA layer per object (with its
//! effects), the background and the reconstruction out; optionally after test-time training
//! on the video itself.
//!
//! Output folder:
//! ```text
//! OUT/layer_01/00000.png ...   object 1's RGBA layer per frame (straight alpha)
//! OUT/background.png           the plate given, else the whole video's background estimate
//! OUT/recon/00000.png ...      the layers composited over the per-frame background
//! ```
//! With `--format prores` the layers are `OUT/layer_01.mov` (ProRes 4444 with alpha) and so
//! on; `--recon-format` picks the reconstruction's (png, prores or vp9 -> `OUT/recon.webm`).

use crate::contact_sheet::{contact_sheet, SheetRow};
use crate::layer_args::LayerArgs;
use crate::media::{self, Format, VideoWriter};
use crate::progress::{bar, training_step};
use anyhow::Context;
use gstomnimatte::background::{
    layers_cover, try_whole_video_background, whole_video_frames, BackgroundEstimate,
};
use gstomnimatte::clip::{ClipSpec, OutputFrame};
use gstomnimatte::dataset::{read_png, write_png};
use gstomnimatte::eval::remove_object;
use gstomnimatte::frame_sequence::{FrameCollector, FrameSequence};
use gstomnimatte::image_io::unit_range;
use gstomnimatte::label_maps::{LabelMaps, LabelMapsBuilder};
use gstomnimatte::model::loading::{
    fine_tuned_weights, load_model, parse_device, LoadedModel, WeightsSource,
};
use gstomnimatte::model::precision::hold_for_inference;
use gstomnimatte::model::weights::{self, Storage};
use gstomnimatte::model::{OmnimatteNet, PrecisionChoice};
use gstomnimatte::stabilise::{estimate_camera_shifts, CameraMotion, CameraShifts};
use gstomnimatte::stream::{Decomposer, FrameLayers, StreamConfig};
use gstomnimatte::ttt::{fine_tune, leave_out_layers, FineTuneConfig, TrainingFrames};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Tensor};

#[derive(clap::Args)]
pub struct DecomposeArgs {
    /// An Omnimatte folder (rgb/ and mask/01/, mask/02/, ...), a folder of PNG or JPEG frames
    /// (or with them in rgb/) given with --masks, or a video file given with --masks.
    #[arg(long)]
    input: PathBuf,
    /// The masks, unless INPUT is an Omnimatte folder: a folder of label PNGs (0 = background, k =
    /// object k; 8- or 16-bit gray, or a palette PNG's indices as in DAVIS), of one object's
    /// binary PNGs, a folder of per-object folders of binary PNGs, or a losslessly coded video
    /// of label maps.
    #[arg(long)]
    masks: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Compute precision of the network: auto (bf16 where the CPU has AMX-BF16 or
    /// AVX512-BF16; fp32 otherwise and on a GPU), fp32 or bf16.
    #[arg(long, default_value = "auto")]
    precision: PrecisionChoice,
    /// Weights (safetensors); default: the bundled weights.
    #[arg(long, default_value = "")]
    weights: String,
    /// auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    #[command(flatten)]
    layers: LayerArgs,
    /// Number of objects; default: the highest label in the masks (at most 32).
    #[arg(long)]
    objects: Option<usize>,
    /// Test-time training steps on this video before decomposing it (0: zero-shot).
    #[arg(long, default_value_t = 0)]
    ttt_steps: u64,
    /// Clips per test-time training step.
    #[arg(long, default_value_t = 1)]
    ttt_batch: usize,
    /// lambda_m at the first test-time training step, tenfold less at 0.1 and 0.2 of the steps
    /// (the paper: 0.1).
    #[arg(long, default_value_t = gstomnimatte::defaults::TTT_MASK_WEIGHT)]
    ttt_mask_weight: f64,
    /// Weight of a test-time term, not in the paper: 1 - alpha inside each mask eroded by 3
    /// pixels (of a thinner object, its middle line), never decayed, so that objects stay
    /// opaque in the network's own alpha (0: off, the paper's objective).
    #[arg(long, default_value_t = gstomnimatte::defaults::TTT_INTERIOR_OPACITY)]
    ttt_interior_opacity: f64,
    /// Steps over which the test-time training learning rate rises linearly to its full value
    /// (0: none, the paper's constant rate).
    #[arg(long, default_value_t = gstomnimatte::defaults::TTT_WARMUP_STEPS)]
    ttt_warmup_steps: u64,
    /// Write the fine-tuned weights here (safetensors), to reuse with --weights or the
    /// element's `weights` property.
    #[arg(long)]
    save_weights: Option<PathBuf>,
    /// How the layers are written: PNG sequences or ProRes 4444 files, both with alpha.
    #[arg(long, value_enum, default_value = "png")]
    format: Format,
    /// How the reconstruction is written; default: as the layers.
    #[arg(long, value_enum)]
    recon_format: Option<Format>,
    /// Frame rate of the encoded files for folder input (video files keep their own).
    #[arg(long, default_value_t = 25)]
    fps: i32,
    /// A clean plate: a PNG of the empty scene, the frames' size, used as the background
    /// (for test-time training and decomposition) instead of the masked temporal median.
    #[arg(long)]
    background_plate: Option<PathBuf>,
    /// Without a plate, the background estimate: whole-video-layers (the whole file's masked
    /// temporal median made twice, the second time also leaving out the effects the layers
    /// over the first found: fewest shadows left in it, for twice the network's work),
    /// whole-video (one masked temporal median over the whole file, at most 64 frames spread
    /// evenly: a pixel an object covers early on is seen free later) or stream (a median of
    /// the 16 most recent frames, as the element computes it live; `--background-median`
    /// applies to it). docs/measurements.md compares them. A camera that pans beyond the
    /// first frame's view (`--stabilise`) gets stream: the whole file's medians are made in
    /// that view.
    #[arg(long, default_value = "whole-video-layers")]
    background_estimate: BackgroundEstimate,
    /// Also write OUT/contact_sheet.png: this many frames, evenly spread, each as input |
    /// masks | every layer over a checkerboard | background | the removals (0: none).
    #[arg(long, default_value_t = 4)]
    contact_sheet: i64,
    /// What OUT/background/ holds per frame: clean (the background estimate, nothing of the
    /// objects) or residual (with the layers it reproduces the frame exactly).
    #[arg(long, value_enum, default_value = "clean")]
    background_mode: BackgroundOutput,
    /// Write into an OUT that holds results already, after removing what decompose writes
    /// there (layer_*, recon*, background*, removed_*, contact_sheet.png). Without it a
    /// non-empty OUT is refused, so that two runs never mix.
    #[arg(long)]
    overwrite: bool,
    /// Also write OUT/removed_K: the video with object K and its effects taken out (every
    /// other layer over the clean background where object K's layer was, the residual one
    /// elsewhere). Comma-separate for several.
    #[arg(long, value_delimiter = ',')]
    remove: Vec<usize>,
    /// Frames whose 8-bit RGB takes more than this many MiB (1080p: about 6 a frame) are not
    /// held in memory: a folder's are read again from their files each time a frame is needed
    /// (two or three times), a video file's decoded into a file in OUT that no folder lists.
    /// Label maps (a byte a pixel: 1080p about 2 MiB a frame) over this many MiB go into such a
    /// file too.
    #[arg(long, default_value_t = 2048)]
    hold_frames_mib: u64,
}

/// What the per-frame background output holds (the element's `background-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackgroundOutput {
    Clean,
    Residual,
}

/// A video: its 8-bit frames and its label maps, each held, or read as they are needed.
pub struct LabelledVideo {
    pub frames: FrameSequence,
    pub labels: LabelMaps,
    /// (numerator, denominator), when the input said.
    pub fps: Option<(i32, i32)>,
    /// A shaking camera's shifts: [`Self::frame`] and [`Self::labels`] give frames and labels
    /// out moved onto the first frame.
    pub camera: Option<CameraShifts>,
}

impl LabelledVideo {
    pub fn len(&self) -> i64 {
        self.frames.len()
    }

    /// Frame `t` as [3, H, W] float in [0, 1] (aligned to the first frame where the camera
    /// shakes).
    pub fn frame(&self, t: i64) -> anyhow::Result<Tensor> {
        let frame = self.frame_as_it_came(t)?;
        Ok(match &self.camera {
            Some(camera) => camera.at(t).align(&frame),
            None => frame,
        })
    }

    /// Frame `t` as [3, H, W] float in [0, 1], as the input gives it.
    pub fn frame_as_it_came(&self, t: i64) -> anyhow::Result<Tensor> {
        Ok(unit_range(&self.frames.frame_8bit(t)?))
    }

    /// Frame `t`'s label map, [H, W] uint8 (aligned as the frame).
    pub fn labels(&self, t: i64) -> anyhow::Result<Tensor> {
        let labels = self.labels.get(t)?;
        Ok(match &self.camera {
            Some(camera) => camera.at(t).align_labels(&labels),
            None => labels,
        })
    }

    /// Finds a shaking camera's shifts ([`estimate_camera_shifts`]), after which frames and
    /// labels are given out aligned to the first frame.
    pub fn stabilise(&mut self) -> anyhow::Result<()> {
        let progress = bar(self.len() as u64, "frames (camera shake)")?;
        let camera = estimate_camera_shifts(self.len(), |t| {
            progress.inc(1);
            Ok((self.frame(t)?, self.labels(t)?.gt(0)))
        })?;
        progress.finish_and_clear();
        if let Some(camera) = &camera {
            eprintln!(
                "the camera moves by up to {:.2} pixels: frames aligned to the first, outputs \
                 moved back (--stabilise false to keep them as they are)",
                camera.largest()
            );
        }
        self.camera = camera;
        Ok(())
    }
}

/// Reads an Omnimatte folder, or a video file with its masks.
/// Frames and label maps are each held in memory up to `hold_bytes`; beyond, a folder's frames
/// are read from their files as needed, and a video file's frames and the label maps are kept
/// in files in `spill_dir` ([`FrameSequence`], [`LabelMaps`]). Masks of the frames' shape but
/// another size are scaled to the frames.
pub fn read_input(
    input: &Path,
    masks: Option<&Path>,
    hold_bytes: u64,
    spill_dir: &Path,
) -> anyhow::Result<LabelledVideo> {
    let (frames, fps, masks) = if input.is_dir() {
        // Frames stay bytes from the file on (or in their files): a long 1080p clip in floats
        // is gigabytes.
        match masks {
            // Frames in INPUT/rgb/ (or INPUT itself), masks elsewhere.
            Some(masks) => {
                let rgb = input.join("rgb");
                let frames =
                    FrameSequence::open(if rgb.is_dir() { &rgb } else { input }, hold_bytes)?;
                (frames, None, masks.to_path_buf())
            }
            // The Omnimatte layout: INPUT/rgb/ and INPUT/mask/01/, ...
            None => {
                let mask = input.join("mask");
                anyhow::ensure!(
                    mask.is_dir(),
                    "{} has no mask/ folder: give the masks with --masks",
                    input.display()
                );
                (
                    FrameSequence::open(&input.join("rgb"), hold_bytes)?,
                    None,
                    mask,
                )
            }
        }
    } else {
        let masks = masks.with_context(|| {
            format!(
                "{} is a video file: give its masks with --masks",
                input.display()
            )
        })?;
        // Each decoded frame kept as bytes, in a file once they come to more than hold_bytes.
        let mut frames = FrameCollector::new(hold_bytes, spill_dir);
        let decoded = media::decode_each(input, "RGB", |packed, w, h| {
            let (h, w) = (h as i64, w as i64);
            frames.push(
                Tensor::from_slice(packed)
                    .view([h, w, 3])
                    .permute([2, 0, 1])
                    .contiguous(),
            )
        })?;
        let fps = Some(decoded.fps).filter(|&(n, d)| n > 0 && d > 0);
        (frames.finish()?, fps, masks.to_path_buf())
    };
    let size = Some(frames.height_width());
    let labels = if masks.is_dir() {
        LabelMaps::read_folder(&masks, hold_bytes, spill_dir, size)?
    } else {
        let mut maps = LabelMapsBuilder::new(hold_bytes, spill_dir, size);
        media::decode_each(&masks, "GRAY8", |packed, w, h| {
            maps.push(Tensor::from_slice(packed).view([h as i64, w as i64]), false)
        })?;
        maps.finish()?
    };
    anyhow::ensure!(
        frames.len() == labels.len(),
        "{} frames but {} masks",
        frames.len(),
        labels.len()
    );
    Ok(LabelledVideo {
        frames,
        labels,
        fps,
        camera: None,
    })
}

/// Test-time training before decomposing: `steps` (0: none) of `batch` clips, and where to
/// keep the fine-tuned weights.
pub struct TestTimeTraining<'a> {
    pub steps: u64,
    pub batch: usize,
    /// lambda_m at the first step.
    pub mask_weight: f64,
    /// The interior-opacity term's weight (0: off).
    pub interior_opacity: f64,
    /// Steps of the learning rate's linear warm-up (0: none).
    pub warmup_steps: u64,
    pub save_weights: Option<&'a Path>,
    /// Whether the network as loaded sees the frame it decomposes: the zero-shot pass that
    /// leaves found effects out of the training background ([`leave_out_layers`]) runs so.
    pub zero_shot_output: OutputFrame,
}

/// How the plate, the whole video's median, is made a second time, leaving out the effects
/// the pretrained network's layers over the first hold (`whole-video-layers`).
pub struct SecondPlate {
    /// The first pass's decomposition settings (it runs over the first plate).
    pub first_pass: StreamConfig,
    /// Which quantile of each pixel's free values the second plate is.
    pub quantile: f64,
}

/// Runs the decomposition and calls `write` with every frame's layers, in order. With
/// `second_plate` the plate is made again first ([`SecondPlate`]; before any test-time
/// training, which then learns against the second). Returns the plate used.
pub fn decompose_video(
    video: &LabelledVideo,
    plate: Option<Tensor>,
    second_plate: Option<SecondPlate>,
    model: LoadedModel,
    config: StreamConfig,
    ttt: TestTimeTraining<'_>,
    mut write: impl FnMut(&FrameLayers) -> anyhow::Result<()>,
) -> anyhow::Result<Option<Tensor>> {
    let LoadedModel {
        vs,
        net,
        source,
        precision,
    } = model;
    let device = vs.device();
    eprintln!("computing in {} on {device:?}", precision.name());
    if let Some(warning) = precision.emulation_warning(device) {
        eprintln!("warning: {warning}");
    }
    match &source {
        WeightsSource::File(p) => eprintln!("weights: {}", p.display()),
        WeightsSource::RandomInit => {
            eprintln!("WARNING: no pretrained weights found, the network is randomly initialised")
        }
    }
    let (h, w) = (config.working_height, config.working_width);
    let plate = match (plate, second_plate) {
        (Some(first), Some(second)) => {
            Some(plate_without_layers(video, &first, &net, second, device)?)
        }
        (plate, _) => plate,
    };
    let plate = plate.as_ref();
    let TestTimeTraining {
        steps: ttt_steps,
        batch: ttt_batch,
        mask_weight,
        interior_opacity,
        warmup_steps,
        save_weights,
        zero_shot_output,
    } = ttt;
    if ttt_steps > 0 {
        // Frame by frame: the whole video in float at full size may not fit in memory.
        let mut frames = TrainingFrames::new(video.len() as usize, config.background_quantile)
            .matching_exposure(config.exposure_match);
        // The plate first: frames pushed over it are not kept for a median.
        if let Some(plate) = plate {
            frames.set_background_plate(&plate.to_device(device), h, w);
        }
        for t in 0..video.len() {
            let (frame, labels) = (video.frame(t)?, video.labels(t)?);
            let (frame, labels) = (frame.to_device(device), labels.to_device(device));
            frames.push_video_frame(&frame, &labels, config.objects, h, w);
        }
        if plate.is_none() {
            eprintln!("training background: a zero-shot pass finds the effects to leave out");
            leave_out_layers(&mut frames, &net, config.clip, zero_shot_output)?;
        }
        let progress = bar(ttt_steps, "test-time training steps")?;
        let tune = FineTuneConfig {
            batch_size: ttt_batch,
            clip: config.clip,
            mask_weight,
            interior_opacity,
            warmup_steps,
            ..FineTuneConfig::new(ttt_steps)
        };
        fine_tune(&vs, &net, &mut frames, &tune, |p| {
            training_step(&progress, p);
            ControlFlow::Continue(())
        })?;
        progress.finish();
        if let Some(path) = save_weights {
            weights::save_fine_tuned(&vs, path, Storage::F32, ttt_steps)?;
            eprintln!("fine-tuned weights: {}", path.display());
        }
    } else if save_weights.is_some() {
        anyhow::bail!("--save-weights needs --ttt-steps above 0: nothing was fine-tuned");
    }
    hold_for_inference(&vs, precision);
    // Where the camera shakes, the decomposer moves each frame by the clip's shift and makes
    // its outputs where the frame shows them.
    let config = StreamConfig {
        camera: video
            .camera
            .clone()
            .map_or(CameraMotion::Still, CameraMotion::Given),
        ..config
    };
    let progress = bar(video.len() as u64, "frames")?;
    each_frame_layers(video, plate, &net, config, device, |out| {
        progress.inc(1);
        write(out)
    })?;
    progress.finish();
    Ok(plate.map(Tensor::shallow_clone))
}

/// Streams `video` through a decomposer over `plate` (None: the stream's own median) and
/// calls `write` with every frame's layers, in order.
fn each_frame_layers(
    video: &LabelledVideo,
    plate: Option<&Tensor>,
    net: &OmnimatteNet,
    config: StreamConfig,
    device: Device,
    mut write: impl FnMut(&FrameLayers) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // A decomposer given the clip's shifts moves the frames itself, and makes the outputs
    // where the frames as they came show them; the first pass of the plate made twice takes
    // them aligned, as the median that reads its covers does.
    let given_shifts = matches!(config.camera, CameraMotion::Given(_));
    let mut decomposer = Decomposer::new(config, device)?;
    if let Some(plate) = plate {
        decomposer.set_background_plate(plate);
    }
    tch::no_grad(|| -> anyhow::Result<()> {
        for t in 0..video.len() {
            let (frame, labels) = match given_shifts {
                true => (video.frame_as_it_came(t)?, video.labels.get(t)?),
                false => (video.frame(t)?, video.labels(t)?),
            };
            for out in decomposer.push(net, &frame, &labels)? {
                write(&out)?;
            }
        }
        for out in decomposer.finish(net)? {
            write(&out)?;
        }
        Ok(())
    })
}

/// The clip's background: the masked temporal median (or the quantile `quantile`) of the whole
/// video, also leaving out `covers` (frame -> [1, H, W], for the frames the median reads) where
/// given.
pub fn background_plate(
    video: &LabelledVideo,
    covers: Option<&HashMap<i64, Tensor>>,
    quantile: f64,
) -> anyhow::Result<Tensor> {
    try_whole_video_background(video.len(), quantile, |t| {
        let masks = video.labels(t)?.gt(0).unsqueeze(0);
        let covered = match covers {
            Some(covers) => masks.logical_or(&covers[&t]),
            None => masks,
        };
        Ok((video.frame(t)?, covered))
    })
}

/// The whole video's median (or quantile) made again, leaving out beside the masks what the
/// layers of a decomposition over `first` hold in the frames the median reads.
fn plate_without_layers(
    video: &LabelledVideo,
    first: &Tensor,
    net: &OmnimatteNet,
    second: SecondPlate,
    device: Device,
) -> anyhow::Result<Tensor> {
    let read: Vec<i64> = whole_video_frames(video.len()).collect();
    let SecondPlate {
        first_pass: config,
        quantile,
    } = second;
    let mut covers = HashMap::new();
    let progress = bar(
        video.len() as u64,
        "frames (first pass, for the background)",
    )?;
    each_frame_layers(video, Some(first), net, config, device, |out| {
        let t = out.index as i64;
        if read.contains(&t) {
            covers.insert(t, layers_cover(&out.layers).to_device(Device::Cpu));
        }
        progress.inc(1);
        Ok(())
    })?;
    progress.finish();
    background_plate(video, Some(&covers), quantile)
}

/// Names decompose writes in its output folder.
fn is_ours(name: &str) -> bool {
    ["layer_", "recon", "background", "removed_", "contact_sheet"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// A non-empty OUT is refused without `--overwrite`, so that two runs never mix.
fn refuse_earlier_results(args: &DecomposeArgs) -> anyhow::Result<()> {
    let out = &args.out;
    let holds_something = out.is_dir()
        && std::fs::read_dir(out)
            .with_context(|| format!("cannot read the output folder {}", out.display()))?
            .next()
            .is_some();
    anyhow::ensure!(
        args.overwrite || !holds_something,
        "the output folder {} is not empty: give an empty folder, or --overwrite to replace the results of an earlier run",
        out.display()
    );
    Ok(())
}

/// Checks, before any work, that the results can be written: OUT is empty (or, with
/// `overwrite`, cleared of earlier results) and writable, and `--save-weights` can be created.
fn prepare_outputs(args: &DecomposeArgs) -> anyhow::Result<()> {
    let out = &args.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output folder {}", out.display()))?;
    refuse_earlier_results(args)?;
    let entries: Vec<_> = std::fs::read_dir(out)
        .with_context(|| format!("cannot read the output folder {}", out.display()))?
        .filter_map(|e| e.ok())
        .collect();
    if !entries.is_empty() {
        for entry in entries {
            let name = entry.file_name().to_string_lossy().to_string();
            if !is_ours(&name) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let probe = out.join(".omnimatte-write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("the output folder {} is not writable", out.display()))?;
    std::fs::remove_file(&probe)?;
    if let Some(path) = &args.save_weights {
        anyhow::ensure!(
            args.ttt_steps > 0,
            "--save-weights needs --ttt-steps above 0: nothing would be fine-tuned"
        );
        let existed = path.exists();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write the weights to {}", path.display()))?;
        if !existed {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

pub fn run(args: DecomposeArgs) -> anyhow::Result<()> {
    gstomnimatte::allocator::keep_freed_memory();
    // What the arguments alone decide, before reading (decoding a long file takes minutes).
    let device = parse_device(&args.device)?;
    anyhow::ensure!(
        args.format != Format::Vp9,
        "--format vp9 has no alpha: layers need png or prores (vp9 is for --recon-format)"
    );
    refuse_earlier_results(&args)?;
    let mut video = read_input(
        &args.input,
        args.masks.as_deref(),
        args.hold_frames_mib.saturating_mul(1 << 20),
        &args.out,
    )?;
    let objects = video.labels.object_count(args.objects)?;
    // Weights fine-tuned before (`--save-weights`) run as after test-time training.
    let tuned_file = fine_tuned_weights(&args.weights);
    let config = args
        .layers
        .stream_config(objects, args.ttt_steps > 0 || tuned_file);
    for &k in &args.remove {
        anyhow::ensure!(
            (1..=objects).contains(&k),
            "--remove {k}: objects are numbered 1..={objects}"
        );
    }
    // Before the long work (stabilising, test-time training, decomposing): where the results
    // go.
    prepare_outputs(&args)?;
    if args.layers.stabilise {
        video.stabilise()?;
    }
    // A whole clip's median is made in the first frame's view, which a pan leaves: the
    // element's estimate, made as the frames come, follows it.
    let mut background_estimate = args.background_estimate;
    if background_estimate != BackgroundEstimate::Stream
        && args.background_plate.is_none()
        && video
            .camera
            .as_ref()
            .is_some_and(CameraShifts::leave_the_first_view)
    {
        eprintln!(
            "the camera pans beyond the first frame's view: the background is made as the \
             frames come (--background-estimate stream), not over the whole clip"
        );
        background_estimate = BackgroundEstimate::Stream;
    }
    let started = Instant::now();
    let out = &args.out;
    let size = video.frames.height_width();
    let fps = video.fps.unwrap_or((args.fps, 1));
    let mut layers = (1..=objects)
        .map(|k| VideoWriter::create(out, &format!("layer_{k:02}"), args.format, size, fps))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let recon_format = args.recon_format.unwrap_or(args.format);
    let mut recon = VideoWriter::create(out, "recon", recon_format, size, fps)?;
    let mut backgrounds = VideoWriter::create(out, "background", recon_format, size, fps)?;
    let mut removals = args
        .remove
        .iter()
        .map(|&k| VideoWriter::create(out, &format!("removed_{k:02}"), recon_format, size, fps))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let n = video.len();
    let sheet_frames: Vec<i64> = (0..args.contact_sheet.min(n))
        .map(|i| (2 * i + 1) * n / (2 * args.contact_sheet.min(n)))
        .collect();
    let mut sheet_rows = Vec::new();
    let plate = match &args.background_plate {
        Some(path) => {
            let plate = read_png(path)?;
            let want = [3, size.0, size.1];
            anyhow::ensure!(
                plate.size() == want,
                "{}: the background plate is {:?}, the frames {want:?} (RGB, the same size)",
                path.display(),
                plate.size()
            );
            Some(plate)
        }
        None => match background_estimate {
            BackgroundEstimate::WholeVideo | BackgroundEstimate::WholeVideoLayers => Some(
                background_plate(&video, None, args.layers.whole_video_quantile)?,
            ),
            BackgroundEstimate::Stream => None,
        },
    };
    let second_plate = (args.background_plate.is_none()
        && background_estimate == BackgroundEstimate::WholeVideoLayers)
        .then(|| SecondPlate {
            first_pass: args.layers.first_pass_config(objects, tuned_file),
            quantile: args.layers.whole_video_quantile,
        });
    let model = load_model(
        &args.weights,
        device,
        ClipSpec::default().length,
        args.precision,
    )?;
    let plate = decompose_video(
        &video,
        plate,
        second_plate,
        model,
        config,
        TestTimeTraining {
            steps: args.ttt_steps,
            batch: args.ttt_batch,
            mask_weight: args.ttt_mask_weight,
            interior_opacity: args.ttt_interior_opacity,
            warmup_steps: args.ttt_warmup_steps,
            save_weights: args.save_weights.as_deref(),
            zero_shot_output: args.layers.output_frame.resolve(tuned_file),
        },
        |frame| {
            // Where the frame as it came shows them, whether the camera shakes or not.
            let t = frame.index as i64;
            let frame_layers = frame.layers.to_device(Device::Cpu);
            for (k, writer) in layers.iter_mut().enumerate() {
                writer.write(frame.index, &frame_layers.get(k as i64))?;
            }
            let background = match args.background_mode {
                BackgroundOutput::Clean => &frame.background_estimate,
                BackgroundOutput::Residual => &frame.background,
            }
            .to_device(Device::Cpu);
            let removed: Vec<Tensor> = args
                .remove
                .iter()
                .map(|&k| {
                    remove_object(
                        &frame.layers.unsqueeze(1),
                        &frame.background.unsqueeze(0),
                        &frame.background_estimate.unsqueeze(0),
                        k as i64 - 1,
                    )
                    .squeeze_dim(0)
                    .to_device(Device::Cpu)
                })
                .collect();
            for (writer, image) in removals.iter_mut().zip(&removed) {
                writer.write(frame.index, image)?;
            }
            if sheet_frames.contains(&(frame.index as i64)) {
                // The frame as it came, beside its outputs.
                sheet_rows.push(SheetRow {
                    input: video.frame_as_it_came(t)?,
                    labels: video.labels.get(t)?,
                    layers: frame_layers.shallow_clone(),
                    background: background.shallow_clone(),
                    removed,
                });
            }
            backgrounds.write(frame.index, &background)?;
            let reconstruction = frame.reconstruction.to_device(Device::Cpu);
            recon.write(frame.index, &reconstruction)
        },
    )?;
    if !sheet_rows.is_empty() {
        write_png(&out.join("contact_sheet.png"), &contact_sheet(&sheet_rows))?;
    }
    for writer in layers
        .into_iter()
        .chain([recon, backgrounds])
        .chain(removals)
    {
        writer.finish()?;
    }
    let used = match plate {
        Some(plate) => plate,
        None => background_plate(&video, None, args.layers.whole_video_quantile)?,
    };
    write_png(&out.join("background.png"), &used)?;
    println!(
        "{} frames, {objects} object{} in {:.1} s: {}",
        video.len(),
        if objects == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
