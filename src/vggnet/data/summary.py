"""What a dataset turned out to be, said before training: classes and counts, image sizes, and
every file that is not used (ignored by the layout rule, or undecodable), so a wrong folder shows
up before the first epoch rather than as a plausible accuracy after the last."""

from __future__ import annotations

from collections import Counter

import torch

from vggnet.data.datasets import DataSplits, labels_of
from vggnet.data.sources import printable

FIRST = 5  # how many names of ignored or undecodable files are kept as examples
LISTED_CLASSES = 20  # up to this many classes are printed one per line


def files_summary(found: dict[str, str]) -> dict:
    """How many files, how many for each reason, and the first few named."""
    reasons = Counter(found.values())
    return {"count": len(found), "reasons": dict(reasons.most_common()),
            "first": [f"{printable(n)} ({why})" for n, why in list(found.items())[:FIRST]]}


def summarize(data: DataSplits) -> dict:
    """A JSON-ready summary: per-split image counts per class, sizes, ignored and undecodable files."""
    splits = {name: getattr(data, name) for name in ("train", "val", "test") if getattr(data, name) is not None}
    per_class = {name: torch.bincount(labels_of(s), minlength=len(data.classes)).tolist() for name, s in splits.items()}
    sizes = None
    if data.survey is not None:
        s = data.survey
        sizes = {"min_side": s.min_side, "max_side": s.max_side, "median_side": s.median_side, "measured": s.measured}
    elif data.native_size is not None:
        sizes = {"min_side": data.native_size, "max_side": data.native_size, "median_side": data.native_size}
    return {"name": data.name, "classes": data.classes, "images": {n: len(s) for n, s in splits.items()},
            "per_class": per_class, "sizes": sizes, "held_out_by": "seed" if data.held_out is not None else "folders",
            "ignored": files_summary(data.ignored), "undecodable": files_summary(data.skipped)}


def _held_out_note(summary: dict) -> str:
    if summary["held_out_by"] != "seed":  # the dataset's own val split
        return ""
    return " (val held out with the seed)" if summary["images"].get("val") else " (nothing held out: val_fraction=0)"


def format_summary(summary: dict) -> str:
    """The summary as a few lines for a terminal."""
    classes = summary["classes"]
    counts = ", ".join(f"{n} {c:,}" for n, c in summary["images"].items())
    lines = [f"data {summary['name']}: {len(classes)} classes; images: {counts}{_held_out_note(summary)}"]
    if len(classes) <= LISTED_CLASSES:
        width = max(len(printable(c)) for c in classes)
        for i, c in enumerate(classes):
            counts = "".join(f"{n[i]:>8,} {split}" for split, n in summary["per_class"].items())
            lines.append(f"  {printable(c).ljust(width)}{counts}")
    else:
        for split, per_class in summary["per_class"].items():
            lines.append(f"  {split} images per class: {min(per_class):,} to {max(per_class):,}")
    if summary["sizes"]:
        s = summary["sizes"]
        sample = f" in a sample of {s['measured']}" if "measured" in s else ""
        lines.append(f"  image sides {s['min_side']} to {s['max_side']} px{sample}")
    for key, label in (("ignored", "files not used"), ("undecodable", "undecodable images skipped")):
        part = summary[key]
        if part["count"]:
            lines.append(f"  {part['count']:,} {label}, e.g. {'; '.join(part['first'][:3])}")
    return "\n".join(lines)
