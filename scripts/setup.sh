#!/usr/bin/env bash
# Installs everything gst-omnimatte needs on a fresh Debian 12 machine. Idempotent.
#   scripts/setup.sh          GStreamer dev packages + a venv with the CPU-only minimal PyTorch
#   scripts/setup.sh --cuda   the full CUDA PyTorch instead (for a GPU machine)
# Prints the environment to source afterwards: scripts/env.sh does it for you.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cuda=0
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: not root and no sudo: run as root to install packages" >&2; exit 1; }
  sudo_cmd="sudo"
fi

# Rust comes from rustup (Debian 12's cargo 1.63 is too old for the crate's 1.92); the tests
# also need rustfmt and clippy.
min_rust=1.92
rust_ok() {
  command -v cargo >/dev/null && command -v rustc >/dev/null || return 1
  local have
  have=$(rustc --version | awk '{print $2}')
  [ "$(printf '%s\n%s\n' "$min_rust" "$have" | sort -V | head -n 1)" = "$min_rust" ]
}
if ! rust_ok; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! rust_ok; then
  if command -v rustup >/dev/null; then
    rustup toolchain install stable --profile minimal --component rustfmt,clippy
    rustup default stable
  else
    echo "setup: Rust >= $min_rust is needed (found: $(rustc --version 2>/dev/null || echo none))." >&2
    echo "setup: install it with rustup (https://rustup.rs), then run this again." >&2
    exit 1
  fi
fi
if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi

apt_packages=(
  pkg-config build-essential python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav
  meson ninja-build libgoogle-perftools4
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# tch 0.26 needs exactly PyTorch 2.13.0. The PyPI wheel is a CUDA build; on CPU machines
# the torch wheel plus the two CUDA libraries libtorch links against at load time suffice.
venv="${OMNIMATTE_VENV:-$here/.venv}"
torch_version=2.13.0
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [ "$have" != "$torch_version" ] || { [ "$cuda" = 1 ] && ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("nvidia-cudnn-cu13")' 2>/dev/null; }; then
  if [ "$cuda" = 1 ]; then
    echo "setup: installing torch==$torch_version with CUDA into $venv"
    "$venv/bin/pip" install -q "torch==$torch_version"
  else
    echo "setup: installing the minimal CPU set of torch==$torch_version into $venv"
    "$venv/bin/pip" install -q --no-deps "torch==$torch_version" \
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
  fi
fi
# Photographs for the synthetic scenes' backgrounds and textures (README: where from, licences).
"$here/scripts/photos.sh"
echo "setup: done (venv $venv)"
