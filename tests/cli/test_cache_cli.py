"""`vggnet cache list | clear`: what the decoded-image cache holds, and emptying it."""

import json
import os
import re
from datetime import datetime

import pytest
import torch
from click.testing import CliRunner

from vggnet.cli import cli
from vggnet.data.array_cache import entry_path, write_cached
from vggnet.data.arrays import ImageArrays


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    monkeypatch.delenv("VGGNET_CACHE_MAX_GB", raising=False)
    return tmp_path


def arrays(n: int, side: int, classes: int) -> ImageArrays:
    images = torch.zeros((n, 3, side, side), dtype=torch.uint8)
    return ImageArrays(images, torch.arange(n) % classes, [f"c{i}" for i in range(classes)])


def test_list_of_an_empty_cache_says_so_and_where(home):
    result = run("cache", "list")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"the cache is empty ({home / 'folders'})"


def cells(line: str) -> list[str]:
    """A table row's cells (rich draws the header with ┃ and the body with │)."""
    return [c.strip() for c in re.split("[│┃]", line.strip("│┃ "))]


def test_list_shows_each_entry_and_the_total(home):
    write_cached("0123abcd", arrays(n=2500, side=32, classes=10))
    write_cached("feedbeef", arrays(n=7, side=16, classes=2))
    old = datetime(2001, 9, 9, 3, 46).timestamp()
    os.utime(entry_path("0123abcd"), (old, old))
    entry_path("deadbeef").write_bytes(b"\0" * 64)
    os.utime(entry_path("feedbeef"), (old + 10, old + 10))
    result = run("cache", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert cells(lines[1]) == ["entry", "images", "side", "classes", "size", "last used"]
    rows = [cells(line) for line in lines if line.startswith("│")]
    big = entry_path("0123abcd").stat().st_size
    assert [r[0] for r in rows] == ["deadbeef", "feedbeef", "0123abcd"]  # most recently used first
    assert rows[2] == ["0123abcd", "2,500", "32", "10", f"{big / 1e6:.1f} MB", "2001-09-09 03:46"]
    assert rows[1][1:4] == ["7", "16", "2"]
    assert rows[0][1:5] == ["damaged", "", "", "0.0 MB"]
    assert any(line.startswith("deadbeef is damaged (") for line in lines)
    total = sum(entry_path(k).stat().st_size for k in ("0123abcd", "feedbeef", "deadbeef"))
    assert lines[-1] == f"3 entries, {total / 1e6:,.1f} MB in {home / 'folders'} (bound 20 GiB)"


def test_list_as_json(home):
    write_cached("k", arrays(n=5, side=8, classes=3))
    (row,) = json.loads(run("cache", "list", "--json").output)
    assert (row["entry"], row["images"], row["side"], row["classes"]) == ("k.safetensors", 5, 8, 3)
    assert row["damaged"] is None
    assert row["size"] == entry_path("k").stat().st_size


def test_clear_removes_entries_and_keeps_downloads(home):
    write_cached("a", arrays(n=5, side=8, classes=3))
    write_cached("b", arrays(n=5, side=8, classes=3))
    download = home / "cifar10" / "cifar-10-python.tar.gz"
    download.parent.mkdir()
    download.write_bytes(b"archive")
    result = run("cache", "clear")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("removed 2 entries (0.0 MB) from ")
    assert not entry_path("a").exists() and not entry_path("b").exists()
    assert download.read_bytes() == b"archive"
    assert run("cache", "list").output.startswith("the cache is empty")
    assert run("cache", "clear").output.startswith("removed 0 entries (0.0 MB)")


def test_a_bad_bound_is_one_error_line(monkeypatch):
    monkeypatch.setenv("VGGNET_CACHE_MAX_GB", "plenty")
    result = run("cache", "list")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: VGGNET_CACHE_MAX_GB must be a number of GiB >= 0 (e.g. 20 or 0.5), got 'plenty'"
    )


def test_folder_indexes_are_listed_and_cleared(home, tmp_path):
    from tests.data.test_scan_cache import _tree
    from vggnet.data.folders import scan_folder

    scan_folder(_tree(tmp_path / "data"))  # an old folder: its index is kept
    assert "1 folder index, " in run("cache", "list").output
    cleared = run("cache", "clear").output
    assert "removed 1 folder index" in cleared
    assert "folder index" not in run("cache", "list").output
