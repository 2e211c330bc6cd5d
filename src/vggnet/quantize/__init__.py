"""int8 models for fast CPU inference: static post-training quantization calibrated on the user's images."""

from vggnet.quantize.static import DEFAULT_IMAGES, quantize_model

__all__ = ["DEFAULT_IMAGES", "quantize_model"]
