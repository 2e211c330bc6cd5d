"""Rebuild src/vggnet/data/imagenet_classes.tsv: the 1000 ImageNet-1k classes in index order.

One line per class, ``WNID<TAB>LABEL``. The WordNet ids come from timm's ``imagenet_synsets.txt``
(sorted ids: the index order of every ImageNet-1k model and of an ImageNet folder tree); the short
labels are torchvision's (``_IMAGENET_CATEGORIES``), so predictions read as torchvision's do.
Both are read from the published wheels, which pip fetches from the package registry:

    pip download --no-deps --dest /tmp/wheels torchvision timm
    python tools/make_imagenet_classes.py /tmp/wheels/torchvision-*.whl /tmp/wheels/timm-*.whl
"""

from __future__ import annotations

import argparse
import ast
import zipfile
from pathlib import Path

DEST = Path(__file__).resolve().parents[1] / "src" / "vggnet" / "data" / "imagenet_classes.tsv"


def torchvision_labels(wheel: Path) -> list[str]:
    source = zipfile.ZipFile(wheel).read("torchvision/models/_meta.py").decode()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_IMAGENET_CATEGORIES":
            return list(ast.literal_eval(node.value))
    raise SystemExit(f"{wheel}: no _IMAGENET_CATEGORIES")


def timm_wnids(wheel: Path) -> list[str]:
    return zipfile.ZipFile(wheel).read("timm/data/_info/imagenet_synsets.txt").decode().split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("torchvision_wheel", type=Path)
    parser.add_argument("timm_wheel", type=Path)
    args = parser.parse_args()
    labels, wnids = torchvision_labels(args.torchvision_wheel), timm_wnids(args.timm_wheel)
    if len(labels) != 1000 or len(wnids) != 1000 or wnids != sorted(wnids) or len(set(labels)) != 1000:
        raise SystemExit("expected 1000 distinct labels and 1000 sorted WordNet ids")
    DEST.write_text("".join(f"{w}\t{label}\n" for w, label in zip(wnids, labels, strict=True)))
    print(f"wrote {DEST}")


if __name__ == "__main__":
    main()
