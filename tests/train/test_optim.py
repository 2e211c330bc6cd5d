from itertools import pairwise

import pytest
import torch
from torch import nn

from vggnet.models import create_model
from vggnet.train.muon import Muon, orthogonalise
from vggnet.train.optim import build_optimizer, build_scheduler, freeze_finished, lr_factor
from vggnet.train.recipes import RECIPES, get_recipe


def test_onecycle_rises_from_lr_start_and_falls_to_lr_end():
    total = 100  # airbench94's shape: 0.2 -> 1 over the first 23% of the steps, then down to 0.07
    f = [lr_factor(s, total, 0.23, "onecycle", 0.2, 0.07) for s in range(total + 1)]
    assert f[0] == pytest.approx(0.2 + 0.8 / 23) and f[22] == pytest.approx(1.0)
    assert max(f) == pytest.approx(1.0) and f[total] == pytest.approx(0.07)
    assert f[23 + 77 // 2] == pytest.approx(0.07 + 0.93 * (1 - 38 / 77))  # linear in between
    assert all(a <= b for a, b in pairwise(f[:23]))
    assert all(a >= b for a, b in pairwise(f[23:]))
    assert lr_factor(0, 10, 0.0, "cosine", 0.0, 0.5) == 1.0 and lr_factor(10, 10, 0.0, "cosine", 0.0, 0.5) == 0.5
    assert lr_factor(99, 100, 0.2, "onecycle") == pytest.approx(0.0125)  # defaults: from 0, to 0, as before


def test_cifar_fast_groups_the_bn_shifts_and_the_stem_bias_which_freezes_after_its_epochs():
    model = create_model("vgg_fast")
    recipe = RECIPES["cifar-fast"]
    opt = build_optimizer(model, recipe)
    main, shifts, stem = opt.param_groups
    assert [len(g["params"]) for g in opt.param_groups] == [7, 6, 1]  # 6 convs + classifier; 6 BN shifts; stem bias
    assert stem["params"][0] is model.stem.bias and stem["train_epochs"] == 3
    assert shifts["lr"] == 64 * recipe.lr and shifts["lr"] * shifts["weight_decay"] == pytest.approx(
        main["lr"] * main["weight_decay"])  # 64x the rate, the same decay per step
    sched = build_scheduler(opt, recipe, steps_per_epoch=10)
    rates = []
    for _ in range(40):
        rates.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert rates[29][0] > 0 and rates[29][2] == pytest.approx(rates[29][0])  # the stem bias: the main rate, 3 epochs
    assert rates[30][2] == 0 and rates[39][2] == 0 and rates[39][0] > 0  # then stops; the rest goes on
    freeze_finished(opt, 3)
    assert model.stem.bias.requires_grad  # epoch 3 still trains it
    freeze_finished(opt, 4)
    assert not model.stem.bias.requires_grad and model.classifier.weight.requires_grad  # no backward into the stem
    model.stem.bias.requires_grad_(True)
    off = build_optimizer(model, get_recipe("cifar-fast", {"stem_bias_epochs": "0"}))
    assert all(p is not model.stem.bias for g in off.param_groups for p in g["params"])  # 0: never trained


def test_muon_puts_the_conv_filters_in_an_orthogonalised_group():
    model = create_model("vgg_fast")
    opt = build_optimizer(model, get_recipe("cifar-fast", {"optimizer": "muon"}))
    assert isinstance(opt, Muon)
    filters = [g for g in opt.param_groups if g.get("orthogonal")]
    assert len(filters) == 1 and len(filters[0]["params"]) == 6 and all(p.ndim == 4 for p in filters[0]["params"])
    assert (filters[0]["lr"], filters[0]["momentum"], filters[0]["weight_decay"]) == (0.24, 0.6, 0.0)
    plain = [p for g in opt.param_groups if not g.get("orthogonal") for p in g["params"]]
    assert model.classifier.weight in plain and all(p.ndim < 4 for p in plain)


def test_orthogonalise_flattens_the_spectrum_and_keeps_the_directions():
    torch.manual_seed(0)
    for shape in [(64, 216), (256, 64), (10, 256)]:
        u, _, vh = torch.linalg.svd(torch.randn(*shape), full_matrices=False)
        s = torch.linspace(0.2, 1.0, min(shape))  # condition number 5
        g = u @ torch.diag(s) @ vh
        o = orthogonalise(g)
        sv = torch.linalg.svdvals(o)
        assert sv.min() > 0.5 and sv.max() < 1.5  # every singular value near 1 (3 iterations: not exactly)
        assert torch.allclose(u.T @ o @ vh.T, torch.diag(torch.diagonal(u.T @ o @ vh.T)), atol=1e-4)


def test_muon_step_renormalises_filters_and_descends():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, 3, bias=False)
    target = torch.randn(8, 4, 3, 3)
    opt = Muon([{"params": [conv.weight], "orthogonal": True, "lr": 0.05, "momentum": 0.6}], lr=0.1,
               momentum=0.6, nesterov=True)
    start = nn.functional.cosine_similarity(conv.weight.flatten(), target.flatten(), dim=0)
    for _ in range(60):
        opt.zero_grad()
        (-(conv.weight * target).sum() / conv.weight.norm()).backward()  # align with target, scale-free
        opt.step()
    end = nn.functional.cosine_similarity(conv.weight.flatten(), target.flatten(), dim=0)
    assert start < 0.2 and end > 0.9
    assert conv.weight.norm().item() == pytest.approx(8**0.5, rel=0.2)  # renormalised to sqrt(out) before each step
