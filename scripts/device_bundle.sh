#!/usr/bin/env bash
# Builds what a run on the lent GPU machine (the `device` tool) needs into .gpu/, which
# `carry` takes along. That machine has PyTorch 2.11 with CUDA and cannot fetch anything, and
# libtorch 2.13's CUDA libraries are too big to carry, so the CLI is built here a second time
# against torch 2.11 (tch 0.24, the tch of torch 2.11) in a worktree of HEAD: its C++ API is
# the same for what this project calls. GStreamer's libraries and the two plugins `bench`
# uses (appsrc, fakesink) travel too; the CLI registers the omnimatte element itself.
# Usage: scripts/device_bundle.sh   then, on the device, with carry [".gpu", "data/photos"]:
#   TL=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")/lib
#   LD_LIBRARY_PATH=.gpu/lib:$TL LD_PRELOAD=$TL/libtorch_cuda.so .gpu/omnimatte ...
# and for bench also GST_REGISTRY=/tmp/r.bin GST_PLUGIN_SYSTEM_PATH=$PWD/.gpu/plugins
# GST_REGISTRY_FORK=no. scripts/f16_copy.py makes kept checkpoints small enough to come back;
# scripts/device_check.sh is session 28's whole call.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
torch=/work/torch211
if [ ! -d "$torch/site/torch" ]; then
    mkdir -p "$torch"
    "$root/.venv/bin/pip" download -q --no-deps torch==2.11.0 -d "$torch"
    (cd "$torch" && mkdir -p site && cd site && unzip -q ../torch-2.11.0-*.whl 'torch/*')
fi
tree=${OMNIMATTE_DEVICE_TREE:-/work/device-build}
[ -d "$tree" ] || git worktree add --detach "$tree" HEAD
git -C "$tree" checkout -q --detach HEAD
git -C "$tree" reset -q --hard "$(git rev-parse HEAD)"
sed -i 's/^tch = "0.26"/tch = "0.24"/; s/^torch-sys = "0.26"/torch-sys = "0.24"/' "$tree/Cargo.toml"
(
    cd "$tree"
    export LIBTORCH="$torch/site/torch" LIBTORCH_CXX11_ABI=1 CARGO_TARGET_DIR="$tree/target"
    command -v cargo >/dev/null || . "$HOME/.cargo/env"
    cargo build --release --bin omnimatte
)
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info && echo /.gpu/ >>.git/info/exclude; }
rm -rf .gpu/lib .gpu/plugins .gpu/omnimatte && mkdir -p .gpu/lib .gpu/plugins
strip -o .gpu/omnimatte "$tree/target/release/omnimatte"
plugins=/usr/lib/x86_64-linux-gnu/gstreamer-1.0
cp "$plugins/libgstapp.so" "$plugins/libgstcoreelements.so" .gpu/plugins/
# Every library these load, except glibc's, the C++ runtime (the device's is newer) and torch's.
cuda_runtime=$(dirname "$(find "$root/.venv" -name 'libcudart.so.*' | head -1)")
LD_LIBRARY_PATH="$torch/site/torch/lib:$cuda_runtime" ldd .gpu/omnimatte .gpu/plugins/*.so |
    awk '/=>/ {print $3}' | sort -u |
    grep -v -E 'torch|c10|cuda|cupti|libgomp|/lib(c|m|dl|pthread|rt|util|stdc\+\+|gcc_s)\.so|ld-linux' |
    xargs -I{} cp -L {} .gpu/lib/
du -sh .gpu
