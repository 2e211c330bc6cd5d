"""Pretrained weights: known files (torchvision, Keras), download into the cache with a hash
check, conversion to torchvision's layout, loading into a model (also for fine-tuning)."""

from vggnet.weights.hub import KNOWN_WEIGHTS, PREPROCESSING, WeightFile, fetch_weights, list_weights
from vggnet.weights.load import (
    load_pretrained,
    model_for_inference,
    pretrained_model,
    read_weights,
    save_for_inference,
)

__all__ = ["KNOWN_WEIGHTS", "PREPROCESSING", "WeightFile", "fetch_weights", "list_weights", "load_pretrained",
           "model_for_inference", "pretrained_model", "read_weights", "save_for_inference"]
