"""Names the command line offers as choices, in a module that imports nothing.

`vggnet --help` renders every choice list; taking them from the modules that own them would import
torch (~2 s) just to print help. Each tuple mirrors a table in a torch-importing module;
tests/cli/test_vocabulary.py checks that they agree.
"""

from __future__ import annotations

PRECISIONS = ("auto", "fp32", "bf16")  # autocast precisions (training, benchmarks); vggnet.device re-exports it
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")  # vggnet.device.channels_last_choice
TRACE_PRECISIONS = ("fp32", "bf16", "fp16")  # the dtypes `vggnet summary` counts memory in
RECIPE_NAMES = ("paper", "adam", "cifar", "cifar-fast")  # vggnet.train.recipes.RECIPES
HEAD_NAMES = ("imagenet", "small", "linear")  # vggnet.models.vgg.HEADS
PROTOCOL_NAMES = ("center", "dense", "multi-crop", "dense+multi-crop")  # vggnet.evaluate.protocol.PROTOCOLS
EXPORT_FORMATS = ("onnx",)  # vggnet.export.FORMATS
CALIBRATION_IMAGES = 256  # vggnet.quantize.static.DEFAULT_IMAGES: int8 ranges settle within a few hundred
