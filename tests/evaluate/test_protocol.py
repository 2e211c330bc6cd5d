import pytest
import torch

from vggnet.errors import VggnetError
from vggnet.evaluate import protocol as P
from vggnet.models import create_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("vgg11", num_classes=7, dropout=0.0).eval()


def test_paper_scales():
    assert P.paper_scales(256) == (224, 256, 288) and P.paper_scales(384) == (352, 384, 416)
    assert P.paper_scales((256, 512)) == (256, 384, 512)


def test_dense_at_224_without_flip_equals_the_centre_crop(model):
    x = torch.randn(2, 3, 224, 224)
    fc = P.to_fully_convolutional(model).eval()
    dense = P.dense_probs(fc, x, [224], flip=False)
    with torch.no_grad():
        direct = model(x).softmax(1)
    torch.testing.assert_close(dense, direct, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(P.center_probs(model, x, 224, 224), direct, atol=1e-5, rtol=1e-4)


def test_multi_crop_takes_150_crops_over_three_scales(model):
    seen = []

    class Counting(torch.nn.Module):  # records what it is shown; the scores do not matter here
        def forward(self, x):
            seen.append(tuple(x.shape))
            return torch.zeros(x.shape[0], 7)

    x = torch.randn(1, 3, 256, 300)
    probs = P.multicrop_probs(Counting(), x, P.paper_scales(256), crop=224, chunk=1000)
    assert sum(s[0] for s in seen) == 150 and all(s[1:] == (3, 224, 224) for s in seen)
    torch.testing.assert_close(probs, torch.full((1, 7), 1 / 7))


def test_crop_grid_corners_and_centre():
    x = torch.arange(10 * 12, dtype=torch.float).view(1, 1, 10, 12).expand(2, 1, 10, 12)
    crops = P.crop_grid(x, 4, grid=5)
    assert crops.shape == (50, 1, 4, 4)
    assert torch.equal(crops[0], x[0, :, :4, :4]) and torch.equal(crops[24], x[0, :, 6:, 8:])
    assert torch.equal(crops[25], x[1, :, :4, :4])  # image-major order


def test_ensemble_of_one_equals_the_model_and_of_two_averages(model):
    x = torch.randn(2, 3, 224, 224)
    one = P.protocol_fn(model, "center", [256], 224)
    torch.testing.assert_close(P.ensemble([one])(x), one(x))
    torch.manual_seed(1)
    other = P.protocol_fn(create_model("vgg11", num_classes=7).eval(), "center", [256], 224)
    torch.testing.assert_close(P.ensemble([one, other])(x), (one(x) + other(x)) / 2)


def test_fusion_is_the_mean_of_dense_and_multi_crop():
    small = create_model("vgg11", num_classes=7, head="small", dropout=0.0).eval()  # 32x32 crops
    x = torch.randn(1, 3, 40, 48)
    fused = P.protocol_fn(small, "dense+multi-crop", [40, 64], 32)(x)
    dense = P.protocol_fn(small, "dense", [40, 64], 32)(x)
    crops = P.protocol_fn(small, "multi-crop", [40, 64], 32)(x)
    torch.testing.assert_close(fused, (dense + crops) / 2)


def test_rescale_is_isotropic_and_bad_protocols_are_refused(model):
    assert P.rescale(torch.zeros(1, 3, 300, 400), 256).shape[-2:] == (256, 341)
    assert P.rescale(torch.zeros(1, 3, 400, 300), 256).shape[-2:] == (341, 256)
    with pytest.raises(VggnetError, match="unknown protocol 'tencrop'"):
        P.protocol_fn(model, "tencrop", [256], 224)
    with pytest.raises(VggnetError, match="cannot take 224x224 crops from 100x100"):
        P.crop_grid(torch.zeros(1, 3, 100, 100), 224)
