"""Weight initialisations: the paper's, the common readings of it, and init from a shallower net.

The paper (section 3.1) samples weights "from a normal distribution with the zero mean and 10^-2
variance" and sets biases to zero. Taken literally, a variance of 10^-2 is a standard deviation
of 0.1 (``paper``); most re-implementations, and torchvision's FC layers, use a standard
deviation of 0.01 (``normal001``), which reads "10^-2" as the std. With std 0.1 the activations
of a deep plain net explode; with 0.01 they vanish; the paper side-stepped both by training the
shallow net A first and copying its layers into deeper ones (:func:`init_from_shallower`), and
noted after submission that Glorot initialisation (``glorot``) works without it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vggnet.errors import VggnetError


def _normal(std: float) -> Callable[[nn.Module], None]:
    def init(m: nn.Module) -> None:
        nn.init.normal_(m.weight, mean=0.0, std=std)

    return init


def _glorot(m: nn.Module) -> None:
    nn.init.xavier_uniform_(m.weight)


def _kaiming(m: nn.Module) -> None:
    # torchvision's scheme: He-normal (fan_out) for convolutions, N(0, 0.01) for FC layers.
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    else:
        nn.init.normal_(m.weight, 0.0, 0.01)


INIT_SCHEMES: dict[str, Callable[[nn.Module], None]] = {
    "paper": _normal(0.1),
    "normal001": _normal(0.01),
    "glorot": _glorot,
    "kaiming": _kaiming,
}


@torch.no_grad()
def init_weights(model: nn.Module, scheme: str = "kaiming") -> nn.Module:
    """Initialise every conv and FC layer of ``model`` with ``scheme``; biases 0, BN to (1, 0)."""
    if scheme not in INIT_SCHEMES:
        raise VggnetError(f"unknown init {scheme!r}; valid: {', '.join(INIT_SCHEMES)}")
    weight_init = INIT_SCHEMES[scheme]
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            weight_init(m)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def _paper_layers(model: nn.Module, prefix: str) -> list[str]:
    names = getattr(model, "layer_names", None)
    if names is None:
        raise VggnetError(f"{type(model).__name__} has no paper layer names; expected a vggnet VGG")
    return [n for n in names if n.startswith(prefix) and n[len(prefix)].isdigit()]


@torch.no_grad()
def init_from_shallower(
    model: nn.Module, source: nn.Module, conv_layers: int = 4, fc_layers: int = 3
) -> list[str]:
    """Copy the first ``conv_layers`` conv layers and last ``fc_layers`` FC layers of a trained
    shallower net (the paper uses A) into ``model``; all other layers keep their random init.
    Nets with the same, smaller head (``linear``: one FC layer) copy all of it.

    A's first four conv layers are conv1_1, conv2_1, conv3_1 and conv3_2; each goes to the layer
    of the same name in the deeper net, which has the same shape in every configuration. When
    both nets have BatchNorm, the BN layer after each copied conv is copied with it.
    Returns the state-dict keys that were copied.
    """
    src_modules, dst_modules = dict(source.named_modules()), dict(model.named_modules())
    pairs: list[tuple[str, str]] = []  # (paper name in source, paper name in target)
    for name in _paper_layers(source, "conv")[:conv_layers]:
        pairs.append((name, name))
        bn = "bn" + name[len("conv"):]
        if bn in source.layer_names and bn in model.layer_names:
            pairs.append((bn, bn))
    src_fc, dst_fc = _paper_layers(source, "fc"), _paper_layers(model, "fc")
    if len(src_fc) == len(dst_fc):  # the same head (a 'linear' head has one FC layer): copy all of it
        fc_layers = min(fc_layers, len(src_fc))
    if fc_layers > min(len(src_fc), len(dst_fc)):
        raise VggnetError(f"cannot copy {fc_layers} FC layers: source has {len(src_fc)}, target {len(dst_fc)}")
    pairs += list(zip(src_fc[len(src_fc) - fc_layers:], dst_fc[len(dst_fc) - fc_layers:], strict=True))

    copied: list[str] = []
    for src_name, dst_name in pairs:
        if dst_name not in model.layer_names:
            raise VggnetError(f"target network has no layer {dst_name!r} to initialise from the source")
        src_path, dst_path = source.layer_names[src_name], model.layer_names[dst_name]
        src_state = src_modules[src_path].state_dict()
        dst_module = dst_modules[dst_path]
        for key, tensor in dst_module.state_dict().items():
            if src_state[key].shape != tensor.shape:
                raise VggnetError(
                    f"cannot copy {src_name}.{key}: shape {tuple(src_state[key].shape)} "
                    f"does not fit {dst_name} {tuple(tensor.shape)}"
                )
        dst_module.load_state_dict(src_state)
        copied += [f"{dst_path}.{key}" for key in src_state]
    return copied
