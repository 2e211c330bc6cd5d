"""The trace against published numbers and against second, independent computations."""

import pytest
import torch
from torch import nn

from vggnet.analysis import trace
from vggnet.configs import NAME_TO_CONFIG, ConvSpec, config_blocks, parse_layer
from vggnet.errors import VggnetError
from vggnet.models import create_model


@pytest.fixture(scope="module")
def vgg16():
    return trace("vgg16")


def test_vgg16_published_totals(vgg16) -> None:
    assert vgg16.params == 138_357_544
    assert vgg16.macs == 15_470_264_320
    assert vgg16.layer("conv5_3").receptive_field == 196
    assert vgg16.layer("pool5").receptive_field == 212
    assert vgg16.layer("pool5").jump == 32
    assert sum(r.params for r in vgg16.layers) == vgg16.params
    # Backward: weight and input gradients cost a forward each, except conv1_1's input gradient.
    assert vgg16.macs_backward == 2 * 15_470_264_320 - 86_704_128 == 30_853_824_512


def closed_form(config: str, size: int = 224) -> tuple[int, dict[str, int]]:
    """MACs and receptive fields straight from Table 1 (or a derived net), by the textbook formulas."""
    macs, rf, jump, cin, side, fields = 0, 1, 1, 3, size, {}
    for b, block in enumerate(config_blocks(config), start=1):
        i = 0
        for token in block:
            layer = parse_layer(token)
            if isinstance(layer, ConvSpec):
                i += 1
                macs += side * side * cin * layer.channels * layer.kernel**2
                rf += (layer.kernel - 1) * jump
                cin = layer.channels
                fields[f"conv{b}_{i}"] = rf
        rf, jump, side = rf + jump, jump * 2, side // 2
        fields[f"pool{b}"] = rf
    macs += 512 * 7 * 7 * 4096 + 4096 * 4096 + 4096 * 1000
    return macs, fields


@pytest.mark.parametrize("name", list(NAME_TO_CONFIG))
def test_macs_and_receptive_fields_equal_the_closed_form(name: str) -> None:
    t = trace(name)
    macs, fields = closed_form(NAME_TO_CONFIG[name])
    assert t.macs == macs
    assert {n: t.layer(n).receptive_field for n in fields} == fields


@pytest.mark.parametrize(("name", "gmacs"), [
    ("vgg11", 7.61), ("vgg13", 11.31), ("vgg16", 15.47), ("vgg19", 19.63), ("alexnet", 0.71),
    ("googlenet", 1.50), ("resnet18", 1.81), ("resnet34", 3.66), ("resnet50", 4.09), ("resnet101", 7.80),
    ("resnet152", 11.51), ("densenet121", 2.83),
])
def test_macs_match_torchvisions_published_gflops(name: str, gmacs: float) -> None:
    # torchvision's model tables list multiply-accumulates, to two decimals, as "GFLOPS".
    assert round(trace(name, aux_logits=False).macs / 1e9 if name == "googlenet" else trace(name).macs / 1e9, 2) \
        == gmacs


def test_alexnet_receptive_field_is_195() -> None:
    # Araujo, Norris & Sim, "Computing receptive fields of CNNs" (Distill, 2019): AlexNet r = 195.
    assert trace("alexnet").layer("features.12").receptive_field == 195


def test_receptive_field_by_gradient_support() -> None:
    """RF measured empirically: which input pixels move conv5_3's centre unit (pools as averages)."""
    features = create_model("vgg16").features[:30]  # up to relu5_3
    for i, m in enumerate(features):
        if isinstance(m, nn.MaxPool2d):  # a max-pool routes gradient to one pixel; the geometry is the same
            features[i] = nn.AvgPool2d(2, 2)
        elif isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0 / (m.in_channels * 9))
            nn.init.zeros_(m.bias)
    x = torch.ones(1, 3, 224, 224, requires_grad=True)
    out = features(x)
    out[0, 0, 7, 7].backward()
    rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == trace("vgg16").layer("conv5_3").receptive_field == 196


