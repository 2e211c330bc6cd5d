import math
from dataclasses import fields

import pytest

from vggnet.errors import VggnetError
from vggnet.models import create_model
from vggnet.train.optim import build_optimizer
from vggnet.train.recipes import BOUNDS, CHOICES, RECIPES, Recipe, check_recipe, get_recipe


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
    ({"accumulate": "0"}, "recipe accumulate must be in \\[1, 1024\\], got 0"),
    ({"bias_lr_scale": "-2"}, "recipe bias_lr_scale must be in \\(0, 1000\\], got -2.0"),
    ({"pixel_range": "100"}, "recipe pixel_range must be one of 1, 255, got 100"),
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
    # airbench94's units: 11.5 per 1024 images of a summed loss with momentum 0.85 is 1.5 for a mean loss at
    # batch 1024; its decay, 0.0153 per 1024 images, is 0.2% per step at the peak rate
    assert r.batch_size == 1024 and r.lr == pytest.approx(11.5 / (1 + 1 / (1 - r.momentum)), rel=1e-3)
    assert r.lr * r.weight_decay == pytest.approx(0.0153 * 1024 / (1024 * (1 + 1 / 0.15)), rel=3e-3)
    assert (r.lookahead, r.stem_bias_epochs, r.bias_lr_scale, r.pad_mode) == (5, 3, 64.0, "reflect")
    assert RECIPES["cifar"].model == "" and RECIPES["cifar"].lr == 0.02  # any BN VGG; names its model


def test_bias_lr_scale_gives_the_batchnorm_shifts_their_own_rate_and_the_same_decay_per_step():
    model = create_model("vgg_fast")
    overrides = {"bias_lr_scale": "8", "lr": "1", "weight_decay": "5e-4", "stem_bias_epochs": "0"}
    groups = build_optimizer(model, get_recipe("cifar-fast", overrides)).param_groups
    assert [len(g["params"]) for g in groups] == [7, 6]  # 6 convs + classifier; 6 BN shifts (scales are fixed)
    assert all(p.ndim == 1 for p in groups[1]["params"])
    assert (groups[1]["lr"], groups[1]["lr"] * groups[1]["weight_decay"]) == (8.0, groups[0]["lr"] * 5e-4)
    one = build_optimizer(model, get_recipe("cifar-fast", {**overrides, "bias_lr_scale": "1"})).param_groups
    assert len(one) == 1  # a scale of 1: one rate for all


def test_bad_tta_level():
    with pytest.raises(VggnetError, match="recipe tta must be one of 0, 1, 2, got 3"):
        get_recipe("cifar-fast", {"tta": "3"})


