# Source this: the environment that builds and runs gst-omnimatte against the venv's libtorch.
_omni_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_omni_venv="${OMNIMATTE_VENV:-$_omni_root/.venv}"
export LIBTORCH="$("$_omni_venv/bin/python" -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null || echo "$_omni_venv/lib/python3.11/site-packages/torch")"
export LIBTORCH_CXX11_ABI=1
# rustup's cargo, when this shell does not have it on PATH yet.
command -v cargo >/dev/null || { [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"; }
export LIBTORCH_BYPASS_VERSION_CHECK="${LIBTORCH_BYPASS_VERSION_CHECK:-0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$_omni_root/target}"
export GST_PLUGIN_PATH="$CARGO_TARGET_DIR/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
unset _omni_root _omni_venv
