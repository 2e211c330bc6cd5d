"""Claims are called only beyond the pooled seed spread (a 5% false-call rate); everything else
is 'not resolved', and an arm that never learned is a difference of kind."""

import math

import numpy as np
import pytest

from vggnet.experiments.claims import combine_seeds, judge, seed_noise, sentence, t_quantile
from vggnet.experiments.report import render_markdown
from vggnet.experiments.studies import Claim

LN10 = math.log(10)


def _run(label, seed, top1, loss=(2.0, 1.0)):
    failed = top1 is None
    return {"label": label, "model": "vgg11", "seed": seed, "init": "kaiming", "init_from": "", "top1": top1,
            "top5": None if failed else 0.9, "val_loss": None if failed else 1.0,
            "diverged": "the loss became nan" if failed else "", "train_loss": list(loss),
            "val_top1": [0.5, top1 or 0.0][: len(loss)], "seconds": 10.0, "train_images": 100,
            "val_images": 20, "wall_seconds": 12.0, "settings": {}}


def _arm(label, *scores):
    return combine_seeds([_run(label, s, t) for s, t in enumerate(scores)])


def test_seeds_combine_into_mean_spread_and_each_seed():
    arm = _arm("A", 0.80, 0.84)
    assert arm["top1"] == pytest.approx(0.82) and arm["spread"] == pytest.approx(0.04)
    assert [s["top1"] for s in arm["seeds"]] == [0.80, 0.84] and arm["seconds"] == 20 and arm["wall_seconds"] == 24
    assert "seed" not in arm and arm["train_loss"] == [2.0, 1.0] and arm["failed_seeds"] == 0
    half = _arm("B", None, 0.7)  # one seed diverged: the arm's score is the other's, and it says so
    assert half["top1"] == 0.7 and half["spread"] is None and half["diverged"] and half["failed_seeds"] == 1
    assert _arm("C", None, None)["top1"] is None


def test_the_pooled_noise_and_the_threshold():
    rows = [_arm("X", 0.80, 0.82), _arm("Y", 0.68, 0.72), _arm("Z", None, 0.5)]  # Z: not all learned, left out
    noise = seed_noise(rows)
    assert noise["dof"] == 2 and noise["std"] == pytest.approx(math.sqrt((2 * 0.01**2 + 2 * 0.02**2) / 2))
    assert t_quantile(2) == pytest.approx(4.3027, abs=1e-4)
    j = judge(Claim("X", "Y"), rows, noise)
    assert j["threshold"] == pytest.approx(4.3027 * noise["std"], rel=1e-4)  # sqrt(1/2 + 1/2) = 1
    assert j["verdict"] == "agrees" and j["winner"] == "X"  # 0.11 apart, threshold 0.0962
    assert "X better, beyond the seeds' spread (threshold ±9.62%)" in sentence(j)
    close = [_arm("X", 0.80, 0.82), _arm("Y", 0.70, 0.74)]  # 0.09 apart, below the same threshold
    assert judge(Claim("X", "Y"), close, seed_noise(close))["verdict"] == "not resolved"


@pytest.mark.parametrize(("a", "b", "expect", "verdict"), [
    ((0.85, 0.86), (0.70, 0.71), "better", "agrees"),
    ((0.70, 0.71), (0.85, 0.86), "better", "disagrees"),
    ((0.80, 0.86), (0.83, 0.84), "better", "not resolved"),
    ((0.85, 0.86), (0.70, 0.71), "no gain", "disagrees"),     # LRN helped beyond the spread
    ((0.70, 0.71), (0.85, 0.86), "no gain", "agrees"),
    ((0.80, 0.86), (0.83, 0.84), "no gain", "not resolved"),  # overlap is not agreement: the same words
    ((0.90,), (0.10,), "better", "not resolved"),             # one seed: no spread to judge by
    ((None, None), (None, None), "better", "no score"),
    ((0.80, 0.81), (None, None), "better", "agrees"),         # one learned, the other never did: of kind
    ((None, 0.80), (0.70, 0.71), "better", "not resolved"),   # its seeds disagree on learning at all
])
def test_verdicts(a, b, expect, verdict):
    rows = [_arm("X", *a), _arm("Y", *b)]
    j = judge(Claim("X", "Y", expect), rows, seed_noise(rows))
    assert j["verdict"] == verdict
    line = sentence(j)
    assert line.startswith("The paper: X beats Y." if expect == "better" else "The paper: X gains nothing over Y.")
    assert ("**not resolved at this budget**" in line) == (verdict == "not resolved")
    if verdict in ("agrees", "disagrees"):
        assert f"**{verdict} with the paper**" in line


def test_a_stalled_arm_counts_as_learning_nothing():
    stalled = combine_seeds([_run("S", s, 0.1, loss=(LN10, LN10)) for s in (0, 1)])
    rows = [_arm("X", 0.6, 0.62), stalled]
    j = judge(Claim("X", "S"), rows, seed_noise(rows))
    assert j["verdict"] == "agrees" and "S learned nothing in any seed" in sentence(j)


def test_identical_arms_are_called_about_5_percent_of_the_time():
    rng, calls = np.random.default_rng(0), 0
    for _ in range(2000):
        rows = [_arm(label, *(0.8 + 0.01 * rng.standard_normal(2))) for label in "ABCD"]
        calls += judge(Claim("A", "B"), rows, seed_noise(rows))["verdict"] != "not resolved"
    assert 0.03 < calls / 2000 < 0.07  # the rule's promise; 'every seed above' would call ~33%


def test_a_seed_that_diverged_in_its_first_epoch_still_reports():
    early = combine_seeds([_run("E", 0, None, loss=()), _run("E", 1, 0.6)])
    assert early["train_loss"] == [2.0, 1.0]  # the curve of the seed that has epochs
    result = {"study": "s", "budget": "medium", "question": "q", "paper": "p", "data": "d", "base_recipe": "cifar",
              "overrides": {"width": "0.25"}, "seeds": [0, 1], "machine": "m", "date": "today",
              "wall_seconds": 60, "command": "c", "arms": [early, _arm("F", 0.5, 0.52)],
              "noise": {"std": 0.01, "dof": 1}, "claims": []}
    text = render_markdown(result)
    assert "| E | `vgg11` |" in text and "**1 of 2 seeds diverged or stalled**" in text
    assert "| **50.90%** |" not in text and "**51.00%**" in text  # the best is an arm whose seeds all learned
