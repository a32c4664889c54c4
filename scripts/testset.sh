#!/usr/bin/env bash
# The fixed synthetic test set the README's numbers are measured on: 20 videos of 24 frames at
# 128x224 (10 with 2 objects, 10 with 4), each drawing shadows, reflections or both, rough
# masks; fully determined by the seeds. Writes data/testset/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
out="${1:-data/testset}"
omnimatte="$CARGO_TARGET_DIR/release/omnimatte"
[ -x "$omnimatte" ] || cargo build --release --bin omnimatte
rm -rf "$out"
"$omnimatte" synth --out "$out" --prefix two_ --videos 10 --seed 1000 --min-objects 2 --max-objects 2 --height 128 --width 224 --frames 24
"$omnimatte" synth --out "$out" --prefix four_ --videos 10 --seed 2000 --min-objects 4 --max-objects 4 --height 128 --width 224 --frames 24