# Values torch (or the loop) would reject only after the data is read, each one line up front.
@pytest.mark.parametrize(("overrides", "message"), [
    ({"label_smoothing": "1.5"}, "recipe label_smoothing must be in [0, 1), got 1.5"),
    ({"momentum": "-1"}, "recipe momentum must be in [0, 1), got -1.0"),
    ({"weight_decay": "-1"}, "recipe weight_decay must be in [0, 1], got -1.0"),
    ({"workers": "-1"}, "recipe workers must be in [0, 256], got -1"),
    ({"lr_drop_factor": "1"}, "recipe lr_drop_factor must be in (0, 1), got 1.0"),
    ({"lr_drop_factor": "0"}, "recipe lr_drop_factor must be in (0, 1), got 0.0"),
    ({"lr": "nan"}, "recipe lr must be in (0, 1e+12], got nan"),
    ({"lr": "inf"}, "recipe lr must be in (0, 1e+12], got inf"),
    ({"lr": 0.0}, "recipe lr must be in (0, 1e+12], got 0.0"),
    ({"image_size": "10000"}, "recipe image_size must be in [0, 1024], got 10000"),
    ({"warmup": "1.5"}, "recipe warmup must be in [0, 1], got 1.5"),
    ({"val_fraction": "-0.1"}, "recipe val_fraction must be in [0, 1), got -0.1"),
    ({"val_fraction": "1"}, "recipe val_fraction must be in [0, 1), got 1.0"),
    ({"lr_start": "2"}, "recipe lr_start must be in [0, 1], got 2.0"),
    ({"lr_end": "-1"}, "recipe lr_end must be in [0, 1], got -1.0"),
    ({"lookahead": "-1"}, "recipe lookahead must be in [0, 10000], got -1"),
    ({"muon_momentum": "1"}, "recipe muon_momentum must be in [0, 1), got 1.0"),
    ({"pad_mode": "edge"}, "recipe pad_mode must be one of zeros, reflect, got 'edge'"),
    ({"optimizer": "lion"}, "recipe optimizer must be one of sgd, adam, muon, got 'lion'"),
    ({"stem_bias_epochs": "2", "schedule": "plateau"}, "stem_bias_epochs freezes the stem's bias through the"),
    ({"train_images": "-5"}, "recipe train_images must be in [0, 1e+09], got -5"),
    ({"pca_colour": "-0.1"}, "recipe pca_colour must be in [0, 1], got -0.1"),
    ({"pad_crop": "-1"}, "recipe pad_crop must be in [0, 64], got -1"),
    ({"epochs": "0"}, "recipe epochs must be in [1, 100000], got 0"),
    ({"batch_size": "0"}, "recipe batch_size must be in [1, 65536], got 0"),
    ({"lr_drop_patience": "-1"}, "recipe lr_drop_patience must be in [0, 1000], got -1"),
    ({"max_lr_drops": "-1"}, "recipe max_lr_drops must be in [0, 100], got -1"),
    ({"scale": "0"}, "recipe scale must be in [1, 2048], got 0"),
    ({"scale": "512-256"}, "recipe scale is S_min-S_max with S_min <= S_max, got 512-256"),
    ({"scale": "128"}, "recipe scale 128 is below the crop size 224"),
    ({"test_scale": "100"}, "recipe test_scale 100 is below the crop size 224"),
    ({"image_size": "96", "test_scale": "64"}, "recipe test_scale 64 is below the crop size 96"),
    ({"test_scale": "5000"}, "recipe test_scale must be in [1, 2048], got 5000"),
    ({"precision": "fp16"}, "recipe precision must be one of auto, fp32, bf16, got 'fp16'"),
    ({"head": "big"}, "recipe head must be one of auto, imagenet, small, linear, got 'big'"),
    ({"init": "zeros"}, "recipe init must be one of paper, normal001, glorot, kaiming, got 'zeros'"),
    ({"schedule": "step"}, "recipe schedule must be one of plateau, onecycle, cosine, constant, got 'step'"),
    ({"scale": "abc"}, "recipe field scale (tuple[int, int]) cannot be 'abc': it takes one integer or two"),
    ({"scale": "-5"}, "recipe field scale (tuple[int, int]) cannot be '-5'"),
    ({"lr": ""}, "recipe field lr (float) cannot be '': it takes a number"),
    ({"epochs": 2.5}, "recipe epochs must be an integer, got 2.5"),
    ({"nesterov": 1}, "recipe nesterov must be true or false, got 1"),
    ({"model": "vgg99"}, "unknown model 'vgg99'"),
    ({"model": "alexnet", "image_size": "32"}, "alexnet needs images of at least 63 px, got 32 px: resize them with "
                                               "--set image_size=63"),
    ({"name": "x"}, "unknown recipe field 'name'"),
])
def test_out_of_range_values_are_refused_before_training(overrides, message):
    with pytest.raises(VggnetError) as err:
        get_recipe("paper", overrides)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_every_numeric_field_has_a_declared_range_and_the_presets_keep_to_them():
    numeric = {f.name for f in fields(Recipe) if f.type in ("int", "float") or str(f.type).startswith("tuple")}
    assert numeric - set(BOUNDS) - set(CHOICES) == set()
    assert set(BOUNDS) | set(CHOICES) <= {f.name for f in fields(Recipe)}
    for recipe in RECIPES.values():
        check_recipe(recipe)


def test_a_hand_made_recipe_is_checked_by_type_too():
    with pytest.raises(VggnetError, match=r"recipe lr must be a number, got '0\.1'"):
        check_recipe(Recipe(name="mine", lr="0.1"))
    with pytest.raises(VggnetError, match="recipe scale must be one integer or two"):
        check_recipe(Recipe(name="mine", scale=[256, 512]))


def test_training_and_test_scales_share_their_bound():
    from vggnet.evaluate.protocol_run import MAX_SCALE as TEST_MAX
    from vggnet.train.recipes import MAX_SCALE

    assert MAX_SCALE == TEST_MAX == BOUNDS["test_scale"].high == BOUNDS["scale"].high


def test_bounds_print_as_intervals():
    assert (str(BOUNDS["lr"]), str(BOUNDS["momentum"]), str(BOUNDS["pca_colour"])) == ("(0, 1e+12]", "[0, 1)", "[0, 1]")
    assert not BOUNDS["lr"].holds(math.nan) and BOUNDS["lr"].holds(1e8) and not BOUNDS["lr"].holds(math.inf)
