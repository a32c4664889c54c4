//! Embedding the `omnimatte` element in an application, as an editor plug-in would: build the
//! pipeline from element factories, follow test-time training on the bus, write each object's
//! layer as a PNG sequence with alpha, and fail loudly on any error.
//!
//! ```sh
//! cargo run --release --example export_layers -- IN_RGB_PATTERN IN_MASK_PATTERN OUT_DIR OBJECTS [TTT_STEPS]
//! # e.g. in/rgb/%05d.png in/mask/%05d.png out/ 2 50
//! ```

use gst::prelude::*;
use std::path::Path;

fn make(factory: &str) -> anyhow::Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| anyhow::anyhow!("no element `{factory}`: is its GStreamer plugin installed?"))
}

/// `imagesequencesrc location=PATTERN ! pngdec [! videoconvert]`, returning its last element.
fn png_sequence(
    pipeline: &gst::Pipeline,
    pattern: &str,
    convert: bool,
) -> anyhow::Result<gst::Element> {
    let src = gst::ElementFactory::make("imagesequencesrc")
        .property("location", pattern)
        .property("framerate", gst::Fraction::new(25, 1))
        .build()?;
    let mut chain = vec![src, make("pngdec")?];
    if convert {
        chain.push(make("videoconvert")?);
    }
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    Ok(chain.pop().expect("not empty"))
}

/// `PAD ! videoconvert ! pngenc ! multifilesink location=OUT/NAME/%05d.png`.
fn png_writer(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    out: &Path,
    name: &str,
) -> anyhow::Result<()> {
    let dir = out.join(name);
    std::fs::create_dir_all(&dir)?;
    let sink = gst::ElementFactory::make("multifilesink")
        .property(
            "location",
            dir.join("%05d.png").to_string_lossy().to_string(),
        )
        .build()?;
    let chain = [make("videoconvert")?, make("pngenc")?, sink];
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    pad.link(
        &chain[0]
            .static_pad("sink")
            .expect("videoconvert has a sink pad"),
    )?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [frames, masks, out, objects, rest @ ..] = args.as_slice() else {
        anyhow::bail!(
            "usage: export_layers IN_RGB_PATTERN IN_MASK_PATTERN OUT_DIR OBJECTS [TTT_STEPS]"
        );
    };
    let objects: u32 = objects.parse()?;
    let ttt_steps: u32 = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let out = Path::new(out);

    gst::init()?;
    // The plugin is linked in: no GST_PLUGIN_PATH needed.
    gstomnimatte::plugin_register_static()?;

    let pipeline = gst::Pipeline::new();
    let om = gst::ElementFactory::make("omnimatte")
        .property("objects", objects)
        .build()?;
    if let Ok(size) = std::env::var("OMNIMATTE_WORKING_SIZE") {
        // Tiny runs (tests, previews): a smaller working size, HEIGHTxWIDTH.
        let (h, w) = size.split_once('x').unwrap_or(("128", "224"));
        om.set_property("working-height", h.parse::<u32>()?);
        om.set_property("working-width", w.parse::<u32>()?);
    }
    if ttt_steps > 0 {
        om.set_property_from_str("ttt", "before-output");
        om.set_property("ttt-steps", ttt_steps);
    }
    pipeline.add(&om)?;
    png_sequence(&pipeline, frames, true)?.link_pads(Some("src"), &om, Some("sink"))?;
    png_sequence(&pipeline, masks, false)?.link_pads(Some("src"), &om, Some("mask"))?;
    png_writer(
        &pipeline,
        &om.static_pad("src").expect("always pad"),
        out,
        "recon",
    )?;
    for k in 1..=objects {
        let pad = om
            .request_pad_simple(&format!("layer_{k}"))
            .ok_or_else(|| anyhow::anyhow!("omnimatte gave no layer_{k} pad"))?;
        png_writer(&pipeline, &pad, out, &format!("layer_{k:02}"))?;
    }

    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut outcome = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                outcome = Err(anyhow::anyhow!(
                    "{}: {}",
                    e.src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    e.error()
                ));
                break;
            }
            gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                if s.name() == "omnimatte-training" {
                    let step = s.get::<u64>("step").unwrap_or(0);
                    let steps = s.get::<u64>("steps").unwrap_or(0);
                    let loss = s.get::<f64>("loss").unwrap_or(f64::NAN);
                    eprintln!("test-time training {step}/{steps}: loss {loss:.5}");
                }
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    outcome?;
    println!("layers written to {}", out.display());
    Ok(())
}
