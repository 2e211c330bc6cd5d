"""Two real gloo processes stream a class-per-folder dataset through vggnet's loader.

The single-process tests build both shards in one process; here each rank is its own process
(started by ``torchrun``, joined by vggnet's :func:`init_distributed`) with a DataLoader worker of
its own, so what is checked is what a two-process run actually feeds its ranks. Every image's
pixels encode its number (R = i % 256, G = i // 256, B = 200, lossless PNG), so each rank reports
the images it was given, read from the batches themselves, not from the sampler.

Run as a script (``torchrun ... test_distributed_stream.py DATA OUT``) this file is one rank.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from vggnet.data.folders import SMALL_SIDE, scan_folder, survey_sizes
from vggnet.data.loader import make_batches
from vggnet.train.distributed import init_distributed, shutdown_distributed

CLASSES = {"ant": 16, "bee": 17, "cat": 18}  # 51 images: divides by neither the world (2) nor the batch (8)
N = sum(CLASSES.values())
WORLD, BATCH, SEED, CROP, SCALE = 2, 8, 5, 64, 80
LOCAL = BATCH // WORLD
BLUE = 200
EPOCHS = (0, 1)


def numbered_folders(root: Path) -> dict[int, int]:
    """root/<class>/<i>.png, 80 wide and 96 high (streamed, not held in memory) in one colour that
    encodes i; returns image number -> label."""
    labels, i = {}, 0
    for label, (name, count) in enumerate(sorted(CLASSES.items())):
        (root / name).mkdir(parents=True)
        for _ in range(count):
            buf = io.BytesIO()
            Image.new("RGB", (80, 96), (i % 256, i // 256, BLUE)).save(buf, format="PNG")
            (root / name / f"{i:03d}.png").write_bytes(buf.getvalue())
            labels[i], i = label, i + 1
    return labels


def read_batches(batches, epoch: int) -> dict:
    """One epoch as this rank saw it: the sampler's indices, and per batch the image numbers read
    from the pixels, the labels, and whether each crop is one colour of the expected shape."""
    batches.set_epoch(epoch)
    seen = {"len": len(batches), "sampler": list(batches.sampler), "images": [], "labels": [], "intact": True}
    for images, labels in batches:
        flat = images.flatten(2).long()  # N, 3, H*W
        first = flat[:, :, :1]
        seen["intact"] &= images.shape[1:] == (3, CROP, CROP) and bool((flat == first).all())
        seen["intact"] &= bool((first[:, 2] == BLUE).all())
        seen["images"].append((first[:, 0, 0] + 256 * first[:, 1, 0]).tolist())
        seen["labels"].append(labels.tolist())
    return seen


def rank_main(data: Path, out: Path) -> None:
    """One rank: join the gloo group, read two epochs of training and of evaluation batches."""
    torch.set_num_threads(1)
    info, cpu = init_distributed(torch.device("cpu"))
    assert torch.distributed.get_backend() == "gloo" and info.world == WORLD
    split = scan_folder(data).splits["all"]
    record = {}
    for train in (True, False):
        batches = make_batches(split, BATCH, train=train, device=cpu, crop=CROP, scale=(SCALE, SCALE), workers=1,
                               shard=(info.rank, info.world), seed=SEED, generator=torch.Generator().manual_seed(SEED))
        record["train" if train else "eval"] = [read_batches(batches, epoch) for epoch in EPOCHS]
    torch.distributed.barrier()  # both ranks finished their epochs before either leaves the group
    (out / f"rank{info.rank}.json").write_text(json.dumps(record))
    shutdown_distributed()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict[int, int], list[int]]:
    """Both ranks' records, image number -> label, and dataset index -> image number (the
    samplers count in the split's entries, the pixels in image numbers)."""
    from tests.train.test_distributed import subprocess_env

    root = tmp_path_factory.mktemp("stream")
    labels = numbered_folders(root / "data")
    split = scan_folder(root / "data").splits["all"]
    assert survey_sizes(split).median_side > SMALL_SIDE  # training would stream this set, as it is streamed here
    number = [int(Path(name).stem) for name, _ in split.entries]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD),
           __file__, str(root / "data"), str(root)]
    env = {**subprocess_env(), "VGGNET_HOME": str(root / "home"), "VGGNET_PROBE": "off"}  # module scope: set here
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((root / f"rank{r}.json").read_text()) for r in range(WORLD)], labels, number


def check_batches(seen: dict, number: list[int], labels: dict[int, int], batches: int, last: int) -> list[int]:
    """What holds on one rank in any epoch: ``batches`` batches, all of LOCAL images but the
    ``last``, each image whole and correctly labelled, delivered in the sampler's order. Returns
    the image numbers in the order seen."""
    assert seen["intact"]
    assert seen["len"] == len(seen["images"]) == batches
    assert [len(b) for b in seen["images"]] == [LOCAL] * (batches - 1) + [last]
    images = [i for batch in seen["images"] for i in batch]
    assert images == [number[k] for k in seen["sampler"][: len(images)]]
    assert [y for batch in seen["labels"] for y in batch] == [labels[i] for i in images]
    return images


def test_training_ranks_see_disjoint_images_and_drop_only_the_remainder(ranks):
    """Per epoch, no image twice on either rank or across them; both ranks take the same number
    of full batches (a rank with one batch more would hang DDP's all-reduce); what is left out is
    the sampler's drop_last remainder (N % WORLD) plus each rank's partial batch, nothing else."""
    records, labels, number = ranks
    per_rank = N // WORLD  # the DistributedSampler drops the tail so every rank gets as many
    full = per_rank // LOCAL
    orders = []
    for epoch in EPOCHS:
        seen = [check_batches(records[r]["train"][epoch], number, labels, full, LOCAL) for r in range(WORLD)]
        union = [i for images in seen for i in images]
        assert len(set(union)) == len(union) == WORLD * full * LOCAL == 48  # 51 -> 50 -> 2 x 24
        for r in range(WORLD):
            assert len(records[r]["train"][epoch]["sampler"]) == per_rank
            assert len(set(records[r]["train"][epoch]["sampler"])) == per_rank
        for k in range(full):  # the two shares of global batch k are BATCH distinct images
            assert len({i for r in range(WORLD) for i in records[r]["train"][epoch]["images"][k]}) == BATCH
        orders.append(seen)
    assert all(a != b for a, b in zip(*orders, strict=True))  # set_epoch(1) reshuffled every rank's share


def test_evaluation_ranks_see_every_image_with_only_the_samplers_padding_twice(ranks):
    """Together the ranks see every image; the only duplicates are the images the
    DistributedSampler repeats so both ranks get as many (here the first of the split, once)."""
    records, labels, number = ranks
    per_rank = -(-N // WORLD)
    pad = per_rank * WORLD - N
    full, last = divmod(per_rank, LOCAL)
    batches = full + (last > 0)
    orders = []
    for epoch in EPOCHS:
        seen = [check_batches(records[r]["eval"][epoch], number, labels, batches, last or LOCAL)
                for r in range(WORLD)]
        assert Counter(i for images in seen for i in images) == Counter(number) + Counter(number[:pad])
        padded = list(range(N)) + list(range(pad))  # in order: evaluation does not shuffle
        for r in range(WORLD):
            assert records[r]["eval"][epoch]["sampler"] == padded[r::WORLD]
        orders.append(seen)
    assert pad == 1 and orders[0] == orders[1]  # set_epoch changes nothing without shuffling


if __name__ == "__main__":
    rank_main(Path(sys.argv[1]), Path(sys.argv[2]))
