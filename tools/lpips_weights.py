"""Convert LPIPS v0.1's published VGG calibration (``lpips/weights/v0.1/vgg.pth``) to the
safetensors file vggnet ships.

The published file is a pickled state dict saved from a CUDA device in the project's repository
(the PyPI wheel's copy is on the CPU); it is read with ``map_location='cpu'`` and
``weights_only=True``, so it loads anywhere. Keys and values are kept as published
(``lin0.model.1.weight`` ... ``lin4.model.1.weight``, float32), so the file can be checked
against the original tensor by tensor.

    pip download lpips==0.1.4 --no-deps && unzip lpips-0.1.4-py3-none-any.whl 'lpips/weights/*'
    python tools/lpips_weights.py lpips/weights/v0.1/vgg.pth
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch
from safetensors.torch import save_file

from vggnet.perceptual.lpips import LINEAR_FILE, LINEAR_KEYS

PUBLISHED_SHA256 = "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"
"""sha256 of ``lpips/weights/v0.1/vgg.pth`` in the lpips 0.1.4 wheel on PyPI."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("published", type=Path, help="lpips/weights/v0.1/vgg.pth")
    parser.add_argument("--out", type=Path, default=LINEAR_FILE)
    args = parser.parse_args()
    digest = hashlib.sha256(args.published.read_bytes()).hexdigest()
    if digest != PUBLISHED_SHA256:
        raise SystemExit(f"{args.published}: sha256 {digest} is not the published file's {PUBLISHED_SHA256}")
    state = torch.load(args.published, map_location="cpu", weights_only=True)
    if sorted(state) != sorted(LINEAR_KEYS):
        raise SystemExit(f"{args.published}: keys {sorted(state)}, expected {sorted(LINEAR_KEYS)}")
    save_file({k: state[k].float().contiguous() for k in LINEAR_KEYS}, str(args.out),
              metadata={"source": f"lpips 0.1.4, lpips/weights/v0.1/vgg.pth, sha256 {digest}"})
    print(f"{args.out}: sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
