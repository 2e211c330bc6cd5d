"""The paper's ablations as data: each study is a question, what the paper found, and its arms.

An arm is one training run: a model name and recipe overrides on top of the study's base recipe
(``cifar``: Nesterov SGD, one cycle, a linear head on the global pool, no dropout). ``init_from``
names an earlier arm of the same study whose trained weights start this one (section 3.1's way of
training the deep nets). A budget is overrides plus a number of seeds:

- ``small``: a fixed class-balanced subset of CIFAR-10 for a few epochs, one seed; a smoke test
  (about 20 minutes of a 2-core CPU), too short to show the paper's effects;
- ``medium``: the whole 45,000/5,000 split, every arm thinned alike to a quarter of Table 1's
  channels, trained until the one-cycle schedule has annealed to zero, two seeds per arm; sized
  to converge in at most 90 minutes of a 2-core CPU per study (docs/experiments/README.md);
- ``full``: full width and a longer schedule, for a GPU.

``comparisons`` are the paper's claims as pairs of arms; the report calls each one only when the
two arms' seeds do not overlap.
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
    epochs_factor: float = 1.0  # this arm trains this many times the budget's epochs (a slow starter, a donor)


@dataclass(frozen=True)
class Claim:
    """What the paper found about two arms: ``first`` beats ``second`` (``expect="better"``), or
    ``first`` does not beat it (``expect="no gain"``: LRN, depth past saturation)."""

    first: str
    second: str
    expect: str = "better"


BUDGETS = ("small", "medium", "full")
SEEDS = {"small": 1, "medium": 2, "full": 1}  # seeds per arm: medium's spread decides what is resolved


@dataclass(frozen=True)
class Study:
    name: str
    question: str
    paper: str  # what the paper reports, to set the result against
    arms: tuple[Arm, ...]
    small: dict[str, str]  # budget overrides for every arm
    full: dict[str, str]
    medium: dict[str, str] = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()

    def budget(self, name: str) -> dict[str, str]:
        """The recipe overrides every arm gets under budget ``name``."""
        if name not in BUDGETS:
            raise VggnetError(f"unknown budget {name!r}; valid: {', '.join(BUDGETS)}")
        return {"small": self.small, "medium": {**MEDIUM, **self.medium}, "full": self.full}[name]


def _small(epochs: int, train: int = 4000, val: int = 1000) -> dict[str, str]:
    return {"epochs": str(epochs), "train_images": str(train), "val_images": str(val)}


FULL = {"epochs": "30", "train_images": "0", "val_images": "0"}
MEDIUM_WIDTH = "0.25"
MEDIUM = {"train_images": "0", "val_images": "0", "width": MEDIUM_WIDTH, "batch_size": "256", "lr": "0.04"}
"""The medium budget's common part. Each study sets its epochs (``Study.medium``) from the measured
cost of its arms (docs/experiments/README.md): their epochs of 45,000 images, two seeds, within 90
minutes of a 2-core CPU. Batch 256 at twice the base rate (the same rate per image): a thin net
trains 5-14% more images per second than at 128 on two cores."""
INITS = ("paper", "normal001", "glorot", "kaiming")
PLAIN_A = {**PAPER_INIT, "normalize_std": "false"}

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
        _small(3, train=3000), FULL, medium={"epochs": "8"},
        claims=(Claim("B-BN", "A-BN"), Claim("D-BN", "B-BN"), Claim("E-BN", "D-BN", "no gain"),
                Claim("B", "A"), Claim("D", "B"), Claim("E", "D", "no gain")),
    ),
    Study(
        "lrn",
        "Does local response normalisation help? A against A-LRN.",
        "Table 3: A-LRN 29.7% top-1 error against A's 29.6%: no gain, so LRN is not used deeper.",
        (Arm("A", "vgg11"), Arm("A-LRN", "vgg11_lrn")),
        _small(8), FULL, medium={"epochs": "24"},
        claims=(Claim("A-LRN", "A", "no gain"),),
    ),
    Study(
        "conv1x1",
        "1x1 against 3x3: C (three 1x1 layers) against D (3x3 in their place), both with BatchNorm.",
        "Table 3: C 28.1% against D 27.0% top-1 error (S=256): extra non-linearity helps, but "
        "spatial context (3x3) helps more.",
        (Arm("C-BN", "vgg16_conv1_bn"), Arm("D-BN", "vgg16_bn")),
        _small(4), FULL, medium={"epochs": "24"},
        claims=(Claim("D-BN", "C-BN"),),
    ),
    Study(
        "filters",
        "Small against large filters: each block's stack of 3x3 layers against one 5x5 or 7x7 layer "
        "of the same receptive field (B and its five-layer 5x5 net, as in the paper; D with 5x5/7x7).",
        "Section 4.1: the shallow 5x5 net derived from B had a 7% higher top-1 error than B.",
        (Arm("B-BN", "vgg13_bn"), Arm("B-5x5-BN", "vgg13_5x5_bn"), Arm("D-BN", "vgg16_bn"),
         Arm("D-large-BN", "vgg16_large_bn")),
        _small(4), FULL, medium={"epochs": "16"},
        claims=(Claim("B-BN", "B-5x5-BN"), Claim("D-BN", "D-large-BN")),
    ),
    Study(
        "init",
        "Initialising plain nets (no BatchNorm): N(0, 0.1) (the paper's wording), N(0, 0.01) (the "
        "common reading), Glorot, Kaiming and the paper's remedy (start from a trained A) for D and E; "
        "and A at N(0, 0.01) fed pixels on [0, 1] (torchvision's scale) against [0, 255] (Caffe's).",
        "Section 3.1: 'bad initialisation can stall learning'; D and E were started from A's first "
        "four conv and last three FC layers; after submission Glorot init was found to work without.",
        # A at N(0, 0.01), mean subtraction only, leaves the plateau late even on 0-255 pixels: twice the steps
        (Arm("A, normal001, pixels 0-1", "vgg11", PLAIN_A, epochs_factor=2),
         Arm("A, normal001, pixels 0-255", "vgg11", {**PLAIN_A, "pixel_range": "255"}, epochs_factor=2),
         Arm("A (donor)", "vgg11", {"init": "kaiming"}, epochs_factor=1.25))  # the strongest donor the budget allows
        + tuple(Arm(f"{c}, {i}", m, {"init": i}) for c, m in (("D", "vgg16"), ("E", "vgg19")) for i in INITS)
        + (Arm("D, from A", "vgg16", PAPER_INIT, init_from="A (donor)"),
           Arm("E, from A", "vgg19", PAPER_INIT, init_from="A (donor)")),
        # many small steps: a plain net needs a few hundred to leave the ln 10 plateau
        {**_small(8, train=1000, val=250), "batch_size": "32"}, FULL, medium={"epochs": "5"},
        # the paper's reading: its remedy and Glorot train where N(0, 0.01) from scratch may stall
        claims=(Claim("D, from A", "D, normal001"), Claim("E, from A", "E, normal001"),
                Claim("D, glorot", "D, normal001"), Claim("E, glorot", "E, normal001")),
    ),
    Study(
        "augment",
        "Augmentation: random crops (the CIFAR analogue of scale jittering) and flips on and off, A-BN.",
        "Table 3-4: scale jittering at training time lowers top-1 error by 1-2.5 points (e.g. D: "
        "27.0% at S=256 against 25.6% jittered in [256, 512]).",
        (Arm("none", "vgg11_bn", {"pad_crop": "0", "flip": "false"}),
         Arm("flip", "vgg11_bn", {"pad_crop": "0", "flip": "true"}),
         Arm("crop + flip", "vgg11_bn", {"pad_crop": "4", "flip": "true"})),
        _small(8), {**FULL, "epochs": "60"}, medium={"epochs": "24"},
        claims=(Claim("flip", "none"), Claim("crop + flip", "flip")),
    ),
)}


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise VggnetError(f"unknown study {name!r}; valid: {', '.join(STUDIES)}")
    return STUDIES[name]
