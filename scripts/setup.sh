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
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

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
echo "setup: done (venv $venv)"
