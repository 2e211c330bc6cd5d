"""Published weight files: where they live, how they are checked, where they are cached.

torchvision's file names end in the first 8 hex digits of the file's sha256 (``vgg16-397923af.pth``);
the download is refused unless the digest starts with them, as torchvision's own loader does.
Keras publishes an md5 per file (in ``keras.applications.vgg16``), checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vggnet.cache import cache_dir
from vggnet.data.download import download
from vggnet.errors import DownloadError, VggnetError

TORCHVISION = "https://download.pytorch.org/models/"
KERAS = "https://storage.googleapis.com/tensorflow/keras-applications/"

PREPROCESSING: dict[str, dict[str, object]] = {
    # torchvision: RGB in [0, 1], ImageNet mean and std per channel.
    "torchvision": {"channels": "RGB", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    # Keras / Caffe: BGR in [0, 255] minus the mean pixel (103.939, 116.779, 123.68 in BGR order),
    # written on vggnet's [0, 1] scale: (x/255 - m/255) / (1/255) = x - m.
    "keras": {"channels": "BGR", "mean": [103.939 / 255, 116.779 / 255, 123.68 / 255], "std": [1 / 255] * 3},
}
"""How each source's weights expect their input, as checkpoint metadata (see ``eval_transform``).
Resize and crop are the paper's for every source: smaller side to 256, centre 224."""


@dataclass(frozen=True)
class WeightFile:
    """One published file: the model it fits, its URL, its digest, its preprocessing."""

    name: str
    model: str
    url: str
    checksum: str  # hex digest, or a prefix of at least 8 digits
    hash_name: str  # 'sha256' or 'md5'
    source: str  # a key of PREPROCESSING

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def _torchvision(model: str, filename: str) -> WeightFile:
    prefix = filename.rsplit("-", 1)[-1].split(".")[0]
    return WeightFile(f"{model}.torchvision", model, TORCHVISION + filename, prefix, "sha256", "torchvision")


def _keras(model: str, top: bool, md5: str) -> WeightFile:
    filename = f"{model}_weights_tf_dim_ordering_tf_kernels{'' if top else '_notop'}.h5"
    name = f"{model}.keras" + ("" if top else "-notop")
    return WeightFile(name, model, f"{KERAS}{model}/{filename}", md5, "md5", "keras")


KNOWN_WEIGHTS: dict[str, WeightFile] = {
    w.name: w
    for w in (
        _torchvision("vgg11", "vgg11-8a719046.pth"),
        _torchvision("vgg13", "vgg13-19584684.pth"),
        _torchvision("vgg16", "vgg16-397923af.pth"),
        _torchvision("vgg19", "vgg19-dcbb9e9d.pth"),
        _torchvision("vgg11_bn", "vgg11_bn-6002323d.pth"),
        _torchvision("vgg13_bn", "vgg13_bn-abd245e5.pth"),
        _torchvision("vgg16_bn", "vgg16_bn-6c64b313.pth"),
        _torchvision("vgg19_bn", "vgg19_bn-c79401a0.pth"),
        _keras("vgg16", True, "64373286793e3c8b2b4e3219cbf3544b"),
        _keras("vgg16", False, "6d6bbae143d832006294945121d1f1fc"),
        _keras("vgg19", True, "cbe5617147190e668d6c5d5026f83318"),
        _keras("vgg19", False, "253f8cb515780f3b799900260a226db6"),
    )
}


def weight_file(name: str) -> WeightFile:
    """A known weight file by name (``vgg16.keras``) or by bare model name (``vgg16``: torchvision's)."""
    found = KNOWN_WEIGHTS.get(name) or KNOWN_WEIGHTS.get(f"{name}.torchvision")
    if found is None:
        raise VggnetError(f"unknown weights {name!r}; known: {', '.join(KNOWN_WEIGHTS)}")
    return found


def cached_path(w: WeightFile) -> Path:
    return cache_dir("weights") / w.filename


def fetch_weights(name: str, *, url: str | None = None, progress: bool = True) -> Path:
    """The cached file for ``name``, downloaded (resumable, hash-checked) if it is not there yet."""
    w = weight_file(name)
    try:
        return download(url or w.url, cached_path(w), progress=progress, **{w.hash_name: w.checksum})
    except DownloadError as err:
        if "cannot download" in str(err):  # no connection at all: say what to do offline
            raise DownloadError(
                f"{err}; offline? put {w.filename} in {cached_path(w).parent} or pass the file's path"
            ) from None
        raise


def list_weights() -> list[dict[str, object]]:
    """Every known file with whether it is in the cache."""
    return [{"name": w.name, "model": w.model, "source": w.source, "url": w.url,
             "cached": cached_path(w).exists()} for w in KNOWN_WEIGHTS.values()]
