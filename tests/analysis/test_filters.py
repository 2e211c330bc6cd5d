from vggnet.analysis.filters import bottleneck, filter_arithmetic, stacked_vs_single


def test_two_3x3_vs_one_5x5_at_128_channels() -> None:
    c = stacked_vs_single(2, 128)
    assert (c.small.params, c.large.params) == (294_912, 409_600)
    assert c.small.receptive_field == c.large.receptive_field == 5
    assert (c.small.nonlinearities, c.large.nonlinearities) == (2, 1)
    assert c.small.macs == 56 * 56 * 294_912


def test_three_3x3_vs_one_7x7_is_27_vs_49_c_squared() -> None:
    for channels in (64, 256):
        c = stacked_vs_single(3, channels)
        assert c.small.params == 27 * channels**2 and c.large.params == 49 * channels**2
        assert c.small.receptive_field == 7
        assert round(c.param_ratio - 1, 2) == 0.81  # the paper: "81% more"


def test_n_stacked_3x3_equal_one_2n_plus_1() -> None:
    for n in range(2, 6):
        c = stacked_vs_single(n, 16, size=12)
        assert c.small.receptive_field == c.large.receptive_field == 2 * n + 1
        assert c.small.params == 9 * n * 16**2 and c.large.params == (2 * n + 1) ** 2 * 16**2


def test_1x1_bottleneck() -> None:
    c = bottleneck(128, 32)
    assert (c.large.params, c.small.params) == (147_456, 40_960)
    assert c.small.receptive_field == c.large.receptive_field == 3


def test_report_rows() -> None:
    rows = filter_arithmetic(channels=128, max_stack=4, reduced=32)
    assert [r.small.receptive_field for r in rows] == [5, 7, 9, 3]
    assert rows[0].to_dict()["param_ratio"] == 409_600 / 294_912
