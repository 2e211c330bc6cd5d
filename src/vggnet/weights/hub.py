"""Published weight files: where they live, how they are checked, where they are cached.

torchvision's file names end in the first 8 hex digits of the file's sha256 (``vgg16-397923af.pth``);
the download is refused unless the digest starts with them, as torchvision's own loader does.
Keras publishes an md5 per file (in ``keras.applications.vgg16``), checked the same way.

The weights vggnet trained itself (``vgg_fast.cifar10``, ``vgg11_bn.cifar10``) ship inside the
package, in ``vggnet/weights/shipped/``, each with its model card: no download, the same sha256
and size checks before use, and the file is a vggnet checkpoint (network, classes, normalisation
and the names of the images its run held out in its metadata), so ``evaluate``, ``predict`` and
``create_model(weights=NAME)`` use it offline.

Each file also carries its size in bytes, so that a download stops at that size (and refuses a
server announcing another): the exact size where it is on record (the byte counts torch's and
Keras's own downloaders print, and ``wget``'s Content-Length), else an upper bound, 4 bytes per
float32 value of the state dict (parameters and batch-norm statistics) plus 1 MiB for the pickle
(the torchvision files on record are 4 to 13 kB over their tensor bytes).
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
    source: str  # a key of PREPROCESSING, or 'vggnet': the file's metadata says how to feed it
    size: int  # bytes: the file's exact size, or an upper bound where size_exact is False
    size_exact: bool = True
    file: str = ""  # a packaged file's name in SHIPPED (it has no URL)

    @property
    def filename(self) -> str:
        return self.file or self.url.rsplit("/", 1)[-1]

    @property
    def packaged(self) -> bool:
        return bool(self.file)

    @property
    def card(self) -> Path | None:
        """The model card of a packaged file (how it was trained, what it scored), beside it."""
        return SHIPPED / f"{self.name}.md" if self.packaged else None


SHIPPED = Path(__file__).parent / "shipped"
"""The package folder of the weights vggnet trained (package data: installed with vggnet)."""


PICKLE_ALLOWANCE = 1 << 20
"""Bytes allowed over the tensor bytes of a torchvision file whose exact size is not on record."""


def _torchvision(model: str, filename: str, size: int | None = None, values: int = 0) -> WeightFile:
    """``size``: the exact bytes; without it, a bound from ``values``, the float32 numbers in the state dict."""
    prefix = filename.rsplit("-", 1)[-1].split(".")[0]
    return WeightFile(f"{model}.torchvision", model, TORCHVISION + filename, prefix, "sha256", "torchvision",
                      size if size is not None else 4 * values + PICKLE_ALLOWANCE, size is not None)


def _keras(model: str, top: bool, md5: str, size: int) -> WeightFile:
    filename = f"{model}_weights_tf_dim_ordering_tf_kernels{'' if top else '_notop'}.h5"
    name = f"{model}.keras" + ("" if top else "-notop")
    return WeightFile(name, model, f"{KERAS}{model}/{filename}", md5, "md5", "keras", size)


def _shipped(name: str, model: str, file: str, sha256: str, size: int) -> WeightFile:
    return WeightFile(name, model, "", sha256, "sha256", "vggnet", size, file=file)


SHIPPED_WEIGHTS: tuple[WeightFile, ...] = (
    # vgg_fast trained with cifar-fast on all 50,000 CIFAR-10 training images (model card beside it)
    _shipped("vgg_fast.cifar10", "vgg_fast", "vgg_fast-cifar10.safetensors",
             "acdbd8015509e9d471d6a0ba25ce932996d6b76f4e73d974cd75aa7191ad3c9b", 3_954_408),
    # vgg11_bn (linear head) trained with cifar on 45,000 CIFAR-10 training images, 5,000 held out
    _shipped("vgg11_bn.cifar10", "vgg11_bn", "vgg11_bn-cifar10.safetensors",
             "648e780ea5b903c428510aa4a9d5faf82deed63d97d4e17822b4c4ecb5490592", 18_579_556),
)

KNOWN_WEIGHTS: dict[str, WeightFile] = {
    w.name: w
    for w in (
        # Bounds: parameters (torchvision's num_params) plus the batch-norm running mean and variance.
        _torchvision("vgg11", "vgg11-8a719046.pth", values=132_863_336),
        _torchvision("vgg13", "vgg13-19584684.pth", values=133_047_848),
        _torchvision("vgg16", "vgg16-397923af.pth", 553_433_881),
        _torchvision("vgg19", "vgg19-dcbb9e9d.pth", 574_673_361),
        _torchvision("vgg11_bn", "vgg11_bn-6002323d.pth", values=132_868_840 + 2 * 2_752),
        _torchvision("vgg13_bn", "vgg13_bn-abd245e5.pth", values=133_053_736 + 2 * 2_944),
        _torchvision("vgg16_bn", "vgg16_bn-6c64b313.pth", 553_507_836),
        _torchvision("vgg19_bn", "vgg19_bn-c79401a0.pth", 574_769_405),
        _keras("vgg16", True, "64373286793e3c8b2b4e3219cbf3544b", 553_467_096),
        _keras("vgg16", False, "6d6bbae143d832006294945121d1f1fc", 58_889_256),
        _keras("vgg19", True, "cbe5617147190e668d6c5d5026f83318", 574_710_816),
        _keras("vgg19", False, "253f8cb515780f3b799900260a226db6", 80_134_624),
        *SHIPPED_WEIGHTS,
    )
}


def weight_file(name: str) -> WeightFile:
    """A known weight file by name (``vgg16.keras``) or by bare model name (``vgg16``: torchvision's)."""
    found = KNOWN_WEIGHTS.get(name) or KNOWN_WEIGHTS.get(f"{name}.torchvision")
    if found is None:
        raise VggnetError(f"unknown weights {name!r}; known: {', '.join(KNOWN_WEIGHTS)}")
    return found


def cached_path(w: WeightFile) -> Path:
    """Where the file is read from: the package for a packaged file, else the download cache."""
    return SHIPPED / w.filename if w.packaged else cache_dir("weights") / w.filename


def _check_packaged(w: WeightFile) -> Path:
    """A packaged file, checked as a download is (size, then sha256) before anything reads it."""
    from vggnet.data.download import file_digest

    path = cached_path(w)
    if not path.is_file():
        raise DownloadError(f"{w.name}: {path} is missing from this install of vggnet; reinstall vggnet")
    if path.stat().st_size != w.size or file_digest(path, "sha256") != w.checksum:
        raise DownloadError(f"{w.name}: {path} is damaged (its size or sha256 differs from the record); "
                            "reinstall vggnet")
    return path


def fetch_weights(name: str, *, url: str | None = None, progress: bool = True) -> Path:
    """The cached file for ``name``, downloaded (resumable, hash-checked, size-bounded) if it is not there yet.

    From the official URL the recorded exact size is required; from another ``url`` (a mirror) it
    is only the bound, since the checksum is what proves the file."""
    w = weight_file(name)
    if w.packaged:  # inside the package: nothing to download, only to check
        if url is not None:
            raise VggnetError(f"{w.name} ships inside vggnet; it has no download (drop --url)")
        return _check_packaged(w)
    exact = w.size if w.size_exact and url is None else None
    try:
        return download(url or w.url, cached_path(w), progress=progress, size=exact, max_size=w.size,
                        **{w.hash_name: w.checksum})
    except DownloadError as err:
        if "cannot download" in str(err):  # no connection at all: say what to do offline
            raise DownloadError(
                f"{err}; offline? put {w.filename} in {cached_path(w).parent} or pass the file's path"
            ) from None
        raise


def list_weights() -> list[dict[str, object]]:
    """Every known file with whether it is in the cache."""
    return [{"name": w.name, "model": w.model, "source": w.source, "url": w.url or "(inside the vggnet package)",
             "cached": cached_path(w).exists(), "card": str(w.card) if w.card else None}
            for w in KNOWN_WEIGHTS.values()]
