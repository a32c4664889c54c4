//! The element's GStreamer debug category (`GST_DEBUG=omnimatte:N`), shared by the element and
//! its worker thread.

use once_cell::sync::Lazy;

pub(super) static CAT: Lazy<gst::DebugCategory> = Lazy::new(|| {
    gst::DebugCategory::new(
        "omnimatte",
        gst::DebugColorFlags::empty(),
        Some("Omnimatte object/effect layers"),
    )
});
