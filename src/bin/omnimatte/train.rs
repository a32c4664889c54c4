//! `omnimatte train`: pretraining on synthetic scenes generated on the fly.
//!
//! Checkpoints are all or nothing (`gstomnimatte::checkpoint`): the weights, AdamW's moment
//! estimates and the state of one step in `<out>.ckpt`, so `--resume` continues the schedule
//! and the optimiser exactly where they stopped; `--out` itself holds the latest weights.
//! Every step's losses go to `--log` (JSON lines), once per step also across resumes.

use crate::progress;
use anyhow::Context;
use gstomnimatte::augment::RandomCrop;
use gstomnimatte::checkpoint;
use gstomnimatte::clip::{ClipSpec, HiddenPattern};
use gstomnimatte::model::loading::parse_device;
use gstomnimatte::model::weights::{self, Storage};
use gstomnimatte::model::{
    background_input, check_working_size, ModelConfig, OmnimatteNet, PrecisionChoice,
};
use gstomnimatte::supervision::{SupervisedFrames, SupervisionSchedule, SupervisionWeighting};
use gstomnimatte::synth::{training_batch, SceneFamily, SynthConfig, TrainingBatchSpec};
use gstomnimatte::train::{Batch, TrainConfig, Trainer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Weights file to write (safetensors); its checkpoint state goes beside it as .json.
    #[arg(long)]
    out: PathBuf,
    /// Total optimisation steps (the schedule's clock).
    #[arg(long, default_value_t = 3000)]
    steps: u64,
    /// Clips per step; all clips of a step have the same number of objects. The bundled
    /// weights were trained at 2: on a 2-core CPU, batch 8 cost twice as much a clip
    /// (docs/training.md, sitting 23).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// AdamW learning rate. The paper's 1e-3 is for batch 128; at batch 2 on 64x64 scenes it
    /// stalled the mask term for 200 steps where 3e-4 learnt it in 100 (measured).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Training scenes are SIZE high and, unless --scene-width says otherwise, SIZE wide; the
    /// positional tables are learnt SIZE / 16 tokens long.
    #[arg(long, default_value_t = 128)]
    size: i64,
    /// Width of the training scenes (default SIZE): SIZE x SCENE_WIDTH. The positional tables
    /// stay SIZE long and are resized to it, as inference resizes them to its working width
    /// (128x224 by default: docs/training.md, sitting 11).
    #[arg(long)]
    scene_width: Option<i64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue from --out and its .json.
    #[arg(long)]
    resume: bool,
    /// Write a checkpoint every N steps.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    /// Also keep a copy of the weights every N steps (<out>.step<N>.safetensors), for the
    /// learning curve and for picking a checkpoint on the validation set; 0 keeps none.
    #[arg(long, default_value_t = 0)]
    keep_every: u64,
    /// Loss log (JSON lines); default <out>.log.jsonl.
    #[arg(long)]
    log: Option<PathBuf>,
    /// auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Train on whole frames: no random-crop augmentation (by default 80% of clips lose up to
    /// 10% of each edge and are resized back, as in the reference).
    #[arg(long)]
    no_crop: bool,
    /// Also write a 16-bit copy for bundling (<out> with .f16.safetensors).
    #[arg(long)]
    half: bool,
    /// Compute precision: auto (bf16 where the CPU has AMX-BF16 or AVX512-BF16; fp32 otherwise
    /// and on a GPU), fp32 or bf16. Weights and AdamW's state stay fp32 either way.
    #[arg(long, default_value = "auto")]
    precision: PrecisionChoice,
    /// Weight lambda_s of the supervised term on the synthetic scenes' true layers (0: the
    /// paper's losses only).
    #[arg(long, default_value_t = 1.0)]
    supervision: f64,
    /// Share of training clips from the `world` scene family (photographs, walkers, light
    /// from any side, camera and mask errors); the rest are `classic` scenes.
    #[arg(long, default_value_t = 0.6)]
    world_share: f64,
    /// Photographs for world scenes (PHOTOS/train; scripts/photos.sh).
    #[arg(long, default_value = "data/photos")]
    photos: PathBuf,
    /// Objects per training scene, inclusive range.
    #[arg(long, default_value_t = 1)]
    min_objects: usize,
    #[arg(long, default_value_t = 5)]
    max_objects: usize,
    /// How the supervised term weighs pixels: uniform (the mean over the frame),
    /// region-balanced (the input mask, the effects outside it and the rest count alike) or
    /// mixed:W (the mean plus W times the region-balanced sum; docs/training.md compares them).
    #[arg(long, default_value = "uniform")]
    supervision_weighting: SupervisionWeighting,
    /// Frames the supervised term is paid on: all, or seen (the frames whose image the network
    /// sees; hidden frames get the game's losses only: docs/training.md, sitting 10).
    #[arg(long, default_value = "all")]
    supervised_frames: SupervisedFrames,
    /// Fade lambda_s linearly to a tenth of itself between these two steps: FROM,TO.
    #[arg(long, value_parser = parse_fade)]
    supervision_fade: Option<(u64, u64)>,
    /// Frames hidden at random in each 5-frame training clip (the game's losses are paid on
    /// them; the supervised term on every frame). 3 as in the reference; 2 matches inference
    /// with the output frame seen (3 images, 2 masks-only frames).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=4))]
    hidden_frames: u64,
    /// Share of clips shown as inference shows them, [1,1,1,0,0] or its mirror (the output
    /// frame seen, two masks-only frames ahead), instead of `--hidden-frames` at random
    /// (docs/training.md, sitting 26). 0: random patterns only.
    #[arg(long, default_value_t = 0.0)]
    inference_pattern_share: f64,
    /// Show the network each frame's difference to the background estimate beside it (three
    /// more input channels; docs/training.md, sitting 9). Weights without it resume into it with zeros
    /// for the new channels, so training starts from the same network.
    #[arg(long)]
    background_input: bool,
    /// Learning rate of the background's input channels (default: --lr). They start from
    /// zero when weights without them are resumed, and learn nothing useful at an annealing
    /// rate (docs/training.md, sitting 9): the paper's pretraining rate 1e-3 suits them.
    #[arg(long, requires = "background_input")]
    background_lr: Option<f64>,
    /// Share of clips whose shown background (--background-input) leaves out the scenes' true
    /// effects as well as the masks: the near-clean background `decompose`'s second median
    /// gives (docs/training.md, sitting 13). 0 shows every clip the masks-only median.
    #[arg(long, default_value_t = 0.0, requires = "background_input")]
    median_without_effects_share: f64,
    /// Threads generating scenes (default: 1 when training on the CPU, whose other cores the
    /// network needs; all cores but one when training on a GPU, which otherwise waits for
    /// scenes: about 200 ms of a core a clip). Each thread has its own seeded stream and the
    /// steps take their batches from the threads in turn, so a run is reproducible for a given
    /// count (1 gives the stream of runs before this option); the count is logged and saved.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    generator_threads: Option<u64>,
}

