#!/usr/bin/env bash
# The main job: installs what is missing, builds the plugin and the CLI, runs the element in a
# pipeline with the default (bundled) weights (a moving ball from videotestsrc with a label mask
# for the region it crosses, PNG sequences under out/demo/), then decomposes the real clip
# (scripts/real_clip.sh, masks in examples/cup/mask/) with the bundled weights and a short
# test-time training: layers, clean background, the clip with the object removed, the
# reconstruction and a contact sheet under out/cup/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
# shellcheck source=scripts/env.sh
. scripts/env.sh
features=()
for arg in "$@"; do [ "$arg" = --cuda ] && features=(--features cuda); done
cargo build --release "${features[@]}"
gst-inspect-1.0 omnimatte

out=out/demo
rm -rf "$out" && mkdir -p "$out"
python3 scripts/label_png.py "$out/mask.png" 224 128 60,20,100,90:1
gst-launch-1.0 -e \
  videotestsrc num-buffers=50 pattern=ball ! video/x-raw,width=224,height=128,framerate=25/1 ! om.sink \
  filesrc location="$out/mask.png" ! pngdec ! imagefreeze num-buffers=50 ! video/x-raw,framerate=25/1 ! om.mask \
  omnimatte name=om objects=1 ! pngenc ! multifilesink location="$out/recon_%05d.png" \
  om.layer_1 ! pngenc ! multifilesink location="$out/layer1_%05d.png" \
  om.background ! pngenc ! multifilesink location="$out/background_%05d.png"
echo "run.sh: $(ls "$out"/layer1_*.png | wc -l) frames of layers, background and reconstruction in $out/"

scripts/real_clip.sh
target/release/omnimatte decompose --input data/real/cup --masks examples/cup/mask \
  --out out/cup --overwrite --working-height 144 --working-width 192 --ttt-steps 500 --remove 1 \
  --save-weights out/cup/fine-tuned.safetensors
echo "run.sh: the real clip's layers, background/, removed_01/ (the clip without the hand and bottle), recon/ and contact_sheet.png are in out/cup/"
