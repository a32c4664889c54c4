//! Video files in and out of the CLI, through GStreamer (decodebin reads whatever the
//! installed plugins read).

use anyhow::Context;
use gst::prelude::*;
use gst_video::prelude::*;
use std::path::Path;

/// A decoded video: packed 8-bit frames of one format.
pub struct DecodedVideo {
    pub frames: Vec<Vec<u8>>,
    pub width: usize,
    pub height: usize,
    /// Frames per second as (numerator, denominator).
    pub fps: (i32, i32),
}

/// Decodes every frame of `path` to `format` ("RGB" or "GRAY8").
pub fn decode(path: &Path, format: &str) -> anyhow::Result<DecodedVideo> {
    gst::init()?;
    anyhow::ensure!(path.is_file(), "{} is not a file", path.display());
    let pipeline = gst::parse::launch(&format!(
        "filesrc name=file ! decodebin ! videoconvert ! videoscale ! video/x-raw,format={format} ! appsink name=sink sync=false"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    pipeline
        .by_name("file")
        .context("no filesrc")?
        .set_property("location", path.to_string_lossy().to_string());
    let sink = pipeline
        .by_name("sink")
        .context("no appsink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow::anyhow!("not an appsink"))?;
    pipeline.set_state(gst::State::Playing)?;
    let mut video = DecodedVideo {
        frames: Vec::new(),
        width: 0,
        height: 0,
        fps: (0, 1),
    };
    let outcome = (|| -> anyhow::Result<()> {
        while let Ok(sample) = sink.pull_sample() {
            let caps = sample.caps().context("a sample without caps")?;
            let info = gst_video::VideoInfo::from_caps(caps)?;
            let buffer = sample.buffer().context("a sample without a buffer")?;
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                .map_err(|_| anyhow::anyhow!("cannot map a decoded frame"))?;
            let (w, h) = (info.width() as usize, info.height() as usize);
            let bpp = if format == "GRAY8" { 1 } else { 3 };
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data(0)?;
            let mut packed = Vec::with_capacity(w * h * bpp);
            for row in 0..h {
                packed.extend_from_slice(&data[row * stride..row * stride + w * bpp]);
            }
            if video.frames.is_empty() {
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
            video.frames.push(packed);
        }
        if let Some(msg) = pipeline
            .bus()
            .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
        {
            if let gst::MessageView::Error(e) = msg.view() {
                anyhow::bail!("decoding {}: {}", path.display(), e.error());
            }
        }
        Ok(())
    })();
    pipeline.set_state(gst::State::Null)?;
    outcome?;
    anyhow::ensure!(
        !video.frames.is_empty(),
        "{}: no video frames decoded",
        path.display()
    );
    Ok(video)
}
