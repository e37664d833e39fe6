#!/usr/bin/env bash
# The whole GPU check in ONE command of at most 8 minutes (one H200 / H100): correctness, both default pipelines,
# then the LSTM timings alone on the GPU. Prepare here: bash ../shared/device/wheels.sh .whl — then run on the GPU
# machine from the project root, carrying .whl:
#   python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:$PWD; bash benchmarks/gpu_check.sh
# Order: the two pipelines start in the background (their corpus builds are CPU work) while the gpu tests run;
# then, with the GPU to themselves, lstm_speed on every shape with and without lengths, then the LayerNorm shapes,
# each step with its own time limit inside the 480-s budget. `bash benchmarks/gpu_check.sh sequential`: a shorter
# second look (the small LSTM shapes, then each pipeline alone on the machine). Logs and JSON results go to $OUT/r, packed into
# $OUT/gpu.tar.gz; $OUT/summary.log holds the lines to read first (what the reply shows).
set -u
out=${OUT:-/tmp/out}
mkdir -p "$out/r/results"
T0=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-470}
el() { echo "[t+$(($(date +%s) - T0))s] $*" | tee -a "$out/summary.log"; }
left() { echo $((BUDGET - ($(date +%s) - T0))); }
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/r/env.txt"
python3 -c "import torch, lightning; print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version(), 'lightning', lightning.__version__, 'cpus', __import__('os').cpu_count())" 2>&1 | tee -a "$out/r/env.txt"
data=/tmp/lstm_seq_data

pipeline() {  # pipeline NAME MODULE: one default run with trainer.accelerator=gpu, its wall time and metrics
  local name=$1 module=$2 s
  s=$(date +%s)
  timeout 300 python3 -m "$module" trainer.accelerator=gpu paths.data_dir="$data/$name" hydra.run.dir="/tmp/${name}_run" \
    >"$out/r/${name}_gpu.log" 2>&1
  echo "rc=$? wall=$(($(date +%s) - s))s" >>"$out/r/${name}_gpu.log"
  cp "/tmp/${name}_run/metrics.json" "$out/r/${name}_gpu_metrics.json" 2>/dev/null
  cp "/tmp/${name}_run/beam_tuning.json" "$out/r/${name}_beam_tuning.json" 2>/dev/null
}
summarise() {  # summarise NAME: the pipeline's wall time, phases and training speed into the summary
  el "$1: $(tail -n 1 "$out/r/${1}_gpu.log")"
  grep -hE "ready in|beam tuned|done in" "$out/r/${1}_gpu.log" | tail -n 4 >>"$out/summary.log"
  grep -hoE "[0-9.]+it/s" "$out/r/${1}_gpu.log" | tail -n 3 | tr '\n' ' ' >>"$out/summary.log"; echo >>"$out/summary.log"
}
speed() {  # speed TAG LIMIT ARGS...: one lstm_speed run within LIMIT seconds (skipped when the budget is spent)
  local tag=$1 limit=$2; shift 2
  local l; l=$(left)
  [ "$l" -lt 20 ] && { el "skip $tag (budget spent)"; return; }
  [ "$limit" -gt "$l" ] && limit=$l
  el "lstm_speed $tag (limit ${limit}s)"
  timeout "$limit" python3 benchmarks/lstm_speed.py --tag "$tag" --out "$out/r/results" "$@" >"$out/r/lstm_$tag.log" 2>&1
  echo "rc=$?" >>"$out/r/lstm_$tag.log"
  grep -vE "UserWarning|^  " "$out/r/lstm_$tag.log" | tail -n 40 >>"$out/summary.log"
}

if [ "${1:-all}" = sequential ]; then
  # a short second look: the small shapes, then each pipeline alone on the machine
  speed small 60 --shapes asr-default cap-dec --also fused --lengths --repeats 20
  pipeline asr pipelines.asr
  summarise asr
  pipeline caption pipelines.caption
  summarise caption
  tar -czf "$out/gpu.tar.gz" -C "$out" r
  cat "$out/summary.log"
  exit 0
fi

# 1) both default pipelines in the background, each timed from an empty data folder
pipeline asr pipelines.asr &
pa=$!
pipeline caption pipelines.caption &
pc=$!

# 2) the gpu tests meanwhile (correctness only: no timings while the pipelines share the GPU)
el "gpu tests"
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/lstm tests/audio/test_ctc_beam.py >"$out/r/gpu_tests.log" 2>&1
echo "rc=$?" >>"$out/r/gpu_tests.log"
grep -E "passed|failed|error" "$out/r/gpu_tests.log" | tail -3 | tee -a "$out/summary.log"
el "waiting for the pipelines"
wait $pa
wait $pc
summarise asr
summarise caption

# 3) the LSTM timings, alone on the GPU
speed small 100 --shapes asr-default cap-dec 1layer --also fused layerwise --lengths --repeats 20
speed big 150 --shapes asr-enc asr-enc-B128 --also fused layerwise --lengths --repeats 7
speed ln 70 --shapes ln-1layer ln-asr-enc --lengths --repeats 5
speed b8 40 --shapes asr-enc-B8 --lengths --repeats 5
el "end"
tar -czf "$out/gpu.tar.gz" -C "$out" r
cat "$out/summary.log"
