"""Turn analysis results into what people read: text tables (rich), JSON and PNG charts.

matplotlib is an optional extra (``pip install 'vggnet[plot]'``); only the PNG functions need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from vggnet.analysis.compare import ModelCost
from vggnet.analysis.filters import Comparison
from vggnet.analysis.trace import Trace
from vggnet.plotting import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MB = 1e6
SHORT_TYPES = {"AdaptiveAvgPool2d": "AdaptAvg", "AdaptiveMaxPool2d": "AdaptMax", "BatchNorm2d": "BN",
               "LocalResponseNorm": "LRN"}
"""Layer types the compact table abbreviates (others only lose their '2d')."""


def _dtype_name(trace: Trace) -> str:
    return str(trace.dtype).removeprefix("torch.")


def assumptions(trace: Trace, batch_size: int, optimizer: str) -> list[str]:
    """The conventions behind the totals, printed with every summary."""
    return [
        f"dtype {_dtype_name(trace)}; MB = 10^6 bytes; counts are per image unless marked",
        "MACs: multiply-accumulates of conv and FC layers only (no bias, ReLU, pool, BN); backward = "
        "weight gradients of the trainable layers + input gradients of the layers with a trainable "
        "layer before them (none for the layer reading the image, none for frozen layers)",
        "forward activations: distinct tensors the eval-mode forward creates, input included; "
        "in-place ReLU/Dropout and views (flatten) create none (marked '-')",
        "saved for backward: measured with autograd's saved-tensor hooks in train mode, "
        "deduplicated by storage, weights excluded",
        f"training: batch {batch_size}, optimizer {optimizer} "
        f"({ {'none': 0, 'sgd': 1, 'adam': 2}[optimizer]} state buffer(s) per weight); weights, "
        "gradients and optimizer state shared by the batch; backward's transient buffers excluded",
        "receptive field and jump along the height, per output row (adaptive pools: the widest "
        "window, the largest step); after flatten, the FC layers see the whole map",
    ]


def trace_to_dict(trace: Trace, batch_size: int = 256, optimizer: str = "sgd") -> dict[str, Any]:
    """The ``--json`` form of a summary."""
    training = trace.training_memory(batch_size, optimizer)
    return {
        "model": trace.model,
        "input_size": list(trace.input_size),
        "dtype": _dtype_name(trace),
        "layers": [
            {"name": r.name, "type": r.type, "kernel": r.kernel, "stride": r.stride, "padding": r.padding,
             "filters": r.filters, "output_shape": list(r.output_shape), "params": r.params, "macs": r.macs,
             "activations": r.activations, "bytes": r.bytes, "new_tensor": r.new_tensor,
             "saved_bytes": r.saved_bytes, "receptive_field": r.receptive_field, "jump": r.jump}
            for r in trace.layers
        ],
        "totals": {
            "params": trace.params,
            "macs": trace.macs,
            "macs_backward": trace.macs_backward,
            "activations_forward": trace.activations_forward,
            "bytes_forward": trace.bytes_forward,
            "activations_every_output": trace.activations_every_output,
            "bytes_saved_for_backward": trace.saved_bytes_per_image,
            "bytes_inference_peak": trace.inference_peak_bytes,
            "bytes_training": training["total"],
            "training_breakdown": training,
            "batch_size": batch_size,
            "optimizer": optimizer,
        },
        "assumptions": assumptions(trace, batch_size, optimizer),
    }


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def compact(value: float | None, binary: bool = False) -> str:
    """Three significant digits and a unit: 2.36M, 15.5G, 138M; ``binary``: bytes in KiB/MiB/GiB."""
    if value is None:
        return ""
    base, units = (1024, (" B", " KiB", " MiB", " GiB", " TiB")) if binary else (1000, ("", "k", "M", "G", "T"))
    v, i = float(value), 0
    while i < len(units) - 1 and abs(v) >= 999.5:
        v, i = v / base, i + 1
    text = f"{v:.0f}" if i == 0 and v.is_integer() else f"{v:.3g}"
    return text + units[i]


def trace_table(trace: Trace, wide: bool = False) -> Table:
    """The per-layer table: compact units that fit 80 columns, or (``wide``) every digit."""
    if not wide:
        return _compact_trace_table(trace)
    table = Table(title=f"{trace.model} at {trace.input_size[1]}x{trace.input_size[2]}")
    for header in ("layer", "type", "k/s/p", "filters", "output", "activations", "MB",
                   "params", "MACs", "RF", "jump"):
        table.add_column(header, justify="left" if header in ("layer", "type", "output") else "right")
    for r in trace.layers:
        ksp = "" if r.kernel is None else f"{r.kernel}/{r.stride}/{r.padding}"
        table.add_row(
            r.name, r.type, ksp, _num(r.filters), "x".join(map(str, r.output_shape)),
            _num(r.activations) if r.new_tensor else "-", f"{r.bytes / MB:.2f}" if r.new_tensor else "-",
            _num(r.params), _num(r.macs), _num(r.receptive_field), _num(r.jump),
        )
    return table


def _compact_trace_table(trace: Trace) -> Table:
    """No borders, abbreviated types, no activations column (memory says it). Nested layers get
    their parent's path once, on a row of its own, then their last name indented, so GoogLeNet's
    ``inception4a.branch2.1.conv`` does not push the numbers off an 80-column screen."""
    table = Table(title=f"{trace.model} at {trace.input_size[1]}x{trace.input_size[2]}", box=None,
                  pad_edge=False, header_style="bold")
    table.add_column("layer", overflow="fold")
    table.add_column("type", no_wrap=True)
    for header in ("k/s/p", "output", "memory", "params", "MACs", "RF", "jump"):
        table.add_column(header, justify="left" if header == "output" else "right", no_wrap=True)
    parent = ""
    for r in trace.layers:
        path, _, leaf = r.name.rpartition(".")
        if path and path != parent:
            table.add_row(path, style="dim")
        parent = path
        ksp = "" if r.kernel is None else f"{r.kernel}/{r.stride}/{r.padding}"
        table.add_row(
            f"  {leaf}" if path else leaf, SHORT_TYPES.get(r.type, r.type.removesuffix("2d")), ksp,
            "x".join(map(str, r.output_shape)), compact(r.bytes, binary=True) if r.new_tensor else "-",
            compact(r.params) if r.params else "", compact(r.macs) if r.macs else "",
            _num(r.receptive_field), _num(r.jump),
        )
    return table


def totals_lines(trace: Trace, batch_size: int, optimizer: str) -> list[str]:
    t = trace_to_dict(trace, batch_size, optimizer)["totals"]
    train = t["training_breakdown"]
    return [
        f"parameters              {t['params']:,} ({trace.param_bytes / MB:,.1f} MB)",
        f"MACs per image          {t['macs']:,} forward, {t['macs_backward']:,} backward",
        f"forward activations     {t['activations_forward']:,} values = {t['bytes_forward'] / MB:,.2f} MB per image",
        f"  every output counted  {t['activations_every_output']:,} values (as if no layer ran in place)",
        f"inference peak          {t['bytes_inference_peak'] / MB:,.2f} MB per image (tensors alive at once)",
        f"saved for backward      {t['bytes_saved_for_backward'] / MB:,.2f} MB per image",
        f"training, batch {batch_size:<6}  {train['total'] / MB:,.2f} MB per image",
        f"  = saved {train['saved_activations'] / MB:,.2f} + weights {train['weights'] / MB:,.2f} + gradients "
        f"{train['gradients'] / MB:,.2f} + {optimizer} state {train['optimizer_state'] / MB:,.2f}",
        *_not_run_lines(trace),
    ]


def _not_run_lines(trace: Trace) -> list[str]:
    """Parameters counted in the total but in no row: modules the eval forward never calls."""
    if not trace.params_not_run:
        return []
    names = ", ".join(trace.params_not_run)
    count = sum(trace.params_not_run.values())
    return [f"  not in any row        {count:,} in {names} (training only; see --no-aux)"]


def compare_table(rows: list[ModelCost], input_size: int, wide: bool = False) -> Table:
    """One row per model, compact (fits 80 columns) or ``wide`` (exact integers); the sources of
    the accuracies are numbered notes, :func:`compare_notes`, not a column."""
    table = Table(title=f"Networks at {input_size}x{input_size}", box=None if not wide else box.HEAVY_HEAD,
                  pad_edge=wide, show_header=True)
    headers = ("model", "paper", "params", "MACs", "fwd act.", "saved/img", "top-1 %")
    for header in headers:
        table.add_column(header, justify="left" if header in ("model", "paper") else "right", no_wrap=True)
    sources = _source_numbers(rows)
    for r in rows:
        top1 = "" if r.top1 is None else f"{r.top1:.2f} [{sources[r.source]}]" if r.source else f"{r.top1:.2f}"
        if wide:
            cells = (f"{r.params:,}", f"{r.macs:,}", f"{r.activations_forward:,}", f"{r.saved_bytes_per_image:,} B")
        else:
            cells = (compact(r.params), compact(r.macs), compact(r.activations_forward),
                     compact(r.saved_bytes_per_image, binary=True))
        table.add_row(r.name, r.paper_config or "", *cells, top1)
    return table


def _source_numbers(rows: list[ModelCost]) -> dict[str, int]:
    numbers: dict[str, int] = {}
    for r in rows:
        if r.source and r.top1 is not None and r.source not in numbers:
            numbers[r.source] = len(numbers) + 1
    return numbers


def compare_notes(rows: list[ModelCost], skipped: dict[str, int] | None = None) -> list[str]:
    """The footnotes under the compare table: numbered sources, then models left out because
    the input is smaller than they take (``skipped``: name -> minimum side)."""
    notes = [f"[{n}] {source}" for source, n in _source_numbers(rows).items()]
    notes += [f"{name}: needs >= {need} px" for name, need in (skipped or {}).items()]
    return notes


def filters_table(rows: list[Comparison], wide: bool = False) -> Table:
    """Each comparison as two rows (the small-filter design, then the one it replaces): compact
    units that fit 80 columns, the comparisons named in the design column; or (``wide``) every digit
    with the comparison's own title."""
    if wide:
        table = Table(title="Small filters, deeper networks (bias-free convolutions, C -> C)")
        heads = ("comparison", "design", "params", "MACs", "RF", "ReLUs", "weights ratio")
    else:
        table = Table(title="Small filters, deeper networks", box=None, pad_edge=False)
        heads = ("design", "params", "MACs", "RF", "ReLUs", "weights ratio")
    for header in heads:
        table.add_column(header, justify="left" if header in ("comparison", "design") else "right")
    for i, c in enumerate(rows):
        if not wide and i:
            table.add_row()  # a blank line between comparisons
        for cost, ratio in ((c.small, "1.00"), (c.large, f"{c.param_ratio:.2f}")):
            if wide:
                table.add_row(c.title if cost is c.small else "", cost.layers, f"{cost.params:,}",
                              f"{cost.macs:,}", str(cost.receptive_field), str(cost.nonlinearities), ratio)
            else:
                table.add_row(cost.layers if cost is c.small else f"  vs {cost.layers}", compact(cost.params),
                              compact(cost.macs), str(cost.receptive_field), str(cost.nonlinearities), ratio)
    if not wide and rows:
        table.caption = f"bias-free, C -> C, {rows[0].title.split(' at ', 1)[1]}; --wide: exact"
    return table


