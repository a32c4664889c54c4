//! bf16 asked for on a CPU that only emulates it: the element keeps the user's choice, runs,
//! and says on the bus that it will be slow. Its own test binary: it changes the process
//! environment (the CPU is made to look as if it lacked AMX-BF16 and AVX512-BF16).

#[path = "common/gst_helpers.rs"]
mod helpers;

use gstomnimatte::model::precision::CPU_BF16_ENV;
use helpers::*;
use std::time::Duration;

#[test]
fn explicit_bf16_on_a_cpu_without_it_runs_with_a_warning() {
    // The only test of this binary, and set before GStreamer or libtorch start any thread.
    std::env::set_var(CPU_BF16_ENV, "0");
    let n = 2;
    let (_, result) = run_synthetic(
        "precision=bf16 mirror-average=false",
        (64, 64, n),
        &[],
        Duration::from_secs(300),
    );
    assert!(result.error.is_none(), "{:?}", result.error);
    assert_eq!(result.outputs["src"].len(), n, "every frame comes out");
    assert!(
        result.warnings.iter().any(|w| w.contains("emulates bf16")),
        "no emulation warning among {:?}",
        result.warnings
    );
}
