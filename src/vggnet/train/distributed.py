"""Data parallelism on PyTorch's own engine: ``torchrun`` starts the processes, this joins them.

``torchrun --nproc_per_node N -m vggnet train ...`` sets RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous address in each process's environment; :func:`init_distributed` reads them and joins
the default process group (nccl on GPUs, gloo on CPUs). The training loop then

- wraps the model in DistributedDataParallel (gradients averaged across processes in backward);
- gives each process its own share of every *global* batch -- the recipe's batch size is the
  batch the optimizer sees, whatever N (and ``accumulate`` splits each share into micro-batches);
- lets rank 0 alone write the run directory and evaluate, and broadcasts what the others need.

Without those variables (or with WORLD_SIZE=1) everything here is a no-op.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch import nn

from vggnet.errors import VggnetError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job; the defaults describe a single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes in the environment; returns the rank info and the
    device this process trains on (``cuda:LOCAL_RANK`` on GPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not tdist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        tdist.init_process_group(backend, timeout=datetime.timedelta(minutes=30),
                                 device_id=device if device.type == "cuda" else None)
    return info, device


def shutdown_distributed() -> None:
    """Leave the process group (if this process joined one)."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def local_batch_size(global_batch: int, info: DistInfo, accumulate: int) -> int:
    """Images per process per loader batch: the global batch split over the processes (each share
    is then split into ``accumulate`` micro-batches by the training step)."""
    parts = info.world * accumulate
    if global_batch % parts:
        raise VggnetError(f"batch size {global_batch} does not split into {info.world} processes x "
                          f"{accumulate} accumulation steps; choose a multiple of {parts}")
    return global_batch // info.world


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device, sync_bn: bool) -> nn.Module:
    """The model as the training step should call it: DDP across processes, else unchanged."""
    if sync_bn and info.enabled:
        if device.type != "cuda":  # PyTorch's SyncBatchNorm runs on GPUs only
            raise VggnetError("sync_bn needs GPUs (nccl); on CPUs each process normalises its own share")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def sum_across(info: DistInfo, *values: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor summed over all processes (returned unchanged in a single process)."""
    if not info.enabled:
        return list(values)
    out = []
    for v in values:
        v = v.clone()
        tdist.all_reduce(v)
        out.append(v)
    return out


def from_main(info: DistInfo, obj: object) -> object:
    """Rank 0's ``obj`` on every process (a validation score, an error message)."""
    if not info.enabled:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def agree_on_fast_path(info: DistInfo, device: torch.device) -> None:
    """Every rank trains in rank 0's precision and memory format (``precision=auto``): on a cold
    cache each rank would otherwise probe on its own, and a noisy measurement could make them
    differ. Rank 0 measures (or reads its cache), the others adopt its choice without probing."""
    if not info.enabled:
        return
    from vggnet.fastpath import adopt, fast_path

    adopt(device, from_main(info, fast_path(device) if info.main else None))


def barrier(info: DistInfo) -> None:
    if info.enabled:
        tdist.barrier()
