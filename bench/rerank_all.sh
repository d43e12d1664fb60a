#!/bin/bash
# The reranker measurements in one go (meant for a GPU box: on the shared 2-core CPU the SciFact cross-encoder
# training alone takes ~40 min and reranking the 300 test queries ~1 h).
#   bash bench/rerank_all.sh        # DATA (default $SIXFOLD_BENCH_DATA, else ../shared/data), CACHE (default
#                                   # $SIXFOLD_BENCH_CACHE/eval, else ~/.cache/sixfold/bench/eval) as in bench/benchdata.py
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-${SIXFOLD_BENCH_DATA:-../shared/data}}
CACHE=${CACHE:-${SIXFOLD_BENCH_CACHE:-$HOME/.cache/sixfold/bench}/eval}
PY=${PY:-python}
export HF_HUB_OFFLINE=1 PYTHONPATH=$PWD
# 1. SciFact reranker: train split only (test queries never seen); 10% of train held out for before/after
$PY -m sixfold tune reranker --beir "$DATA/beir_scifact" --split train --index "$CACHE/scifact" --json > bench/results/tune_reranker_scifact.json
# 2. rerank depth / weight / fusion weights, chosen on the held-out train queries
$PY bench/rerank_blend.py --data "$DATA" --index "$CACHE/scifact"
# 3. every set, every mode (the SciFact reranker is used zero-shot on the others)
$PY bench/eval_retrieval.py --data "$DATA" --cache "$CACHE"
# 4. fusion weights and candidate depth, chosen on SciFact train, read on every test set
$PY bench/fusion_weights.py --data "$DATA" --cache "$CACHE" --candidates 300
# 5. the peer on the same corpus, same run (txtai's defaults, 256 tokens, exact search)
$PY bench/peer_txtai.py --data "$DATA"
