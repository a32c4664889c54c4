#!/usr/bin/env bash
# Photographs for the synthetic scenes (backgrounds and object textures), from two Debian
# packages, decoded with GStreamer and scaled to at most 384 pixels wide as PNG:
#   data/photos/train/     opencv-doc's sample photographs (examples/data; OpenCV,
#                          Apache-2.0 AND BSD-3-Clause per /usr/share/doc/opencv-doc/copyright)
#   data/photos/transfer/  mate-backgrounds' nature photographs (GPL-2+, authors in the package's
#                          copyright file): held out of training, used only by the transfer
#                          family of scenes (the `transfer` test set).
# Idempotent; needs gst-launch-1.0 with jpegdec/pngdec (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/photos
train=(aero1.jpg aero3.jpg aloeL.jpg apple.jpg baboon.jpg basketball1.png board.jpg
  box_in_scene.png building.jpg butterfly.jpg ela_original.jpg fruits.jpg graf1.png home.jpg
  leuvenA.jpg leuvenB.jpg messi5.jpg orange.jpg rubberwhale1.png squirrel_cls.jpg
  starry_night.jpg stuff.jpg left01.jpg right05.jpg)
transfer=(Aqua.jpg Blinds.jpg Dune.jpg FreshFlower.jpg Garden.jpg GreenMeadow.jpg LadyBird.jpg
  RainDrops.jpg Storm.jpg TwoWings.jpg Wood.jpg YellowFlower.jpg)
if [ "$(ls "$out/train" 2>/dev/null | wc -l)" -eq ${#train[@]} ] &&
  [ "$(ls "$out/transfer" 2>/dev/null | wc -l)" -eq ${#transfer[@]} ]; then
  exit 0
fi
tmp=$(mktemp -d)
chmod 755 "$tmp" # apt downloads as the _apt user when it can
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && { apt-get download opencv-doc mate-backgrounds >/dev/null 2>&1 ||
  { apt-get update -qq && apt-get download opencv-doc mate-backgrounds >/dev/null; }; })
dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb | tar -x -C "$tmp" ./usr/share/doc/opencv-doc/examples/data/
dpkg-deb --fsys-tarfile "$tmp"/mate-backgrounds_*.deb | tar -x -C "$tmp" ./usr/share/backgrounds/mate/nature/

convert() { # source, destination PNG
  local dec=pngdec
  case "$1" in *.jpg) dec=jpegdec ;; esac
  gst-launch-1.0 -q filesrc location="$1" ! "$dec" ! videoconvert ! videoscale ! \
    "video/x-raw,format=RGB,width=384,pixel-aspect-ratio=1/1" ! pngenc ! filesink location="$2"
}
mkdir -p "$out/train" "$out/transfer"
for f in "${train[@]}"; do
  convert "$tmp/usr/share/doc/opencv-doc/examples/data/$f" "$out/train/${f%.*}.png"
done
for f in "${transfer[@]}"; do
  convert "$tmp/usr/share/backgrounds/mate/nature/$f" "$out/transfer/${f%.*}.png"
done
echo "photos: $(ls "$out/train" | wc -l) for training, $(ls "$out/transfer" | wc -l) held out, in $out/"
