#!/usr/bin/env bash
# The whole test suite on a fresh or prepared machine: installs what is missing, checks
# formatting and lints, runs every cargo test (real libtorch, real GStreamer), and builds and
# installs the plugin once through meson.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
# shellcheck source=scripts/env.sh
. scripts/env.sh

# With --cuda the tests link libtorch_cuda, as the README's GPU setup does.
features=()
meson_cuda=false
for arg in "$@"; do
  if [ "$arg" = --cuda ]; then features=(--features cuda); meson_cuda=true; fi
done

cargo fmt --check
python3 scripts/import_cycles.py
cargo clippy --release --all-targets "${features[@]}" -- -D warnings
cargo test --release "${features[@]}"

# The meson build, once: builds through cargo into the same target dir, installs the plugin
# and the bundled weights under a scratch prefix, and the installed plugin must load and use
# the installed weights (not the source checkout's).
prefix="$PWD/build/meson-prefix"
rm -rf build/meson "$prefix"
meson setup build/meson --prefix "$prefix" -Dcargo-target-dir="$CARGO_TARGET_DIR" -Dcuda="$meson_cuda" >/dev/null
meson compile -C build/meson
meson install -C build/meson >/dev/null
plugin=$(find "$prefix" -name libgstomnimatte.so | head -n 1)
[ -n "$plugin" ] || { echo "meson install did not install libgstomnimatte.so" >&2; exit 1; }
weights="$prefix/share/gst-omnimatte/omnimatte.safetensors"
[ -f "$weights" ] || { echo "meson install did not install $weights" >&2; exit 1; }
export GST_REGISTRY="$PWD/build/meson-registry.bin"
env -u LD_LIBRARY_PATH GST_PLUGIN_PATH="$(dirname "$plugin")" gst-inspect-1.0 omnimatte >/dev/null
log=$(env -u LD_LIBRARY_PATH GST_PLUGIN_PATH="$(dirname "$plugin")" GST_DEBUG=omnimatte:4 GST_DEBUG_NO_COLOR=1 \
  gst-launch-1.0 -q videotestsrc num-buffers=2 ! video/x-raw,width=320,height=240,framerate=25/1 ! om.sink \
  multifilesrc location=examples/cup/mask/00000.png loop=true num-buffers=2 caps=image/png,framerate=25/1 ! pngdec ! om.mask \
  omnimatte name=om objects=1 working-height=64 working-width=64 ! fakesink 2>&1) || { echo "$log" >&2; exit 1; }
grep -q "weights from $weights" <<<"$log" || { echo "the installed plugin did not load $weights:" >&2; echo "$log" | grep -i weights >&2; exit 1; }
echo "meson build: plugin and weights installed, loadable, weights found ($plugin)"
