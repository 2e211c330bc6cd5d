"""Data flows downhill: configs -> models -> analysis/weights/data -> evaluate -> perceptual/explain ->
train/quantize -> bench/experiments -> cli. This reads every ``import vggnet...`` in the package
(module level and inside functions) and fails on one that points up the table, so a new shortcut
cannot creep in unseen."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vggnet"

RANK = {
    # shared concerns every layer may use, in tiers
    "errors": 0, "names": 0, "__init__": 0,  # vggnet/__init__: the version string, models imported lazily
    "terminal": 1, "files": 1, "atomic": 1, "progress": 1, "cache": 1, "configs": 1,
    "fastpath": 2, "plotting": 2,
    "layoutprobe": 2.5,  # the layout measured per network; uses the machine probe's fingerprint and cache
    "device": 3,  # precision=auto asks fastpath
    "models": 4,
    "analysis": 5, "data": 5, "runs": 5,
    "weights": 6,  # reads checkpoints (runs), downloads and the ImageNet class table (data)
    "evaluate": 7, "export": 7,
    "perceptual": 7.5, "explain": 7.5,  # VGG as a loss, a metric, a picture: images read as evaluate reads them
    "train": 8, "quantize": 8,  # quantize: export, calibration images and scoring
    "bench": 9,
    "experiments": 10,  # a study's arms are timed with bench's workloads
    "cli": 11, "__main__": 12,
}

# The ways up, by design, each inside functions only, so importing the lower module never imports the
# upper one: create_model(pretrained=True) loads weights, which build models; ``vggnet.create_model``
# is exported lazily, so ``vggnet --help`` does not import torch.
UPWARD = {("models/pretrained.py", "weights"), ("__init__.py", "models")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(vggnet layer imported, whether at module level) for each import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vggnet":
            if node.module == "vggnet":  # from vggnet import __version__ (or a lazily exported name)
                found += [(alias.name if alias.name in RANK else "__init__", id(node) in top) for alias in node.names]
            else:
                found.append((_layer(node.module), id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(_layer(a.name), id(node) in top) for a in node.names if a.name.startswith("vggnet.")]
    return found


def test_every_layer_is_ranked() -> None:
    layers = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.iterdir()
              if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert layers == set(RANK)


def test_no_module_imports_upwards() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        mine = rel.parts[0].removesuffix(".py")
        for other, at_top in _imports(path):
            if other == mine or RANK[other] < RANK[mine]:
                continue
            if (rel.as_posix(), other) in UPWARD and not at_top:
                continue
            wrong.append(f"{rel} imports vggnet.{other}")
    assert not wrong, "imports up the layer table:\n" + "\n".join(wrong)


def test_the_layer_table_catches_an_upward_import(tmp_path) -> None:
    """The check itself can fail: a model module importing train is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from vggnet.train.loop import train\n")
    assert _imports(bad) == [("train", False)]
    assert RANK["train"] > RANK["models"]
