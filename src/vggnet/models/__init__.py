"""Networks: the VGG family of Table 1, its test-time form, feature extraction, the classics."""

from vggnet.models import classic, fast  # noqa: F401  (register the comparison networks and vgg_fast)
from vggnet.models.features import FeatureExtractor, FeatureListNet
from vggnet.models.fully_conv import FullyConvolutionalVGG, spatial_average, to_fully_convolutional
from vggnet.models.init import INIT_SCHEMES, init_from_shallower, init_weights
from vggnet.models.levels import FeatureInfo
from vggnet.models.registry import ALIASES, create_model, list_models, register_model, resolve_name
from vggnet.models.vgg import HEADS, VGG

__all__ = [
    "ALIASES", "HEADS", "INIT_SCHEMES", "VGG", "FeatureExtractor", "FeatureInfo", "FeatureListNet",
    "FullyConvolutionalVGG",
    "create_model", "init_from_shallower", "init_weights", "list_models", "register_model",
    "resolve_name", "spatial_average", "to_fully_convolutional",
]
