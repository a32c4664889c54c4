#!/usr/bin/env python3
"""Writes an 8-bit grayscale PNG label map: 0 everywhere, label k inside each given box.

usage: label_png.py OUT.png WIDTH HEIGHT X,Y,W,H[:LABEL] ...   (standard library only)
"""
import struct
import sys
import zlib


def png(width, height, rows):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    out, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rows = [[0] * width for _ in range(height)]
    for i, spec in enumerate(sys.argv[4:], start=1):
        box, _, label = spec.partition(":")
        x, y, w, h = (int(v) for v in box.split(","))
        for yy in range(max(y, 0), min(y + h, height)):
            for xx in range(max(x, 0), min(x + w, width)):
                rows[yy][xx] = int(label or i)
    with open(out, "wb") as f:
        f.write(png(width, height, rows))


if __name__ == "__main__":
    main()
