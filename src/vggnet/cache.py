"""Where vggnet keeps downloads and decoded datasets: ``$VGGNET_HOME``, else the user cache dir."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$VGGNET_HOME`` or ``$XDG_CACHE_HOME/vggnet`` or ``~/.cache/vggnet``, joined with ``parts``."""
    root = os.environ.get("VGGNET_HOME")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "vggnet")
    return Path(root, *parts)
