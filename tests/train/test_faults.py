import math
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.train.test_distributed import subprocess_env
from vggnet.errors import VggnetError
from vggnet.runs import RunDir, load_checkpoint
from vggnet.train import loop
from vggnet.train.recipes import get_recipe

EPOCHS = 12
SETS = {"batch_size": "16", "lr": "0.01", "val_fraction": "0.25", "precision": "fp32", "epochs": str(EPOCHS)}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vggnet", "train", *args, "--quiet"]


def _fresh(colours, out) -> list[str]:
    sets = [f"--set={k}={v}" for k, v in SETS.items()]
    return _cli("--model", "vgg11_bn", "--data", str(colours), "--recipe", "cifar", *sets, "--deterministic",
                "--out", str(out))


def test_kill_9_at_random_moments_leaves_a_run_that_resumes_to_the_same_weights(colours, tmp_path):
    env = subprocess_env()
    t0 = time.perf_counter()
    straight = subprocess.run(_fresh(colours, tmp_path / "straight"), env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]
    whole = time.perf_counter() - t0  # start-up (imports, data) and every epoch: kills land anywhere in it

    run, latest = tmp_path / "killed", tmp_path / "killed" / "checkpoints" / "LATEST"
    rng, kills, epochs_seen = random.Random(20261122), 0, []
    for _ in range(12):
        cmd = _cli("--resume", str(run)) if latest.exists() else _fresh(colours, run)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            left = 1 - (epochs_seen[-1] if epochs_seen else 0) / EPOCHS  # of the epochs; start-up comes on top
            proc.wait(timeout=rng.uniform(0.15, 0.85) * whole * max(0.4, left) if kills < 4 else None)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # no handler, no cleanup: the process just stops
            proc.wait()
            kills += 1
        stderr = proc.stderr.read()
        proc.stderr.close()
        if latest.exists():  # whatever the moment, the named checkpoint is whole
            ckpt = load_checkpoint(run)
            assert ckpt.state["epoch"] == int(latest.read_text().strip().removeprefix("epoch-"))
            assert all(torch.isfinite(w).all() for w in ckpt.weights.values())
            epochs_seen.append(ckpt.state["epoch"])
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, stderr[-2000:]
    assert kills >= 3 and proc.returncode == 0, (kills, epochs_seen)
    assert epochs_seen == sorted(epochs_seen) and epochs_seen[-1] == EPOCHS
    a, b = load_checkpoint(tmp_path / "straight").weights, load_checkpoint(run).weights
    assert all(torch.equal(a[k], b[k]) for k in a)  # deterministic: as if never interrupted


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(colours, tmp_path, monkeypatch):
    real, calls = loop.train_step, {"n": 0}

    def poisoned(model, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2 (3 steps per epoch): the weights go bad, as after an overflow
            with torch.no_grad():
                next(model.parameters()).fill_(math.nan)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(loop, "train_step", poisoned)
    recipe = get_recipe("cifar", {**SETS, "epochs": "3"})
    with pytest.raises(VggnetError, match=r"the loss became nan in epoch 2 \(by step 3\); the last good checkpoint "
                                          r"is epoch 1; lower the learning rate"):
        loop.train("vgg11_bn", colours, recipe, tmp_path / "run", seed=0, progress=False)
    assert (tmp_path / "run" / "checkpoints" / "LATEST").read_text().strip() == "epoch-0001"
    ckpt = load_checkpoint(tmp_path / "run")
    assert all(torch.isfinite(w).all() for w in ckpt.weights.values())
    assert [row["epoch"] for row in ckpt.state["history"]] == [1]


def test_a_run_killed_before_its_first_checkpoint_can_start_again(colours, tmp_path):
    run = tmp_path / "run"
    with RunDir(run).claim():  # what a run killed before its first checkpoint leaves: its lock file, ...
        (run / "checkpoints" / ".epoch-abc").mkdir(parents=True)  # ... and a checkpoint write cut short
    (run / "checkpoints" / ".epoch-abc" / "model.safetensors").write_bytes(b"half")
    loop.train("vgg11_bn", colours, get_recipe("cifar", {**SETS, "epochs": "1"}), run, seed=0, progress=False)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["LATEST", "epoch-0001"]
