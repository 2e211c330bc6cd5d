"""VGG next to the networks it is compared with: parameters, MACs, memory, published accuracy.

Costs are traced from the models; accuracies are published figures with their source. They are
ImageNet-1k validation top-1, single 224 centre crop (torchvision's reference evaluation),
except where torchvision has no weights (A-LRN, C): there the paper's Table 3 figure is used,
which was measured with dense single-scale evaluation (Q = 256) and is not strictly comparable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vggnet.analysis.trace import trace
from vggnet.configs import NAME_TO_CONFIG
from vggnet.models.registry import list_models, min_input_size

TORCHVISION = "torchvision model docs (IMAGENET1K_V1 weights, acc@1)"
PAPER_TABLE_3 = "Simonyan & Zisserman 2015, Table 3 (100 - top-1 error, S = Q = 256)"

PUBLISHED_TOP1: dict[str, tuple[float, str]] = {
    "alexnet": (56.522, TORCHVISION),
    "vgg11": (69.020, TORCHVISION),
    "vgg11_bn": (70.370, TORCHVISION),
    "vgg11_lrn": (70.3, PAPER_TABLE_3),
    "vgg13": (69.928, TORCHVISION),
    "vgg13_bn": (71.586, TORCHVISION),
    "vgg16_conv1": (71.9, PAPER_TABLE_3),
    "vgg16": (71.592, TORCHVISION),
    "vgg16_bn": (73.360, TORCHVISION),
    "vgg19": (72.376, TORCHVISION),
    "vgg19_bn": (74.218, TORCHVISION),
    "googlenet": (69.778, TORCHVISION),
    "resnet18": (69.758, TORCHVISION),
    "resnet34": (73.314, TORCHVISION),
    "resnet50": (76.130, TORCHVISION),
    "resnet101": (77.374, TORCHVISION),
    "resnet152": (78.312, TORCHVISION),
    "densenet121": (74.434, TORCHVISION),
}

DEFAULT_MODELS = list_models("vgg*") + [
    "alexnet", "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "densenet121",
]


@dataclass(frozen=True)
class ModelCost:
    name: str
    paper_config: str | None
    params: int
    macs: int
    activations_forward: int
    saved_bytes_per_image: int
    top1: float | None
    source: str | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def too_small(models: list[str], input_size: int) -> dict[str, int]:
    """The models whose smallest input side is above ``input_size``, with that side."""
    return {name: min_input_size(name) for name in models if min_input_size(name) > input_size}


def compare(models: list[str] | None = None, input_size: int = 224) -> list[ModelCost]:
    """One row per model, traced at ``input_size``; GoogLeNet without its training-only heads.

    Models that cannot take ``input_size`` (AlexNet below 63 px) are left out -- :func:`too_small`
    names them -- unless every model is, when tracing the first says why it cannot."""
    names = models or DEFAULT_MODELS
    skipped = too_small(names, input_size)
    rows = []
    for name in [n for n in names if n not in skipped] or names[:1]:
        kwargs = {"aux_logits": False} if name == "googlenet" else {}
        t = trace(name, input_size=input_size, **kwargs)
        top1, source = PUBLISHED_TOP1.get(t.model, (None, None))
        config = NAME_TO_CONFIG.get(t.model.removesuffix("_bn"))
        rows.append(ModelCost(
            name=t.model, paper_config=config, params=t.params, macs=t.macs,
            activations_forward=t.activations_forward, saved_bytes_per_image=t.saved_bytes_per_image,
            top1=top1, source=source,
        ))
    return rows
