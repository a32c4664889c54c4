//! `omnimatte bench`: speed of the element against the network work it cannot avoid.
//!
//! For each working size the input frames have that size, so no resizing is measured; then
//! for each input size (`--inputs`, 720p and 1080p by default) the frames have that size and
//! the network runs at the default working size, so conversion, resizing, upsampling and
//! detail transfer at full resolution are measured. Each row is measured once per precision
//! (`--precision`, fp32 and bf16 by default). Four numbers per row, frames per second over
//! the same synthetic frames:
//! - element: appsrc -> omnimatte -> fakesinks on src, every layer and background pad;
//! - core: `Decomposer::push` on tensors (the element minus GStreamer and conversions);
//! - network: the element's own network path per frame (`Decomposer::push_network_only`: one
//!   image encoding, one mask encoding per object, one transformer pass over the clip, one
//!   decode per object; twice that with `--mirror-average true`, the default), without
//!   background, upsampling and detail transfer;
//! - naive: a whole 5-frame clip forward per output frame, what a simple element would do.
//!
//! Every measurement runs the same weights (`--weights`; by default the bundled ones, as the
//! element loads them): what the layers cover decides how much of the background is remade.
//!
//! The network always gets frames of the working size (for an input row, the input frames
//! resized beforehand), so it is the bare network's time. The element's overhead is (element
//! time - network time) / network time, and each row splits a frame's time into the network,
//! the core's full-resolution work (masks and frame to the working size, background,
//! upsampling, detail transfer: core - network) and GStreamer's side (conversion, copies,
//! pads: element - core).

use anyhow::Context;
use gst::prelude::*;
use gstomnimatte::clip::{inference_plan, PREDICT_VISIBLE};
use gstomnimatte::model::loading::{load_model, parse_device, LoadedModel, WeightsSource};
use gstomnimatte::model::precision::hold_for_inference;
use gstomnimatte::model::{OmnimatteNet, PrecisionChoice};
use gstomnimatte::residual_effects::ResidualEffects;
use gstomnimatte::stream::{Decomposer, StreamConfig};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Working sizes HxW (the input frames have the same size); an empty string for none.
    #[arg(long, value_delimiter = ',', default_value = "128x224,256x448")]
    sizes: Vec<String>,
    /// Input sizes HxW larger than the working size, run at the default working size
    /// (128x224); an empty string for none.
    #[arg(long, value_delimiter = ',', default_value = "720x1280,1080x1920")]
    inputs: Vec<String>,
    /// Precisions to measure, each row once per precision (fp32, bf16, auto).
    #[arg(long, value_delimiter = ',', default_value = "fp32,bf16")]
    precision: Vec<PrecisionChoice>,
    /// Frames measured per size (after a warm-up of 8).
    #[arg(long, default_value_t = 40)]
    frames: usize,
    #[arg(long, default_value_t = 2)]
    objects: usize,
    /// Average each clip's layers with its mirror image's (true or false; the element's
    /// `mirror-average`): twice the network's work.
    #[arg(long, default_value_t = gstomnimatte::defaults::MIRROR_AVERAGE, action = clap::ArgAction::Set)]
    mirror_average: bool,
    /// Bring the background to each frame's exposure (true or false; the element's
    /// `exposure-match`).
    #[arg(long, default_value_t = gstomnimatte::defaults::EXPOSURE_MATCH, action = clap::ArgAction::Set)]
    exposure_match: bool,
    /// Give each object the darkening beside its mask (true or false; the element's
    /// `residual-shadows`).
    #[arg(long, default_value_t = gstomnimatte::defaults::RESIDUAL_SHADOWS, action = clap::ArgAction::Set)]
    residual_shadows: bool,
    /// Give each object the brighter residual of its colour beside its mask (true or false;
    /// the element's `residual-reflections`).
    #[arg(long, default_value_t = gstomnimatte::defaults::RESIDUAL_REFLECTIONS, action = clap::ArgAction::Set)]
    residual_reflections: bool,
    /// Clear the layers' alpha on ground nothing crossed (true or false; the element's
    /// `clear-still-ground`).
    #[arg(long, default_value_t = gstomnimatte::defaults::CLEAR_STILL_GROUND, action = clap::ArgAction::Set)]
    clear_still_ground: bool,
    /// Frames held at the start for the background's warm-up (the element's
    /// `background-warm-up`). 0 by default here: the rows measure the steady state, and the
    /// warm-up is a one-off cost at a stream's start (each held frame decomposed once more).
    #[arg(long, default_value_t = 0)]
    background_warm_up: usize,
    /// Safetensors weights for every measurement; empty: the bundled weights, as the element
    /// loads them (a seeded random initialisation where none exist, as in the element). The
    /// weights decide how much of the frame the layers cover, and so how much of the background
    /// the element remakes.
    #[arg(long, default_value = "")]
    weights: String,
    /// CPU threads for libtorch (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Which measurements to run (element, core, network, naive).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "element,core,network,naive"
    )]
    measure: Vec<String>,
}