def trace_figure(trace: Trace) -> Figure:
    """Per-layer memory (forward and saved for backward), MACs and receptive field."""
    plt = pyplot()
    rows = [r for r in trace.layers if r.type != "Input"]
    names = [r.name for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(max(8, len(rows) * 0.28), 10), sharex=True)
    x = range(len(rows))
    axes[0].bar(x, [r.bytes / MB if r.new_tensor else 0 for r in rows], label="output (new tensors)")
    axes[0].bar(x, [r.saved_bytes / MB for r in rows], alpha=0.6, label="saved for backward")
    axes[0].set_ylabel("MB per image")
    axes[0].legend()
    axes[0].set_title(f"{trace.model} at {trace.input_size[1]}x{trace.input_size[2]}, {_dtype_name(trace)}: "
                      f"{trace.params:,} params, {trace.macs / 1e9:.2f} GMACs")
    axes[1].bar(x, [r.macs / 1e9 for r in rows], color="tab:green")
    axes[1].set_ylabel("GMACs")
    axes[2].plot(x, [r.receptive_field or 0 for r in rows], marker="o", color="tab:red")
    axes[2].set_ylabel("receptive field (px)")
    axes[2].set_xticks(list(x), names, rotation=90, fontsize=7)
    fig.tight_layout()
    return fig


