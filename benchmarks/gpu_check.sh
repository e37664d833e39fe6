#!/usr/bin/env bash
# The device session in two calls (each < 10 min on one H100): correctness first, then the timings.
# Prepare here: bash ../shared/device/wheels.sh .whl   — then run on the device (carry .whl):
#   python3 -m pip install -q --no-index --no-deps --upgrade --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:$PWD; bash benchmarks/gpu_check.sh bench       # ≈ 6 min
#   ... same prefix ...;                    bash benchmarks/gpu_check.sh pipelines   # ≈ 6 min
# Give each call timeout_s=600: the step limits below add up to less than that.
# Everything lands in $OUT (at most 8 files come back): logs and the JSON results of each benchmark.
set -u
stage=${1:-bench}
out=${OUT:-/tmp/out}
mkdir -p "$out/results"
py=python3
run() {  # run NAME SECONDS CMD...: a step with its own time limit; a failure does not stop the others
  local name=$1 limit=$2; shift 2
  echo "=== $name ($(date +%T), limit ${limit}s)"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  echo "--- $name rc=$? ($(date +%T))"; tail -n 25 "$out/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import torch; print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())"
if [ "$stage" = bench ]; then
  run gpu_tests 100 $py -m pytest -q -m gpu -p no:cacheprovider tests
  run lstm_speed 220 $py benchmarks/lstm_speed.py --shapes asr-enc asr-enc-B8 asr-enc-B128 cap-dec 1layer \
    --also fused layerwise --lengths --out "$out/results"
  run lstm_speed_ln 80 $py benchmarks/lstm_speed.py --shapes ln-1layer ln-asr-enc --with-reference --repeats 10 --tag ln --out "$out/results"
  run caption_beam 60 $py -m benchmarks.caption_beam --out "$out/results"
  run asr_throughput 80 $py -m benchmarks.asr_train_throughput --workers 0 4 --out "$out/results"
else
  data=/tmp/lstm_seq_data
  run asr_gpu 390 $py -m pipelines.asr trainer.accelerator=gpu paths.data_dir=$data hydra.run.dir=/tmp/asr_run
  cp /tmp/asr_run/metrics.json "$out/results/asr_gpu_metrics.json" 2>/dev/null
  # the torch beam search on the GPU vs on the CPU (and flashlight, if installed) on the run's emissions
  ckpt=$(ls /tmp/asr_run/checkpoints/best*.ckpt 2>/dev/null | head -n 1)
  run asr_decoder 40 $py -m benchmarks.asr_decoder --ckpt "$ckpt" --data-dir $data --device cuda \
    --out-dir "$out/results"
  run caption_gpu 150 $py -m pipelines.caption trainer.accelerator=gpu paths.data_dir=$data hydra.run.dir=/tmp/cap_run
  cp /tmp/cap_run/metrics.json "$out/results/caption_gpu_metrics.json" 2>/dev/null
fi
