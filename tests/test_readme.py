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
