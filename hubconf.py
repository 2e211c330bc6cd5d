"""torch.hub entry points: ``torch.hub.load("owner/vggnet", "vgg16", pretrained=True)``, or from a
checkout, ``torch.hub.load("/path/to/vggnet", "vgg16", source="local")``.

One entry per registered model, generated from the registry, each ``(pretrained=False, **kwargs)``
with the keywords of ``vggnet.models.create_model`` (``weights``, ``num_classes``, ``in_chans``,
``features_only``, ``out_indices``, ``head`` ...).
"""

from __future__ import annotations

import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path

dependencies = ["torch"]

if _importlib_util.find_spec("vggnet") is None:  # not installed: use the checkout's src/
    _sys.path.insert(0, str(_Path(__file__).resolve().parent / "src"))

from vggnet.models import create_model as _create_model  # noqa: E402
from vggnet.models import list_models as _list_models  # noqa: E402


def _entry(name: str):
    def entry(pretrained: bool = False, **kwargs: object):
        return _create_model(name, pretrained=pretrained, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (f"vggnet's {name} (``vggnet.models.create_model({name!r}, pretrained=..., **kwargs)``); "
                     "pretrained=True loads its known weights.")
    return entry


for _name in _list_models():
    globals()[_name] = _entry(_name)
