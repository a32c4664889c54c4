#!/usr/bin/env python3
"""Rewrites a safetensors file's F32 tensors as F16, metadata kept: the bytes `omnimatte train
--half` writes. Used for checkpoints coming back from the GPU machine (16 MiB a file at most).
Usage: f16_copy.py IN OUT"""
import json
import struct
import sys

src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    size = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(size))
    data = f.read()
try:
    import numpy as np

    def half(raw):
        return np.frombuffer(raw, dtype="<f4").astype("<f2").tobytes()
except ImportError:

    def half(raw):
        count = len(raw) // 4
        return struct.pack("<%de" % count, *struct.unpack("<%df" % count, raw))

out, chunks, offset = {}, [], 0
for name, info in header.items():
    if name == "__metadata__":
        out[name] = info
        continue
    begin, end = info["data_offsets"]
    raw = data[begin:end]
    if info["dtype"] == "F32":
        raw, info = half(raw), dict(info, dtype="F16")
    out[name] = dict(info, data_offsets=[offset, offset + len(raw)])
    chunks.append(raw)
    offset += len(raw)
encoded = json.dumps(out, separators=(",", ":")).encode()
encoded += b" " * (-len(encoded) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(chunks))