impl TrainArgs {
    fn scene_width(&self) -> i64 {
        self.scene_width.unwrap_or(self.size)
    }

    /// The generator threads asked for, or the default for training on `device`.
    fn generator_threads(&self, device: tch::Device) -> u64 {
        self.generator_threads.unwrap_or_else(|| {
            if device.is_cuda() {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
                cores.saturating_sub(1).clamp(1, 64)
            } else {
                1
            }
        })
    }
}

/// A share of clips must lie in [0, 1].
fn ensure_share(flag: &str, share: f64) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&share),
        "{flag} is a share of clips in [0, 1], got {share}"
    );
    Ok(())
}

fn parse_fade(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected FROM,TO steps, got {s:?}"))?;
    let parse = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|e| format!("{x:?} is not a step: {e}"))
    };
    let (from, to) = (parse(a)?, parse(b)?);
    if to <= from {
        return Err(format!(
            "the fade must end after it starts, got {from},{to}"
        ));
    }
    Ok((from, to))
}

impl TrainArgs {
    fn supervision_schedule(&self) -> SupervisionSchedule {
        match self.supervision_fade {
            Some((fade_from, fade_to)) => SupervisionSchedule {
                initial: self.supervision,
                fade_from,
                fade_to,
                final_fraction: 0.1,
            },
            None => SupervisionSchedule::constant(self.supervision),
        }
    }
}

fn state_path(out: &Path) -> PathBuf {
    out.with_extension("json")
}

/// Where checkpoints before the all-or-nothing folders kept AdamW's state.
fn legacy_optimizer_path(out: &Path) -> PathBuf {
    out.with_extension("optim.safetensors")
}

