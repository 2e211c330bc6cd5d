"""An arm's seeds combined, and the paper's claims judged against them.

With two seeds an arm's own range says little: two runs land close together by chance as often
as not, and "every seed of one above every seed of the other" happens with probability 1/3 when
the arms do not differ at all. So the seed-to-seed spread is pooled over every arm of the study
whose seeds all learned (each arm's deviations from its own mean; degrees of freedom: seeds minus
arms), and a difference of two means is called only beyond the two-sided 95% t quantile times
its standard error: a 5% chance of calling a difference that is not there. An arm that learned
nothing in every seed (diverged, or stalled at a uniform guess) against one that learned in every
seed is a difference of kind, called without a threshold; an arm whose seeds disagree on that is
*not resolved*. Everything short of a call is *not resolved at this budget*, never a verdict.
"""

from __future__ import annotations

import math

from vggnet.errors import MissingDependencyError
from vggnet.experiments.studies import Claim

STALL_MARGIN = 0.05  # within this of ln(classes) after the last epoch: nothing learned
PER_SEED = ("top1", "top5", "val_loss", "train_loss", "val_top1", "seconds", "wall_seconds", "diverged", "machines",
            "precision")


def stalled(row: dict, classes: int = 10) -> bool:
    """Ended at the loss of a uniform guess (and not above it: that is :func:`diverged`)."""
    return bool(row["train_loss"]) and abs(row["train_loss"][-1] - math.log(classes)) < STALL_MARGIN


def diverged(row: dict, classes: int = 10) -> bool:
    """The loss blew up: far above a uniform guess, or a non-finite validation loss."""
    if row.get("diverged") or row["val_loss"] is None:  # training stopped at a non-finite loss
        return True
    last = row["train_loss"][-1] if row["train_loss"] else 0.0
    return not math.isfinite(row["val_loss"]) or last > 2 * math.log(classes)


def learned(seed_row: dict) -> bool:
    return not diverged(seed_row) and not stalled(seed_row)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def combine_seeds(runs: list[dict]) -> dict:
    """One arm's row from its runs (one per seed): the mean of the scores of the seeds that scored,
    their range (None below two scores), the mean loss per epoch over the seeds that reached it,
    summed time, and every seed's own figures."""
    first = runs[0]
    scored = [r["top1"] for r in runs if r["top1"] is not None]
    row = {k: v for k, v in first.items() if k not in (*PER_SEED, "seed")}
    epochs = max(len(r["train_loss"]) for r in runs)
    row.update({
        "top1": _mean(scored),
        "top5": _mean([r["top5"] for r in runs if r["top5"] is not None]),
        "val_loss": _mean([r["val_loss"] for r in runs if r["val_loss"] is not None]),
        "spread": max(scored) - min(scored) if len(scored) > 1 else None,
        "diverged": next((r["diverged"] for r in runs if r["diverged"]), ""),
        "failed_seeds": sum(not learned(r) for r in runs),
        "train_loss": [_mean([r["train_loss"][e] for r in runs if len(r["train_loss"]) > e]) for e in range(epochs)],
        "val_top1": [_mean([r["val_top1"][e] for r in runs if len(r["val_top1"]) > e]) for e in range(epochs)],
        "seconds": sum(r["seconds"] for r in runs),
        "wall_seconds": round(sum(r["wall_seconds"] for r in runs), 1),
        "seeds": [{k: r[k] for k in ("seed", *PER_SEED) if k in r} for r in runs],
    })
    return row


def seed_noise(rows: list[dict]) -> dict:
    """The pooled seed-to-seed standard deviation of top-1 over the arms whose seeds all learned,
    and its degrees of freedom (0: no estimate, e.g. one seed per arm)."""
    squares, dof = 0.0, 0
    for row in rows:
        scores = [s["top1"] for s in row["seeds"]]
        if len(scores) < 2 or not all(learned(s) for s in row["seeds"]):
            continue
        mean = sum(scores) / len(scores)
        squares += sum((x - mean) ** 2 for x in scores)
        dof += len(scores) - 1
    return {"std": math.sqrt(squares / dof) if dof else None, "dof": dof}


def t_quantile(dof: int) -> float:
    """The two-sided 95% quantile of Student's t (scipy, from the report extra)."""
    try:
        from scipy.stats import t
    except ImportError:
        raise MissingDependencyError("a study's verdicts need scipy: pip install 'vggnet[report]'") from None
    return float(t.ppf(0.975, dof))


def judge(claim: Claim, rows: list[dict], noise: dict) -> dict:
    """The claim, the two arms' means, the threshold, and the verdict: 'agrees', 'disagrees',
    'not resolved' (within the threshold, seeds that disagree on learning, or no noise estimate)
    or 'no score' (neither arm learned in any seed)."""
    by_label = {r["label"]: r for r in rows}
    a, b = by_label[claim.first], by_label[claim.second]
    ok_a, ok_b = [learned(s) for s in a["seeds"]], [learned(s) for s in b["seeds"]]
    result = {"first": claim.first, "second": claim.second, "expect": claim.expect, "first_top1": a["top1"],
              "second_top1": b["top1"], "threshold": None, "winner": None, "why": ""}
    all_a, all_b, none_a, none_b = all(ok_a), all(ok_b), not any(ok_a), not any(ok_b)
    if none_a and none_b:
        return {**result, "verdict": "no score", "why": "neither arm learned in any seed"}
    if (all_a and none_b) or (none_a and all_b):  # a difference of kind: one learned, the other never did
        result["winner"] = claim.first if all_a else claim.second
        result["why"] = f"{claim.second if all_a else claim.first} learned nothing in any seed"
    elif not (all_a and all_b):
        return {**result, "verdict": "not resolved", "why": "an arm's seeds disagree: some learned, some did not"}
    elif not noise["dof"]:
        return {**result, "verdict": "not resolved", "why": "one seed per arm: no estimate of the seeds' spread"}
    else:
        se = noise["std"] * math.sqrt(1 / len(a["seeds"]) + 1 / len(b["seeds"]))
        result["threshold"] = t_quantile(noise["dof"]) * se
        diff = a["top1"] - b["top1"]
        if abs(diff) <= result["threshold"]:
            return {**result, "verdict": "not resolved", "why": "within the seeds' spread"}
        result["winner"] = claim.first if diff > 0 else claim.second
    better = result["winner"] == claim.first
    verdict = ("agrees" if better else "disagrees") if claim.expect == "better" else \
        ("disagrees" if better else "agrees")
    return {**result, "verdict": verdict}


def sentence(j: dict) -> str:
    """One line for the report: the claim, the measured means and the verdict."""
    paper = (f"{j['first']} beats {j['second']}" if j["expect"] == "better"
             else f"{j['first']} gains nothing over {j['second']}")
    if j["verdict"] == "no score":
        return f"The paper: {paper}. Here: no score ({j['why']})."
    means = " against ".join(f"{label} {'-' if top1 is None else f'{top1:.2%}'}"
                             for label, top1 in ((j["first"], j["first_top1"]), (j["second"], j["second_top1"])))
    beyond = f" (threshold ±{j['threshold']:.2%})" if j["threshold"] is not None else ""
    if j["verdict"] == "not resolved":
        return f"The paper: {paper}. Here: {means}{beyond}; **not resolved at this budget** ({j['why']})."
    how = f"beyond the seeds' spread{beyond}" if not j["why"] else j["why"]
    return f"The paper: {paper}. Here: {means}; {j['winner']} better, {how}: **{j['verdict']} with the paper**."
