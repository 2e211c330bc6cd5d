"""Pretrained weights: known files, download into the cache with a hash check, loading into a model."""

from vggnet.weights.hub import KNOWN_WEIGHTS, WeightFile, fetch_weights, list_weights
from vggnet.weights.load import load_pretrained, load_state_dict_file, pretrained_model

__all__ = ["KNOWN_WEIGHTS", "WeightFile", "fetch_weights", "list_weights", "load_pretrained", "load_state_dict_file",
           "pretrained_model"]
