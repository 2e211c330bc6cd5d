#!/usr/bin/env bash
# Issue 5 on a lent GPU: the README's speed table, GPU rows. Run from the repo root with the CIFAR
# tarball at $DATA (default .devdata/, a copy of ../shared/data). JSON lines go to $OUT (or ./bench-out).
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 VGGNET_HOME=${VGGNET_HOME:-/tmp/vggnet-home}
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
DATA=${DATA:-.devdata/cifar10-train-jpg.tar.gz}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
run() {  # name, then the vggnet bench arguments
  local name=$1; shift
  echo "== $name: vggnet bench $*"
  timeout 300 python3 -m vggnet bench "$@" --quiet | tail -1 | tee "$OUT/$name.json"
}
run infer_vgg16_b8 infer --model vgg16 --batch-size 8 --steps 50 --baseline
run infer_vgg16_b64 infer --model vgg16 --batch-size 64 --steps 20 --baseline
run train_vgg11bn_cifar train --model vgg11_bn --data "$DATA" --batch-size 128 --steps 50 --baseline
run train_vgg16_224_b32 train --model vgg16 --image-size 224 --batch-size 32 --steps 10 --baseline
run train_vgg16_224_b32_ckpt train --model vgg16 --image-size 224 --batch-size 32 --steps 10 --grad-checkpointing --baseline
run infer_vgg16_b8_graphs infer --model vgg16 --batch-size 8 --steps 50 --compile --compile-mode reduce-overhead --rounds 1
