"""The paper's ablations as data: each study is a question, what the paper found, and its arms.

An arm is one training run: a model name and recipe overrides on top of the study's base recipe
(``cifar``: Nesterov SGD, one cycle, a linear head on the global pool, no dropout). ``init_from``
names an earlier arm of the same study whose trained weights start this one (section 3.1's way of
training the deep nets). Budgets are overrides too: ``small`` runs every study on a fixed
class-balanced subset of CIFAR-10 in about 20 minutes of a 2-core CPU; ``full`` is for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vggnet.errors import VggnetError

BASE_RECIPE = "cifar"
BASE = {"head": "linear", "dropout": "0", "precision": "auto"}
PAPER_INIT = {"init": "normal001"}  # N(0, 0.01): the common reading of the paper's "10^-2"


@dataclass(frozen=True)
class Arm:
    label: str
    model: str
    overrides: dict[str, str] = field(default_factory=dict)
    init_from: str = ""  # the label of an earlier arm whose trained weights start this one


@dataclass(frozen=True)
class Study:
    name: str
    question: str
    paper: str  # what the paper reports, to set the result against
    arms: tuple[Arm, ...]
    small: dict[str, str]  # budget overrides for every arm
    full: dict[str, str]

    def budget(self, name: str) -> dict[str, str]:
        if name not in ("small", "full"):
            raise VggnetError(f"unknown budget {name!r}; valid: small, full")
        return self.small if name == "small" else self.full


def _small(epochs: int, train: int = 4000, val: int = 1000) -> dict[str, str]:
    return {"epochs": str(epochs), "train_images": str(train), "val_images": str(val)}


FULL = {"epochs": "30", "train_images": "0", "val_images": "0"}
INITS = ("paper", "normal001", "glorot", "kaiming")
# A at N(0, 0.01), mean subtraction only; it leaves the plateau late even on 0-255 pixels: twice the steps
PLAIN_A = {**PAPER_INIT, "normalize_std": "false", "epochs": "16"}

STUDIES: dict[str, Study] = {s.name: s for s in (
    Study(
        "depth",
        "Does depth win? A (11 layers), B (13), D (16), E (19), plain with the paper's N(0, 0.01) "
        "initialisation and with BatchNorm.",
        "Table 3: top-1 error falls from 29.6% (A) to 25.5% (E) at fixed training scale; "
        "D and E were started from a trained A, not from random weights.",
        tuple(Arm(f"{c}", m, PAPER_INIT) for c, m in (("A", "vgg11"), ("B", "vgg13"), ("D", "vgg16"), ("E", "vgg19")))
        + tuple(Arm(f"{c}-BN", f"{m}_bn") for c, m in (("A", "vgg11"), ("B", "vgg13"), ("D", "vgg16"),
                                                         ("E", "vgg19"))),
        _small(3, train=3000), FULL,
    ),
    Study(
        "lrn",
        "Does local response normalisation help? A against A-LRN.",
        "Table 3: A-LRN 29.7% top-1 error against A's 29.6%: no gain, so LRN is not used deeper.",
        (Arm("A", "vgg11"), Arm("A-LRN", "vgg11_lrn")),
        _small(8), FULL,
    ),
    Study(
        "conv1x1",
        "1x1 against 3x3: C (three 1x1 layers) against D (3x3 in their place), both with BatchNorm.",
        "Table 3: C 28.1% against D 27.0% top-1 error (S=256): extra non-linearity helps, but "
        "spatial context (3x3) helps more.",
        (Arm("C-BN", "vgg16_conv1_bn"), Arm("D-BN", "vgg16_bn")),
        _small(4), FULL,
    ),
    Study(
        "filters",
        "Small against large filters: each block's stack of 3x3 layers against one 5x5 or 7x7 layer "
        "of the same receptive field (B and its five-layer 5x5 net, as in the paper; D with 5x5/7x7).",
        "Section 4.1: the shallow 5x5 net derived from B had a 7% higher top-1 error than B.",
        (Arm("B-BN", "vgg13_bn"), Arm("B-5x5-BN", "vgg13_5x5_bn"), Arm("D-BN", "vgg16_bn"),
         Arm("D-large-BN", "vgg16_large_bn")),
        _small(4), FULL,
    ),
    Study(
        "init",
        "Initialising plain nets (no BatchNorm): N(0, 0.1) (the paper's wording), N(0, 0.01) (the "
        "common reading), Glorot, Kaiming and the paper's remedy (start from a trained A) for D and E; "
        "and A at N(0, 0.01) fed pixels on [0, 1] (torchvision's scale) against [0, 255] (Caffe's).",
        "Section 3.1: 'bad initialisation can stall learning'; D and E were started from A's first "
        "four conv and last three FC layers; after submission Glorot init was found to work without.",
        (Arm("A, normal001, pixels 0-1", "vgg11", PLAIN_A),
         Arm("A, normal001, pixels 0-255", "vgg11", {**PLAIN_A, "pixel_range": "255"}),
         Arm("A (donor)", "vgg11", {"init": "kaiming", "epochs": "10"}))  # the strongest donor the budget allows
        + tuple(Arm(f"{c}, {i}", m, {"init": i}) for c, m in (("D", "vgg16"), ("E", "vgg19")) for i in INITS)
        + (Arm("D, from A", "vgg16", PAPER_INIT, init_from="A (donor)"),
           Arm("E, from A", "vgg19", PAPER_INIT, init_from="A (donor)")),
        # many small steps: a plain net needs a few hundred to leave the ln 10 plateau
        {**_small(8, train=1000, val=250), "batch_size": "32"}, FULL,
    ),
    Study(
        "augment",
        "Augmentation: random crops (the CIFAR analogue of scale jittering) and flips on and off, A-BN.",
        "Table 3-4: scale jittering at training time lowers top-1 error by 1-2.5 points (e.g. D: "
        "27.0% at S=256 against 25.6% jittered in [256, 512]).",
        (Arm("none", "vgg11_bn", {"pad_crop": "0", "flip": "false"}),
         Arm("flip", "vgg11_bn", {"pad_crop": "0", "flip": "true"}),
         Arm("crop + flip", "vgg11_bn", {"pad_crop": "4", "flip": "true"})),
        _small(8), {**FULL, "epochs": "60"},
    ),
)}


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise VggnetError(f"unknown study {name!r}; valid: {', '.join(STUDIES)}")
    return STUDIES[name]
