//! Without any bundled weights the element still runs, on a seeded random initialisation, and
//! says so loudly on the bus. Its own test binary: it changes the process environment.

#[path = "common/gst_helpers.rs"]
mod helpers;

use helpers::*;
use std::time::Duration;

#[test]
fn missing_bundled_weights_fall_back_to_random_init_with_a_warning() {
    let empty = tempfile::tempdir().unwrap();
    // The only test of this binary, and set before GStreamer or libtorch start any thread.
    std::env::set_var("GST_OMNIMATTE_DATADIR", empty.path());
    let n = 3;
    let (_, result) = run_synthetic("", (64, 64, n), &[], Duration::from_secs(60));
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(
        result.outputs["src"].len(),
        n,
        "every frame still comes out"
    );
    let expected = empty.path().join("omnimatte.safetensors");
    let warning = result
        .warnings
        .iter()
        .find(|w| w.contains("No pretrained weights"))
        .unwrap_or_else(|| panic!("no random-init warning among {:?}", result.warnings));
    assert!(
        warning.contains(&expected.display().to_string()),
        "the warning names where it looked: {warning}"
    );
}
