//! gst-omnimatte: object layers with their effects (shadows, reflections), after
//! "Associating Objects and Their Effects in Video through Coordination Games" (NeurIPS 2022).
//!
//! The core (model, compositing, losses, background, clips) knows nothing of GStreamer;
//! the `omnimatte` element is a thin adapter around it.

pub mod adamw;
pub mod allocator;
pub mod alpha;
pub mod augment;
pub mod background;
pub mod background_memory;
pub mod byte_stack;
pub mod checkpoint;
pub mod clip;
pub mod composite;
pub mod cpu_slices;
pub mod dataset;
pub mod defaults;
pub mod eight_bit;
pub mod element;
pub mod eval;
pub mod exposure;
pub mod frame_sequence;
pub mod full_resolution;
pub mod image_io;
pub mod interior_opacity;
pub mod label_maps;
pub mod label_png;
pub mod loss;
pub mod median;
pub mod metrics;
pub mod mirror;
pub mod model;
pub mod residual_effects;
pub mod stabilise;
pub mod still_ground;
pub mod stream;
pub mod supervision;
pub mod synth;
pub mod train;
pub mod ttt;
pub mod whole_file;
pub mod working;

use gst::glib;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    element::register(plugin)
}

gst::plugin_define!(
    omnimatte,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "Apache-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
