"""vggnet: the VGG networks of Simonyan & Zisserman (2014), exact, analysed, trainable and fast."""

from vggnet.models import (
    VGG,
    FeatureExtractor,
    create_model,
    init_from_shallower,
    list_models,
    to_fully_convolutional,
)

__version__ = "0.1.0"

__all__ = [
    "VGG", "FeatureExtractor", "__version__", "create_model", "init_from_shallower",
    "list_models", "to_fully_convolutional",
]
