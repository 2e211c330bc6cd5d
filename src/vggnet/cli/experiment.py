"""``vggnet experiment list | NAME``: the paper's ablations, run and reported."""

from __future__ import annotations

from pathlib import Path

import click

from vggnet.cli import cli
from vggnet.cli.options import check_data_arg, device_option
from vggnet.terminal import printable_text


class _StudyGroup(click.Group):
    """``vggnet experiment NAME ...`` runs a study; ``list`` is the one sub-command."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "run", run_command, args  # the study's name stays in args for `run`
        return super().resolve_command(ctx, args)


@cli.group("experiment", cls=_StudyGroup, invoke_without_command=False)
def experiment_group() -> None:
    """The paper's ablations on CIFAR-10: `vggnet experiment list`, `vggnet experiment NAME --data PATH`."""


@experiment_group.command("list")
def list_command() -> None:
    """The studies, each with its question and number of arms."""
    from vggnet.experiments.studies import STUDIES

    for study in STUDIES.values():
        click.echo(f"{study.name:<9} {len(study.arms):>2} arms  {study.question}")


@experiment_group.command("run", hidden=True)
@click.argument("name")
@click.option("--data", required=True, help="CIFAR-10: an archive, a folder, or 'cifar10' (downloaded once).")
@click.option("--budget", type=click.Choice(["small", "medium", "full"]), default="small", show_default=True,
              help="small: a fixed subset, a smoke test of ~20 min on a 2-core CPU; medium: all of CIFAR-10's "
                   "training split, nets at 1/4 width, 2 seeds, sized to ~90 min on 2 cores (estimated from "
                   "training speed); full: full width, for a GPU.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Report directory [runs/experiments/NAME-BUDGET].")
@device_option()
@click.option("--seed", type=int, default=0, show_default=True,
              help="The arms' seed (medium trains each arm with this seed and the next).")
@click.option("--quiet", is_flag=True)
def run_command(name, data, budget, out, device, seed, quiet) -> None:
    """Run study NAME and write report.md, report.png and results.json."""
    from vggnet.experiments.run import run_study
    from vggnet.experiments.studies import get_study

    get_study(name)  # an unknown name fails before anything runs
    check_data_arg(data)
    out = Path(out or f"runs/experiments/{name}-{budget}")
    try:
        result = run_study(name, data, out, budget=budget, device=device, seed=seed, progress=not quiet)
    except KeyboardInterrupt:  # finished arms and checkpoints are kept: the same command continues
        again = f"vggnet experiment {name} --data {data} --budget {budget} --out {out}"
        again += f" --seed {seed}" if seed else ""
        click.echo(printable_text(f"interrupted: finished arms and checkpoints are kept; continue with `{again}`"),
                   err=True)
        raise SystemExit(130) from None
    scored = [r for r in result["arms"] if r["top1"] is not None]  # arms that diverged have no score
    best = f"best {max(scored, key=lambda r: r['top1'])['label']}" if scored else "every arm diverged"
    verdicts = [j["verdict"] for j in result.get("claims", [])]
    tally = ", ".join(f"{verdicts.count(v)} {v}" for v in ("agrees", "disagrees", "not resolved", "no score")
                      if verdicts.count(v))
    claims = f"; the paper's claims: {tally}" if tally else ""
    click.echo(printable_text(f"{name}: {best}{claims}; report: {out / 'report.md'}"))
