//! The README's pipelines, run as written (paths into a scratch folder, a tiny working size,
//! displays replaced by fakesinks), plus seeking in a file pipeline.

#[path = "common/gst_helpers.rs"]
mod helpers;

use gst::prelude::*;
use helpers::*;
use std::path::Path;
use std::time::Duration;

const W: usize = 80;
const H: usize = 64;

/// The pipeline under `<!-- pipeline-test: NAME -->` in the README, without `gst-launch-1.0`.
fn readme_pipeline(name: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let marker = format!("<!-- pipeline-test: {name} -->");
    let block = readme.split(&marker).nth(1).expect("marker in README");
    let body = block
        .split("```")
        .nth(1)
        .expect("code block after the marker");
    let joined = body.trim_start_matches("sh").replace("\\\n", " ");
    let cmd = joined.trim();
    let rest = cmd
        .strip_prefix("gst-launch-1.0")
        .expect("a gst-launch-1.0 command")
        .trim();
    rest.strip_prefix("-e").unwrap_or(rest).trim().to_string()
}

fn adapt(pipeline: &str, dir: &Path) -> String {
    pipeline
        .replace("location=in/", &format!("location={}/in/", dir.display()))
        .replace("location=out/", &format!("location={}/out/", dir.display()))
        .replace(
            "omnimatte name=om",
            "omnimatte name=om working-height=64 working-width=64",
        )
        .replace("autovideosink", "fakesink sync=true")
}

/// Writes frames as a PNG sequence through appsrc ! pngenc ! multifilesink.
fn write_pngs(location: &Path, format: &str, frames: &[Vec<u8>], w: usize, h: usize) {
    std::fs::create_dir_all(location.parent().unwrap()).unwrap();
    let desc = format!(
        "appsrc name=video format=time caps=video/x-raw,format={format},width={w},height={h},framerate={FPS}/1 ! pngenc ! multifilesink location={}",
        location.display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let result = run(&p, Duration::from_secs(30), |p| {
        let src = appsrc(p, "video");
        push_timed(&src, frames);
        src.end_of_stream().unwrap();
    });
    assert!(result.error.is_none(), "{:?}", result.error);
}

fn write_dataset(dir: &Path, n: usize) -> Vec<Frame> {
    let video = synthetic_video(n, W, H);
    let rgb: Vec<Vec<u8>> = video.iter().map(|v| v.0.clone()).collect();
    let masks: Vec<Vec<u8>> = video.iter().map(|v| v.1.clone()).collect();
    write_pngs(&dir.join("in/rgb/%05d.png"), "RGB", &rgb, W, H);
    write_pngs(&dir.join("in/mask/%05d.png"), "GRAY8", &masks, W, H);
    video
}

fn count(dir: &Path, prefix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(prefix)
        })
        .count()
}

#[test]
fn readme_png_pipeline_writes_every_layer_of_every_frame() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let n = 12;
    let video = write_dataset(dir.path(), n);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let desc = adapt(&readme_pipeline("png"), dir.path());
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let result = run(&p, Duration::from_secs(120), |_| {});
    assert!(result.error.is_none(), "{:?}", result.error);
    let out = dir.path().join("out");
    for prefix in ["recon_", "layer1_", "layer2_", "background_"] {
        assert_eq!(count(&out, prefix), n, "{prefix} files");
    }

    // Decode them back: RGBA with alpha, and the reconstruction matches the input.
    let decode = |file: &str| -> Vec<u8> {
        let desc = format!("filesrc location={}/{file} ! pngdec ! videoconvert ! video/x-raw,format=RGBA ! appsink name=out sync=false", out.display());
        let p = gst::parse::launch(&desc)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let r = run(&p, Duration::from_secs(30), |_| {});
        assert!(r.error.is_none(), "{:?}", r.error);
        r.outputs["out"][0].bytes.clone()
    };
    let recon = decode("recon_00005.png");
    assert!(psnr_rgb(&recon, &video[5].0) > 40.0);
    let layer = decode("layer1_00005.png");
    assert_eq!(layer.len(), W * H * 4);
    let alphas: std::collections::HashSet<u8> = layer.chunks(4).map(|px| px[3]).collect();
    assert!(alphas.len() > 1, "layer alpha is constant: {alphas:?}");
}

/// Every frame of a media file, decoded to RGBA.
fn decode_frames(file: &Path, decoder: &str) -> Vec<Vec<u8>> {
    let desc = format!(
        "filesrc location={} ! {decoder} ! videoconvert ! video/x-raw,format=RGBA ! appsink name=out sync=false",
        file.display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let r = run(&p, Duration::from_secs(60), |_| {});
    assert!(r.error.is_none(), "{}: {:?}", file.display(), r.error);
    r.outputs["out"].iter().map(|b| b.bytes.clone()).collect()
}

fn run_readme(name: &str, dir: &Path) {
    let desc = adapt(&readme_pipeline(name), dir);
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let result = run(&p, Duration::from_secs(180), |_| {});
    assert!(result.error.is_none(), "{name}: {:?}", result.error);
}

#[test]
fn readme_editor_pipeline_writes_prores_with_alpha_and_a_vp9_reconstruction() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let n = 10;
    let video = write_dataset(dir.path(), n);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    run_readme("editor", dir.path());
    run_readme("png", dir.path()); // the same layers as PNG, to compare alpha with
    let out = dir.path().join("out");

    for k in 1..=2 {
        let prores = decode_frames(
            &out.join(format!("layer_{k}.mov")),
            "qtdemux ! avdec_prores",
        );
        assert_eq!(prores.len(), n, "layer_{k}.mov frames");
        let (mut lowest, mut highest) = (255u8, 0u8);
        for (t, frame) in prores.iter().enumerate() {
            let png = decode_frames(&out.join(format!("layer{k}_{t:05}.png")), "pngdec");
            let worst = frame
                .chunks(4)
                .zip(png[0].chunks(4))
                .map(|(a, b)| a[3].abs_diff(b[3]))
                .max()
                .unwrap();
            assert!(worst <= 1, "layer_{k} frame {t}: alpha differs by {worst}");
            for px in frame.chunks(4) {
                lowest = lowest.min(px[3]);
                highest = highest.max(px[3]);
            }
        }
        assert!(
            highest - lowest > 100,
            "layer_{k}: alpha only spans {lowest}..{highest}"
        );
    }
    let recon = decode_frames(&out.join("recon.webm"), "matroskademux ! vp9dec");
    assert_eq!(recon.len(), n, "recon.webm frames");
    for (t, frame) in recon.iter().enumerate() {
        let p = psnr_rgb(frame, &video[t].0);
        assert!(p > 28.0, "recon frame {t}: {p:.1} dB after VP9");
    }
}

