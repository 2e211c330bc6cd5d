import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vggnet.evaluate.tta import TestTimeAugment


class Probe(nn.Module):
    """Logits that see where the image's mass is: different for every flip and shift."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(10, 3 * 8 * 8))

    def forward(self, x):
        return x.flatten(1) @ self.w.T


def test_levels_average_the_stated_views():
    torch.manual_seed(0)
    model, x = Probe(), torch.randn(4, 3, 8, 8)
    assert torch.equal(TestTimeAugment(model, 0)(x), model(x))
    mirror = (model(x) + model(x.flip(3))) / 2
    assert torch.allclose(TestTimeAugment(model, 1)(x), mirror)
    views = []
    for v in (x, x.flip(3)):
        p = F.pad(v, (1, 1, 1, 1), mode="reflect")
        views += [p[..., :8, :8], p[..., 2:, 2:]]
    shifted = sum(model(v) for v in views) / 4
    assert torch.allclose(TestTimeAugment(model, 2)(x), 0.5 * mirror + 0.5 * shifted, atol=1e-5)


def test_bad_level():
    with pytest.raises(ValueError, match="level must be 0, 1 or 2"):
        TestTimeAugment(Probe(), 3)