const WARMUP: usize = 8;

/// A timed loop over the frames: seconds for the measured (post warm-up) frames.
type Measurement =
    fn(&OmnimatteNet, &StreamConfig, &[(Tensor, Tensor)], Device) -> anyhow::Result<f64>;
/// Element outputs before its timer starts (model loading and the first clips are excluded).
const ELEMENT_WARMUP_OUTPUTS: usize = 2;

fn parse_size(s: &str) -> anyhow::Result<(usize, usize)> {
    let (h, w) = s
        .split_once('x')
        .with_context(|| format!("size `{s}` is not HxW"))?;
    Ok((h.parse()?, w.parse()?))
}

/// Frames [3, H, W] in [0, 1] and label maps: squares moving over a gradient.
fn frames(n: usize, h: usize, w: usize, objects: usize) -> Vec<(Tensor, Tensor)> {
    let ys = Tensor::arange(h as i64, (Kind::Float, Device::Cpu)).view([1, h as i64, 1]) / h as f64;
    let xs = Tensor::arange(w as i64, (Kind::Float, Device::Cpu)).view([1, 1, w as i64]) / w as f64;
    let bg = Tensor::cat(
        &[
            (&ys * 0.5 + 0.2).expand([1, h as i64, w as i64], false),
            (&xs * 0.5 + 0.2).expand([1, h as i64, w as i64], false),
            (&ys + &xs) * 0.3,
        ],
        0,
    );
    let side = (h / 4) as i64;
    (0..n)
        .map(|i| {
            let frame = bg.copy();
            let labels = Tensor::zeros([h as i64, w as i64], (Kind::Uint8, Device::Cpu));
            for k in 0..objects {
                let x = ((i * 3 + k * w / 3) % (w - side as usize)) as i64;
                let y = ((k * h / 3) % (h - side as usize)) as i64;
                let _ = frame
                    .narrow(1, y, side)
                    .narrow(2, x, side)
                    .fill_(0.9 - 0.2 * k as f64);
                let _ = labels
                    .narrow(0, y, side)
                    .narrow(1, x, side)
                    .fill_(k as i64 + 1);
            }
            (frame, labels)
        })
        .collect()
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn fps(frames: usize, secs: f64) -> f64 {
    frames as f64 / secs
}

/// One row of the table: the network at `working`, fed frames of size `input`.
#[derive(Debug, Clone, Copy)]
struct Row {
    working: (usize, usize),
    input: (usize, usize),
    precision: PrecisionChoice,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(t) = args.threads {
        tch::set_num_threads(t);
    }
    let device = parse_device(&args.device)?;
    // The element's allocator setting, for every measurement alike (see gstomnimatte::allocator).
    gstomnimatte::allocator::keep_freed_memory();
    gst::init()?;
    gstomnimatte::plugin_register_static()?;
    let weights = match load_model(
        &args.weights,
        device,
        StreamConfig::default().clip.length,
        PrecisionChoice::Fp32,
    )?
    .source
    {
        WeightsSource::File(path) => path.display().to_string(),
        WeightsSource::RandomInit => "NONE FOUND, a seeded random initialisation".into(),
    };
    println!(
        "omnimatte bench: device {device:?}, {} libtorch CPU threads, {} objects, {} frames per row (+{WARMUP} warm-up), weights {weights}",
        tch::get_num_threads(),
        args.objects,
        args.frames
    );
    for p in &args.precision {
        let precision = p.resolve(device);
        println!("precision {p:?} computes in {}", precision.name());
        if let Some(warning) = precision.emulation_warning(device) {
            println!("  warning: {warning}");
        }
    }
    let default_working = (
        gstomnimatte::defaults::WORKING_HEIGHT as usize,
        gstomnimatte::defaults::WORKING_WIDTH as usize,
    );
    let mut rows = Vec::new();
    for size in args.sizes.iter().filter(|s| !s.is_empty()) {
        let working = parse_size(size)?;
        rows.push((working, working));
    }
    for size in args.inputs.iter().filter(|s| !s.is_empty()) {
        rows.push((default_working, parse_size(size)?));
    }
    println!(
        "{:>9} {:>10} {:>5} {:>12} {:>10} {:>12} {:>10} {:>9} | {:>31}",
        "working",
        "input",
        "prec",
        "element fps",
        "core fps",
        "network fps",
        "naive fps",
        "overhead",
        "ms/frame: network+full-res+gst"
    );
    for &(working, input) in &rows {
        for &precision in &args.precision {
            let row = Row {
                working,
                input,
                precision,
            };
            measure_row(&args, device, row)?;
        }
    }
    Ok(())
}

/// Measures and prints one row.
fn measure_row(args: &BenchArgs, device: Device, row: Row) -> anyhow::Result<()> {
    let ((wh, ww), (ih, iw)) = (row.working, row.input);
    let config = StreamConfig {
        working_height: wh as i64,
        working_width: ww as i64,
        objects: args.objects,
        mirror_average: args.mirror_average,
        exposure_match: args.exposure_match,
        residual: ResidualEffects {
            shadows: args.residual_shadows,
            reflections: args.residual_reflections,
        },
        warm_up_frames: args.background_warm_up,
        clear_still_ground: args.clear_still_ground,
        ..StreamConfig::default()
    };
    let total = args.frames + WARMUP;
    // Each measurement runs on a thread of its own, as the element's worker does: libtorch's
    // OpenMP team belongs to the calling thread, and a team left idle by one measurement would
    // spin against the next one on a small machine. Tensors are not Sync, so every thread
    // loads the same network and makes the same frames.
    let measure = |f: Measurement, (h, w): (usize, usize)| {
        on_own_thread(|| {
            let model = network(&args.weights, device, row.precision, &config)?;
            f(
                &model.net,
                &config,
                &frames(total, h, w, args.objects),
                device,
            )
        })
    };
    // A measurement left out with --measure shows as NaN.
    let run = |name: &str, f: &dyn Fn() -> anyhow::Result<f64>| -> anyhow::Result<f64> {
        if args.measure.iter().any(|m| m == name) {
            f()
        } else {
            Ok(f64::NAN)
        }
    };
    let element = run("element", &|| {
        let buffers = frame_bytes(total, ih, iw, args.objects)?;
        on_own_thread(|| time_element(args, row, buffers))
    })?;
    // The bare network: frames of the working size whatever the input size.
    let network = run("network", &|| measure(time_network, row.working))?;
    let core = run("core", &|| measure(time_core, row.input))?;
    let naive = run("naive", &|| measure(time_naive, row.working))?;
    let n = args.frames as f64;
    let ms = |secs: f64| 1000.0 * secs / n;
    println!(
        "{:>9} {:>10} {:>5} {:>12.2} {:>10.2} {:>12.2} {:>10.2} {:>8.1}% | {:>9.1} + {:>8.1} + {:>8.1}",
        format!("{wh}x{ww}"),
        format!("{ih}x{iw}"),
        row.precision.resolve(device).name(),
        fps(args.frames, element),
        fps(args.frames, core),
        fps(args.frames, network),
        fps(args.frames, naive),
        100.0 * (element - network) / network,
        ms(network),
        ms(core - network),
        ms(element - core),
    );
    Ok(())
}

/// The network the element would run with these weights and precision.
fn network(
    weights: &str,
    device: Device,
    precision: PrecisionChoice,
    config: &StreamConfig,
) -> anyhow::Result<LoadedModel> {
    let model = load_model(weights, device, config.clip.length, precision)?;
    // As the element holds them when it does not train.
    hold_for_inference(&model.vs, model.precision);
    Ok(model)
}

fn on_own_thread<T: Send>(f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    std::thread::scope(|scope| scope.spawn(f).join().expect("benchmark thread panicked"))
}

/// The inference pattern of a frame that looks back (by default [1,1,1,0,0]: two frames before
/// it and the output frame seen) as a [1, T] tensor.
fn predict_pattern(config: &StreamConfig, device: Device) -> Tensor {
    let looks_back = config.clip.look_back();
    let plan = inference_plan(config.clip, looks_back, None, config.output_frame);
    let v: Vec<f32> = plan.visible.into_iter().map(|v| v as u8 as f32).collect();
    Tensor::from_slice(&v).view([1, -1]).to_device(device)
}

/// Seconds for the measured frames of a loop that processes frame i per call.
fn timed(
    total: usize,
    device: Device,
    mut step: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let mut start = Instant::now();
    for i in 0..total {
        if i == WARMUP {
            sync(device);
            start = Instant::now();
        }
        step(i)?;
    }
    sync(device);
    Ok(start.elapsed().as_secs_f64())
}

fn time_core(
    net: &OmnimatteNet,
    config: &StreamConfig,
    input: &[(Tensor, Tensor)],
    device: Device,
) -> anyhow::Result<f64> {
    let mut dec = Decomposer::new(config.clone(), device)?;
    timed(input.len(), device, |i| {
        dec.push(net, &input[i].0, &input[i].1)?;
        Ok(())
    })
}

fn time_network(
    net: &OmnimatteNet,
    config: &StreamConfig,
    input: &[(Tensor, Tensor)],
    device: Device,
) -> anyhow::Result<f64> {
    // The element's own network path (Decomposer::push_network_only): everything but the
    // background, upsampling and detail transfer.
    let mut dec = Decomposer::new(config.clone(), device)?;
    timed(input.len(), device, |i| {
        dec.push_network_only(net, &input[i].0, &input[i].1)?;
        Ok(())
    })
}

fn time_naive(
    net: &OmnimatteNet,
    config: &StreamConfig,
    input: &[(Tensor, Tensor)],
    device: Device,
) -> anyhow::Result<f64> {
    let (t, l) = (config.clip.length as i64, config.objects as i64);
    let visible = predict_pattern(config, device);
    tch::no_grad(|| {
        timed(input.len(), device, |i| {
            let idx: Vec<usize> = (0..t as usize).map(|k| (i + k) % input.len()).collect();
            let frames = Tensor::stack(
                &idx.iter()
                    .map(|&j| input[j].0.shallow_clone())
                    .collect::<Vec<_>>(),
                0,
            )
            .unsqueeze(0)
            .to_device(device)
                * 2.0
                - 1.0;
            let masks = Tensor::stack(
                &(1..=l)
                    .map(|k| {
                        Tensor::stack(
                            &idx.iter()
                                .map(|&j| input[j].1.eq(k).to_kind(Kind::Float).unsqueeze(0))
                                .collect::<Vec<_>>(),
                            0,
                        )
                    })
                    .collect::<Vec<_>>(),
                0,
            )
            .unsqueeze(0)
            .to_device(device);
            // A network that sees the background: the first frame stands in for it (the
            // cost is the same).
            let frames = net.image_input(&frames, &frames.narrow(1, 0, 1));
            let _ = net.forward_frame(&frames, &masks, &visible, PREDICT_VISIBLE as i64)?;
            Ok(())
        })
    })
}

/// The frames as packed RGB and label bytes, made on a thread that ends before the element
/// runs (so that only the element's worker holds a libtorch thread team).
fn frame_bytes(
    total: usize,
    h: usize,
    w: usize,
    objects: usize,
) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    on_own_thread(|| {
        let to_bytes = |t: &Tensor| -> Vec<u8> {
            let t = t.contiguous();
            let mut v = vec![0u8; t.numel()];
            t.copy_data(&mut v, t.numel());
            v
        };
        Ok(frames(total, h, w, objects)
            .iter()
            .map(|(f, l)| {
                (
                    to_bytes(&(f * 255.0).round().to_kind(Kind::Uint8).permute([1, 2, 0])),
                    to_bytes(l),
                )
            })
            .collect())
    })
}

