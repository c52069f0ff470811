#!/usr/bin/env bash
# Times the whole recipe on a GPU machine, ragtune vs sentence-transformers, in one lease (issue 9, item 6; goal
# ragtune ≤ 0.3× sentence-transformers). Prepared here with `bash bench/gpu/pack.sh` (carry .gpu and the tree);
# there: `bash bench/gpu/recipe.sh` (needs no network: the model is a random bge-base-shaped folder that ragtune
# creates, which both sides load). Each side runs the recipe's 4 epochs over data/financial (6,300 pairs, batch
# 32 × accumulation 16, lr 2e-5 cosine, warmup 0.1, bf16 + TF32, no-duplicates batches) with an evaluation of
# 700 queries × 7,000 passages at every Matryoshka dim and a checkpoint every epoch, the best model by
# eval_dim_128_cosine_ndcg@10; ragtune without its baseline evaluation and ONNX export (sentence-transformers'
# trainer.train() does neither). Runs, in this order, each under its own time limit (RAGTUNE_RECIPE_LIMIT s,
# default 170) and logged to $OUT (or ./gpu-out):
#   ragtune          packing on, fused accumulation auto (on: CUDA) — the defaults
#   ragtune-padded   --packing off --fused-accumulation off — the padded path
#   st               sentence-transformers (bench/gpu/st_recipe.py)
# RAGTUNE_RECIPE_EPOCHS (default 4) shortens all three alike; RAGTUNE_RECIPE_RUNS picks runs.
set -uo pipefail
out=${OUT:-gpu-out}; mkdir -p "$out"
source .gpu/setup.sh
[ -e node_modules ] || ln -s .gpu/node_modules node_modules
export RAGTUNE_BUILD_JOBS=16
epochs=${RAGTUNE_RECIPE_EPOCHS:-4}
limit=${RAGTUNE_RECIPE_LIMIT:-170}
if [ ! -f build/ragtune.node ] || ! node -e 'require("./build/libtorch.json").cuda || process.exit(1)' 2>/dev/null; then
  node scripts/build-native.mjs > "$out/recipe-build.log" 2>&1 ||
    RAGTUNE_CXXFLAGS=-DRAGTUNE_NO_CUDA_STATS node scripts/build-native.mjs >> "$out/recipe-build.log" 2>&1 ||
    { tail -30 "$out/recipe-build.log"; exit 1; }
fi
work=$(mktemp -d)
node bin/ragtune.mjs create-model --layers 12 --hidden 768 --heads 12 --intermediate 3072 --pooling cls \
  --vocab test/fixtures/tokenizers/bert-base-uncased/vocab.txt --seed 42 --out "$work/bge-base-random" \
  > "$out/recipe-create.log" 2>&1 || { cat "$out/recipe-create.log"; exit 1; }
summary="$out/recipe-summary.txt"; : > "$summary"
timed() { # name, command...
  local name=$1; shift
  local t0; t0=$(date +%s%N)
  timeout "$limit" "$@" > "$out/recipe-$name.log" 2>&1
  local rc=$?
  local s; s=$(python3 -c "print(round(($(date +%s%N) - $t0) / 1e9, 1))")
  echo "$name rc=$rc wall=${s}s" >> "$summary"
}
common=(--model "$work/bge-base-random" --train data/financial/train.jsonl --eval data/financial/test.jsonl
  --epochs "$epochs" --no-baseline --no-onnx --device cuda)
for run in ${RAGTUNE_RECIPE_RUNS:-ragtune ragtune-padded st}; do
  case $run in
    ragtune) timed ragtune node bin/ragtune.mjs train "${common[@]}" --out "$work/ragtune" ;;
    ragtune-padded) timed ragtune-padded node bin/ragtune.mjs train "${common[@]}" --out "$work/ragtune-padded" \
      --packing off --fused-accumulation off ;;
    st) timed st python3 bench/gpu/st_recipe.py "$work/bge-base-random" "$work/st" "$epochs" ;;
  esac
done
# The training time each side reports (ragtune: its final "trained in" line; ST: trainer.train()), then ratios.
for run in ragtune ragtune-padded; do
  [ -f "$out/recipe-$run.log" ] && grep -E "saved the (best|final) model" "$out/recipe-$run.log" | tail -3 | sed "s/^/$run: /" >> "$summary"
done
[ -f "$out/recipe-st.log" ] && tail -1 "$out/recipe-st.log" | sed "s/^/st: /" >> "$summary"
python3 - "$summary" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
wall = {m.group(1): float(m.group(3)) for l in lines if (m := re.match(r"(\S+) rc=(\d+) wall=([\d.]+)s", l)) and m.group(2) == "0"}
if "st" in wall:
    for k in ("ragtune", "ragtune-padded"):
        if k in wall:
            print(f"{k} / sentence-transformers (wall, process start included) = {wall[k] / wall['st']:.2f} (goal ≤ 0.3 for ragtune)")
PY
cat "$summary"
rm -rf "$work"
