"""Run the paper's test protocol, for one model or an ensemble, over a whole dataset split.

Dense and multi-crop evaluation need the whole image, not a pre-cut crop, so streamed images are
decoded and scored one at a time (their sizes differ); in-memory images (all one size) go in
batches. Each model brings its own normalisation from its checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from vggnet.data.arrays import ImageArrays
from vggnet.data.decode import decode_rgb
from vggnet.data.folders import FolderIndex, undecodable
from vggnet.data.shards import ShardSplit
from vggnet.data.transforms import centre_scale, eval_transform, seen_whole, to_uint8_chw
from vggnet.errors import VggnetError
from vggnet.evaluate.metrics import Accumulator, Predictions
from vggnet.evaluate.protocol import ensemble, paper_scales, protocol_fn
from vggnet.files import UnreadableFile
from vggnet.progress import progress_bar

MAX_SCALE = 2048
"""Largest test scale Q: four times the paper's largest (512), as vggnet.train.recipes.MAX_SCALE.
Dense evaluation at Q holds a 64 x Q^2 float map per image in VGG's first layer (1 GB at 2048)."""


def check_scales(scales: Sequence[int], crop: int | None = None) -> tuple[int, ...]:
    """``scales`` if each is a usable test scale Q: within [1, MAX_SCALE] pixels and, once the
    checkpoint is known, at least its crop size ``crop`` (its image_size); else one line."""
    for q in scales:
        if not 1 <= q <= MAX_SCALE:
            raise VggnetError(f"test scales are pixel sizes in [1, {MAX_SCALE}], got {q}")
        if crop and q < crop:
            raise VggnetError(f"test scale {q} is below the checkpoint's crop size {crop}: images are rescaled to Q, "
                              f"then cropped; use scales of {crop} or more")
    return tuple(scales)


def default_scales(meta: dict, protocol: str, in_memory: bool) -> tuple[int, ...]:
    """Q values: the network's own input size for images it sees whole (small ones, or any for a
    network that trained on small ones: :func:`~vggnet.data.transforms.seen_whole`); else Q
    (centre) or the paper's three."""
    if protocol == "center" or "scale" not in meta or seen_whole(meta, in_memory):
        return (centre_scale(meta, in_memory),)
    return paper_scales(tuple(meta["scale"]))


def _normalised(fn: Callable[[torch.Tensor], torch.Tensor], meta: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    transform = eval_transform(meta, in_memory=False)  # whole images: normalise, no resize
    return lambda x: fn(transform(x, train=False))


def _images(split: ImageArrays | FolderIndex, batch_size: int, skipped: list[str],
            strict: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Whole images with labels; an undecodable file is named in ``skipped`` (or, ``strict``, stops)."""
    if isinstance(split, ImageArrays):
        for start in range(0, len(split), batch_size):
            yield split.images[start : start + batch_size], split.labels[start : start + batch_size]
        return
    for data, label, name, where in _encoded(split):
        try:
            image = to_uint8_chw(decode_rgb(data()))[None]
        except UnreadableFile as err:
            if strict:
                raise undecodable(where, str(err)) from None
            skipped.append(name)
            continue
        yield image, torch.tensor([label])


def _encoded(split: FolderIndex | ShardSplit) -> Iterator[tuple[Callable[[], bytes], int, str, str]]:
    """Each image's bytes (read when called), label, name and where a user finds it."""
    if isinstance(split, ShardSplit):
        for data, position in split.images():
            yield (lambda d=data: d), int(split.label_array[position]), split.table[position], split.where(position)
        return
    for i in range(len(split)):
        name = split.name(i)
        yield (lambda n=name: split.source.read(n)), split.label(i), name, split.source.where(name)


@torch.no_grad()
def protocol_predictions(
    models: Sequence[tuple[torch.nn.Module, dict]],
    split: ImageArrays | FolderIndex,
    protocol: str,
    scales: Sequence[int],
    *,
    device: torch.device,
    batch_size: int = 64,
    progress: bool = True,
    strict: bool = False,
) -> Predictions:
    """Top-5 and loss of the (averaged) posteriors under ``protocol`` at ``scales``."""
    fns = []
    for _, meta in models:  # dense alone takes whole images: its network checks its own minimum
        check_scales(scales, meta["image_size"] if protocol != "dense" else None)
    for model, meta in models:
        model.to(device)
        fns.append(_normalised(protocol_fn(model, protocol, scales, meta["image_size"]), meta))
    posterior = ensemble(fns)
    scores, skipped = Accumulator(), []
    with progress_bar(f"evaluate ({protocol})", total=len(split), enabled=progress) as bar:
        for images, y in _images(split, batch_size, skipped, strict):
            bar.advance(len(y))
            scores.add_probs(posterior(images.to(device)).cpu(), y)
    return scores.result(len(skipped))
