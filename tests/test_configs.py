import pytest

from vggnet.configs import TABLE_1, ConvSpec, parse_layer, resolve_config, weight_layers
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
