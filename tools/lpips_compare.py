"""Compare vggnet's LPIPS with the published lpips package's own code, number for number.

lpips imports torchvision (for VGG-16) and tqdm, which this project does not install; here both
are stand-ins, so that the package's code runs unchanged on a random VGG-16 handed to it as
torchvision's ``vgg16().features``. The same random weights, saved as a torchvision-layout file,
are vggnet's ``--backbone``; both use lpips's published v0.1 calibration.

    pip download lpips==0.1.4 --no-deps && unzip lpips-0.1.4-py3-none-any.whl -d lpips-wheel
    python tools/lpips_compare.py lpips-wheel

Prints the largest absolute difference of the distances and of the spatial maps (0.0 on the
development machine, 2026-11-24).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import sys
import tempfile
import types
from pathlib import Path

import torch

from vggnet.models import create_model
from vggnet.perceptual import LPIPS


def _stand_ins(features_state: dict[str, torch.Tensor]) -> None:
    """torchvision.models.vgg16 returning the given weights, and a tqdm that is never called."""
    class _VGG16:
        def __init__(self) -> None:
            self.features = create_model("vgg16").features
            self.features.load_state_dict(features_state)

    models = types.ModuleType("torchvision.models")
    models.vgg16 = lambda *args, **kwargs: _VGG16()
    for name in ("alexnet", "squeezenet1_1", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        setattr(models, name, None)
    torchvision = types.ModuleType("torchvision")
    torchvision.models = models
    tqdm = types.ModuleType("tqdm")
    tqdm.tqdm = None
    tqdm.__spec__ = importlib.machinery.ModuleSpec("tqdm", None)
    sys.modules.update({"torchvision": torchvision, "torchvision.models": models, "tqdm": tqdm})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="the unpacked lpips 0.1.4 wheel (holds lpips/)")
    args = parser.parse_args()
    torch.manual_seed(0)
    state = create_model("vgg16", head="linear", num_classes=2).state_dict()
    _stand_ins({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    sys.path.insert(0, str(args.wheel))
    import lpips  # the published code

    with tempfile.TemporaryDirectory() as tmp:
        backbone = Path(tmp) / "vgg16-random.pth"
        torch.save(state, backbone)
        x, y = torch.rand(3, 3, 64, 80) * 2 - 1, torch.rand(3, 3, 64, 80) * 2 - 1
        with torch.no_grad():
            for spatial in (False, True):
                ref = lpips.LPIPS(net="vgg", spatial=spatial, verbose=False)(x, y)
                ours = LPIPS(backbone=backbone, spatial=spatial)(x, y)
                diff = (ref.reshape(ours.shape) - ours).abs().max().item()
                print(f"{'spatial map' if spatial else 'distance'}: largest |lpips - vggnet| = {diff:.3g} "
                      f"(values {ours.min().item():.4f} .. {ours.max().item():.4f})")


if __name__ == "__main__":
    main()
