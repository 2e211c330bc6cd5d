"""VGG as a loss and a metric: perceptual and style losses, and LPIPS v0.1.

``from vggnet.perceptual import PerceptualLoss, StyleLoss, LPIPS, gram_matrix``.
"""

from vggnet.perceptual.backbone import Normalize
from vggnet.perceptual.losses import PerceptualLoss, StyleLoss, gram_matrix
from vggnet.perceptual.lpips import LPIPS

__all__ = ["LPIPS", "Normalize", "PerceptualLoss", "StyleLoss", "gram_matrix"]
