#!/usr/bin/python3
"""Makes the object mask of the real clip (examples/cup/mask/%05d.png, 8-bit label maps:
0 = background, 1 = the hand with the bottle) from its frames (data/real/cup/rgb/, fetched by
scripts/real_clip.sh), by classical background subtraction with a shadow test.

The camera is static and the wall is visible at every pixel in most frames, so the 85th
percentile of each pixel over the clip is the empty wall. A pixel is the object where it is much
darker than the wall (the bottle: below 0.55 of its brightness), much brighter, or of another
colour (skin: chromaticity off by more than 0.035); a pixel that is only darker with the
wall's colour is a shadow and is left OUT of the mask, because the shadow is the effect the
network has to find by itself. The mask is cleaned (opening, closing), reduced to its largest
connected component and its holes are filled. Deterministic: same frames, same masks.
MOG2 was tried first and failed here: the bottle is in view most of the time, so it learns the
bottle as background.

usage: scripts/real_masks.py [FRAMES_DIR] [OUT_DIR]      (Debian's python3-opencv)
"""
import glob
import os
import sys

import cv2
import numpy as np

DARKER = 0.55  # brightness ratio to the wall below which a pixel is the (dark) object
BRIGHTER = 1.3
CHROMA = 0.035  # summed |chromaticity difference| above which a pixel is not the wall
MIN_AREA = 300  # pixels; smaller blobs are noise


def object_mask(frame, wall, kernel):
    eps = 1.0
    ratio = (frame.sum(-1) + eps) / (wall.sum(-1) + eps)
    chroma = np.abs(
        frame / (frame.sum(-1, keepdims=True) + eps) - wall / (wall.sum(-1, keepdims=True) + eps)
    ).sum(-1)
    fg = ((ratio < DARKER) | (ratio > BRIGHTER) | (chroma > CHROMA)).astype(np.uint8) * 255
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel, iterations=3)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg)
    mask = np.zeros(fg.shape, np.uint8)
    if count > 1:
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if stats[largest, cv2.CC_STAT_AREA] >= MIN_AREA:
            mask[labels == largest] = 255
    # Fill holes: what the border's background cannot reach belongs to the object.
    h, w = mask.shape
    flood = mask.copy()
    cv2.floodFill(flood, np.zeros((h + 2, w + 2), np.uint8), (0, 0), 128)
    mask[flood == 0] = 255
    return (mask > 0).astype(np.uint8)


def main():
    frames_dir = sys.argv[1] if len(sys.argv) > 1 else "data/real/cup/rgb"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "examples/cup/mask"
    files = sorted(glob.glob(os.path.join(frames_dir, "*.png")))
    if not files:
        sys.exit(f"no frames in {frames_dir}: run scripts/real_clip.sh first")
    frames = np.stack([cv2.imread(f, cv2.IMREAD_COLOR).astype(np.float32) for f in files])
    wall = np.percentile(frames, 85, axis=0)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    os.makedirs(out_dir, exist_ok=True)
    for path, frame in zip(files, frames):
        mask = object_mask(frame, wall, kernel)
        cv2.imwrite(os.path.join(out_dir, os.path.basename(path)), mask, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{len(files)} masks in {out_dir}")


if __name__ == "__main__":
    main()
