"""What reaches the terminal: names escaped at the output boundary (errors, warnings, tables), and
a full disk as one line, whichever library noticed it."""

import errno
import logging

import pytest
from click.testing import CliRunner
from safetensors import SafetensorError

from vggnet.cli import cli
from vggnet.data.sources import printable
from vggnet.terminal import printable_text

FORGED = "x\n\x1b[31merror: forged"
SHOWN = "x\\n\\x1b[31merror: forged"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("name", [
    "plain.png", FORGED, "tab\there", "caf\udce9.png", "\u202egnp.exe", "[bold]x[/]", "é ü 中", "back\\slash",
])
def test_printable_text_agrees_with_the_file_name_escaping(name):
    assert printable_text(name) == printable(name)
    assert printable_text(printable_text(name)) == printable_text(name)  # escaping twice changes nothing
    assert printable_text(name).isprintable()


def test_printable_text_takes_any_string():
    assert printable_text("lone \ud800 surrogate") == "lone \\xed\\xa0\\x80 surrogate"


def test_an_error_naming_a_forged_file_is_one_escaped_line(tmp_path):
    weights = tmp_path / f"{FORGED}.pth"
    weights.write_bytes(b"not a torch file")
    result = run("weights", "convert", weights, tmp_path / "out.safetensors")
    assert result.exit_code == 2 and "\x1b" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"{tmp_path}/{SHOWN}.pth" in lines[0]


def test_an_escape_sequence_without_a_newline_is_escaped_too(tmp_path):
    weights = tmp_path / "red\x1b[31m.pth"
    weights.write_bytes(b"not a torch file")
    result = run("weights", "convert", weights, tmp_path / "out.safetensors")
    assert result.exit_code == 2 and "\x1b" not in result.stderr and "red\\x1b[31m.pth" in result.stderr


def test_an_os_error_names_its_file_escaped(tmp_path):
    blocker = tmp_path / FORGED
    blocker.write_text("a file, not a folder")
    result = run("summary", "vgg11", "--json", "--png", blocker / "x.png")
    assert result.exit_code == 2 and result.stdout == ""  # refused before the JSON is printed
    assert result.stderr == f"error: Not a directory: {tmp_path}/{SHOWN}\n"


def test_warnings_are_one_escaped_line_each(monkeypatch):
    import vggnet.data.array_cache as array_cache

    def entries():
        logging.getLogger("vggnet.data").warning("entry %s is damaged", FORGED)
        return []

    monkeypatch.setattr(array_cache, "cache_entries", entries)
    for _ in range(2):  # the handler is installed once, however often the CLI runs
        result = run("cache", "list")
        assert result.exit_code == 0
        assert result.stderr == f"warning: entry {SHOWN} is damaged\n"


def test_predict_table_shows_names_literally(monkeypatch, tmp_path):
    import vggnet.evaluate.predict as predict

    image = tmp_path / "a.png"
    image.write_bytes(b"")
    hostile = [{"image": f"{FORGED}[bold].png", "top5": [{"index": 0, "label": "[/]\x1b[2J", "probability": 0.5}]}]
    monkeypatch.setattr(predict, "predict_images", lambda *args, **kwargs: hostile)
    result = run("predict", image, "--weights", "vgg11")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert f"{SHOWN}[bold].png" in result.stdout and "[/]\\x1b[2J" in result.stdout  # not read as rich markup


def test_cache_list_escapes_entry_names(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    (tmp_path / "folders").mkdir()
    (tmp_path / "folders" / f"{FORGED}.safetensors").write_bytes(b"\0" * 16)
    result = run("cache", "list")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and SHOWN in result.stdout
    damaged = [line for line in result.stdout.splitlines() if "is damaged" in line]
    assert len(damaged) == 1 and damaged[0].startswith(f"{SHOWN} is damaged (")


@pytest.mark.parametrize(("err", "line"), [
    (OSError(errno.ENOSPC, "No space left on device", "/runs/x/out.safetensors"),
     "error: No space left on device: /runs/x/out.safetensors; free some space and run again"),
    (OSError(errno.ENOSPC, "No space left on device"),
     "error: No space left on device; free some space and run again"),
    (SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
     "error: cannot write: No space left on device; free some space and run again"),
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"),
     "error: cannot write: the file was cut short (is the disk full?); free some space and run again"),
])
def test_a_full_disk_is_one_line_whichever_library_saw_it(err, line, monkeypatch, tmp_path):
    import vggnet.weights.load as load

    def full(*args, **kwargs):
        raise err

    monkeypatch.setattr(load, "save_for_inference", full)
    result = run("weights", "convert", "vgg11", tmp_path / "out.safetensors")
    assert result.exit_code == 2 and result.stderr == line + "\n"


@pytest.mark.parametrize("err", [RuntimeError("boom"), SafetensorError("Error while deserializing header: x")])
def test_a_genuine_bug_keeps_its_traceback(err, monkeypatch, tmp_path):
    import vggnet.weights.load as load

    def broken(*args, **kwargs):
        raise err

    monkeypatch.setattr(load, "save_for_inference", broken)
    result = run("weights", "convert", "vgg11", tmp_path / "out.safetensors")
    assert result.exit_code == 1 and result.exception is err
