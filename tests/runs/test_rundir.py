"""A run directory is the run's own: claimed, locked, pruned by number, never the user's files."""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
import torch

from vggnet.atomic import atomic_write_text
from vggnet.errors import CheckpointError, VggnetError
from vggnet.models import create_model
from vggnet.runs import RunDir, RunDirError, owner
from vggnet.runs import checkpoint as ck

META = {"model": "vgg11_bn", "model_kwargs": {"num_classes": 3, "head": "linear"}, "classes": ["a", "b", "c"],
        "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2], "image_size": 32}


def _state(epoch):
    return {"epoch": epoch, "optimizer": {}, "scheduler": {}, "rng": {}, "stats": {},
            "history": [{"epoch": e} for e in range(1, epoch + 1)]}


@pytest.fixture(scope="module")
def model():
    return create_model("vgg11_bn", num_classes=3, head="linear")


def test_a_second_process_is_refused_and_told_who_holds_the_run(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from vggnet.runs import RunDir
        run = RunDir({str(tmp_path / 'run')!r}).claim()
        print('held', flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirError, match=rf"is in use by another vggnet process \(pid {holder.pid} on "):
            RunDir(tmp_path / "run").claim()
    finally:
        holder.kill()
        holder.wait()
    RunDir(tmp_path / "run").claim().release()  # the lock died with its process (kill -9 included)


def test_a_folder_of_the_users_is_refused_and_left_as_it_was(tmp_path):
    mine = tmp_path / "mine"
    (mine / "checkpoints" / "epoch-best").mkdir(parents=True)
    files = {"report.md": b"my notes", "metrics.json": b'{"mine": 1}', "run.json": b"{}",
             "checkpoints/epoch-best/model.safetensors": b"my weights"}
    for name, data in files.items():
        (mine / name).write_bytes(data)
    for kind in ("train", "evaluate", "study"):
        with pytest.raises(RunDirError, match=r"is not empty and holds no vggnet .* choose a new or empty --out"):
            RunDir(mine, kind).claim()
    assert {n: (mine / n).read_bytes() for n in files} == files
    assert not (mine / ".vggnet.lock").exists()


def test_kinds_do_not_mix_and_a_file_is_not_a_folder(tmp_path):
    with RunDir(tmp_path / "run", "train").claim():
        (tmp_path / "run" / "run.json").write_text("{}")  # something written, so the folder stays
    with pytest.raises(RunDirError, match=r"holds a training run, not an evaluation"):
        RunDir(tmp_path / "run", "evaluate").claim()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match=r"is a file, not a folder"):
        RunDir(tmp_path / "file").claim()
    assert owner(tmp_path / "new") == "" and owner(tmp_path / "run") == "train"


def test_a_claim_that_wrote_nothing_leaves_no_folder(tmp_path):
    with RunDir(tmp_path / "a" / "b", "evaluate").claim():
        pass
    assert not (tmp_path / "a").exists()  # every folder the claim made, not only the last


def test_a_run_is_never_made_inside_another_vggnet_folder(model, tmp_path):
    with RunDir(tmp_path / "r1").claim():  # r1 is a training run (its lock records it)
        ck.save_checkpoint(tmp_path / "r1", 2, model, META, _state(2))
    for inside in ("r1/checkpoints/epoch-0002", "r1/checkpoints/.epoch-x", "r1/checkpoints", "r1/sub/deeper"):
        with pytest.raises(RunDirError, match=r"is inside a training run .* choose a --out outside it"):
            RunDir(tmp_path / inside).claim()
    with RunDir(tmp_path / "study", "study").claim():
        (tmp_path / "study" / "results.json").write_text("{}")
    RunDir(tmp_path / "study" / "arm").claim().release()  # a study's arms are training runs in it
    with pytest.raises(RunDirError, match="is inside a study"):
        RunDir(tmp_path / "study" / "x" / "arm").claim()


def test_a_study_folder_is_never_taken_for_other_work(tmp_path):
    lrn = {"study": "lrn", "budget": "small", "data": "/d", "seed": 0, "overrides": {}}
    with RunDir(tmp_path / "s", "study").claim(identity=lrn):
        (tmp_path / "s" / "results.json").write_text("{}")
    RunDir(tmp_path / "s", "study").claim(identity=lrn).release()  # the same study again: continued
    with pytest.raises(RunDirError, match=r"holds other work \(study lrn; this is study augment\)"):
        RunDir(tmp_path / "s", "study").claim(identity={**lrn, "study": "augment"})
    with pytest.raises(RunDirError, match=r"holds other work \(seed 0; this is seed 1\)"):
        RunDir(tmp_path / "s", "study").claim(identity={**lrn, "seed": 1})


def test_a_planted_lock_file_is_never_written_through(tmp_path):
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "hard").mkdir()
    os.link(tmp_path / "notes.txt", tmp_path / "hard" / ".vggnet.lock")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / ".vggnet.lock")
    for folder in ("hard", "fifo"):
        with pytest.raises(RunDirError, match="is not vggnet's lock file"):
            RunDir(tmp_path / folder).claim()
    assert (tmp_path / "notes.txt").read_text() == "my notes"


def test_a_first_checkpoint_without_latest_still_counts(model, tmp_path):
    with RunDir(tmp_path / "run").claim():
        ck.save_checkpoint(tmp_path / "run", 1, model, META, _state(1))
    (tmp_path / "run" / "checkpoints" / "LATEST").unlink()  # a kill between the rename and LATEST
    assert ck.find_checkpoint(tmp_path / "run").parent.name == "epoch-0001"
    with pytest.raises(RunDirError, match="already holds a run; pass --resume"):
        RunDir(tmp_path / "run").claim()


