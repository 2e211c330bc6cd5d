import itertools

import pytest

from vggnet.configs import (
    DERIVED,
    TABLE_1,
    ConvSpec,
    config_blocks,
    parse_layer,
    resolve_config,
    single_filters,
    weight_layers,
)
from vggnet.errors import UnknownModelError


@pytest.mark.parametrize(("config", "layers"), [("A", 11), ("A-LRN", 11), ("B", 13), ("C", 16), ("D", 16), ("E", 19)])
def test_weight_layers_match_paper_names(config: str, layers: int) -> None:
    assert weight_layers(config) == layers


def test_tokens_parse() -> None:
    assert parse_layer("conv3-64") == ConvSpec(kernel=3, channels=64)
    assert parse_layer("conv1-512") == ConvSpec(kernel=1, channels=512)
    assert parse_layer("conv1-512").padding == 0
    assert parse_layer("LRN") == "LRN"
    with pytest.raises(ValueError, match="not a Table 1 layer token"):
        parse_layer("conv3x3")


def test_every_block_ends_at_512_channels_after_block_3() -> None:
    for blocks in TABLE_1.values():
        assert len(blocks) == 5
        assert [parse_layer(b[0]).channels for b in blocks] == [64, 128, 256, 512, 512]


def test_resolve_config_aliases() -> None:
    assert resolve_config("d") == "D"
    assert resolve_config("a-lrn") == "A-LRN"
    assert resolve_config("vgg16_conv1") == "C"
    with pytest.raises(UnknownModelError, match="valid"):
        resolve_config("F")


def _params(blocks, fc=(512 * 7 * 7, 4096, 4096, 1000)) -> int:
    """Parameters from the tokens alone: k*k*c_in*c_out + c_out per conv, then the FC layers."""
    total, c_in = 0, 3
    for block in blocks:
        for token in block:
            spec = parse_layer(token)
            total += spec.kernel**2 * c_in * spec.channels + spec.channels
            c_in = spec.channels
    return total + sum(a * b + b for a, b in itertools.pairwise(fc))


def test_single_filter_nets_keep_the_receptive_field_and_grow_the_parameters() -> None:
    from vggnet.analysis.trace import trace

    assert DERIVED["B-5x5"] == (("conv5-64",), ("conv5-128",), ("conv5-256",), ("conv5-512",), ("conv5-512",))
    assert [b[0] for b in DERIVED["D-large"]] == ["conv5-64", "conv5-128", "conv7-256", "conv7-512", "conv7-512"]
    assert resolve_config("vgg16_large") == resolve_config("d-LARGE") == "D-large" and weight_layers("B-5x5") == 8
    for small, large, rf in (("vgg13", "vgg13_5x5", 156), ("vgg16", "vgg16_large", 212)):
        a, b = trace(small), trace(large)
        assert [x.receptive_field for x in a.layers if x.name == "pool5"] == [rf]
        assert [x.receptive_field for x in b.layers if x.name == "pool5"] == [rf]
        assert b.params == _params(config_blocks(large)) and a.params == _params(config_blocks(small))
    # 25*C^2 for a 5x5 against 2*9*C^2 for two 3x3: the single filter costs 39% more per block
    assert (trace("vgg13_5x5").params, trace("vgg16_large").params) == (134_503_528, 144_727_144)
    with pytest.raises(ValueError, match="3x3 convolutions only"):
        single_filters(TABLE_1["C"])
