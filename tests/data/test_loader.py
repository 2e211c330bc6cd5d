import torch

from vggnet.data.arrays import ImageArrays
from vggnet.data.loader import ArrayBatches


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
