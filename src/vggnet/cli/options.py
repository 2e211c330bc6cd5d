"""Options several commands share, checked while the command line is parsed: before any data is
read, anything is written, or a benchmark process is started."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from vggnet.names import PRECISIONS


def _check_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The --device text unchanged, once :func:`vggnet.device.resolve_device` accepts it (an
    unknown name, or a GPU this machine lacks, is one ``error:`` line)."""
    if value is not None:
        from vggnet.device import resolve_device

        resolve_device(value)
    return value


def device_option(help_text: str = "cpu, cuda, cuda:1, mps [cuda if available]") -> Callable:
    """``--device``, checked at parse time."""
    return click.option("--device", default=None, callback=_check_device, help=help_text)


class AliasedOption(click.Option):
    """An option whose old spellings still parse but stay out of --help and error messages, so every
    command shows one name per concept (tests/cli/test_vocabulary.py) without breaking old scripts."""

    def __init__(self, *args: object, hidden_aliases: tuple[str, ...] = (), **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_aliases = tuple(hidden_aliases)

    @property
    def visible_opts(self) -> list[str]:
        return [o for o in self.opts if o not in self.hidden_aliases]

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        opts = self.opts
        self.opts = self.visible_opts
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = opts

    def get_error_hint(self, ctx: click.Context) -> str:
        return " / ".join(f"'{o}'" for o in self.visible_opts)


def note_old_spellings(command: click.Command, args: list[str]) -> None:
    """One ``note:`` line on stderr for each hidden old option name in ``args``, naming the new one,
    so scripts keep working and their authors learn the name --help shows."""
    for token in args:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        for param in command.params:
            if isinstance(param, AliasedOption) and name in param.hidden_aliases:
                click.echo(f"note: {name} is now {param.visible_opts[0]}; the old name still works", err=True)


def image_size_option(default: int | None, minimum: int = 1, help_text: str = "Input side in pixels.",
                      aliases: tuple[str, ...] = ()) -> Callable:
    """``--image-size``: the one name for an image side on every command (``aliases``: hidden old names)."""
    return click.option("--image-size", *aliases, "image_size", cls=AliasedOption, hidden_aliases=aliases,
                        type=click.IntRange(min=minimum), default=default, show_default=default is not None,
                        help=help_text)


def precision_option(choices: tuple[str, ...] = PRECISIONS, default: str | None = "auto",
                     help_text: str = "auto: fp32 or bf16, whichever a probe measured faster on this device.",
                     aliases: tuple[str, ...] = ()) -> Callable:
    """``--precision``: the one name for a numeric precision; choices from :mod:`vggnet.names` (no torch)."""
    return click.option("--precision", *aliases, "precision", cls=AliasedOption, hidden_aliases=aliases,
                        type=click.Choice(choices), default=default, show_default=default is not None,
                        help=help_text)


def grad_checkpointing_option() -> Callable:
    """``--grad-checkpointing/--no-grad-checkpointing``; None when not given (a recipe's own setting stands)."""
    return click.option("--grad-checkpointing/--no-grad-checkpointing", default=None,
                        help="Recompute conv blocks in backward (less memory, ~1/3 more compute).")


WEIGHT_SUFFIXES = (".pth", ".pt", ".h5", ".hdf5", ".safetensors", ".bin")


def check_data_arg(data: str, extra: tuple[str, ...] = ()) -> None:
    """A --data that names nothing is one line before any work starts (:func:`check_data_spec`)."""
    from vggnet.data.datasets import check_data_spec

    check_data_spec(data, extra)


def check_weights_arg(weights: str) -> None:
    """--weights names a known download or an existing weight file (a regular file): checked before
    the data is read, without reading the weights (they are read once, when the model is built)."""
    from vggnet.errors import CheckpointError
    from vggnet.weights.hub import weight_file
    from vggnet.weights.load import check_weight_file

    path = Path(weights)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; pass a weight file, or a run as --checkpoint")
    if path.exists() or path.is_symlink():
        check_weight_file(path)
    elif len(path.parts) > 1 or path.suffix in WEIGHT_SUFFIXES:  # a path, not a name such as vgg16.keras
        raise CheckpointError(f"no weight file {path}")
    else:
        weight_file(weights)  # an unknown name: one line listing the known ones


def check_output_file(path: str | None) -> None:
    """An output file whose folder cannot exist (a file is in the way) is refused before any work."""
    from vggnet.atomic import refuse_non_regular

    if path is None:
        return
    _nearest_parent(Path(path))
    refuse_non_regular(Path(path))  # a link, a folder, a FIFO or /dev/null: refused now, not after the work


def _nearest_parent(path: Path) -> Path:
    """The nearest existing folder above ``path``, where it will be created; a file in the way
    (``file/out.csv``) is refused."""
    import errno

    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(parent))
            return parent
    return Path(".")


def check_output_dir(path: str) -> None:
    """An output folder that is a file, a link, or below a file is refused before any work."""
    import errno
    import os

    from vggnet.errors import VggnetError

    out = Path(path)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise VggnetError(f"{out} is {'a symbolic link' if out.is_symlink() else 'not a folder'}; "
                          "--out takes a folder (new or vggnet's own)")
    parent = _nearest_parent(out)
    if not os.access(parent, os.W_OK):
        raise PermissionError(errno.EACCES, "Permission denied", str(parent))


def expand_images(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    """Folders to the images below them, at parse time: a folder with none is a bad argument."""
    from vggnet.errors import DataError
    from vggnet.evaluate.predict import image_files

    try:
        return image_files(value)
    except DataError as err:
        raise click.BadParameter(str(err), ctx, param) from None