def test_odd_out_paths_are_one_line(tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(RunDirError, match="is a broken symbolic link: choose another --out"):
        RunDir(tmp_path / "dangling").claim()
    with pytest.raises(RunDirError, match="holds no vggnet training run to resume"):
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "x").write_text("x")
        RunDir(tmp_path / "mine").claim(resume=True)


def test_the_lock_file_is_never_written_through_a_link(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".vggnet.lock").symlink_to(target)
    with pytest.raises(RunDirError):
        RunDir(tmp_path / "run").claim()
    assert target.read_text() == "keep me"


def test_pruning_orders_by_number_past_epoch_9999_and_keeps_other_folders(model, tmp_path):
    best = tmp_path / "checkpoints" / "epoch-best"
    best.mkdir(parents=True)
    (best / "model.safetensors").write_bytes(b"the user's copy")
    for epoch in (9998, 9999, 10000, 10001):
        ck.save_checkpoint(tmp_path, epoch, model, META, _state(1), keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["LATEST", "epoch-10000", "epoch-10001", "epoch-best"]
    assert (tmp_path / "checkpoints" / "LATEST").read_text() == "epoch-10001\n"
    assert ck.find_checkpoint(tmp_path).parent.name == "epoch-10001"


def test_checkpoint_folders_and_files_follow_the_umask(model, tmp_path):
    old = os.umask(0o022)
    try:
        path = ck.save_checkpoint(tmp_path, 1, model, META, _state(1))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert {stat.S_IMODE((path / n).stat().st_mode) for n in ("model.safetensors", "state.pt")} == {0o644}


@pytest.mark.parametrize("damage", [{}, {"epoch": 3}, "not a dict", {**_state(2), "epoch": 5}])
def test_a_damaged_state_is_an_error_never_a_restart(model, tmp_path, damage):
    path = ck.save_checkpoint(tmp_path, 2, model, META, _state(2))
    torch.save(damage, path / "state.pt")
    with pytest.raises(CheckpointError, match=r"state.pt is damaged"):
        ck.load_checkpoint(tmp_path)


def test_latest_naming_anything_but_an_epoch_folder_is_not_followed(model, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    ck.save_checkpoint(elsewhere, 1, model, META, _state(1))
    ck.save_checkpoint(tmp_path / "run", 1, model, META, _state(1))
    for name in ("../../elsewhere/checkpoints/epoch-0001", "epoch-0009", "/etc"):
        (tmp_path / "run" / "checkpoints" / "LATEST").write_text(name + "\n")
        with pytest.raises(CheckpointError, match=r"not a checkpoint beside it"):
            ck.find_checkpoint(tmp_path / "run")


@pytest.mark.parametrize(("edit", "message"), [
    ({"classes": ["a", "b"]}, "'classes' must be 3 names"),
    ({"std": [0.2, 0.0, 0.2]}, "'std' must be 3 positive"),
    ({"mean": [0.5, float("nan"), 0.5]}, "'mean' must be 3 finite"),
    ({"image_size": "big"}, "'image_size' must be a whole number"),
    ({"model_kwargs": {"num_classes": 3, "head": "linear", "wings": 2}}, "damaged vggnet metadata"),
    ({"channels": "CMYK"}, "'channels' must be RGB or BGR"),
])
def test_hand_edited_checkpoint_metadata_is_refused(model, tmp_path, edit, message):
    ck.save_weights(tmp_path / "w.safetensors", model, {**META, **edit})
    with pytest.raises(CheckpointError, match=message):
        ck.model_from_checkpoint(tmp_path / "w.safetensors")


@pytest.mark.parametrize("field", ["model", "seed", "recipe", "deterministic"])
def test_hand_edited_run_json_is_an_error_naming_the_field(tmp_path, field):
    run = {"model": "vgg11_bn", "data": "/d", "seed": 0, "deterministic": False, "recipe": {"epochs": 1}}
    (tmp_path / "run.json").write_text(json.dumps({**run, field: "7" if field != "model" else 7}))
    with pytest.raises(CheckpointError, match=rf"run.json is damaged: '{field}'"):
        RunDir(tmp_path).read_run()


def test_outputs_never_replace_a_device_a_fifo_or_a_link(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target")
    (tmp_path / "target").write_text("theirs")
    for target, what in ((fifo, "not a regular file"), (link, "a symbolic link"), ("/dev/null", "not a regular file")):
        with pytest.raises(VggnetError, match=rf"is {what}: vggnet only replaces regular files"):
            atomic_write_text(target, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert link.is_symlink() and (tmp_path / "target").read_text() == "theirs"


def test_a_fifo_in_a_run_directory_is_never_opened(model, tmp_path):
    path = ck.save_checkpoint(tmp_path, 1, model, META, _state(1))
    (path / "state.pt").unlink()
    os.mkfifo(path / "state.pt")
    assert ck.load_checkpoint(tmp_path).state is None  # not waited on: treated as absent
    (tmp_path / "checkpoints" / "LATEST").unlink()
    os.mkfifo(tmp_path / "checkpoints" / "LATEST")
    with pytest.raises(CheckpointError, match="LATEST is not a regular file"):
        ck.load_checkpoint(tmp_path)
