import pytest
import torch
from torch import nn

from tests.conftest import meta_model, n_params
from vggnet.errors import InputShapeError, VggnetError
from vggnet.models import VGG, create_model

PAPER_COUNTS = {
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg11_lrn": 132_863_336,
    "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16_conv1": 133_638_952, "vgg16_conv1_bn": 133_647_400,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
}

# torchvision's own description of its VGG family (models/vgg.py cfgs), written out here as a
# second, independent source for the expected state-dict layout.
TORCHVISION_CFGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def torchvision_state_shapes(cfg: list, batch_norm: bool, num_classes: int = 1000) -> dict[str, tuple]:
    shapes, index, cin = {}, 0, 3
    for v in cfg:
        if v == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (v, cin, 3, 3)
        shapes[f"features.{index}.bias"] = (v,)
        if batch_norm:
            for key in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"features.{index + 1}.{key}"] = (v,)
            shapes[f"features.{index + 1}.num_batches_tracked"] = ()
        index += 3 if batch_norm else 2
        cin = v
    for i, (fin, fout) in zip((0, 3, 6), ((25088, 4096), (4096, 4096), (4096, num_classes)), strict=True):
        shapes[f"classifier.{i}.weight"] = (fout, fin)
        shapes[f"classifier.{i}.bias"] = (fout,)
    return shapes


@pytest.mark.parametrize(("name", "count"), PAPER_COUNTS.items())
def test_parameter_counts_match_the_paper_to_the_unit(name: str, count: int) -> None:
    assert n_params(meta_model(name)) == count


@pytest.mark.parametrize("name", TORCHVISION_CFGS)
@pytest.mark.parametrize("bn", [False, True])
def test_state_dict_layout_equals_torchvision(name: str, bn: bool) -> None:
    model = meta_model(f"{name}_bn" if bn else name)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == torchvision_state_shapes(TORCHVISION_CFGS[name], bn)


def test_config_c_has_1x1_convs_closing_blocks_3_to_5() -> None:
    model = meta_model("C")
    modules = dict(model.named_modules())
    kernels = {n: modules[p].kernel_size for n, p in model.layer_names.items() if n.startswith("conv")}
    assert {n for n, k in kernels.items() if k == (1, 1)} == {"conv3_3", "conv4_3", "conv5_3"}
    assert modules[model.layer_names["conv3_3"]].padding == (0, 0)


def test_a_lrn_has_the_papers_lrn_after_the_first_conv_relu() -> None:
    model = meta_model("A-LRN")
    layers = list(model.features)[:4]
    assert [type(m) for m in layers] == [nn.Conv2d, nn.ReLU, nn.LocalResponseNorm, nn.MaxPool2d]
    lrn = layers[2]
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    assert model.layer_names["lrn1"] == "features.2"


def test_lrn_matches_caffe_formula() -> None:
    # b = a / (k + alpha/n * sum over the n-channel window of a^2)^beta (Caffe's convention).
    lrn = meta_model("A-LRN").features[2].to("cpu")
    a = torch.rand(1, 8, 3, 3) * 50
    sq = torch.nn.functional.pad(a**2, (0, 0, 0, 0, 2, 2))
    window = torch.stack([sq[:, c:c + 5].sum(1) for c in range(8)], 1)
    expected = a / (2.0 + 1e-4 / 5 * window) ** 0.75
    torch.testing.assert_close(lrn(a), expected)


@pytest.mark.parametrize("size", [(32, 32), (40, 57), (224, 224)])
def test_any_input_of_at_least_32_pixels(size: tuple[int, int]) -> None:
    model = create_model("vgg11", head="linear", num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, *size)).shape == (2, 10)


def test_small_head_for_cifar() -> None:
    model = create_model("vgg16_bn", head="small", num_classes=10)
    assert model.avgpool.output_size == (1, 1)
    assert [m.out_features for m in model.classifier if isinstance(m, nn.Linear)] == [512, 512, 10]
    conv, bn = 14_714_688, 2 * (2 * 64 + 2 * 128 + 3 * 256 + 6 * 512)
    head = (512 * 512 + 512) * 2 + 512 * 10 + 10
    assert n_params(model) == conv + bn + head == 15_253_578
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)


@pytest.mark.parametrize("shape", [(1, 3, 31, 64), (1, 1, 64, 64), (3, 64, 64)])
def test_bad_input_shapes_give_one_line_errors(shape: tuple[int, ...]) -> None:
    model = create_model("vgg11", head="linear", num_classes=2)
    with pytest.raises(InputShapeError) as err:
        model(torch.randn(*shape))
    assert "\n" not in str(err.value) and "H, W >= 32" in str(err.value)


def test_keyword_arguments() -> None:
    model = meta_model("vgg16", num_classes=37, dropout=0.3, head="imagenet", batch_norm=True)
    assert model.classifier[-1].out_features == 37
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.features)
    with pytest.raises(VggnetError, match="unknown head"):
        VGG("D", head="huge")
    with pytest.raises(VggnetError, match="num_classes"):
        VGG("D", num_classes=0)


def test_feature_info_reports_block_outputs() -> None:
    info = meta_model("vgg16").feature_info
    assert [(i["name"], i["num_chs"], i["reduction"]) for i in info] == [
        ("relu1_2", 64, 1), ("relu2_2", 128, 2), ("relu3_3", 256, 4), ("relu4_3", 512, 8), ("relu5_3", 512, 16)]


def test_grad_checkpointing_gives_the_same_gradients_and_batchnorm_statistics() -> None:
    from vggnet.models import create_model

    torch.manual_seed(1)
    plain = create_model("vgg11_bn", num_classes=10, head="linear", dropout=0.0)
    ckpt = create_model("vgg11_bn", num_classes=10, head="linear", dropout=0.0)
    ckpt.load_state_dict(plain.state_dict())
    ckpt.set_grad_checkpointing(True)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([1, 2, 3, 4])
    for model in (plain, ckpt):
        torch.nn.functional.cross_entropy(model.train()(x), y).backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6, msg=name)
    for (name, a), b in zip(plain.named_buffers(), ckpt.buffers(), strict=True):
        assert torch.equal(a, b), name  # the recomputation did not count the batch twice
    assert int(ckpt.features[1].num_batches_tracked) == 1
