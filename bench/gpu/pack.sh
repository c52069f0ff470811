#!/usr/bin/env bash
# Prepares the git-ignored .gpu/ folder for a run on a GPU machine that has PyTorch (libtorch + CUDA) but no
# Node.js: a stripped node and its headers (../shared/gpu/pack-node.sh when present), plus the few npm packages
# the run needs (tsx/esbuild to run TypeScript, node-addon-api to build, the runtime dependencies), small enough
# to travel with the working tree. Usage here: bash bench/gpu/pack.sh; there: bash bench/gpu/run.sh
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
if [ -f ../shared/gpu/pack-node.sh ]; then bash ../shared/gpu/pack-node.sh; else echo "pack-node.sh not found" >&2; exit 1; fi
rm -rf .gpu/node_modules && mkdir -p .gpu/node_modules/@esbuild .gpu/node_modules/@huggingface
for p in tsx esbuild node-addon-api hyparquet csv-parse @esbuild/linux-x64 @huggingface/tokenizers; do
  cp -r "node_modules/$p" ".gpu/node_modules/$p"
done
du -sh .gpu
