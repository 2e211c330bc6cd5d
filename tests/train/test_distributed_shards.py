"""Two real gloo processes, each with two DataLoader workers, stream prepared shards.

Four streams (2 ranks x 2 workers) each read their own slice of the epoch's shard order. Each
image's colour encodes its number (spaced so JPEG's rounding cannot confuse two), so each rank
reports the images it was given, read from the batches themselves.

Run as a script (``torchrun ... test_distributed_shards.py SHARDS OUT``) this file is one rank.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from vggnet.data.datasets import load_data
from vggnet.data.loader import make_batches
from vggnet.data.prepare import Options, prepare
from vggnet.train.distributed import init_distributed, shutdown_distributed

CLASSES = {"ant": 20, "bee": 21, "cat": 22}  # 63 images in shards of 8: the last one short
N = sum(CLASSES.values())
WORLD, WORKERS, BATCH, SEED, CROP = 2, 2, 6, 5, 48
LOCAL = BATCH // WORLD
EPOCHS = (0, 1)


def colour(i: int) -> tuple[int, int, int]:
    return 16 * (i % 16) + 8, 16 * (i // 16) + 8, 128


def number_of(pixel: torch.Tensor) -> int:
    r, g = (int(v) for v in pixel[:2])
    return round((r - 8) / 16) + 16 * round((g - 8) / 16)


def numbered_shards(root: Path) -> dict[int, int]:
    labels, i = {}, 0
    for label, (name, count) in enumerate(sorted(CLASSES.items())):
        (root / "data" / name).mkdir(parents=True)
        for _ in range(count):
            Image.new("RGB", (80, 64), colour(i)).save(root / "data" / name / f"{i:03d}.jpg", quality=95)
            labels[i], i = label, i + 1
    prepare(root / "data", root / "shards", Options(short_side=64, shard_size=8), workers=1, progress=False)
    return labels


def rank_main(shards: Path, out: Path) -> None:
    torch.set_num_threads(1)
    info, cpu = init_distributed(torch.device("cpu"))
    pool = load_data(shards, whole=True, progress=False).val  # every image, in shard order
    record: dict = {}
    for train in (True, False):
        batches = make_batches(pool, BATCH, train=train, device=cpu, crop=CROP, scale=(64, 64), workers=WORKERS,
                               shard=(info.rank, info.world), seed=SEED, generator=torch.Generator().manual_seed(SEED))
        epochs = []
        for epoch in EPOCHS:
            batches.set_epoch(epoch)
            seen = [([number_of(x[:, 0, 0]) for x in images], labels.tolist()) for images, labels in batches]
            epochs.append({"len": len(batches), "batches": seen})
        record["train" if train else "eval"] = epochs
    torch.distributed.barrier()
    (out / f"rank{info.rank}.json").write_text(json.dumps(record))
    shutdown_distributed()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict[int, int]]:
    from tests.train.test_distributed import subprocess_env

    root = tmp_path_factory.mktemp("shards")
    labels = numbered_shards(root)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD),
           __file__, str(root / "shards"), str(root)]
    env = {**subprocess_env(), "VGGNET_HOME": str(root / "home"), "VGGNET_PROBE": "off"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((root / f"rank{r}.json").read_text()) for r in range(WORLD)], labels


def _images(epoch: dict, labels: dict[int, int]) -> list[int]:
    images = [i for batch, _ in epoch["batches"] for i in batch]
    assert [y for _, ys in epoch["batches"] for y in ys] == [labels[i] for i in images]  # colour and label agree
    return images


def test_training_streams_give_every_rank_equal_whole_batches_and_no_image_twice(ranks):
    records, labels = ranks
    batches = (N // WORLD) // LOCAL  # 10 whole batches per rank, dealt to its workers; 3 images wait
    orders = []
    for epoch in EPOCHS:
        seen = []
        for r in range(WORLD):
            record = records[r]["train"][epoch]
            assert record["len"] == len(record["batches"]) == batches  # the same on both ranks: no DDP hang
            assert all(len(b) == LOCAL for b, _ in record["batches"])
            seen.append(_images(record, labels))
        union = [i for images in seen for i in images]
        assert len(union) == len(set(union)) == WORLD * batches * LOCAL == 60
        orders.append(union)
    assert orders[0] != orders[1]  # set_epoch(1): another shard order and another shuffle


def test_evaluation_streams_see_every_image_with_padding_only_to_keep_ranks_in_step(ranks):
    records, labels = ranks
    for epoch in EPOCHS:
        counts = Counter()
        lengths = set()
        for r in range(WORLD):
            record = records[r]["eval"][epoch]
            assert record["len"] == len(record["batches"])
            lengths.add(record["len"])
            counts.update(_images(record, labels))
        assert len(lengths) == 1 and set(counts) == set(range(N))
        assert sum(counts.values()) - N == -N % (WORLD * WORKERS)  # 63 -> 4 x 16: one image repeated


if __name__ == "__main__":
    rank_main(Path(sys.argv[1]), Path(sys.argv[2]))
