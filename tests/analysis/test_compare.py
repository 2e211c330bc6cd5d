from vggnet.analysis.compare import DEFAULT_MODELS, PUBLISHED_TOP1, compare, too_small


def test_default_set_covers_every_configuration_and_the_classics() -> None:
    for name in ("vgg11", "vgg11_lrn", "vgg13", "vgg16_conv1", "vgg16", "vgg19", "alexnet", "googlenet",
                 "resnet18", "resnet152", "densenet121"):
        assert name in DEFAULT_MODELS


def test_rows_are_traced_and_cited() -> None:
    rows = {r.name: r for r in compare(["vgg16", "googlenet", "vgg16_conv1_bn", "A-LRN"])}
    assert rows["vgg16"].params == 138_357_544 and rows["vgg16"].macs == 15_470_264_320
    assert rows["vgg16"].paper_config == "D" and rows["vgg16"].top1 == 71.592
    assert rows["googlenet"].params == 6_624_904  # inference network, no auxiliary heads
    assert rows["vgg16_conv1_bn"].top1 is None
    assert rows["vgg11_lrn"].source.startswith("Simonyan & Zisserman")
    assert all(source for _, source in PUBLISHED_TOP1.values())


def test_models_that_cannot_take_the_input_are_left_out() -> None:
    assert too_small(["alexnet", "vgg11", "googlenet"], 32) == {"alexnet": 63}
    assert [r.name for r in compare(["alexnet", "vgg11"], 32)] == ["vgg11"]
