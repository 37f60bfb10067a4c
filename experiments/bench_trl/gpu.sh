#!/usr/bin/env bash
# The GPU part of the benchmark on one GPU: prefopt against TRL's DPOTrainer on a 374M-parameter
# Llama in bf16 (tokens/s, peak GPU memory, MFU), then the peak GPU memory of LoRA training with and
# without the adapter-off reference. About 5 minutes on an H100.
#
#   bash experiments/bench_trl/gpu.sh [OUT_DIR]        # default results/performance/gpu
#
# Needs torch with CUDA, transformers, accelerate, peft, pandas, pyarrow and trl; prefopt is this
# checkout. A machine without a package index gets the rest as wheels in .whl/ (into /tmp/site):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl trl==1.16.0 datasets==5.2.0 dill==0.4.1 \
#     multiprocess==0.70.19 hydra-core==1.3.8 omegaconf==2.3.1 transformers==5.24.0
#   pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-results/performance/gpu}
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, transformers, trl; print(torch.__version__, transformers.__version__, trl.__version__)" \
  | tee -a "$out/gpu.txt"
python3 experiments/bench_trl/bench.py throughput --preset gpu --repeats 2 --steps 12 --out "$out"
python3 experiments/bench_trl/bench.py memory --preset gpu --repeats 1 --steps 6 --out "$out"
# With trainer.compile (a call of its own: compiling takes minutes):
#   python3 experiments/bench_trl/bench.py throughput --preset gpu --repeats 1 --compile --out "$out/compile"
