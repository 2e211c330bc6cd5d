"""matplotlib behind one door: a headless backend, a one-line error when it is missing, atomic PNGs.

matplotlib is an optional extra (``pip install 'vggnet[plot]'``); only PNG output needs it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vggnet.atomic import atomic_path
from vggnet.errors import MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("PNG output needs matplotlib: pip install 'vggnet[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # a class named with an emoji or a script the default font lacks is drawn as a box; the text
    # reports name it exactly, so the warning (printed once per figure, with a source line) is noise
    warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)

    return plt


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write a PNG atomically: to a temporary file beside ``path``, then rename."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    pyplot().close(fig)
    return Path(path)
