//! Video files in and out of the CLI, through GStreamer (decodebin reads whatever the
//! installed plugins read).

use anyhow::Context;
use gst::prelude::*;
use gst_video::prelude::*;
use gstomnimatte::element::tensors_to_rgba_buffers;
use std::path::Path;

/// What [`decode_each`] found: the frames' size and rate.
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    /// Frames per second as (numerator, denominator).
    pub fps: (i32, i32),
}

/// Parses `description`, whose element `file` reads or writes `path` and whose element `app` is
/// the application's end (an appsrc or appsink).
fn pipeline_on_file<T: IsA<gst::Element>>(
    description: &str,
    path: &Path,
) -> anyhow::Result<(gst::Pipeline, T)> {
    let pipeline = gst::parse::launch(description)
        .with_context(|| format!("building `{description}` (is the GStreamer plugin installed?)"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    pipeline
        .by_name("file")
        .context("no element `file`")?
        .set_property("location", path.to_string_lossy().to_string());
    let app = pipeline
        .by_name("app")
        .context("no element `app`")?
        .downcast::<T>()
        .map_err(|_| anyhow::anyhow!("element `app` has the wrong type"))?;
    Ok((pipeline, app))
}

/// Decodes every frame of `path` to `format` ("RGB" or "GRAY8") and gives each, packed rows of
/// bytes with its width and height, to `on_frame` as it comes: a long file need never be in
/// memory whole.
pub fn decode_each(
    path: &Path,
    format: &str,
    mut on_frame: impl FnMut(&[u8], usize, usize) -> anyhow::Result<()>,
) -> anyhow::Result<Decoded> {
    gst::init()?;
    anyhow::ensure!(path.is_file(), "{} is not a file", path.display());
    let (pipeline, sink) = pipeline_on_file::<gst_app::AppSink>(
        // A short queue at the appsink: the decoder waits for `on_frame` instead of filling
        // memory with frames not yet taken.
        &format!("filesrc name=file ! decodebin ! videoconvert ! videoscale ! video/x-raw,format={format} ! appsink name=app sync=false max-buffers=4"),
        path,
    )?;
    pipeline.set_state(gst::State::Playing)?;
    let mut video = Decoded {
        width: 0,
        height: 0,
        fps: (0, 1),
    };
    let mut count = 0usize;
    let bus = pipeline.bus().context("a pipeline without a bus")?;
    // An error on the bus (not a video, a truncated file) never reaches the appsink as EOS:
    // wait for samples in short slices and look at the bus between them.
    let next_sample = || -> anyhow::Result<Option<gst::Sample>> {
        loop {
            if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
                return Ok(Some(sample));
            }
            if sink.is_eos() {
                return Ok(None);
            }
            if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
                if let gst::MessageView::Error(e) = msg.view() {
                    anyhow::bail!(
                        "decoding {}: GStreamer says: {}{}",
                        path.display(),
                        e.error(),
                        e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                    );
                }
            }
        }
    };
    let outcome = (|| -> anyhow::Result<()> {
        let mut packed = Vec::new();
        while let Some(sample) = next_sample()? {
            let caps = sample.caps().context("a sample without caps")?;
            let info = gst_video::VideoInfo::from_caps(caps)?;
            let buffer = sample.buffer().context("a sample without a buffer")?;
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                .map_err(|_| anyhow::anyhow!("cannot map a decoded frame"))?;
            let (w, h) = (info.width() as usize, info.height() as usize);
            let bpp = if format == "GRAY8" { 1 } else { 3 };
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data(0)?;
            packed.clear();
            for row in 0..h {
                packed.extend_from_slice(&data[row * stride..row * stride + w * bpp]);
            }
            if count == 0 {
                (video.width, video.height) = (w, h);
                video.fps = (info.fps().numer(), info.fps().denom());
            }
            anyhow::ensure!(
                (w, h) == (video.width, video.height),
                "{}: frame size changed from {}x{} to {w}x{h}",
                path.display(),
                video.width,
                video.height
            );
            on_frame(&packed, w, h)?;
            count += 1;
        }
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                anyhow::bail!("decoding {}: {}", path.display(), e.error());
            }
        }
        Ok(())
    })();
    pipeline.set_state(gst::State::Null)?;
    outcome?;
    anyhow::ensure!(count > 0, "{}: no video frames decoded", path.display());
    Ok(video)
}

