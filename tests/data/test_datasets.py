import torch

from vggnet.data.arrays import ImageArrays
from vggnet.data.datasets import take_balanced
from vggnet.data.folders import FileSource, FolderIndex


def test_take_balanced_keeps_class_shares_and_is_fixed_by_the_seed():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    arrays = ImageArrays(torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 3, 2, 2).clone(),
                         labels, ["a", "b", "c"])
    sub = take_balanced(arrays, 20, seed=1)
    assert len(sub) == 20 and torch.bincount(sub.labels).tolist() == [12, 6, 2]
    assert torch.equal(take_balanced(arrays, 20, seed=1).images, sub.images)
    assert not torch.equal(take_balanced(arrays, 20, seed=2).images, sub.images)
    assert take_balanced(arrays, 0, seed=1) is arrays and take_balanced(arrays, 500, seed=1) is arrays
    entries = [(f"{i}.png", int(c)) for i, c in enumerate(labels)]
    index = FolderIndex(FileSource.__new__(FileSource), entries, ["a", "b", "c"])
    names = [n for n, _ in take_balanced(index, 20, seed=1).entries]
    assert names == [f"{i}.png" for i in sub.images[:, 0, 0, 0].tolist()]  # the same images either way
