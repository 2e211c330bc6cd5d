"""How long indexing an ImageNet-sized folder takes, and how much memory: vggnet's scan (first
listing, then from its cache) against the listing a plain PyTorch user writes (torchvision
ImageFolder's ``make_dataset``: walk each class folder, keep files by extension, a list of
(path, class) tuples).

The tree is ImageNet's layout with empty files (train/<wnid>/<wnid>_<i>.JPEG, 1,000 folders):
listing reads names, not bytes. Each measurement runs in a fresh process so its peak memory
(VmHWM) is its own, and is reported above that process's memory after importing torch and vggnet.

    python benchmarks/index_scale.py --images 1281167 [--tree /tmp/imagenet-names] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLASSES = 1000
MODES = ("plain", "vggnet_first", "vggnet_cached")


def make_tree(root: Path, images: int) -> None:
    """ImageNet's train layout with empty files; skipped when ``root`` already holds it."""
    marker = root / f".made-{images}"
    if marker.exists():
        return
    for c in range(CLASSES):
        wnid = f"n{c:08d}"
        folder = root / "train" / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(images // CLASSES + (c < images % CLASSES)):
            (folder / f"{wnid}_{i}.JPEG").touch()
    old = time.time() - 3600  # an hour old: a folder changed moments ago is (rightly) not cached
    for folder, _, _ in os.walk(root):
        os.utime(folder, (old, old))
    marker.touch()


def _plain(root: Path) -> list[tuple[str, int]]:
    """torchvision's make_dataset, as a user without torchvision writes it."""
    extensions = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
    train = root / "train"
    classes = sorted(e.name for e in os.scandir(train) if e.is_dir())
    samples = []
    for index, name in enumerate(classes):
        for folder, _, files in sorted(os.walk(train / name, followlinks=True)):
            for f in sorted(files):
                if f.lower().endswith(extensions):
                    samples.append((os.path.join(folder, f), index))
    return samples


def _vggnet(root: Path, cached: bool):
    from vggnet.data.folders import scan_folder

    if not cached:
        from vggnet.data.scan_cache import clear_indexes
        clear_indexes()
    return scan_folder(root).splits["train"]


def _status(field: str) -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith(field))
    return int(line.split()[1]) / 1024


def child(mode: str, root: Path) -> None:
    """One measurement in this process: prints JSON."""
    import torch  # noqa: F401  (counted in the base, as a training process has it)

    import vggnet.data.folders  # noqa: F401

    base = _status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to now
    start = time.perf_counter()
    index = _plain(root) if mode == "plain" else _vggnet(root, cached=mode == "vggnet_cached")
    seconds = time.perf_counter() - start  # held: the index, kept as a training process keeps it
    print(json.dumps({"mode": mode, "images": len(index), "seconds": round(seconds, 3),
                      "peak_mb_above_import": round(_status("VmHWM:") - base, 1),
                      "held_mb_above_import": round(_status("VmRSS:") - base, 1)}))


def run(mode: str, root: Path, home: Path) -> dict:
    env = {**os.environ, "VGGNET_HOME": str(home)}
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--tree", str(root)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=200_000)
    ap.add_argument("--tree", type=Path, default=None, help="where to make (or reuse) the tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.tree)
    root = args.tree or Path(tempfile.gettempdir()) / f"vggnet-index-bench-{args.images}"
    started = time.perf_counter()
    print(f"making {args.images:,} empty files in {root} ...", file=sys.stderr)
    make_tree(root, args.images)
    print(f"  {time.perf_counter() - started:.1f} s", file=sys.stderr)
    results: dict[str, list[dict]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as home:
        for r in range(args.rounds):
            for mode in MODES if r % 2 == 0 else MODES[1:] + MODES[:1]:  # the first listing makes the cache
                results[mode].append(run(mode, root, Path(home)))
                print(f"  round {r + 1}: {mode} {results[mode][-1]['seconds']} s", file=sys.stderr)
    summary = {m: {k: sorted(x[k] for x in rs)[len(rs) // 2] for k in rs[0] if k != "mode"}
               for m, rs in results.items()}
    report = {"benchmark": "index_scale", "images": args.images, "classes": CLASSES, "rounds": args.rounds,
              "cpu": _cpu(), "python": platform.python_version(), "median": summary}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    plain = summary["plain"]["seconds"]
    print(f"\nindexing {args.images:,} files in {CLASSES} folders ({report['cpu']}); median of {args.rounds}")
    print(f"{'':16}{'seconds':>9}{'vs plain':>10}{'peak MB':>9}{'held MB':>9}")
    for m, s in summary.items():
        print(f"{m:16}{s['seconds']:>9.2f}{plain / s['seconds']:>9.2f}x{s['peak_mb_above_import']:>9.0f}"
              f"{s['held_mb_above_import']:>9.0f}")


def _cpu() -> str:
    with open("/proc/cpuinfo") as f:
        return next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), platform.machine())


if __name__ == "__main__":
    main()
