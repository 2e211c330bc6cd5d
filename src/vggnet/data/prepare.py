"""``vggnet prepare``: a dataset written once as resized JPEGs in tar shards (see :mod:`vggnet.data.shards`).

Decoding a 500x375 JPEG and resampling it costs more than the training step can wait for on a
GPU; decoding one already at the training scale costs a fraction. The pass is planned from the
folder's index (training images in a seeded order, so every shard mixes the classes; the others
in order) and each shard is written whole, atomically, by a pool of processes. What is done is
recorded in OUT/.vggnet-prepare.json, so an interrupted pass resumes where it stopped; the
manifest is written last, so a half-prepared folder is never read as a dataset.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vggnet import __version__
from vggnet.atomic import atomic_path, atomic_write_text
from vggnet.data.datasets import warn_ignored
from vggnet.data.decode import decode_rgb
from vggnet.data.download import file_digest
from vggnet.data.folder_index import FolderIndex
from vggnet.data.folders import scan_folder
from vggnet.data.prepare_state import RECORD_KEYS, intact, locked, ours, read_state, worker_start
from vggnet.data.shard_manifest import read_manifest
from vggnet.data.shards import FORMAT, MANIFEST, STATE, VERSION, is_prepared, shard_name
from vggnet.data.sources import FileSource
from vggnet.data.transforms import rescaled_size
from vggnet.errors import DataError, VggnetError
from vggnet.files import UnreadableFile, usable_cores
from vggnet.progress import progress_bar
from vggnet.terminal import printable_text as printable

log = logging.getLogger("vggnet")


@dataclass(frozen=True)
class Options:
    short_side: int = 256
    quality: int = 90
    shard_size: int = 1000
    seed: int = 0

    def check(self) -> None:
        if not 32 <= self.short_side <= 4096:
            raise VggnetError(f"--short-side {self.short_side}: give 32 to 4096 (the side training rescales from)")
        if not 1 <= self.quality <= 100:
            raise VggnetError(f"--quality {self.quality}: give 1 to 100 (JPEG quality; 90 keeps detail, 75 is smaller)")
        if not 1 <= self.shard_size <= 1_000_000:
            raise VggnetError(f"--shard-size {self.shard_size}: give 1 to 1,000,000 images per shard")


def check_out(out: Path, data: Path) -> None:
    """OUT is new, empty, or a folder vggnet prepare wrote; never inside or equal to DATA."""
    if out.exists() and not out.is_dir():
        raise VggnetError(f"{out} is not a folder: give a new or empty folder for the shards")
    if out.resolve() == data.resolve() or data.resolve() in out.resolve().parents:
        raise VggnetError(f"{out} is inside the dataset {data}: give a folder outside it")
    if out.is_dir() and any(out.iterdir()) and not ours(out):
        raise VggnetError(f"{out} holds other files: give a new or empty folder (vggnet never writes among "
                          "files it did not make)")


def _jpeg(data: bytes, short_side: int, quality: int) -> bytes:
    """An image as RGB JPEG bytes, its shorter side at most ``short_side`` (never enlarged)."""
    image = decode_rgb(data, min_side=short_side)
    if min(image.size) > short_side:
        image = image.resize(rescaled_size(*image.size, short_side), Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(payload), 0o644, 0
    tar.addfile(info, io.BytesIO(payload))


def write_shard(source: FileSource, items: list[tuple[str, int, int]], path: Path, options: Options,
                strict: bool, parent: int | None = None) -> dict:
    """One shard: each (name, label, key) read, resized, encoded and stored as ``<key>.jpg`` +
    ``<key>.cls``. Returns its record; undecodable images are left out and listed (``strict``: the
    first one stops it). A pool worker whose ``parent`` died stops instead of writing on."""
    skipped = {}
    with atomic_path(path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for name, label, position in items:
                if parent is not None and os.getppid() != parent:
                    raise SystemExit("vggnet prepare stopped")
                try:
                    payload = _jpeg(source.read(name), options.short_side, options.quality)
                except UnreadableFile as err:
                    if strict:
                        raise DataError(f"cannot decode {source.where(name)} ({err}); without --strict it is "
                                        "skipped") from None
                    skipped[name] = str(err)
                    continue
                _member(tar, f"{position:08d}.jpg", payload)
                _member(tar, f"{position:08d}.cls", str(label).encode())
        record = {"file": path.name, "images": len(items) - len(skipped), "bytes": os.path.getsize(tmp),
                  "sha256": file_digest(tmp, "sha256"), "skipped": skipped}
    return record


def _plan(scan_splits: dict[str, FolderIndex], options: Options) -> dict[str, np.ndarray]:
    """Each split's images in shard order: training (and an unsplit pool) shuffled by the seed."""
    plan = {}
    for split, index in scan_splits.items():
        order = np.arange(len(index))
        if split in ("train", "all"):
            order = np.random.default_rng(options.seed).permutation(len(index))
        plan[split] = order
    return plan


def _fingerprint(scan_splits: dict[str, FolderIndex], plan: dict[str, np.ndarray], options: Options) -> str:
    h = hashlib.sha256(json.dumps([FORMAT, VERSION, options.__dict__]).encode())
    for split, order in plan.items():
        index = scan_splits[split]
        h.update(split.encode())
        for i in order.tolist():
            h.update(f"{index.name(i)}\0{index.label(i)}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _missing(scan_splits: dict[str, FolderIndex], plan: dict[str, np.ndarray], options: Options, state: dict,
             out: Path, progress: bool) -> list[tuple[str, int, int]]:
    """(split, shard number, start) of each shard not written, or not as recorded (checked by SHA-256)."""
    shards = [(split, k, start) for split, order in plan.items()
              for k, start in enumerate(range(0, len(order), options.shard_size))]
    missing = []
    with progress_bar(f"check {printable(out.name)}", total=len(shards), enabled=progress and bool(state["done"]),
                      transient=True) as bar:
        for split, k, start in shards:
            if not intact(out, state["done"].get(shard_name(split, k))):
                state["done"].pop(shard_name(split, k), None)
                missing.append((split, k, start))
            bar.advance()
    return missing


