"""Run a model over a split and score it: top-1, top-5, loss, per-class report, confusion matrix.

The loop keeps only labels, the top-5 predictions and the summed loss on the host, so scoring
ImageNet's 50,000 validation images costs a few MB. Per-class precision, recall and F1 come from
scikit-learn's ``classification_report``; the confusion matrix is one ``bincount``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vggnet.device import autocast
from vggnet.errors import MissingDependencyError


@dataclass
class Predictions:
    """What evaluation keeps: true labels, top-k predicted labels (best first), summed loss."""

    labels: torch.Tensor  # (N,)
    topk: torch.Tensor  # (N, k)
    loss_sum: float
    skipped: int = 0  # images that could not be decoded

    def __len__(self) -> int:
        return len(self.labels)

    def accuracy(self, k: int) -> float:
        hits = (self.topk[:, :k] == self.labels[:, None]).any(dim=1)
        return hits.float().mean().item() if len(hits) else 0.0

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, len(self))


class Accumulator:
    """Labels, top-k predictions and summed loss gathered batch by batch: the one place every
    evaluation path (the training loop's validation, the paper's protocols, ensembles) turns
    network outputs into :class:`Predictions`."""

    def __init__(self, k: int = 5) -> None:
        self.k = k
        self.labels: list[torch.Tensor] = []
        self.topk: list[torch.Tensor] = []
        self.loss_sum: torch.Tensor | float = 0.0

    def add_logits(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """A batch of logits (the loss is cross-entropy, summed on the logits' device)."""
        logits = logits.float()
        self.loss_sum = self.loss_sum + F.cross_entropy(logits, labels, reduction="sum")
        self._add(logits, labels)

    def add_probs(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        """A batch of (averaged) posteriors: the loss is their negative log-likelihood."""
        self.loss_sum = self.loss_sum - probs.gather(1, labels[:, None]).clamp_min(1e-12).log().sum()
        self._add(probs, labels)

    def _add(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        self.labels.append(labels.cpu())
        self.topk.append(scores.topk(min(self.k, scores.shape[1]), dim=1).indices.cpu())

    def result(self, skipped: int = 0) -> Predictions:
        if not self.labels:
            empty = torch.empty(0, dtype=torch.int64)
            return Predictions(empty, torch.empty(0, self.k, dtype=torch.int64), 0.0, skipped)
        return Predictions(torch.cat(self.labels), torch.cat(self.topk), float(self.loss_sum), skipped)


@torch.no_grad()
def predict(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    transform: Callable[[torch.Tensor], torch.Tensor],
    *,
    dtype: torch.dtype | None = None,
    k: int = 5,
) -> Predictions:
    """Evaluate ``model`` (put in eval mode) on uint8 batches prepared by ``transform``; files the
    batches dropped as undecodable (their ``skipped``) are counted."""
    model.eval()
    scores = Accumulator(k)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))  # an ONNX model has none
    for images, y in batches:
        images, y = images.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device.type, dtype):
            scores.add_logits(model(transform(images)), y)
    return scores.result(len(getattr(batches, "skipped", ())))  # undecodable files the loader dropped


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``cm[t, p]``: how many images of true class t were predicted as p."""
    return torch.bincount(labels * num_classes + predicted, minlength=num_classes**2).view(num_classes, num_classes)


def normalise_rows(cm: torch.Tensor) -> torch.Tensor:
    """Each true class's row divided by its count: the diagonal is per-class recall."""
    return cm.double() / cm.sum(dim=1, keepdim=True).clamp_min(1)


def classification_report(labels: torch.Tensor, predicted: torch.Tensor, classes: list[str]) -> dict[str, dict]:
    """Per-class precision, recall, F1 and support (scikit-learn), keyed by class name."""
    try:
        from sklearn.metrics import classification_report as sk_report
    except ImportError:
        raise MissingDependencyError("per-class reports need scikit-learn: pip install 'vggnet[report]'") from None
    report = sk_report(
        labels.numpy(), predicted.numpy(), labels=list(range(len(classes))), target_names=classes,
        output_dict=True, zero_division=0,
    )
    return {name: {k: float(v) for k, v in report[name].items()} for name in classes}


def score(pred: Predictions, classes: list[str]) -> dict:
    """The metrics.json contract: top1, top5, loss, per_class, confusion_matrix (counts, ints, at every
    size) and confusion_matrix_normalized (rows divided by their counts, rounded to 6 decimals so
    1000 classes do not make megabytes of 17-digit floats)."""
    predicted = pred.topk[:, 0]
    cm = confusion_matrix(pred.labels, predicted, len(classes))
    return {
        "top1": pred.accuracy(1),
        "top5": pred.accuracy(5),
        "loss": pred.loss,
        "images": len(pred),
        "skipped": pred.skipped,
        "classes": classes,
        "per_class": classification_report(pred.labels, predicted, classes),
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalized": torch.round(normalise_rows(cm), decimals=6).tolist(),
    }


def metrics_json(metrics: dict) -> str:
    """metrics.json as text: indented, but each confusion-matrix row on one line, so 1000 classes
    make a file of a few MB rather than one number per line (20 MB)."""
    matrices = {k: v for k, v in metrics.items() if k.startswith("confusion_matrix")}
    body = json.dumps({k: f"@@{k}@@" if k in matrices else v for k, v in metrics.items()}, indent=2)
    for key, rows in matrices.items():
        lines = ",\n".join("    " + json.dumps(row, separators=(",", ":")) for row in rows)
        body = body.replace(f'"@@{key}@@"', f"[\n{lines}\n  ]")
    return body + "\n"
