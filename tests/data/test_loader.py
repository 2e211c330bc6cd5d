from pathlib import Path

import torch
from PIL import Image

from vggnet.data.arrays import ImageArrays
from vggnet.data.folders import FolderIndex, scan_folder
from vggnet.data.loader import ArrayBatches, StreamedBatches, make_batches


def _arrays(n: int = 64) -> ImageArrays:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=g)
    images[:, :, :, 0] = 0  # the left column is black, so a mirrored image has its black column on the right
    images[:, 0, 0, 1] = torch.arange(n, dtype=torch.uint8)  # an id that survives the mirror (col 1 <-> col 2)
    return ImageArrays(images, torch.arange(n) % 10, [str(i) for i in range(10)])


def _flips(batches: ArrayBatches, epoch: int) -> torch.Tensor:
    batches.set_epoch(epoch)
    state = torch.full((len(batches.labels),), -1)
    for images, _ in batches:
        mirrored = images[:, :, :, -1].flatten(1).eq(0).all(1)
        ids = torch.where(mirrored, images[:, 0, 0, 2], images[:, 0, 0, 1]).long()
        state[ids] = mirrored.long()
    return state


def test_alternate_flip_shows_every_image_both_ways_in_two_epochs():
    batches = ArrayBatches(_arrays(), 16, shuffle=True, drop_last=False, generator=torch.Generator().manual_seed(1),
                           device=torch.device("cpu"), alternate_flip=True, flip_seed=3)
    first, second, third = (_flips(batches, e) for e in (1, 2, 3))
    assert (first >= 0).all() and 16 <= int(first.sum()) <= 48  # a random half, every image seen
    assert torch.equal(second, 1 - first) and torch.equal(third, first)


def test_without_alternate_flip_images_are_as_stored():
    arrays = _arrays()
    batches = ArrayBatches(arrays, 16, shuffle=False, drop_last=False, generator=None, device=torch.device("cpu"))
    assert torch.equal(torch.cat([b for b, _ in batches]), arrays.images)


def _position_images(root: Path, per_class: int = 8) -> FolderIndex:
    """Streamed-size PNGs (lossless) whose pixels say where a crop was cut: R = image, G = column, B = row."""
    for c, name in enumerate("ab"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = Image.new("RGB", (80, 96))
            img.putdata([(i + per_class * c, x, y) for y in range(96) for x in range(80)])
            img.save(root / name / f"{i}.png")
    return scan_folder(root).splits["all"]


def _rank_batches(split: FolderIndex, rank: int, workers: int = 0) -> StreamedBatches:
    batches = make_batches(split, 4, train=True, device=torch.device("cpu"), crop=64, scale=(80, 80), workers=workers,
                           shard=(rank, 2), seed=5, generator=torch.Generator().manual_seed(5))
    batches.set_epoch(0)
    return batches


def test_ranks_draw_their_own_crops(tmp_path):
    """Both ranks start from one seed; the workers' crops must still differ (one generator would cut
    every rank's k-th image at the same place)."""
    split = _position_images(tmp_path / "d")
    cuts = [[(int(x[1, 0, 0]), int(x[2, 0, 0])) for images, _ in _rank_batches(split, r, workers=1) for x in images]
            for r in (0, 1)]
    assert len(cuts[0]) == len(cuts[1]) == 8 and sum(a == b for a, b in zip(*cuts, strict=True)) < 4


def test_an_undecodable_file_in_distributed_training_is_replaced_not_dropped(tmp_path):
    """A rank that yielded fewer or smaller batches would leave the others waiting in the all-reduce."""
    split = _position_images(tmp_path / "d")
    for k in list(_rank_batches(split, 0).sampler)[:2]:  # rank 0's whole first local batch
        (tmp_path / "d" / split.name(k)).write_bytes(b"not an image")
    for rank in (0, 1):
        batches = _rank_batches(split, rank)
        sizes = [len(labels) for _, labels in batches]
        assert sizes == [2] * len(batches) == [2, 2, 2, 2]
        assert len(batches.skipped) == (2 if rank == 0 else 0)
    single = make_batches(split, 4, train=True, device=torch.device("cpu"), crop=64, scale=(80, 80), workers=0)
    assert sum(len(labels) for _, labels in single) == 14 and len(single.skipped) == 2  # one process: dropped
