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
from vggnet.experiments.report import write_study_report
from vggnet.experiments.studies import BASE, BASE_RECIPE, Arm, Study, get_study
from vggnet.runs import RunDir, RunDirError, owner
from vggnet.train.loop import train
from vggnet.train.recipes import Recipe, get_recipe

DIVERGED = "diverged.json"  # written in an arm's run dir when its loss became non-finite
WALL = "wall.json"  # an arm's wall time, so a study resumed over several invocations sums them all


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _machine(device: str | None) -> str:
    from vggnet.bench.runner import machine_name

    return f"{machine_name(resolve_device(device))}, torch {torch.__version__}"


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
    """Train (or read) every arm, then write the study's results and report."""
    rows = []
    for i, arm in enumerate(study.arms, 1):
        run_dir = out / slug(arm.label)
        fields = {**BASE, **budget_overrides, **arm.overrides, **(overrides or {})}
        if arm.init_from:
            fields["init_from"] = str(out / slug(arm.init_from))
        recipe = get_recipe(BASE_RECIPE, fields)
        _check_arm(run_dir, arm, recipe)
        if not (run_dir / "metrics.json").exists() and not (run_dir / DIVERGED).exists():
            resume = RunDir(run_dir).has_checkpoint()  # else a new arm, or one cut before its first checkpoint
            done = sum(h["seconds"] for h in _history(run_dir)) if resume else 0.0  # epochs before the cut
            if progress:
                print(f"[{name} {i}/{len(study.arms)}] {arm.label}: {arm.model}" + (" (resumed)" if resume else ""),
                      flush=True)
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
        rows.append(_row(arm, run_dir))
    result = {
        "study": name, "question": study.question, "paper": study.paper, "budget": budget, "data": str(data),
        "base_recipe": BASE_RECIPE, "overrides": {**BASE, **budget_overrides, **(overrides or {})},
        "machine": _machine(device), "python": platform.python_version(), "vggnet": __version__,
        "date": time.strftime("%Y-%m-%d"), "wall_seconds": round(sum(r["wall_seconds"] for r in rows), 1),
        "command": f"vggnet experiment {name} --budget {budget} --data {data} --out {out}",
        "arms": rows,
    }
    atomic_write_text(out / "results.json", json.dumps(result, indent=2) + "\n")
    write_study_report(out, result)
    return result


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


def _row(arm: Arm, run_dir: Path) -> dict:
    """One arm's figures; an arm that diverged has None for its scores and says why."""
    run = json.loads((run_dir / "run.json").read_text())
    history = _history(run_dir) if (run_dir / "metrics.csv").exists() else []
    if (run_dir / DIVERGED).exists():
        metrics = {"top1": None, "top5": None, "loss": None,
                   "diverged": json.loads((run_dir / DIVERGED).read_text())["error"]}
    else:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    seconds = sum(h["seconds"] for h in history)
    wall = json.loads((run_dir / WALL).read_text())["seconds"] if (run_dir / WALL).exists() else seconds
    return {"label": arm.label, "model": arm.model, "init": run["recipe"]["init"],
            "init_from": run["recipe"]["init_from"], "top1": metrics["top1"], "top5": metrics["top5"],
            "val_loss": metrics["loss"], "diverged": metrics.get("diverged", ""),
            "train_loss": [h["train_loss"] for h in history],
            "val_top1": [h["val_top1"] for h in history], "seconds": seconds,
            "train_images": run["train_images"], "val_images": run["val_images"],
            "wall_seconds": wall,  # a run dir from before wall.json: its epochs' time
            "settings": {k: v for k, v in arm.overrides.items() if k != "init"}}


def _history(run_dir: Path) -> list[dict]:
    rows = csv.DictReader((run_dir / "metrics.csv").read_text().splitlines())
    return [{k: float(v) for k, v in row.items()} for row in rows]
