"""A `vggnet prepare` killed outright (SIGKILL, as the OOM killer or a job scheduler does) leaves
no worker writing shards or holding the folder's lock, and the same command then resumes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.data.test_prepare import make_data
from tests.train.test_distributed import subprocess_env
from vggnet.data.datasets import load_data
from vggnet.data.prepare import Options, prepare
from vggnet.data.shards import STATE


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie no one reaps has stopped all the same


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_killed_pass_leaves_no_worker_and_resumes(tmp_path):
    data = make_data(tmp_path / "data", per_class=(60, 60, 60), val=20, size=(400, 300))
    out = tmp_path / "out"
    env = {**subprocess_env(), "VGGNET_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "vggnet", "prepare", str(data), str(out), "--short-side", "64", "--shard-size", "5",
           "--workers", "2"]
    parent = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: (out / STATE).exists() and len(_children(parent.pid)) >= 2, 60), "no pool started"
        workers = _children(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert _wait_for(lambda: not any(_alive(w) for w in workers), 10), "pool workers outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
    prepare(data, out, Options(short_side=64, shard_size=5), workers=1, progress=False)  # not refused: resumed
    splits = load_data(out, progress=False)
    assert len(splits.train) == 180 and len(splits.val) == 60
