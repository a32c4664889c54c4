//! The `omnimatte` element: a thin GStreamer adapter around [`crate::stream::Decomposer`].

use gst::glib;
use gst::prelude::*;

mod convert;
mod debug_category;
mod imp;
mod output;
mod pad_queue;
mod pairing;
mod progress;
pub mod settings;
mod streaming;
mod worker;

/// Float images to RGBA buffers, as the element pushes them (the CLI encodes the same way).
pub use convert::tensors_to_rgba_buffers;

glib::wrapper! {
    /// Splits video into one RGBA layer per object with its effects, plus background and
    /// reconstruction. See `gst-inspect-1.0 omnimatte`.
    pub struct Omnimatte(ObjectSubclass<imp::Omnimatte>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "omnimatte",
        gst::Rank::NONE,
        Omnimatte::static_type(),
    )
}
