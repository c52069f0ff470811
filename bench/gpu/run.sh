#!/usr/bin/env bash
# Runs on the GPU machine (prepared here with bench/gpu/pack.sh): builds the addon against the PyTorch package's
# libtorch, then the steps named in RAGTUNE_GPU_STEPS (default: all, in this order), each under its own time
# limit, writing logs to $OUT (or ./gpu-out):
#   tests   the engine tests on CUDA (and CPU) against libtorch 2.x
#   oracle  sentence-transformers loads a folder ragtune saved; ids and embeddings compared (bench/gpu/st_oracle.py)
#   engine  npm run bench:engine at H=768 in bf16, PyTorch measured in the same run
#   train   npm run bench:train on CUDA (bge-base shape, bf16), PyTorch in the same run
#   encode  npm run bench:encode on CUDA
#   recipe  (not in the default list) the whole recipe, ragtune vs sentence-transformers: bench/gpu/recipe.sh
set -uo pipefail
out=${OUT:-gpu-out}; mkdir -p "$out"
source .gpu/setup.sh
[ -e node_modules ] || ln -s .gpu/node_modules node_modules
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1
python3 -c 'import torch,sentence_transformers,transformers;print(torch.__version__,sentence_transformers.__version__,transformers.__version__)' >> "$out/gpu.txt" 2>&1
export RAGTUNE_BUILD_JOBS=16
start=$SECONDS
if ! node scripts/build-native.mjs > "$out/build.log" 2>&1; then
  echo "build failed; retrying without the CUDA allocator statistics" >> "$out/build.log"
  RAGTUNE_CXXFLAGS=-DRAGTUNE_NO_CUDA_STATS node scripts/build-native.mjs >> "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
fi
echo "build: $((SECONDS - start)) s" >> "$out/summary.txt"
run() { # name, limit, command...
  local name=$1 limit=$2; shift 2
  local t=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "$name: rc=$? $((SECONDS - t)) s" >> "$out/summary.txt"
}
for step in ${RAGTUNE_GPU_STEPS:-tests oracle engine train encode}; do
  case $step in
    tests) run tests 60 node --import tsx --test --test-concurrency=1 test/engine/*.test.ts ;;
    oracle) run oracle 60 bash -c "node --import tsx bench/gpu/st-oracle.ts '$out' && python3 bench/gpu/st_oracle.py '$out'" ;;
    engine) run engine 90 node --import tsx bench/engine.ts --device cuda --dtype bfloat16 --hidden 768 --repeat 5 ;;
    train) run train 130 node --import tsx bench/train.ts --device cuda --steps 10 ;;
    encode) run encode 90 node --import tsx bench/encode.ts --device cuda --repeat 3 --warmup 1 ;;
    recipe) run recipe 590 bash bench/gpu/recipe.sh ;;
  esac
done
cat "$out/summary.txt"; cat "$out/gpu.txt"
grep -E "^# (tests|pass|fail|skipped|todo)" "$out/tests.log" 2>/dev/null
cat "$out/oracle.log" 2>/dev/null | tail -12
for f in engine train encode; do [ -f "$out/$f.log" ] && tail -25 "$out/$f.log"; done