def test_forward_activations_two_ways(vgg16) -> None:
    # The well-known per-layer table (input, conv, pool and FC outputs) sums to 15,237,608 values,
    # not the "24M" its total line says. torchvision's adaptive avgpool adds one 7x7x512 copy.
    table_rows = 3 * 224**2 + sum(
        c * s * s * n for c, s, n in [(64, 224, 2), (128, 112, 2), (256, 56, 3), (512, 28, 3), (512, 14, 3)]
    ) + sum(c * s * s for c, s in [(64, 112), (128, 56), (256, 28), (512, 14), (512, 7)]) + 4096 + 4096 + 1000
    assert table_rows == 15_237_608
    assert vgg16.activations_forward == table_rows + vgg16.layer("avgpool").activations == 15_262_696
    assert vgg16.bytes_forward == 4 * vgg16.activations_forward
    relu_rows = sum(r.activations for r in vgg16.layers if r.type in ("ReLU", "Dropout", "flatten"))
    assert vgg16.activations_every_output == vgg16.activations_forward + relu_rows
    assert not vgg16.layer("relu1_1").new_tensor and vgg16.layer("conv1_1").new_tensor


def test_saved_for_backward_decomposes_exactly(vgg16) -> None:
    convs = [r for r in vgg16.layers if r.type == "Conv2d"]
    pools = [r for r in vgg16.layers if r.type == "MaxPool2d"]
    expected = (4 * 3 * 224 * 224                       # the input, kept by conv1_1
                + 4 * sum(r.activations for r in convs)  # each ReLU keeps its output (= the conv's)
                + 4 * sum(r.activations for r in pools)  # each pool output, kept by the next layer
                + 8 * sum(r.activations for r in pools)  # max-pool indices, int64
                + 4 * 25088                               # avgpool output, kept by fc6
                + 4 * 4096 * 4)                           # relu6, drop6 output, relu7, drop7 output
    dropout_masks = vgg16.saved_bytes_per_image - expected
    assert dropout_masks in (2 * 4096 * 1, 2 * 4096 * 4)  # bool or float masks, by PyTorch version
    assert vgg16.saved_bytes_fixed == 0


def test_saved_bytes_on_meta_equal_a_real_cpu_step() -> None:
    model = create_model("vgg11_bn", head="small", num_classes=10)
    t = trace(model, input_size=32)
    weights = {p.untyped_storage()._cdata for p in [*model.parameters(), *model.buffers()]}
    for batch in (3, 5):
        storages: dict[int, int] = {}

        def pack(x: torch.Tensor, storages: dict[int, int] = storages) -> torch.Tensor:
            s = x.untyped_storage()
            if s._cdata not in weights:
                storages[s._cdata] = s.nbytes()
            return x

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            model.train()(torch.randn(batch, 3, 32, 32))
        assert sum(storages.values()) == t.saved_bytes_per_image * batch + t.saved_bytes_fixed


def test_inference_peak_is_two_conv1_maps(vgg16) -> None:
    assert vgg16.inference_peak_bytes == 2 * vgg16.layer("conv1_1").bytes == 25_690_112


def test_training_memory_arithmetic(vgg16) -> None:
    one = vgg16.training_memory(1, "sgd")
    assert one["total"] == vgg16.saved_bytes_per_image + 3 * 4 * 138_357_544
    adam = vgg16.training_memory(256, "adam")
    assert adam["optimizer_state"] == pytest.approx(2 * 4 * 138_357_544 / 256)
    with pytest.raises(ValueError, match="unknown optimizer"):
        vgg16.training_memory(1, "lamb")


def test_bf16_halves_float_activations() -> None:
    fp32, bf16 = trace("vgg11", dtype=torch.float32), trace("vgg11", dtype=torch.bfloat16)
    assert bf16.bytes_forward * 2 == fp32.bytes_forward
    assert bf16.param_bytes * 2 == fp32.param_bytes


def test_trace_leaves_the_callers_model_alone() -> None:
    model = create_model("vgg11", head="linear", num_classes=3).train()
    t = trace(model, input_size=64, dtype=torch.bfloat16)
    assert t.model == "vgg11" and t.input_size == (3, 64, 64)
    assert next(model.parameters()).device.type == "cpu" and next(model.parameters()).dtype == torch.float32
    assert model.training


