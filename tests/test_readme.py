"""The README's Python example runs as written and prints what it claims."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs() -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert tuple(namespace["scores"].shape) == (1, 1000, 6, 6)
    assert set(namespace["feats"]) == {"conv3_3", "relu4_3"}
    t = namespace["t"]
    assert (t.params, t.macs, t.layer("pool5").receptive_field) == (138357544, 15470264320, 212)


def test_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()
    assert len(block) == 2
    ci = (README.parent / ".ci" / "run").read_text()
    assert block[1] in ci


def test_readme_training_example_names_real_functions() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    train_block = next(b for b in blocks if "get_recipe" in b)
    compile(train_block, "README.md", "exec")
    namespace: dict[str, object] = {}
    exec("\n".join(line for line in train_block.splitlines() if line.startswith("from ")), namespace)
    assert {"train", "get_recipe", "evaluate_checkpoint", "predict_images"} <= set(namespace)


def test_quick_start_trains_offline_on_the_embedded_sample() -> None:
    section = README.read_text().split("## Quick start", 1)[1]
    first = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()[0]
    assert "vggnet train" in first and "--data sample" in first


def _table_examples() -> list[str]:
    """The example command of each row of the README's command table."""
    section = README.read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `\w+` \|[^|]*\| `(vggnet [^`]*)` \|$", section, re.M)


def _leaf(args: list[str]):
    """The click command an argument list reaches, and the arguments left for it."""
    import click

    from vggnet.cli import cli

    command, rest = cli, args
    while isinstance(command, click.Group):
        _, command, rest = command.resolve_command(click.Context(command), rest)  # `experiment NAME`: run NAME
    return command, rest


def test_every_command_in_the_table_parses_as_written(tmp_path, monkeypatch) -> None:
    """Each example's options exist and its values are accepted (choices, ranges, devices): an example
    renamed away from the CLI fails here. The table's ``[--wide]`` marks an optional flag. The files
    the examples name (the run the train example writes, an image) exist, as they would there."""
    import shlex

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "d").mkdir(parents=True)
    (tmp_path / "cat.jpg").write_bytes(b"")
    for folder in ("outputs", "references"):  # the lpips example's two folders
        (tmp_path / folder).mkdir()

    examples = _table_examples()
    assert [shlex.split(e)[1] for e in examples] == ["models", "summary", "compare", "filters", "train", "evaluate",
                                                     "predict", "export", "quantize", "weights", "prepare", "cache",
                                                     "bench", "experiment", "lpips", "explain", "show"]
    for example in examples:
        args = shlex.split(example.replace("[", "").replace("]", ""))[1:]
        command, rest = _leaf(args)
        command.make_context(" ".join(args[: len(args) - len(rest)]), list(rest))  # raises on any bad option


def test_the_quick_table_examples_run(tmp_path, monkeypatch) -> None:
    """The examples that need no download, training or minutes of compute run and print."""
    import shlex

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))

    from click.testing import CliRunner

    from vggnet.cli import cli

    for example in _table_examples():
        args = shlex.split(example.replace("[", "").replace("]", ""))[1:]
        if args[0] not in ("models", "summary", "compare", "filters", "cache"):
            continue
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, (example, result.output)
        assert result.stdout.strip(), example
    assert (tmp_path / "vgg16.png").stat().st_size > 10_000  # summary's --png
