#!/usr/bin/env bash
# cifar-fast on a lent GPU: a sweep of epochs and rates, JSON lines to $OUT/tta.jsonl.
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 VGGNET_HOME=${VGGNET_HOME:-/tmp/vggnet-home}
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
DATA=${DATA:-.devdata/cifar10-train-jpg.tar.gz}
runs=()
for r in "$@"; do runs+=(--run "$r"); done
python3 benchmarks/time_to_accuracy.py --data "$DATA" --out "$OUT/tta.jsonl" "${runs[@]}" 2>&1 | grep '^{'