def test_branching_networks_trace() -> None:
    t = trace("resnet18")
    assert [r.type for r in t.layers].count("add") == 8
    dense = trace("densenet121")
    assert dense.params == 7_978_856 and any(r.type == "cat" for r in dense.layers)


def test_too_small_input_is_a_one_line_error() -> None:
    with pytest.raises(VggnetError) as err:
        trace("vgg16", input_size=16)
    assert "\n" not in str(err.value) and "cannot take a 3x16x16 input" in str(err.value)


def test_frozen_whitening_stem_needs_no_gradient_macs() -> None:
    # vgg_fast's stem is fitted to the data and frozen: no weight gradient for it, and since
    # nothing before it trains, no input gradient for it nor for the first trained conv after it.
    t = trace("vgg_fast", 32, num_classes=10)
    stem, first = t.layer("features.0"), t.layer("features.2")
    assert (stem.trains, stem.input_grad, first.trains, first.input_grad) == (False, False, True, False)
    assert (stem.macs, first.macs, t.macs) == (276_768, 13_284_864, 118_147_360)
    assert t.macs_backward == 2 * t.macs - 2 * stem.macs - first.macs == 222_456_320  # was 236,017,952


def test_receptive_field_after_a_non_identity_adaptive_pool() -> None:
    """vgg16 at 384: pool5 is 12x12 (RF 212, jump 32, row r sees pixels 32r-90 .. 32r+121), and
    the 7x7 adaptive pool averages rows floor(12i/7) .. ceil(12(i+1)/7)-1: windows of 2 or 3 rows
    (0-1, 1-3, 3-5, 5-6, 6-8, 8-10, 10-11) at steps of 1 or 2. So avgpool's RF is the widest window,
    212 + 2*32 = 276, its jump the largest step, 2*32 = 64; fc6 sees all 12 rows:
    212 + 11*32 = 564 (not 605.14, which came from a fractional jump of 32*12/7)."""
    t = trace("vgg16", input_size=384)
    assert (t.layer("pool5").receptive_field, t.layer("pool5").jump) == (212, 32)
    assert (t.layer("avgpool").receptive_field, t.layer("avgpool").jump) == (276, 64)
    assert t.layer("fc6").receptive_field == t.layer("fc8").receptive_field == 564
    # Measured: a one-channel copy of the geometry with constant weights and average pools;
    # avgpool row 4 (pool5 rows 6-8) must move exactly pixels 102 .. 377, 276 rows.
    layers = [nn.AvgPool2d(m.kernel_size, m.stride) if isinstance(m, nn.MaxPool2d) else
              nn.Conv2d(1, 1, 3, padding=1) if isinstance(m, nn.Conv2d) else nn.Identity()
              for m in create_model("vgg16").features]
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1 / 9)
            nn.init.zeros_(m.bias)
    x = torch.ones(1, 1, 384, 384, requires_grad=True)
    net(x)[0, 0, 4, 3].backward()
    rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero().flatten()
    assert (int(rows.min()), int(rows.max())) == (102, 377)
    assert int(rows.max() - rows.min() + 1) == t.layer("avgpool").receptive_field


def test_googlenet_aux_heads_are_reported_and_can_be_switched_off() -> None:
    # torchvision: 6,624,904 parameters (GoogLeNet_Weights.IMAGENET1K_V1, aux_logits=False);
    # each aux head is a 1x1 conv to 128 + BN, fc 2048->1024, fc 1024->1000.
    aux1 = 512 * 128 + 2 * 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000
    aux2 = aux1 + (528 - 512) * 128
    with_aux = trace("googlenet")
    assert with_aux.params == 6_624_904 + aux1 + aux2 == 13_004_888
    assert with_aux.params_not_run == {"aux1": aux1, "aux2": aux2} == {"aux1": 3_188_968, "aux2": 3_191_016}
    assert sum(r.params for r in with_aux.layers) == 6_624_904
    without = trace("googlenet", aux_logits=False)
    assert without.params == sum(r.params for r in without.layers) == 6_624_904 and without.params_not_run == {}
    assert without.macs == with_aux.macs
