"""A benchmark result (the dict ``bench_infer``/``bench_train`` return) as a table people can read.

The JSON stays the record; the table is what a person reads at an 80-column terminal: vggnet
beside the plain-PyTorch baseline, the ratios in a third column, the run's settings as the title
and the machine and matmul peaks below.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from vggnet.terminal import printable_text


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _share(gflops: float, peaks: dict, precision: str) -> str:
    """Achieved GFLOPS as a share of the measured matmul peak of the precision that ran."""
    peak = peaks.get(precision) or 0
    return f"{gflops / peak:.1%}" if peak else ""


def _layout(side: dict) -> str:
    return "channels_last" if side.get("channels_last") else "NCHW"


def _title(result: dict) -> str:
    """What ran: kind, model, batch, image size, data, compile and checkpointing where used."""
    parts = [f"bench {result['bench']} {result['model']}", f"batch {result['batch_size']}",
             f"{result['image_size']} px"]
    if result.get("data"):
        parts.append(f"data {result['data']}")
    if result.get("compile"):
        parts.append(f"compiled ({result.get('compile_mode', 'default')})")
    if result.get("grad_checkpointing"):
        parts.append("grad checkpointing")
    parts.append(f"median of {result['rounds']} round{'s' if result['rounds'] != 1 else ''}")
    return printable_text(", ".join(parts))


def _rows(result: dict) -> list[tuple[str, str, str, str]]:
    """(figure, vggnet, baseline, vggnet / baseline) per line of the table."""
    base = result.get("baseline") or {}
    peaks = result.get("peak_gflops", result.get("matmul_peak_gflops", {}))

    def both(key: str, digits: int = 1) -> tuple[str, str]:
        return _num(result.get(key), digits), _num(base.get(key), digits)

    def ratio(key: str) -> str:
        return f"{result[key]:.2f}x" if key in result else ""

    return [
        ("images/s", *both("images_per_second", 2), ratio("speedup")),
        ("achieved GFLOPS", *both("gflops"), ""),
        ("share of peak", _share(result["gflops"], peaks, result["precision"]),
         _share(base["gflops"], peaks, base["precision"]) if base else "", ""),
        ("precision", result["precision"], base.get("precision", ""), ""),
        ("memory format", _layout(result), _layout(base) if base else "", ""),
        ("threads", str(result["threads"]), str(base.get("threads", "")), ""),
        ("peak memory MB", *both("peak_memory_mb"), ""),
        ("working memory MB", *both("working_memory_mb"), ratio("memory_ratio")),
        ("  per image MB", *both("working_memory_mb_per_image", 2), ""),
    ]


def bench_table(result: dict) -> Table:
    """vggnet and (when run) the baseline side by side, within 80 columns."""
    has_base = "baseline" in result
    table = Table()
    table.add_column("")
    table.add_column("vggnet", justify="right")
    if has_base:
        table.add_column("baseline", justify="right")
        table.add_column("ratio", justify="right")
    for label, ours, theirs, ratio in _rows(result):
        table.add_row(label, ours, *((theirs, ratio) if has_base else ()))
    return table


def bench_notes(result: dict) -> list[str]:
    """The lines under the table: per-round speeds, where it ran, the peaks the shares are of, bf16 agreement."""
    peaks = result.get("matmul_peak_gflops", {})
    notes = ["images/s per round: " + ", ".join(f"{v:,.2f}" for v in result.get("images_per_second_rounds", []))]
    if "baseline" in result:
        notes.append("ratio: vggnet / baseline")
    notes += [printable_text(f"{result['machine']} ({result['device']}), torch {result['torch']}"),
              "matmul peak GFLOPS: " + ", ".join(f"{k} {v:,.1f}" for k, v in peaks.items())]
    if "conv_peak_gflops" in result:
        notes.append("conv3 peak GFLOPS: " + ", ".join(f"{k} {v:,.1f}" for k, v in result["conv_peak_gflops"].items())
                     + "; shares: of the higher peak")
    if "auto_choice" in result:
        notes.append(printable_text(f"precision=auto here: {result['auto_choice']}"))
    if "layout_choice" in result:
        notes.append(printable_text(f"memory_format=auto: {result['layout_choice']}"))
    for precision in ("bf16", "int8"):
        if f"{precision}_top1_agreement" in result:
            notes.append(f"{precision} top-1 agrees with fp32 on {result[f'{precision}_top1_agreement']:.1%} of "
                         f"{result['agreement_images']} real images")
    return notes


def bench_report(result: dict) -> Group:
    """Title line, table, notes: what ``vggnet bench`` shows a person (the JSON is printed apart)."""
    return Group(Text(_title(result)), bench_table(result), *(Text(line) for line in bench_notes(result)))
