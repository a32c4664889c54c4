#!/usr/bin/env bash
# The whole test suite on a fresh or prepared machine: installs what is missing, checks
# formatting and lints, runs every cargo test (real libtorch, real GStreamer), and builds and
# installs the plugin once through meson.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
# shellcheck source=scripts/env.sh
. scripts/env.sh

cargo fmt --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release

# The meson build, once: builds through cargo into the same target dir, installs to a scratch root.
rm -rf build/meson
meson setup build/meson -Dcargo-target-dir="$CARGO_TARGET_DIR" >/dev/null
meson compile -C build/meson
DESTDIR="$PWD/build/meson-install" meson install -C build/meson >/dev/null
plugin=$(find build/meson-install -name libgstomnimatte.so | head -n 1)
[ -n "$plugin" ] || { echo "meson install did not install libgstomnimatte.so" >&2; exit 1; }
env -u LD_LIBRARY_PATH GST_PLUGIN_PATH="$(dirname "$plugin")" gst-inspect-1.0 omnimatte >/dev/null
echo "meson build: installed and loadable ($plugin)"
