import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vggnet.data.arrays import channel_mean_std, stratified_split
from vggnet.data.transforms import BatchTransform, RescaleCrop, pca_basis, pca_colour, random_crop, random_flip


@pytest.fixture
def batch():
    return torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_random_crop_is_a_window_of_the_zero_padded_image(batch):
    out = random_crop(batch, 2, torch.Generator().manual_seed(1))
    padded = F.pad(batch, (2, 2, 2, 2))
    offsets = set()
    for img, src in zip(out, padded, strict=True):
        windows = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(src[:, dy:dy + 8, dx:dx + 8], img)]
        assert windows
        offsets.add(windows[0])
    assert len(offsets) > 5  # offsets differ per image
    assert torch.equal(random_crop(batch, 0), batch)


def test_reflect_crop_is_a_window_of_the_reflect_padded_image(batch):
    out = random_crop(batch, 2, torch.Generator().manual_seed(1), mode="reflect")
    padded = F.pad(batch.float(), (2, 2, 2, 2), mode="reflect").to(torch.uint8)  # torch's reflect, as reference
    offsets = set()
    for img, src in zip(out, padded, strict=True):
        windows = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(src[:, dy:dy + 8, dx:dx + 8], img)]
        assert windows
        offsets.add(windows[0])
    assert len(offsets) > 5 and out.dtype == torch.uint8
    edge = random_crop(batch[:, :, :2, :2], 3, torch.Generator().manual_seed(0), mode="reflect")  # pad > side - 1
    assert edge.shape == (16, 3, 2, 2) and torch.isin(edge, batch[:, :, :2, :2]).all()


def test_random_flip_mirrors_about_half(batch):
    big = batch.repeat(64, 1, 1, 1)
    out = random_flip(big, torch.Generator().manual_seed(0))
    same = torch.tensor([torch.equal(a, b) for a, b in zip(out, big, strict=True)])
    mirrored = torch.tensor([torch.equal(a, b.flip(2)) for a, b in zip(out, big, strict=True)])
    assert bool((same | mirrored).all()) and 0.4 < mirrored.float().mean() < 0.6


def test_pca_basis_and_colour_shift_follow_alexnet():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=g)
    eigval, eigvec = pca_basis(images)
    cov = torch.cov(images.permute(0, 2, 3, 1).reshape(-1, 3).double().T / 255).float()
    torch.testing.assert_close(cov @ eigvec, eigvec * eigval, atol=1e-5, rtol=1e-4)
    x = torch.zeros(4, 3, 2, 2)
    shifted = pca_colour(x, eigval, eigvec, 0.1, torch.Generator().manual_seed(5))
    alpha = torch.randn(4, 3, generator=torch.Generator().manual_seed(5)) * 0.1
    expected = (eigvec @ (alpha * eigval).T).T  # sum_i alpha_i lambda_i p_i
    torch.testing.assert_close(shifted[:, :, 1, 1], expected)


def test_channel_mean_std_matches_torch(batch):
    mean, std = channel_mean_std(batch, chunk=5)
    x = batch.double() / 255
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), x.mean(dim=(0, 2, 3)))
    per_channel = x.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), per_channel.std(1, correction=0))


def test_batch_transform_subtracts_the_mean_only_by_default(batch):
    t = BatchTransform(mean=(0.5, 0.25, 0.0), flip=False)
    out = t(batch, train=True)
    torch.testing.assert_close(out, batch.float() / 255 - torch.tensor([0.5, 0.25, 0.0]).view(1, 3, 1, 1))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert BatchTransform(mean=(0, 0, 0), size=24)(batch, train=False).shape == (16, 3, 24, 24)


@pytest.mark.parametrize(("size", "scale", "random"), [((500, 375), 256, False), ((375, 500), (256, 512), True)])
def test_rescale_crop_is_isotropic(size, scale, random):
    img = Image.new("RGB", size, (10, 20, 30))
    torch.manual_seed(0)
    out = RescaleCrop(scale, 224, random=random)(img)
    assert out.shape == (3, 224, 224) and out.dtype == torch.uint8
    assert out[:, 0, 0].tolist() == [10, 20, 30]


def test_stratified_split_is_exact_and_seeded():
    labels = torch.arange(10).repeat_interleave(5000)
    train, val = stratified_split(labels, 0.1, seed=0)
    assert (len(train), len(val)) == (45_000, 5_000)
    assert torch.bincount(labels[val]).tolist() == [500] * 10
    assert torch.equal(val, stratified_split(labels, 0.1, seed=0)[1])
    assert not torch.equal(val, stratified_split(labels, 0.1, seed=1)[1])
    assert set(train.tolist()).isdisjoint(val.tolist())