/// Seconds from the first measured buffer to EOS through a real pipeline.
fn time_element(
    args: &BenchArgs,
    row: Row,
    buffers: Vec<(Vec<u8>, Vec<u8>)>,
) -> anyhow::Result<f64> {
    let ((wh, ww), (h, w)) = (row.working, row.input);
    let precision = match row.precision {
        PrecisionChoice::Auto => "auto",
        PrecisionChoice::Fp32 => "fp32",
        PrecisionChoice::Bf16 => "bf16",
    };
    let total = buffers.len();
    // The element's own default where no file is named.
    let weights = match args.weights.as_str() {
        "" => String::new(),
        path => format!(" weights=\"{path}\""),
    };
    let layers: String = (1..=args.objects)
        .map(|k| format!(" om.layer_{k} ! fakesink sync=false"))
        .collect();
    let desc = format!(
        "appsrc name=video format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate=25/1 ! \
         omnimatte name=om objects={o} working-height={wh} working-width={ww} device={d} precision={precision} mirror-average={m} exposure-match={e} residual-shadows={r} residual-reflections={rr} clear-still-ground={cs} background-warm-up={wu}{weights} ! fakesink sync=false \
         appsrc name=mask format=time caps=video/x-raw,format=GRAY8,width={w},height={h},framerate=25/1 ! om.mask \
         om.background ! fakesink sync=false{layers}",
        o = args.objects,
        d = args.device,
        m = args.mirror_average,
        e = args.exposure_match,
        r = args.residual_shadows,
        rr = args.residual_reflections,
        cs = args.clear_still_ground,
        wu = args.background_warm_up
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let appsrc = |name: &str| {
        pipeline
            .by_name(name)
            .expect("appsrc")
            .downcast::<gst_app::AppSrc>()
            .expect("appsrc")
    };
    let (video, mask) = (appsrc("video"), appsrc("mask"));
    let duration = gst::ClockTime::SECOND / 25;
    // Every frame is queued at once; timing starts at the element's ELEMENT_WARMUP_OUTPUTS-th output.
    let sink = pipeline
        .by_name("om")
        .expect("om")
        .static_pad("src")
        .expect("src pad");
    let produced = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    {
        let (produced, started) = (produced.clone(), started.clone());
        sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if produced.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
                == ELEMENT_WARMUP_OUTPUTS
            {
                *started.lock().unwrap() = Some(Instant::now());
            }
            gst::PadProbeReturn::Ok
        });
    }
    pipeline.set_state(gst::State::Playing)?;
    for (i, (rgb, labels)) in buffers.into_iter().enumerate() {
        for (src, bytes) in [(&video, rgb), (&mask, labels)] {
            let mut buffer = gst::Buffer::from_mut_slice(bytes);
            let b = buffer.get_mut().expect("writable");
            b.set_pts(duration * i as u64);
            b.set_duration(duration);
            src.push_buffer(buffer)?;
        }
    }
    video.end_of_stream()?;
    mask.end_of_stream()?;
    let msg = pipeline
        .bus()
        .expect("bus")
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(3600),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .context("no end of stream")?;
    let end = Instant::now();
    pipeline.set_state(gst::State::Null)?;
    if let gst::MessageView::Error(e) = msg.view() {
        anyhow::bail!("element pipeline failed: {} ({:?})", e.error(), e.debug());
    }
    let start = started
        .lock()
        .unwrap()
        .context("warm-up frames never came out")?;
    let measured = total - ELEMENT_WARMUP_OUTPUTS;
    Ok(end.duration_since(start).as_secs_f64() * args.frames as f64 / measured as f64)
}