def compare_figure(rows: list[ModelCost]) -> Figure:
    """MACs against published top-1, marker area proportional to parameters."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    shown = [r for r in rows if r.top1 is not None]
    placed: list[tuple[float, float]] = []
    for r in sorted(shown, key=lambda r: (r.macs, r.top1)):
        x, y = r.macs / 1e9, r.top1
        colour = "tab:blue" if r.name.startswith("vgg") else "tab:orange"
        ax.scatter(x, y, s=r.params / 2e5, alpha=0.5, color=colour, edgecolors="k")
        # Networks with (nearly) the same cost and accuracy get their labels stacked downwards.
        clashes = sum(abs(x - px) < 0.8 and abs(y - py) < 0.8 for px, py in placed)
        placed.append((x, y))
        ax.annotate(r.name, (x, y), fontsize=8, xytext=(6, 4 - 11 * clashes), textcoords="offset points")
    ax.set_xlabel("GMACs per 224x224 image (traced)")
    ax.set_ylabel("ImageNet top-1 % (published)")
    ax.set_title("Cost vs accuracy; marker area ~ parameters (VGG blue)")
    sources = sorted({r.source for r in shown if r.source})
    fig.text(0.01, -0.02 - 0.03 * len(sources), "Sources: " + "; ".join(sources), fontsize=7, wrap=True)
    ax.grid(alpha=0.3)
    return fig