/// What `omnimatte decompose` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A folder of 8-bit PNGs (RGBA for layers).
    Png,
    /// A QuickTime file, ProRes 4444 with its alpha plane.
    Prores,
    /// A WebM file, VP9 (no alpha: for the reconstruction).
    Vp9,
}

impl Format {
    /// The encoding part of a pipeline after an RGBA appsrc, and the file extension.
    fn encoder(self) -> Option<(&'static str, &'static str)> {
        match self {
            Format::Png => None,
            Format::Prores => Some((
                "videoconvert ! video/x-raw,format=A444_10LE ! avenc_prores_ks profile=4444 ! qtmux",
                "mov",
            )),
            Format::Vp9 => Some((
                "videoconvert ! vp9enc deadline=1 lag-in-frames=0 ! webmmux",
                "webm",
            )),
        }
    }
}

/// Frames written one by one as a PNG sequence or through a GStreamer encoder.
pub enum VideoWriter {
    Png {
        dir: std::path::PathBuf,
    },
    Encoded {
        pipeline: gst::Pipeline,
        src: gst_app::AppSrc,
        path: std::path::PathBuf,
        frame_duration: gst::ClockTime,
        written: u64,
    },
}

impl VideoWriter {
    /// A writer for `name` under `out` (`out/name/` for PNGs, `out/name.mov` or `.webm`).
    pub fn create(
        out: &Path,
        name: &str,
        format: Format,
        (width, height): (i64, i64),
        (fps_n, fps_d): (i32, i32),
    ) -> anyhow::Result<Self> {
        let Some((encoder, extension)) = format.encoder() else {
            return Ok(VideoWriter::Png {
                dir: out.join(name),
            });
        };
        gst::init()?;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join(format!("{name}.{extension}"));
        let (pipeline, src) = pipeline_on_file::<gst_app::AppSrc>(
            &format!("appsrc name=app format=time caps=video/x-raw,format=RGBA,width={width},height={height},framerate={fps_n}/{fps_d} ! {encoder} ! filesink name=file"),
            &path,
        )?;
        src.set_block(true);
        pipeline.set_state(gst::State::Playing)?;
        let frame_duration = gst::ClockTime::SECOND
            .mul_div_floor(fps_d.max(1) as u64, fps_n.max(1) as u64)
            .unwrap_or(gst::ClockTime::from_mseconds(40));
        Ok(VideoWriter::Encoded {
            pipeline,
            src,
            path,
            frame_duration,
            written: 0,
        })
    }

    /// Writes frame `index`: `image` [3 or 4, H, W] in [0, 1].
    pub fn write(&mut self, index: u64, image: &tch::Tensor) -> anyhow::Result<()> {
        match self {
            VideoWriter::Png { dir } => {
                gstomnimatte::dataset::write_png(&dir.join(format!("{index:05}.png")), image)
            }
            VideoWriter::Encoded {
                src,
                frame_duration,
                written,
                path,
                ..
            } => {
                let mut buffer = tensors_to_rgba_buffers(&[image.to_device(tch::Device::Cpu)])
                    .pop()
                    .context("one image, one buffer")?;
                let b = buffer.get_mut().context("a new buffer is writable")?;
                b.set_pts(*frame_duration * *written);
                b.set_duration(*frame_duration);
                src.push_buffer(buffer)
                    .map_err(|e| anyhow::anyhow!("encoding {}: {e:?}", path.display()))?;
                *written += 1;
                Ok(())
            }
        }
    }

    /// Ends the file and waits until it is complete on disk.
    pub fn finish(self) -> anyhow::Result<()> {
        let VideoWriter::Encoded {
            pipeline,
            src,
            path,
            ..
        } = self
        else {
            return Ok(());
        };
        src.end_of_stream()
            .map_err(|e| anyhow::anyhow!("ending {}: {e:?}", path.display()))?;
        let bus = pipeline.bus().context("a pipeline has a bus")?;
        let outcome = match bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(600),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .as_ref()
            .map(|m| m.view())
        {
            Some(gst::MessageView::Eos(_)) => Ok(()),
            Some(gst::MessageView::Error(e)) => Err(anyhow::anyhow!(
                "encoding {}: {}",
                path.display(),
                e.error()
            )),
            _ => Err(anyhow::anyhow!(
                "encoding {} did not finish",
                path.display()
            )),
        };
        pipeline.set_state(gst::State::Null)?;
        outcome
    }
}