def _tasks(scan_splits: dict[str, FolderIndex], plan: dict[str, np.ndarray], options: Options,
           missing: list[tuple[str, int, int]]) -> Iterator[tuple[str, list[tuple[str, int, int]]]]:
    """(shard file, its (name, label, key) items) for each missing shard, made as they are needed."""
    for split, k, start in missing:
        index, chunk = scan_splits[split], plan[split][start:start + options.shard_size].tolist()
        yield shard_name(split, k), [(index.name(i), index.label(i), start + j) for j, i in enumerate(chunk)]


def _write_all(scan, tasks: Iterator, total: int, options: Options, state: dict, out: Path, workers: int,
               strict: bool, progress: bool, lock_fd: int) -> None:
    """Write the missing shards with a pool of processes, recording each as it lands."""
    with progress_bar(f"prepare {printable(out.name)}", total=total, enabled=progress) as bar, \
            ProcessPoolExecutor(max_workers=workers, initializer=worker_start,
                                initargs=(lock_fd, os.getpid())) as pool:
        running: dict = {}
        while True:
            for file, items in tasks:  # keep 2 shards per process in flight: a bounded plan in memory
                future = pool.submit(write_shard, scan.source, items, out / file, options, strict, os.getpid())
                running[future] = len(items)
                if len(running) >= 2 * workers:
                    break
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                record = future.result()  # a --strict error stops here, the shards written so far kept
                state["done"][record["file"]] = record
                bar.advance(running.pop(future))
            atomic_write_text(out / STATE, json.dumps(state))


def _assemble(scan, plan, options: Options, state: dict, out: Path, fingerprint: str, data: Path) -> dict:
    """The index of each split and the manifest, from the shards' records: written last."""
    manifest = {"format": FORMAT, "version": VERSION, "vggnet": __version__, "plan": fingerprint,
                "source": str(data.resolve()), "short_side": options.short_side, "quality": options.quality,
                "shard_size": options.shard_size, "seed": options.seed,
                "classes": next(iter(scan.splits.values())).classes, "splits": {}, "skipped": {}, "complete": True}
    for split, order in plan.items():
        index = scan.splits[split]
        names, labels, keys, shards = [], [], [], []
        for k, start in enumerate(range(0, len(order), options.shard_size)):
            record = state["done"][shard_name(split, k)]
            for j, i in enumerate(order[start:start + options.shard_size].tolist()):
                if index.name(i) not in record["skipped"]:
                    names.append(index.name(i))
                    labels.append(index.label(i))
                    keys.append(start + j)
            shards.append({key: record[key] for key in RECORD_KEYS})
            manifest["skipped"].update(record["skipped"])
        atomic_write_text(out / f"{split}-index.json", json.dumps({"names": names, "labels": labels, "keys": keys}))
        manifest["splits"][split] = {"images": len(names), "shards": shards}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    (out / STATE).unlink(missing_ok=True)
    return manifest


def prepare(data: str | os.PathLike[str], out: str | os.PathLike[str], options: Options = Options(), *,
            workers: int | None = None, progress: bool = True, strict: bool = False) -> dict:
    """Write ``data`` (a class-per-folder directory or archive) to ``out`` as shards; returns the
    manifest. Run again after an interruption, it writes only the shards still missing."""
    options.check()
    data, out = Path(data).expanduser(), Path(out).expanduser()
    if not data.exists():
        raise DataError(f"no such dataset folder or archive: {data}")
    if data.is_dir() and is_prepared(data):
        raise VggnetError(f"{data} is already prepared (or being prepared): train on it with --data {data}")
    check_out(out, data)
    scan = scan_folder(data, progress=progress)
    warn_ignored(scan.ignored, printable(data.name))  # as training would say: what the shards will not hold
    plan = _plan(scan.splits, options)
    fingerprint = _fingerprint(scan.splits, plan, options)
    out.mkdir(parents=True, exist_ok=True)
    with locked(out) as lock_fd:
        check_out(out, data)  # again: another pass may have begun while this one read the data
        state = read_state(out, fingerprint, options.__dict__)
        missing = _missing(scan.splits, plan, options, state, out, progress)
        if (out / MANIFEST).is_file() and not missing and not os.path.lexists(out / STATE):
            manifest = read_manifest(out)
            log.info("%s is already prepared from this data with these options", out)
        else:
            atomic_write_text(out / STATE, json.dumps(state))  # from here on, a rerun resumes
            for stale in out.glob(".*.tar.*.tmp"):  # from a pass that was killed mid-shard
                stale.unlink(missing_ok=True)
            workers = max(1, workers if workers is not None else usable_cores())
            total = sum(min(options.shard_size, len(plan[split]) - start) for split, _, start in missing)
            _write_all(scan, _tasks(scan.splits, plan, options, missing), total, options, state, out, workers,
                       strict, progress, lock_fd)
            manifest = _assemble(scan, plan, options, state, out, fingerprint, data)
    if manifest["skipped"]:
        name, why = next(iter(manifest["skipped"].items()))
        if strict:
            raise DataError(f"cannot decode {printable(name)} ({why}): it was left out of {out}; without --strict "
                            "it is skipped")
        log.warning("%d images cannot be decoded and were left out (first: %s, %s); --strict stops instead",
                    len(manifest["skipped"]), printable(name), why)
    return manifest
