"""Published weight files: where they live, how they are checked, where they are cached.

torchvision's file names end in the first 8 hex digits of the file's sha256 (``vgg16-397923af.pth``);
the download is refused unless the digest starts with them, as torchvision's own loader does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vggnet.cache import cache_dir
from vggnet.data.download import download
from vggnet.errors import DownloadError, VggnetError

TORCHVISION = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class WeightFile:
    """One published file: the model it fits, its URL, its sha256 (or prefix), its preprocessing."""

    name: str
    model: str
    url: str
    sha256: str
    source: str  # 'torchvision' (RGB, mean/std on [0, 1]) or 'keras' (BGR, Caffe mean subtraction)

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def _torchvision(model: str, filename: str) -> WeightFile:
    prefix = filename.rsplit("-", 1)[-1].split(".")[0]
    return WeightFile(f"{model}.torchvision", model, TORCHVISION + filename, prefix, "torchvision")


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
    )
}


def weight_file(name: str) -> WeightFile:
    """A known weight file by name (``vgg16.torchvision``) or by bare model name (``vgg16``)."""
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
        return download(url or w.url, cached_path(w), sha256=w.sha256, progress=progress)
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