/// An all-or-nothing checkpoint of `step` (`gstomnimatte::checkpoint`).
fn save(vs: &nn::VarStore, trainer: &Trainer, args: &TrainArgs, step: u64) -> anyhow::Result<()> {
    let files = checkpoint::begin(&args.out, step)?;
    weights::save(vs, &files.weights, Storage::F32)?;
    trainer.save_optimizer(&files.optimizer)?;
    let state = serde_json::json!({
        "seed": args.seed, "size": args.size, "scene_width": args.scene_width(), "batch": args.batch, "lr": args.lr,
        "supervision": args.supervision, "world_share": args.world_share,
        "supervision_weighting": format!("{:?}", args.supervision_weighting),
        "supervised_frames": format!("{:?}", args.supervised_frames),
        "hidden_frames": args.hidden_frames,
        "inference_pattern_share": args.inference_pattern_share, "background_input": args.background_input,
        "background_lr": args.background_lr,
        "median_without_effects_share": args.median_without_effects_share,
        "generator_threads": args.generator_threads(vs.device()),
    });
    checkpoint::publish(&args.out, files, state)?;
    if args.half {
        weights::save(
            vs,
            &args.out.with_extension("f16.safetensors"),
            Storage::F16,
        )?;
    }
    Ok(())
}

/// Drops the log lines of steps at or after `start`: a resumed run writes them again.
fn truncate_log(path: &Path, start: u64) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|step| step < start)
        })
        .collect();
    gstomnimatte::whole_file::replace(
        path,
        kept.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
}

/// Batches of fresh scenes for steps `start..args.steps`, made on `--generator-threads` threads
/// of their own, each handing over through a channel that holds two. Step `start + i` takes
/// its batch from thread `i % threads`, so the order does not depend on the threads' timing.
struct BatchStream {
    threads: Vec<std::sync::mpsc::Receiver<anyhow::Result<Batch>>>,
    next: usize,
}

impl BatchStream {
    fn spawn(args: &TrainArgs, start: u64, threads: u64) -> anyhow::Result<Self> {
        let steps = args.steps.saturating_sub(start);
        let receivers = (0..threads)
            .map(|thread| {
                // Thread `thread` makes the batches of steps thread, thread + threads, ...
                let count = steps.saturating_sub(thread).div_ceil(threads);
                spawn_batch_generator(args, start, thread, count)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            threads: receivers,
            next: 0,
        })
    }

    fn recv(&mut self) -> anyhow::Result<Batch> {
        let batch = self.threads[self.next]
            .recv()
            .context("the scene generator stopped")??;
        self.next = (self.next + 1) % self.threads.len();
        Ok(batch)
    }
}

