"""Weight files are data, never code: every torch file is read with ``weights_only=True``."""

import builtins

import pytest
import torch

from vggnet.errors import CheckpointError
from vggnet.models import create_model
from vggnet.runs import checkpoint as ck
from vggnet.weights.load import read_weights


class Payload:
    """Unpickling this calls exec: it writes a marker file (a real attack would do worse)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "vgg11-evil.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "x": Payload(marker)}, path)

    with pytest.raises(CheckpointError, match=r"cannot read weights .*vgg11-evil\.pth"):
        read_weights(path)
    assert not marker.exists()

    torch.load(path, weights_only=False)  # what a plain pickle load does with the same file
    assert marker.read_text() == "ran"


def test_a_checkpoint_state_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    model = create_model("vgg11", head="linear", num_classes=3)
    epoch = ck.save_checkpoint(tmp_path / "run", 1, model, {"model": "vgg11"}, {"epoch": 1})
    torch.save({"epoch": 1, "history": [Payload(marker)]}, epoch / "state.pt")
    with pytest.raises(CheckpointError, match=r"cannot read .*state\.pt"):
        ck.load_checkpoint(tmp_path / "run")
    assert not marker.exists()
