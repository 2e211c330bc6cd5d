"""precision=auto: the decision from timings, the per-machine cache, and the probe itself (its
speed is never asserted; only that it measures every variant and its result is used)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from vggnet import fastpath
from vggnet.device import autocast_dtype, channels_last_choice
from vggnet.errors import VggnetError
from vggnet.fastpath import Choice, FastPath, decide, fast_path

CPU = torch.device("cpu")


def timings(fp32=1.0, fp32_cl=1.0, bf16=1.0, bf16_cl=1.0) -> dict[str, float]:
    return {"fp32/nchw": fp32, "fp32/channels_last": fp32_cl, "bf16/nchw": bf16, "bf16/channels_last": bf16_cl}


@pytest.mark.parametrize(("seconds", "expected"), [
    (timings(bf16=0.5, bf16_cl=0.4), ("bf16", True)),  # an AMD Zen 4: bf16 the faster arithmetic
    (timings(fp32_cl=0.8, bf16=3.0, bf16_cl=3.2), ("fp32", True)),  # a Xeon without AMX: bf16 3x slower
    (timings(fp32_cl=1.2, bf16=2.0, bf16_cl=2.0), ("fp32", False)),  # channels_last slower beyond the margin
    (timings(fp32_cl=1.03, bf16=0.97, bf16_cl=0.98), ("fp32", True)),  # within the margin: noise, the default
    (timings(fp32_cl=0.97, bf16=0.90, bf16_cl=2.0), ("bf16", False)),  # 10% faster is a win
])
def test_the_fastest_variant_wins_only_beyond_the_margin(seconds, expected) -> None:
    choice = decide(seconds)
    assert (choice.precision, choice.channels_last) == expected
    assert choice.reason.startswith(f"{expected[0]}, {'channels_last' if expected[1] else 'NCHW'}: ")


@pytest.mark.parametrize("seconds", [{}, {"bf16/nchw": 1.0}, timings(fp32=0.0), timings(bf16=float("nan"))])
def test_timings_without_a_positive_baseline_are_refused(seconds) -> None:
    with pytest.raises(VggnetError, match="fast-path timings"):
        decide(seconds)


@pytest.fixture
def probing(monkeypatch, tmp_path):
    """fast_path with its probe replaced by a counter returning fixed timings, in a fresh home."""
    monkeypatch.delenv("VGGNET_PROBE", raising=False)
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    monkeypatch.setattr(fastpath, "_MEMO", {})
    calls = []

    def fake_probe(device, rounds=7, progress=True):
        calls.append(device)
        return {"infer": timings(bf16=0.4, bf16_cl=0.5), "train": timings(fp32_cl=0.7, bf16=1.5, bf16_cl=1.5)}

    monkeypatch.setattr(fastpath, "probe", fake_probe)
    return calls


def test_the_probe_runs_once_per_machine_and_is_cached(probing, tmp_path, monkeypatch) -> None:
    path = fast_path(CPU)
    assert (path.infer.precision, path.infer.channels_last, path.infer.source) == ("bf16", False, "probe")
    assert (path.train.precision, path.train.channels_last) == ("fp32", True)
    assert len(probing) == 1
    monkeypatch.setattr(fastpath, "_MEMO", {})  # a new process: read from the cache, not measured again
    again = fast_path(CPU)
    assert len(probing) == 1 and again.infer.source == "cache" and again.infer.precision == "bf16"
    entries = json.loads((tmp_path / "fastpath.json").read_text())
    assert list(entries) == [fastpath.fingerprint(CPU)] and "torch " + torch.__version__ in next(iter(entries))
    monkeypatch.setattr(fastpath, "_MEMO", {})
    monkeypatch.setattr(fastpath, "fingerprint", lambda device: "another machine")
    fast_path(CPU)  # another CPU model (or torch version) is measured anew, beside the first
    assert len(probing) == 2 and len(json.loads((tmp_path / "fastpath.json").read_text())) == 2


def test_auto_follows_the_measurement_for_each_kind_of_work(probing) -> None:
    assert autocast_dtype("auto", CPU, training=False) is torch.bfloat16
    assert autocast_dtype("auto", CPU, training=True) is None
    assert autocast_dtype("bf16", CPU) is torch.bfloat16 and autocast_dtype("fp32", CPU, training=False) is None
    assert channels_last_choice("auto", CPU, training=True)[0]
    assert not channels_last_choice("auto", CPU, training=False)[0]
    assert channels_last_choice("channels_last", CPU)[0] and not channels_last_choice("contiguous", CPU)[0]
    with pytest.raises(VggnetError, match="precision must be one of auto, fp32, bf16"):
        autocast_dtype("fp8", CPU)
    with pytest.raises(VggnetError, match="memory_format must be one of auto, channels_last, contiguous"):
        channels_last_choice("nhwc", CPU)


@pytest.mark.parametrize("damage", ["garbage", "list", "bad-entry", "old-version", "fifo", "huge"])
def test_a_damaged_cache_is_measured_again_never_trusted(probing, tmp_path, damage) -> None:
    cache = tmp_path / "fastpath.json"
    key = fastpath.fingerprint(CPU)
    if damage == "garbage":
        cache.write_bytes(b"\x00{not json")
    elif damage == "list":
        cache.write_text("[1, 2]")
    elif damage == "bad-entry":  # a hand-edited entry: a zero baseline would divide by zero
        cache.write_text(json.dumps({key: {"infer": timings(fp32=0), "train": "fast", "version": 2}}))
    elif damage == "old-version":  # timings from the first, non-interleaved probe: measured again
        cache.write_text(json.dumps({key: {"infer": timings(bf16=0.1), "train": timings(bf16=0.1)}}))
    elif damage == "fifo":
        os.mkfifo(cache)
    else:
        cache.write_bytes(b" " * (fastpath.CACHE_BOUND + 1))
    path = fast_path(CPU)
    assert len(probing) == 1 and path.infer.source == "probe"
    if damage != "fifo":  # a FIFO is not a regular file: never replaced (atomic writes refuse it)
        assert key in json.loads(cache.read_text())


def test_probe_off_means_fp32_channels_last_unmeasured(monkeypatch) -> None:
    monkeypatch.setenv("VGGNET_PROBE", "off")
    monkeypatch.setattr(fastpath, "probe", lambda *a, **k: pytest.fail("probed although VGGNET_PROBE=off"))
    path = fast_path(CPU)
    assert path.train == path.infer == Choice("fp32", True, {}, "default")
    assert "not measured" in path.train.reason


def test_the_probe_times_every_variant_for_both_kinds_of_work(monkeypatch) -> None:
    monkeypatch.setattr(fastpath, "_shape", lambda device: (1, 8, 8))
    measured = fastpath.probe(CPU, rounds=2, progress=False)
    assert set(measured) == {"infer", "train", "noise"}
    for work in ("infer", "train"):
        seconds = measured[work]
        assert set(seconds) == {"fp32/nchw", "fp32/channels_last", "bf16/nchw", "bf16/channels_last"}
        assert all(v > 0 for v in seconds.values())
        assert measured["noise"][work] >= 0
        decide(seconds, noise=measured["noise"][work])  # whatever this machine measured, a decision comes out


def test_a_noisy_machine_needs_a_bigger_win(monkeypatch) -> None:
    """10% faster wins on a quiet machine (5% margin) but not where fp32 NCHW itself varied by 20%."""
    seconds = timings(bf16=0.9)
    assert decide(seconds).precision == "bf16"
    noisy = decide(seconds, noise=0.2)
    assert (noisy.precision, noisy.margin) == ("fp32", 0.2) and "a win needs > 20%" in noisy.reason
    assert decide(seconds, noise=float("nan")).precision == "bf16"  # a damaged noise figure is no noise
    assert not decide(timings(fp32_cl=1.1), noise=0.3).channels_last  # noise never excuses a slower layout


def test_the_probe_interleaves_variants_and_drops_hopeless_ones(monkeypatch) -> None:
    """Every round times each live variant once, rotating the order; one over 2x the baseline in
    the first round is not timed again. The spread is measured on fp32 NCHW."""
    log: list[tuple[str, str]] = []
    cost = {"fp32/nchw": 1.0, "fp32/channels_last": 0.9, "bf16/nchw": 3.0, "bf16/channels_last": 0.8}
    now = [0.0]

    def fake_calls(device):
        def call(work, key):
            def run():
                log.append((work, key))
                now[0] += cost[key] * (1 + 0.1 * (len(log) % 3))  # some noise
            return run
        return {(w, k): call(w, k) for w in ("infer", "train") for k in cost}

    monkeypatch.setattr(fastpath, "_calls", fake_calls)
    monkeypatch.setattr(fastpath.time, "perf_counter", lambda: now[0])
    measured = fastpath.probe(CPU, rounds=4, progress=False)
    timed = log[8:]  # after one warm-up call each
    assert timed.count(("infer", "bf16/nchw")) == 1 and timed.count(("infer", "fp32/nchw")) == 4
    assert timed[0] != timed[len(cost) * 2]  # the order rotates between rounds
    assert decide(measured["infer"], noise=measured["noise"]["infer"]).precision in ("fp32", "bf16")
    assert 0 < measured["noise"]["infer"] < 0.5


def test_fast_path_is_a_pair_of_choices() -> None:
    a, b = Choice("bf16", True, {}, "default"), Choice("fp32", False, {}, "default")
    assert FastPath(infer=a, train=b).for_work(training=False) is a
    assert FastPath(infer=a, train=b).for_work(training=True) is b
