"""The ``vggnet`` command: thin wiring from arguments to the library's functions.

Every command is a Python function too; the CLI only parses, calls and prints. A user error
(:class:`vggnet.errors.VggnetError`) becomes one ``error: ...`` line on stderr and exit code 2.
Whatever reaches the terminal from the data (file, member and class names) is escaped first
(:func:`vggnet.terminal.printable_text`), in errors and warnings alike.
"""

from __future__ import annotations

import sys
from errno import ENOSPC

import click
from safetensors import SafetensorError

from vggnet import __version__
from vggnet.atomic import write_failure
from vggnet.errors import VggnetError
from vggnet.terminal import install_log_handler, printable_text


def _message(err: BaseException) -> str | None:
    """The one line for an error the user can act on; None for a genuine bug (it keeps its traceback)."""
    if isinstance(err, VggnetError):
        return str(err).strip() or type(err).__name__
    if isinstance(err, OSError):  # a file that cannot be read or written: say which
        full = "; free some space and run again" if err.errno == ENOSPC else ""
        where = (f": {err.filename}" if err.filename else "") + full
        return f"{err.strerror or err}{where}"
    reason = write_failure(err)  # a library's failed write (safetensors, torch.save) lost the path
    return f"cannot write: {reason}; free some space and run again" if reason else None


class _Command(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from vggnet.cli.options import note_old_spellings

        note_old_spellings(self, args)
        return super().parse_args(ctx, args)


class _Group(click.Group):
    command_class = _Command
    group_class = type  # subgroups (bench, weights, experiment) are _Groups too, their commands _Commands

    def invoke(self, ctx: click.Context) -> object:
        install_log_handler()  # warnings: one escaped line each, not Python's bare last-resort print
        try:
            return super().invoke(ctx)
        except (VggnetError, OSError, RuntimeError, SafetensorError) as err:
            message = _message(err)
            if message is None:
                raise
            click.echo(f"error: {printable_text(message)}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vggnet")
def cli() -> None:
    """VGGNet (Simonyan & Zisserman, 2014): every network of the paper, analysed and trainable."""


def main() -> None:
    cli(prog_name="vggnet")


from vggnet.cli import (  # noqa: E402,F401  (registers the commands)
    analysis,
    bench,
    cache,
    experiment,
    explain,
    export,
    perceptual,
    predict,
    prepare,
    train,
    weights,
)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
