#!/usr/bin/env bash
# Fetches the real clip the README's main command decomposes: cup.mp4 from Debian's
# opencv-doc package (the video of OpenCV's tracking tutorials: a hand holding a dark bottle in
# front of a white wall, static camera, 640x480, 25 fps, 217 frames; not made by this project).
# Writes its frames, scaled to 320x240, to data/real/cup/rgb/%05d.png. The masks are committed
# in examples/cup/mask/ (made by scripts/real_masks.py from these frames).
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/real/cup
if [ -f "$out/rgb/00216.png" ]; then
  exit 0
fi
tmp=$(mktemp -d)
chmod 755 "$tmp" # apt downloads as the _apt user when it can
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && { apt-get download opencv-doc >/dev/null 2>&1 ||
  { apt-get update -qq && apt-get download opencv-doc >/dev/null; }; })
dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb |
  tar -x -C "$tmp" ./usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz
gunzip -c "$tmp/usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz" >"$tmp/cup.mp4"
# The clip the masks were made from (opencv-doc 4.6.0+dfsg-12).
expected=$(cat examples/cup/cup.mp4.sha256)
actual=$(sha256sum "$tmp/cup.mp4" | cut -d' ' -f1)
if [ "$actual" != "$expected" ]; then
  echo "real_clip.sh: cup.mp4 is not the clip the masks were made from ($actual)" >&2
  exit 1
fi
mkdir -p "$out/rgb"
gst-launch-1.0 -q filesrc location="$tmp/cup.mp4" ! decodebin ! videoconvert ! videoscale ! \
  video/x-raw,format=RGB,width=320,height=240,pixel-aspect-ratio=1/1 ! pngenc ! \
  multifilesink location="$out/rgb/%05d.png"
echo "real clip: $(ls "$out/rgb" | wc -l) frames in $out/rgb"
