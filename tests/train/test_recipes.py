import pytest

from vggnet.errors import VggnetError
from vggnet.models import create_model
from vggnet.train.optim import build_optimizer
from vggnet.train.recipes import RECIPES, get_recipe


def test_paper_recipe_is_section_3_1():
    r = RECIPES["paper"]
    assert (r.optimizer, r.momentum, r.batch_size, r.weight_decay) == ("sgd", 0.9, 256, 5e-4)
    assert (r.dropout, r.lr, r.init) == (0.5, 1e-2, "normal001")
    assert (r.schedule, r.lr_drop_factor, r.max_lr_drops, r.scale, r.pca_colour) == ("plateau", 0.1, 3, (256, 512), 0.1)
    assert (r.normalize_std, r.pixel_range) == (False, 255)  # mean subtraction on Caffe's pixel scale


def test_adam_recipe_is_the_common_reimplementation():
    r = RECIPES["adam"]
    assert (r.optimizer, r.lr, r.batch_size, r.weight_decay) == ("adam", 1e-4, 256, 0.0)


def test_overrides_are_parsed_to_field_types():
    r = get_recipe("paper", {"epochs": "3", "lr": "0.05", "nesterov": "true", "scale": "256-384", "batch-size": 8})
    assert (r.epochs, r.lr, r.nesterov, r.scale, r.batch_size) == (3, 0.05, True, (256, 384), 8)
    assert get_recipe("paper", {"scale": "384"}).scale == (384, 384)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"lerning_rate": "1"}, "unknown recipe field 'lerning_rate'"),
    ({"epochs": "ten"}, "recipe field epochs \\(int\\) cannot be 'ten'"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam"),
    ({"dropout": "1.5"}, "dropout must be in"),
    ({"flip": "maybe"}, "flip \\(bool\\) cannot be 'maybe'"),
    ({"accumulate": "0"}, "recipe accumulate must be >= 1, got 0"),
    ({"bias_lr_scale": "-2"}, "recipe bias_lr_scale must be > 0, got -2.0"),
    ({"pixel_range": "100"}, "recipe pixel_range must be 1 or 255, got 100"),
    ({"pixel_range": "255", "normalize_std": "true"}, "pixel_range applies to mean subtraction only"),
])
def test_bad_overrides_are_one_line_errors(overrides, message):
    with pytest.raises(VggnetError, match=message):
        get_recipe("paper", overrides)


def test_unknown_recipe():
    with pytest.raises(VggnetError, match="unknown recipe 'fast'; valid: paper, adam, cifar, cifar-fast"):
        get_recipe("fast")


def test_cifar_fast_is_the_time_to_accuracy_recipe():
    r = RECIPES["cifar-fast"]
    assert (r.model, r.alternate_flip, r.tta, r.pad_crop, r.label_smoothing) == ("vgg_fast", True, 2, 2, 0.2)
    assert (r.schedule, r.nesterov, r.dropout, r.val_fraction) == ("onecycle", True, 0.0, 0.1)  # 45,000 / 5,000
    assert RECIPES["cifar"].model == "" and RECIPES["cifar"].lr == 0.02  # any BN VGG; names its model


def test_bias_lr_scale_gives_the_batchnorm_shifts_their_own_rate_and_the_same_decay_per_step():
    model = create_model("vgg_fast")
    groups = build_optimizer(model, get_recipe("cifar-fast", {"bias_lr_scale": "64"})).param_groups
    assert [len(g["params"]) for g in groups] == [7, 6]  # 6 convs + classifier; 6 BN shifts (scales are fixed)
    assert all(p.ndim == 1 for p in groups[1]["params"])
    assert (groups[1]["lr"], groups[1]["lr"] * groups[1]["weight_decay"]) == (64.0, groups[0]["lr"] * 5e-4)
    assert len(build_optimizer(model, RECIPES["cifar-fast"]).param_groups) == 1  # the recipe's default: one rate


def test_bad_tta_level():
    with pytest.raises(VggnetError, match="recipe tta must be 0"):
        get_recipe("cifar-fast", {"tta": "3"})
