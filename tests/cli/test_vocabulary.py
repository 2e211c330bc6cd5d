"""One CLI vocabulary: the same option name for the same concept on every command, --device wherever
a model runs, lowercase-kebab names, and help that does not import torch."""

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import click
import pytest
from click.testing import CliRunner

from vggnet import names
from vggnet.cli import cli
from vggnet.cli.options import AliasedOption

# concept: (the canonical visible name, spellings no command may show for it)
CONCEPTS = {
    "image side": ("--image-size", {"--input-size", "--size-of-input", "--img-size", "--image-side", "--resolution"}),
    "precision": ("--precision", {"--dtype", "--amp", "--mixed-precision", "--half"}),
    "device": ("--device", {"--gpu", "--cuda", "--accelerator"}),
    "gradient checkpointing": ("--grad-checkpointing", {"--gradient-checkpointing", "--checkpointing",
                                                        "--activation-checkpointing"}),
    "batch size": ("--batch-size", {"--bs", "--batch"}),
    "network": ("--model", {"--arch", "--network", "--net"}),
    "dataset": ("--data", {"--dataset", "--data-dir"}),
    "output directory": ("--out", {"--output", "--output-dir", "--outdir"}),
    "no progress": ("--quiet", {"--silent", "--no-progress"}),
}

# Commands that build or run a network on some device (the analysis commands trace shapes only).
MODEL_COMMANDS = {"export", "predict", "evaluate", "bench infer", "bench train", "train", "experiment run"}

KEBAB = re.compile(r"^(-[a-z]|--[a-z0-9]+(-[a-z0-9]+)*)$")


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every leaf command under ``group``, by its full name ('bench infer'), hidden ones included."""
    out = {}
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            out |= _commands(command, f"{full} ")
        else:
            out[full] = command
    return out


COMMANDS = _commands(cli)


def _visible(command: click.Command) -> set[str]:
    """The option names --help shows (hidden aliases and hidden options left out)."""
    shown = set()
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        opts = param.visible_opts if isinstance(param, AliasedOption) else param.opts
        shown |= {*opts, *param.secondary_opts}
    return shown


def test_the_walk_finds_every_command() -> None:
    assert set(COMMANDS) >= MODEL_COMMANDS
    assert {"models", "summary", "compare", "filters", "cache list", "weights list", "experiment list"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_one_name_per_concept(name: str) -> None:
    shown = _visible(COMMANDS[name])
    for concept, (canonical, forbidden) in CONCEPTS.items():
        wrong = shown & forbidden
        assert not wrong, f"`vggnet {name}` spells {concept} as {sorted(wrong)}; use {canonical}"


@pytest.mark.parametrize("name", sorted(MODEL_COMMANDS))
def test_commands_that_run_a_model_take_device(name: str) -> None:
    assert "--device" in _visible(COMMANDS[name])


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_option_names_are_lowercase_kebab(name: str) -> None:
    for param in COMMANDS[name].params:
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts):
                assert KEBAB.match(opt), f"`vggnet {name}` option {opt!r} is not lowercase-kebab"


def test_torch_free_names_match_their_sources() -> None:
    from vggnet.device import PRECISIONS
    from vggnet.evaluate.protocol import PROTOCOLS
    from vggnet.export import FORMATS
    from vggnet.models.vgg import HEADS
    from vggnet.quantize.static import DEFAULT_IMAGES
    from vggnet.train.recipes import CHOICES, RECIPES

    assert tuple(RECIPES) == names.RECIPE_NAMES
    assert tuple(HEADS) == names.HEAD_NAMES
    assert tuple(PROTOCOLS) == names.PROTOCOL_NAMES
    assert tuple(FORMATS) == names.EXPORT_FORMATS
    assert DEFAULT_IMAGES == names.CALIBRATION_IMAGES
    assert PRECISIONS == names.PRECISIONS == CHOICES["precision"]


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["summary", "--help"], ["bench", "train", "--help"],
                                  ["evaluate", "--help"], ["export", "--help"]])
def test_help_does_not_import_torch(args: list[str]) -> None:
    code = ("import sys\n"
            f"sys.argv = ['vggnet', *{args!r}]\n"
            "from vggnet.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "print('torch' in sys.modules, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "False", "`vggnet " + " ".join(args) + "` imported torch"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_models_matches_paper_letters() -> None:
    result = run("models", "D")
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["vgg16", "D"]
    lines = run("models", "A*").output.splitlines()
    assert [line.split() for line in lines] == [["vgg11", "A"], ["vgg11_lrn", "A-LRN"]]
    assert run("models", "vgg16").output.split() == ["vgg16", "D"]  # registered names as before


def test_deprecated_spellings_still_work_and_stay_hidden() -> None:
    new = run("summary", "vgg11", "--image-size", "32", "--head", "small", "--precision", "bf16", "--json")
    old = run("summary", "vgg11", "--input-size", "32", "--head", "small", "--dtype", "bf16", "--json")
    assert new.exit_code == 0 and old.exit_code == 0, (new.output, old.output)
    assert json.loads(new.stdout) == json.loads(old.stdout)
    assert json.loads(new.stdout)["input_size"] == [3, 32, 32]
    assert new.stderr == ""  # the old names get one note each, on stderr, naming the new ones
    assert old.stderr.splitlines() == ["note: --input-size is now --image-size; the old name still works",
                                       "note: --dtype is now --precision; the old name still works"]
    assert "note:" in run("summary", "vgg11", "--input-size=32", "--json").stderr
    assert "note:" not in run("summary", "vgg11", "--json", "--", "--input-size").stderr
    shown = run("summary", "--help").output
    assert "--image-size" in shown and "--precision" in shown
    assert "--input-size" not in shown and "--dtype" not in shown
    compare = run("compare", "vgg11", "--input-size", "32", "--json")
    assert compare.exit_code == 0, compare.output


def test_train_flags_map_to_recipe_fields(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import vggnet.train.loop

    seen = {}

    def fake_train(**how):
        seen.update(how)
        return SimpleNamespace(metrics={}, run_dir=tmp_path)

    monkeypatch.setattr(vggnet.train.loop, "train", fake_train)
    result = run("train", "--model", "vgg11", "--data", "sample", "--image-size", "48", "--precision", "bf16",
                 "--grad-checkpointing", "--device", "cpu", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    recipe = seen["recipe"]
    assert (recipe.image_size, recipe.precision, recipe.grad_checkpointing) == (48, "bf16", True)
    assert seen["device"] == "cpu"
    result = run("train", "--model", "vgg11", "--data", "sample", "--out", str(tmp_path / "run2"))
    assert result.exit_code == 0, result.output
    assert seen["recipe"].grad_checkpointing is False and seen["recipe"].image_size == 0  # the recipe's own


def test_train_resume_refuses_the_new_flags(tmp_path) -> None:
    result = run("train", "--resume", str(tmp_path), "--precision", "bf16")
    assert result.exit_code == 2 and "--resume continues a run as it was saved" in result.output


def test_export_takes_device() -> None:
    result = run("export", "--weights", "vgg16", "--device", "tpu")
    assert result.exit_code == 2
    assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1
