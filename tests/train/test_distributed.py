import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vggnet.data.arrays import ImageArrays
from vggnet.data.folders import scan_folder
from vggnet.data.loader import make_batches
from vggnet.errors import VggnetError
from vggnet.models import create_model
from vggnet.runs import load_checkpoint
from vggnet.train.distributed import DistInfo, local_batch_size, wrap_model
from vggnet.train.loop import train
from vggnet.train.recipes import get_recipe

ROOT = Path(__file__).resolve().parents[2]
# No BatchNorm (vgg11) and no augmentation: then one process and two see exactly the same arithmetic.
PLAIN = {"batch_size": "16", "lr": "0.01", "val_fraction": "0.25", "precision": "fp32", "flip": "false",
         "pad_crop": "0", "schedule": "constant", "epochs": "2"}


def subprocess_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def test_two_gloo_processes_end_with_the_weights_of_one(colours, tmp_path):
    sets = [f"--set={k}={v}" for k, v in PLAIN.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "vggnet", "train", "--model", "vgg11", "--data", str(colours), "--recipe", "cifar", *sets,
           "--deterministic", "--quiet", "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("val top-1") == 1  # rank 0 alone reports
    assert json.loads((tmp_path / "ddp" / "run.json").read_text())["processes"] == 2

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process (OMP_NUM_THREADS=1): the same kernels
    try:
        train("vgg11", colours, get_recipe("cifar", PLAIN), tmp_path / "one", seed=0, deterministic=True,
              progress=False)
    finally:
        torch.set_num_threads(threads)
    two, one = load_checkpoint(tmp_path / "ddp").weights, load_checkpoint(tmp_path / "one").weights
    first = load_checkpoint(tmp_path / "one" / "checkpoints" / "epoch-0001").weights
    assert max((one[k] - first[k]).abs().max().item() for k in one) > 1e-3  # the second epoch moved them
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-5, rtol=0, msg=k)


def test_accumulated_micro_batches_step_like_the_whole_batch(colours, tmp_path):
    train("vgg11", colours, get_recipe("cifar", PLAIN), tmp_path / "whole", seed=0, deterministic=True,
          progress=False)
    train("vgg11", colours, get_recipe("cifar", {**PLAIN, "accumulate": "4"}), tmp_path / "micro", seed=0,
          deterministic=True, progress=False)
    a, b = load_checkpoint(tmp_path / "whole").weights, load_checkpoint(tmp_path / "micro").weights
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=0, msg=k)


def test_in_memory_shards_are_the_global_batch_split_in_order():
    arrays = ImageArrays(torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 3, 2, 2).clone(),
                         torch.arange(40) % 4, ["a", "b", "c", "d"], {})
    cpu = torch.device("cpu")

    def batches(shard):
        return list(make_batches(arrays, 16, train=True, device=cpu, generator=torch.Generator().manual_seed(3),
                                 shard=shard))

    whole = batches((0, 1))
    r0, r1 = batches((0, 2)), batches((1, 2))
    assert len(whole) == len(r0) == len(r1) == 2
    for (x, y), (x0, y0), (x1, y1) in zip(whole, r0, r1, strict=True):
        assert len(y0) == len(y1) == 8
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)


def test_streamed_shards_use_a_distributed_sampler_that_covers_the_split(tmp_path):
    from tests.helpers import colour_folders

    index = scan_folder(colour_folders(tmp_path / "c", per_class=8, size=80)).splits["all"]
    seen = []
    for rank in (0, 1):
        batches = make_batches(index, 4, train=True, device=torch.device("cpu"), crop=64, scale=(72, 72),
                               workers=0, shard=(rank, 2), seed=5, generator=torch.Generator().manual_seed(0))
        assert isinstance(batches.sampler, torch.utils.data.DistributedSampler)
        batches.set_epoch(1)
        assert batches.sampler.epoch == 1
        indices = list(batches.sampler)
        assert len(indices) == 12 and all(len(y) == 2 for _, y in batches)  # 4 images per global batch
        seen += indices
    assert sorted(seen) == list(range(24))


def test_a_batch_that_does_not_split_and_sync_bn_on_cpu_are_refused():
    assert local_batch_size(256, DistInfo(0, 4, 0), accumulate=2) == 64
    with pytest.raises(VggnetError, match="batch size 100 does not split into 3 processes x 1"):
        local_batch_size(100, DistInfo(0, 3, 0), accumulate=1)
    with pytest.raises(VggnetError, match="sync_bn needs GPUs"):
        wrap_model(create_model("vgg11_bn", head="linear", num_classes=3), DistInfo(0, 2, 0), torch.device("cpu"),
                   sync_bn=True)
    single = create_model("vgg11", head="linear", num_classes=3)
    assert wrap_model(single, DistInfo(), torch.device("cpu"), sync_bn=True) is single  # one process: unchanged


def test_every_rank_takes_rank_0s_fast_path_without_probing(monkeypatch, tmp_path):
    """On a cold cache only rank 0 measures; another rank adopts what it broadcasts."""
    from vggnet import fastpath
    from vggnet.train import distributed

    monkeypatch.delenv("VGGNET_PROBE", raising=False)
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    monkeypatch.setattr(fastpath, "_MEMO", {})
    monkeypatch.setattr(fastpath, "probe", lambda *a, **k: pytest.fail("a rank other than 0 probed"))
    chosen = fastpath.FastPath(fastpath.Choice("bf16", False, {}, "probe"), fastpath.Choice("fp32", True, {}, "probe"))
    sent = []
    monkeypatch.setattr(distributed, "from_main", lambda info, obj: sent.append(obj) or chosen)
    cpu = torch.device("cpu")
    distributed.agree_on_fast_path(distributed.DistInfo(rank=1, world=2), cpu)
    assert sent == [None]  # rank 1 sent nothing, measured nothing
    assert fastpath.fast_path(cpu) is chosen
    with pytest.raises(VggnetError, match="a fast path is a FastPath"):
        fastpath.adopt(cpu, {"precision": "bf16"})
