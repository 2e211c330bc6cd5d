"""Each network's declared minimum input side matches what its layers take, and a smaller input
is one line naming the minimum; GoogLeNet trains with its auxiliary classifiers."""

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import meta_model
from vggnet.errors import InputShapeError
from vggnet.models import create_model, list_models
from vggnet.models.registry import check_input_size, min_input_size
from vggnet.train.step import AUX_WEIGHT, classification_loss, train_step


@pytest.mark.parametrize("name", list_models())
def test_declared_minimum_is_the_smallest_side_the_network_takes(name):
    model = meta_model(name, num_classes=10).train()
    side = min_input_size(name)
    out = model(torch.empty(2, 3, side, side, device="meta"))
    logits = out if isinstance(out, torch.Tensor) else out[0]
    assert tuple(logits.shape) == (2, 10)
    if side > 1:
        with pytest.raises(InputShapeError, match=f"H, W >= {side}; got \\(2, 3, {side - 1}, {side - 1}\\)"):
            model(torch.empty(2, 3, side - 1, side - 1, device="meta"))


def test_declared_minimums_of_the_classics():
    assert {n: min_input_size(n) for n in ("alexnet", "googlenet", "densenet121", "vgg_fast", "A", "resnet18")} == {
        "alexnet": 63, "googlenet": 15, "densenet121": 29, "vgg_fast": 16, "A": 32, "resnet18": 1}


def test_too_small_is_one_line_with_the_fix():
    with pytest.raises(InputShapeError) as err:
        check_input_size("alexnet", 32)
    assert str(err.value) == ("alexnet needs images of at least 63 px, got 32 px: resize them with "
                              "--set image_size=63 (or larger), or choose another model")
    check_input_size("alexnet", 63)
    check_input_size("alexnet", 0)  # not known yet: nothing to check


def test_auxiliary_losses_are_weighted_as_in_the_paper():
    labels = torch.tensor([0, 2])
    main, aux2, aux1 = torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3)
    objective, loss, logits = classification_loss((main, aux2, aux1), labels)
    aux_losses = F.cross_entropy(aux2, labels) + F.cross_entropy(aux1, labels)
    expected = F.cross_entropy(main, labels) + AUX_WEIGHT * aux_losses
    assert AUX_WEIGHT == 0.3 and torch.allclose(objective, expected)
    assert torch.equal(loss, F.cross_entropy(main, labels)) and logits is main
    objective, loss, logits = classification_loss(main, labels)  # a plain network: one loss
    assert torch.equal(objective, loss) and logits is main


def test_googlenet_trains_with_its_auxiliary_heads():
    model = create_model("googlenet", num_classes=3).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    before = model.aux1.fc2.weight.detach().clone()
    loss, logits = train_step(model, images, torch.tensor([0, 1, 2, 0]), lambda x, **_: x.float() / 255, optimizer,
                              accumulate=2)
    assert tuple(logits.shape) == (4, 3) and torch.isfinite(loss)
    assert not torch.equal(before, model.aux1.fc2.weight)  # the auxiliary classifier learned too
