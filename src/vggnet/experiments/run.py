"""Run a study: train each arm in its own run directory, then write the study's report.

Arms whose run directory already holds a finished run (``metrics.json``) are read, not trained
again, so a study cut short continues where it stopped; an arm cut mid-way resumes from its last
checkpoint (its finished epochs are kept), or starts again if it had none.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import re
import time
from pathlib import Path

import torch

from vggnet import __version__
from vggnet.atomic import atomic_write_text
from vggnet.data.split_record import data_identity
from vggnet.device import resolve_device
from vggnet.errors import DivergedError, VggnetError
from vggnet.experiments.claims import combine_seeds, judge, seed_noise, t_quantile
from vggnet.experiments.report import write_study_report
from vggnet.experiments.studies import BASE, BASE_RECIPE, SEEDS, Arm, Study, get_study
from vggnet.fastpath import machine_name
from vggnet.runs import RunDir, RunDirError, owner
from vggnet.train.loop import train
from vggnet.train.recipes import Recipe, get_recipe
from vggnet.train.setup import machines_of

DIVERGED = "diverged.json"  # written in an arm's run dir when its loss became non-finite
WALL = "wall.json"  # an arm's wall time, so a study resumed over several invocations sums them all


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _machines(rows: list[dict], device: str | None) -> str:
    """The machines the arms trained on, in order (a study resumed in another session may span
    several); runs from before run.json named its machines count as this one."""
    here = machine_name(resolve_device(device))
    seen = [m for row in rows for run in row["seeds"] for m in run.get("machines") or [here]]
    return "; ".join(dict.fromkeys(seen)) + f", torch {torch.__version__}"


def _precisions(rows: list[dict]) -> str:
    """The arithmetic the arms trained in (fp32, bf16 autocast, or both across arms)."""
    return " and ".join(dict.fromkeys(p for row in rows for run in row["seeds"] if (p := run.get("precision"))))


def run_study(
    name: str,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    budget: str = "small",
    device: str | None = None,
    seed: int = 0,
    overrides: dict[str, str] | None = None,
    progress: bool = True,
) -> dict:
    """Train every arm of study ``name`` on ``data`` under ``budget``; returns the report's data
    (also written to ``out/results.json``, ``out/report.md`` and ``out/report.png``)."""
    study = get_study(name)
    if _holds_nothing_out(overrides):
        raise VggnetError("a study compares its arms' held-out scores, and val_fraction=0 holds no image out: "
                          "leave val_fraction above 0")
    budget_overrides = study.budget(budget)
    t_quantile(1)  # the verdicts need scipy: fail now, not after hours of training
    for arm in study.arms:  # every arm's recipe is valid before the study's folder is made
        get_recipe(BASE_RECIPE, arm_fields(arm, budget_overrides, overrides))
    identity = {"study": name, "budget": budget, "data": data_identity(data), "seed": seed,
                "overrides": dict(sorted((overrides or {}).items()))}
    with RunDir(Path(out), "study").claim(identity=identity):  # its own folder (each arm's run claims its own)
        return _run_arms(study, name, data, Path(out), budget, budget_overrides, device, seed, overrides, progress)


def _holds_nothing_out(overrides: dict[str, str] | None) -> bool:
    try:
        return float((overrides or {}).get("val_fraction", 0.1)) == 0
    except ValueError:  # not a number: the recipe check says so, naming the field
        return False


def _run_arms(study: Study, name: str, data: str | os.PathLike[str], out: Path, budget: str, budget_overrides: dict,
              device: str | None, seed: int, overrides: dict[str, str] | None, progress: bool) -> dict:
    """Train (or read) every arm under each of the budget's seeds, then write the study's results and report."""
    seeds = [seed + k for k in range(SEEDS[budget])]
    rows = []
    for i, arm in enumerate(study.arms, 1):
        runs = []
        for s in seeds:
            tag = s if len(seeds) > 1 else None  # one seed: the arm's folder has no seed in its name
            run_dir = out / arm_dir(arm.label, tag)
            fields = arm_fields(arm, budget_overrides, overrides)
            if arm.init_from:  # the donor of the same seed
                fields["init_from"] = str(out / arm_dir(arm.init_from, tag))
            where = f"[{name} {i}/{len(study.arms)}" + (f", seed {s}]" if len(seeds) > 1 else "]")
            donor = Path(fields.get("init_from", ""))
            if arm.init_from and (donor / DIVERGED).exists() and not (run_dir / DIVERGED).exists():
                with RunDir(run_dir).claim():  # nothing to start from: a result of the donor's, said as one
                    atomic_write_text(run_dir / DIVERGED, json.dumps(
                        {"error": f"its donor {arm.init_from} diverged, so there was nothing to start from"}) + "\n")
                    atomic_write_text(run_dir / WALL, json.dumps({"seconds": 0.0}) + "\n")
            _train_arm(arm, data, get_recipe(BASE_RECIPE, fields), run_dir, s, device, progress, where)
            runs.append(_row(arm, run_dir, s, fields))
        rows.append(combine_seeds(runs))
    result = {
        "study": name, "question": study.question, "paper": study.paper, "budget": budget, "data": str(data),
        "base_recipe": BASE_RECIPE, "overrides": {**BASE, **budget_overrides, **(overrides or {})},
        "seeds": seeds, "machine": _machines(rows, device), "precision": _precisions(rows),
        "python": platform.python_version(), "vggnet": __version__,
        "date": time.strftime("%Y-%m-%d"), "wall_seconds": round(sum(r["wall_seconds"] for r in rows), 1),
        "command": f"vggnet experiment {name} --budget {budget} --data {data} --out {out}"
                   + (f" --seed {seed}" if seed else ""),
        "arms": rows, "noise": (noise := seed_noise(rows)), "claims": [judge(c, rows, noise) for c in study.claims],
    }
    atomic_write_text(out / "results.json", json.dumps(result, indent=2) + "\n")
    write_study_report(out, result)
    return result


def arm_dir(label: str, seed: int | None) -> str:
    """An arm's run folder in the study's: its label, and its seed when the budget has several
    (a run sits directly in its study, never deeper)."""
    return slug(label) if seed is None else f"{slug(label)}-seed{seed}"


def arm_fields(arm: Arm, budget_overrides: dict, overrides: dict[str, str] | None) -> dict[str, str]:
    """The recipe overrides of one arm: the base, the budget's, the arm's own and the user's; an
    arm with an ``epochs_factor`` trains that multiple of the epochs in force."""
    fields = {**BASE, **budget_overrides, **arm.overrides, **(overrides or {})}
    if arm.epochs_factor != 1:  # the epochs in force, parsed and checked as the recipe does
        fields["epochs"] = str(max(1, round(get_recipe(BASE_RECIPE, fields).epochs * arm.epochs_factor)))
    return fields


def _train_arm(arm: Arm, data, recipe: Recipe, run_dir: Path, seed: int, device: str | None, progress: bool,
               where: str) -> None:
    """Train one arm under one seed unless its folder holds the finished run; resume one cut short."""
    _check_arm(run_dir, arm, recipe)
    if (run_dir / "metrics.json").exists() or (run_dir / DIVERGED).exists():
        return
    resume = RunDir(run_dir).has_checkpoint()  # else a new arm, or one cut before its first checkpoint
    done = sum(h["seconds"] for h in _history(run_dir)) if resume else 0.0  # epochs before the cut
    if progress:
        print(f"{where} {arm.label}: {arm.model}" + (" (resumed)" if resume else ""), flush=True)
    began = time.perf_counter()
    try:
        if resume:
            train(None, None, None, run_dir, resume=True, device=device, progress=progress)
        else:
            train(arm.model, data, recipe, run_dir, seed=seed, device=device, progress=progress)
    except DivergedError as err:  # a result of the study (bad initialisation), not a failure of it
        atomic_write_text(run_dir / DIVERGED, json.dumps({"error": str(err)}) + "\n")
        if progress:
            print(f"  {arm.label}: {err}", flush=True)
    wall = done + time.perf_counter() - began
    atomic_write_text(run_dir / WALL, json.dumps({"seconds": round(wall, 1)}) + "\n")


def _check_arm(run_dir: Path, arm: Arm, recipe: Recipe) -> None:
    """An arm's folder holds that arm's run or nothing: a run of another network or recipe, or
    something that is not a training run, is never reported as the arm."""
    if not run_dir.exists():
        return
    if owner(run_dir) not in ("", "train"):
        raise RunDirError(f"{run_dir} is not a training run: the study's arm {arm.label} cannot be written there")
    if not (run_dir / "run.json").exists():
        return
    run = RunDir(run_dir).read_run()
    wanted = json.loads(json.dumps(dataclasses.asdict(recipe)))  # as run.json holds it (tuples as lists)
    differ = sorted(k for k in wanted if run["recipe"].get(k, wanted[k]) != wanted[k]
                    and k != "init_from")  # a path: the same study may be reached by another path
    if run["model"] != arm.model or differ:
        what = f"a run of {run['model']}" if run["model"] != arm.model else f"a run with other {', '.join(differ)}"
        raise RunDirError(f"{run_dir} holds {what}, not the arm {arm.label} ({arm.model}) of this study: move it "
                          "away, or choose another --out for the study")


def _row(arm: Arm, run_dir: Path, seed: int, fields: dict[str, str]) -> dict:
    """One arm's figures under one seed; a run that diverged (or never started: its donor
    diverged) has None for its scores and says why."""
    if (run_dir / "run.json").exists():
        run = json.loads((run_dir / "run.json").read_text())
    else:  # never started
        recipe = dataclasses.asdict(get_recipe(BASE_RECIPE, fields))
        run = {"recipe": recipe, "train_images": 0, "val_images": 0}
    history = _history(run_dir) if (run_dir / "metrics.csv").exists() else []
    if (run_dir / DIVERGED).exists():
        metrics = {"top1": None, "top5": None, "loss": None,
                   "diverged": json.loads((run_dir / DIVERGED).read_text())["error"]}
    else:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    seconds = sum(h["seconds"] for h in history)
    wall = json.loads((run_dir / WALL).read_text())["seconds"] if (run_dir / WALL).exists() else seconds
    return {"label": arm.label, "model": arm.model, "seed": seed, "init": run["recipe"]["init"],
            "init_from": run["recipe"]["init_from"], "top1": metrics["top1"], "top5": metrics["top5"],
            "val_loss": metrics["loss"], "diverged": metrics.get("diverged", ""),
            "train_loss": [h["train_loss"] for h in history],
            "val_top1": [h["val_top1"] for h in history], "seconds": seconds,
            "train_images": run["train_images"], "val_images": run["val_images"],
            "wall_seconds": wall,  # a run dir from before wall.json: its epochs' time
            "machines": machines_of(run), "precision": run.get("precision", ""),
            "settings": {k: v for k, v in arm.overrides.items() if k != "init"}
            | ({"epochs": str(run["recipe"]["epochs"])} if arm.epochs_factor != 1 else {})}


def _history(run_dir: Path) -> list[dict]:
    rows = csv.DictReader((run_dir / "metrics.csv").read_text().splitlines())
    return [{k: float(v) for k, v in row.items()} for row in rows]
