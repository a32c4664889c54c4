#!/usr/bin/env bash
# One call of the GPU machine (the `device` tool), as session 28 ran it: the validation set
# made there from its seeds, `bench` on the GPU, then a batch-64 continuation of the bundled
# weights for TRAIN_SECS beside a CUDA evaluation of the bundled weights on that set. Needs
# scripts/device_bundle.sh's .gpu/ (carry [".gpu", "data/photos"]); run from the repo root:
#   bash scripts/device_check.sh        (about 370 s; everything it returns lies in $OUT)
# Kept checkpoints come back as 16-bit files, to be scored here with `omnimatte eval`.
# Locally, for a dry run on the CPU: DEV=cpu TL=<torch 2.11 lib> EXTRA_LD=<libcudart's dir>.
set -u
T0=$(date +%s); R=$PWD; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
DEV=${DEV:-cuda:0}; TRAIN_SECS=${TRAIN_SECS:-300}; BENCH_SECS=${BENCH_SECS:-120}
GEN=${GEN:-14}; BATCH=${BATCH:-64}; LR=${LR:-1e-4}; KEEP=${KEEP:-100}
log() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
TL=${TL:-$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__))")/lib}
PRE=""; [ -f "$TL/libtorch_cuda.so" ] && [ "$DEV" != cpu ] && PRE="$TL/libtorch_cuda.so"
om() { LD_LIBRARY_PATH="$R/.gpu/lib:$TL${EXTRA_LD:+:$EXTRA_LD}" LD_PRELOAD="$PRE" OMP_NUM_THREADS=1 "$R/.gpu/omnimatte" "$@"; }
# Exported so that `timeout ... bash -c "om ..."` can run it.
export R TL PRE EXTRA_LD=${EXTRA_LD:-}; export -f om
export GST_REGISTRY=/tmp/gst-reg.bin GST_PLUGIN_SYSTEM_PATH="$R/.gpu/plugins" GST_PLUGIN_PATH= GST_REGISTRY_FORK=no GST_OMNIMATTE_DATADIR="$R/weights"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; lscpu | grep "Model name"; } 2>&1
log "synth valset"
V=/tmp/valset; rm -rf $V
c=(--height 128 --width 224 --frames 24)
om synth --out $V --prefix classic_ --videos 24 --seed 3000 --min-objects 2 --max-objects 4 "${c[@]}" > /tmp/s1.txt 2>&1 &
om synth --out $V --family world --photos data/photos --prefix world_ --videos 24 --seed 3100 --min-objects 2 --max-objects 4 "${c[@]}" > /tmp/s2.txt 2>&1 &
wait; tail -n1 /tmp/s1.txt /tmp/s2.txt; ls $V | wc -l
log "bench (alone on the GPU)"
timeout $BENCH_SECS bash -c "om bench --device $DEV ${BENCH_ARGS:-}" > "$OUT/bench.txt" 2>&1; log "bench rc $?"
log "train batch $BATCH lr $LR for ${TRAIN_SECS}s, $GEN generators"
W=/tmp/b64; rm -rf $W; mkdir -p $W
cp weights/omnimatte.safetensors $W/pretrain.safetensors; cp weights/omnimatte.json $W/pretrain.json
train() {
  timeout $1 bash -c "om train --out $W/pretrain.safetensors --steps 30000 --batch $BATCH --size 128 --seed 3 --lr $LR --checkpoint-every 25 --keep-every $KEEP --resume --supervision 1.0 --world-share 0.6 --supervision-weighting mixed:0.15 --hidden-frames 2 --background-input --background-lr 1e-3 --photos data/photos --device $DEV --generator-threads $GEN --precision $2" >> "$OUT/train.txt" 2>&1
}
train $TRAIN_SECS bf16 & TP=$!
sleep 45
if ! kill -0 $TP 2>/dev/null; then log "bf16 training ended early; fp32 instead"; train $((TRAIN_SECS - 50)) fp32 & TP=$!; fi
log "eval bundled on $DEV beside the training"
timeout $TRAIN_SECS bash -c "om eval --data $V --precision fp32 --mirror-average false --device $DEV --json /tmp/eval-bundled.json ${EVAL_ARGS:-}" > "$OUT/eval.txt" 2>&1; log "eval rc $?"
wait $TP; log "train rc $?"
tail -c 2000 "$OUT/train.txt" | tr '\r' '\n' | tail -5
cp $W/pretrain.json /tmp/state.json; tar czf "$OUT/meta.tgz" -C / tmp/eval-bundled.json tmp/b64/pretrain.log.jsonl tmp/state.json
for f in $(ls $W/pretrain.step*.safetensors 2>/dev/null | sort -V | tail -3) $W/pretrain.safetensors; do
  python3 "$R/scripts/f16_copy.py" "$f" "$OUT/$(basename "$f" .safetensors).f16.safetensors" || log "convert $f failed"
done
ls -la "$OUT"; log done
