"""Run directories and checkpoints: shared by training, evaluation, weights and experiments, so
none of them reaches into another for its files."""

from vggnet.runs.checkpoint import (
    Checkpoint,
    find_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    save_weights,
    unwrap,
)
from vggnet.runs.rundir import RunDir, RunDirError, owner

__all__ = ["Checkpoint", "RunDir", "RunDirError", "find_checkpoint", "load_checkpoint", "model_from_checkpoint",
           "owner", "save_checkpoint", "save_weights", "unwrap"]
