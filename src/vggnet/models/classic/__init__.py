"""Networks the paper is compared with: architecture only, trainable with the same code.

Each follows torchvision's module names, so parameter counts (and weight files) match it.
"""

from vggnet.models.classic import alexnet, densenet, googlenet, resnet  # noqa: F401  (registers)