/// One generator thread: `count` batches from the seeded stream of (`--seed`, `start`, `thread`).
fn spawn_batch_generator(
    args: &TrainArgs,
    start: u64,
    thread: u64,
    count: u64,
) -> anyhow::Result<std::sync::mpsc::Receiver<anyhow::Result<Batch>>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    let (height, width) = (args.size, args.scene_width());
    let (min_objects, max_objects) = (args.min_objects, args.max_objects);
    let (photos, world_share, batch, no_crop, shown_background) = (
        args.photos.clone(),
        args.world_share,
        args.batch,
        args.no_crop,
        args.background_input,
    );
    let median_without_effects_share = args.median_without_effects_share;
    let hidden = HiddenPattern::RandomOrInference {
        count: args.hidden_frames as usize,
        inference_share: args.inference_pattern_share,
    };
    // A fresh stream of scenes per resume point, so resumed runs do not repeat scenes; thread
    // 0's is the single generator's stream of before `--generator-threads`.
    let seed = args
        .seed
        .wrapping_mul(1_000_003)
        .wrapping_add(start)
        .wrapping_add(thread.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    std::thread::Builder::new()
        .name(format!("scene-generator-{thread}"))
        .spawn(move || {
            // The photo library is not Send: it is loaded here.
            let photos = match crate::synth::photo_library(&photos, SceneFamily::World) {
                Ok(photos) => photos,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let spec = TrainingBatchSpec {
                scenes: SynthConfig {
                    height,
                    width,
                    min_objects,
                    max_objects,
                    photos,
                    ..SynthConfig::default()
                },
                world_share,
                clip: ClipSpec::default(),
                batch_size: batch as usize,
                hidden,
                crop: (!no_crop).then(RandomCrop::default),
                shown_background,
                median_without_effects_share,
            };
            let mut rng = StdRng::seed_from_u64(seed);
            for _ in 0..count {
                if tx.send(Ok(training_batch(&spec, &mut rng))).is_err() {
                    return; // training stopped
                }
            }
        })?;
    Ok(rx)
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.min_objects >= 1 && args.max_objects >= args.min_objects,
        "objects per scene: need 1 <= --min-objects <= --max-objects, got {}..{}",
        args.min_objects,
        args.max_objects
    );
    ensure_share(
        "--median-without-effects-share",
        args.median_without_effects_share,
    )?;
    ensure_share("--inference-pattern-share", args.inference_pattern_share)?;
    ensure_share("--world-share", args.world_share)?;
    check_working_size(args.size, args.scene_width())
        .context("training scenes (--size, --scene-width)")?;
    let device = parse_device(&args.device)?;
    let generator_threads = args.generator_threads(device);
    gstomnimatte::allocator::keep_freed_memory();
    tch::manual_seed(args.seed as i64);
    let mut vs = nn::VarStore::new(device);
    let precision = args.precision.resolve(device);
    eprintln!(
        "train: computing in {} on {device:?}, scenes from {} generator thread(s)",
        precision.name(),
        generator_threads
    );
    if let Some(warning) = precision.emulation_warning(device) {
        eprintln!("warning: {warning}");
    }
    let config = ModelConfig {
        train_height: args.size,
        train_width: args.size,
        precision,
        background_input: args.background_input,
        ..ModelConfig::default()
    };
    let net = OmnimatteNet::new(&vs.root(), config)?;
    let mut start = 0;
    let mut optimizer_state = None;
    if args.resume {
        match checkpoint::load(&args.out)? {
            Some(published) => {
                weights::load(&mut vs, &published.weights)?;
                start = published.step;
                optimizer_state = Some(published.optimizer);
            }
            None => {
                // Weights with a .json beside them (the bundled weights, or a checkpoint of
                // before the all-or-nothing folders).
                weights::load(&mut vs, &args.out)?;
                let state: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(state_path(&args.out))
                        .context("reading the checkpoint state")?,
                )?;
                start = state["step"]
                    .as_u64()
                    .context("checkpoint state has no step")?;
                let legacy = legacy_optimizer_path(&args.out);
                if legacy.exists() {
                    eprintln!(
                        "warning: resuming from {} without a checkpoint folder: its optimiser state {} may be of another step",
                        args.out.display(),
                        legacy.display()
                    );
                    optimizer_state = Some(legacy);
                }
            }
        }
    }
    let mut trainer = Trainer::new(
        &vs,
        TrainConfig {
            learning_rate: args.lr,
            supervision: args.supervision_schedule(),
            supervision_weighting: args.supervision_weighting,
            supervised_frames: args.supervised_frames,
            ..TrainConfig::pretraining()
        },
    )?;
    trainer.set_step_count(start);
    if let Some(background_lr) = args.background_lr {
        trainer.scale_learning_rate(
            background_input::FIRST_CONVOLUTION,
            &background_input::learning_rate_scale(background_lr / args.lr),
        )?;
    }
    if args.resume {
        match &optimizer_state {
            Some(state) => trainer.load_optimizer(state)?,
            None => eprintln!(
                "warning: no optimiser state for {}: AdamW's moment estimates start afresh",
                args.out.display()
            ),
        }
    }
    // Scenes are generated on threads of their own, two batches ahead, while the network
    // trains on the previous batch: generation is serial fp32 work that otherwise leaves the
    // second core idle (and a GPU waiting). Seeded streams taken in turn keep runs reproducible.
    let mut batches = BatchStream::spawn(&args, start, generator_threads)?;
    let log_path = args
        .log
        .clone()
        .unwrap_or_else(|| args.out.with_extension("log.jsonl"));
    if args.resume {
        truncate_log(&log_path, start)?;
    }
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;

    let bar = progress::bar(args.steps, "steps")?.with_position(start);
    let began = Instant::now();
    for step in start..args.steps {
        let batch = batches.recv()?.to_device(device);
        let report = trainer.step(&net, &batch)?;
        let rate = (step + 1 - start) as f64 / began.elapsed().as_secs_f64();
        bar.set_message(format!(
            "loss {:.4} (recon {:.4}, sup {:.4}) {:.2} steps/s",
            report.total, report.reconstruction, report.supervised, rate
        ));
        bar.inc(1);
        writeln!(
            log,
            "{}",
            serde_json::json!({
                "step": report.step, "total": report.total, "reconstruction": report.reconstruction,
                "alpha_regularization": report.alpha_regularization, "mask": report.mask,
                "lambda_m": report.lambda_m, "supervised": report.supervised,
                "lambda_s": report.lambda_s, "seconds": began.elapsed().as_secs_f64()
            })
        )?;
        if (step + 1) % args.checkpoint_every == 0 || step + 1 == args.steps {
            save(&vs, &trainer, &args, step + 1)?;
        }
        if args.keep_every > 0 && (step + 1) % args.keep_every == 0 {
            let copy = args
                .out
                .with_extension(format!("step{}.safetensors", step + 1));
            weights::save(&vs, &copy, Storage::F32)?;
        }
    }
    bar.finish();
    save(&vs, &trainer, &args, args.steps.max(start))?;
    println!(
        "weights: {} (step {}), log: {}",
        args.out.display(),
        args.steps.max(start),
        log_path.display()
    );
    Ok(())
}