#[test]
fn readme_live_pipeline_runs_live() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (320, 240);
    let mut mask = vec![0u8; w * h];
    for y in 100..160 {
        for x in 140..200 {
            mask[y * w + x] = 1;
        }
    }
    let one = dir.path().join("in/mask.png");
    write_pngs(&one, "GRAY8", &[mask], w, h);
    let desc = adapt(&readme_pipeline("live"), dir.path()).replace(
        "is-live=true pattern=ball",
        "is-live=true pattern=ball num-buffers=40",
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let om = p.by_name("om").unwrap();
    let result = run(&p, Duration::from_secs(120), |p| {
        // Once playing, the latency query is answered with the look-ahead plus processing time.
        let _ = p.state(gst::ClockTime::from_seconds(60));
        let mut q = gst::query::Latency::new();
        assert!(om.static_pad("src").unwrap().query(&mut q));
        let (live, min, _) = q.result();
        assert!(live, "a live source makes a live pipeline");
        // 6 frames at 25 fps plus 500 ms.
        assert!(
            min >= gst::ClockTime::from_mseconds(240 + 500),
            "latency {min}"
        );
    });
    assert!(result.error.is_none(), "{:?}", result.error);
}

#[test]
fn seeking_a_file_pipeline_restarts_the_window() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let n = 30;
    write_dataset(dir.path(), n);
    let desc = format!(
        "imagesequencesrc location={d}/in/rgb/%05d.png framerate={FPS}/1 ! pngdec ! videoconvert ! om.sink \
         imagesequencesrc location={d}/in/mask/%05d.png framerate={FPS}/1 ! pngdec ! om.mask \
         omnimatte name=om objects=2 working-height=64 working-width=64 ! appsink name=src sync=false \
         om.layer_1 ! appsink name=layer_1 sync=false",
        d = dir.path().display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let seek_to = frame_duration() * 10;
    let result = run(&p, Duration::from_secs(120), |p| {
        p.set_state(gst::State::Paused).unwrap();
        let _ = p.state(gst::ClockTime::from_seconds(60));
        p.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, seek_to)
            .unwrap();
        let _ = p.state(gst::ClockTime::from_seconds(60));
        p.set_state(gst::State::Playing).unwrap();
    });
    assert!(result.error.is_none(), "{:?}", result.error);
    for pad in ["src", "layer_1"] {
        let pts: Vec<gst::ClockTime> = result.outputs[pad].iter().filter_map(|b| b.pts).collect();
        // After the seek, frames 10..29 each come out exactly once, in order.
        let after: Vec<gst::ClockTime> = pts.iter().copied().filter(|&t| t >= seek_to).collect();
        let expected: Vec<gst::ClockTime> = (10..n as u64).map(|i| frame_duration() * i).collect();
        assert_eq!(after, expected, "{pad}: {pts:?}");
    }
}

#[test]
fn readme_removal_pipeline_takes_object_1_out_and_keeps_object_2() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let n = 10;
    let video = write_dataset(dir.path(), n);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let desc = adapt(&readme_pipeline("removal"), dir.path());
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let result = run(&p, Duration::from_secs(120), |_| {});
    assert!(result.error.is_none(), "{:?}", result.error);
    let out = dir.path().join("out");
    assert_eq!(count(&out, "removed_"), n);
    let desc = format!(
        "filesrc location={}/removed_00005.png ! pngdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=out sync=false",
        out.display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let r = run(&p, Duration::from_secs(30), |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    let removed = &r.outputs["out"][0].bytes;
    let (rgb, labels) = &video[5];
    // Mean absolute difference to the input over the pixels of label `k`.
    let diff = |k: u8| {
        let (sum, count) = labels.iter().enumerate().filter(|(_, &l)| l == k).fold(
            (0.0, 0usize),
            |(s, c), (i, _)| {
                let d: f64 = (0..3)
                    .map(|ch| (removed[i * 3 + ch] as f64 - rgb[i * 3 + ch] as f64).abs())
                    .sum();
                (s + d / 3.0, c + 1)
            },
        );
        sum / count.max(1) as f64
    };
    // Object 2 (in front, mask-guided: opaque) is kept as it was; object 1 is gone.
    assert!(diff(2) < 3.0, "object 2 changed by {}", diff(2));
    assert!(diff(1) > 40.0, "object 1 is still there: {}", diff(1));
}
