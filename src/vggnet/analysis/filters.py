"""The arithmetic behind "small filters, deeper networks" (paper, section 2.3), by counting.

Each comparison builds the layers it talks about and traces them with :func:`trace`, so the
numbers are counted from real modules, never typed in: a stack of n 3x3 convolutions has the
receptive field of one (2n+1)x(2n+1) convolution, with 9nC^2 instead of (2n+1)^2 C^2 weights and
n non-linearities instead of one; a 1x1 bottleneck cuts a 3x3 layer's weights further.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from vggnet.analysis.trace import Trace, trace


@dataclass(frozen=True)
class Cost:
    """What one design costs, counted from its trace (convolutions without biases)."""

    layers: str
    params: int
    macs: int
    receptive_field: int
    nonlinearities: int


@dataclass(frozen=True)
class Comparison:
    title: str
    small: Cost
    large: Cost

    @property
    def param_ratio(self) -> float:
        """How many times more weights the large design needs."""
        return self.large.params / self.small.params

    def to_dict(self) -> dict[str, object]:
        return {"title": self.title, "small": asdict(self.small), "large": asdict(self.large),
                "param_ratio": self.param_ratio}


def _cost(description: str, layers: list[nn.Module], size: int) -> Cost:
    net = nn.Sequential(*layers)
    t: Trace = trace(net, input_size=size)
    return Cost(layers=description, params=t.params, macs=t.macs,
                receptive_field=int(t.layers[-1].receptive_field or 0),
                nonlinearities=sum(isinstance(m, nn.ReLU) for m in layers))


def _conv_relu(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.ReLU(inplace=True)]


def stacked_vs_single(n: int, channels: int, size: int = 56) -> Comparison:
    """n stacked 3x3 conv+ReLU layers against one (2n+1)x(2n+1) conv+ReLU, both C -> C."""
    k = 2 * n + 1
    stack = [m for _ in range(n) for m in _conv_relu(channels, channels, 3)]
    return Comparison(
        title=f"{n} x 3x3 vs 1 x {k}x{k} at {channels} channels ({size}x{size} map)",
        small=_cost(f"{n} x conv3-{channels}", stack, size),
        large=_cost(f"1 x conv{k}-{channels}", _conv_relu(channels, channels, k), size),
    )


def bottleneck(channels: int, reduced: int, size: int = 56) -> Comparison:
    """A 1x1 reduction to ``reduced`` channels before the 3x3, against a plain 3x3 layer."""
    squeezed = _conv_relu(channels, reduced, 1) + _conv_relu(reduced, channels, 3)
    return Comparison(
        title=f"1x1 bottleneck {channels}->{reduced}->{channels} vs 3x3 at {channels} ({size}x{size} map)",
        small=_cost(f"conv1-{reduced} + conv3-{channels}", squeezed, size),
        large=_cost(f"conv3-{channels}", _conv_relu(channels, channels, 3), size),
    )


def filter_arithmetic(channels: int = 128, max_stack: int = 4, reduced: int = 32,
                      size: int = 56) -> list[Comparison]:
    """Every comparison of the ``vggnet filters`` report."""
    rows = [stacked_vs_single(n, channels, size) for n in range(2, max_stack + 1)]
    return rows + [bottleneck(channels, reduced, size)]
