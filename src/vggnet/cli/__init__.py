"""The ``vggnet`` command: thin wiring from arguments to the library's functions.

Every command is a Python function too; the CLI only parses, calls and prints. A user error
(:class:`vggnet.errors.VggnetError`) becomes one ``error: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import click

from vggnet import __version__
from vggnet.errors import VggnetError, one_line


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except VggnetError as err:
            click.echo(f"error: {one_line(err)}", err=True)
            ctx.exit(2)
        except OSError as err:  # a file that cannot be read or written: say which, no traceback
            where = f": {err.filename}" if err.filename else ""
            click.echo(f"error: {err.strerror or err}{where}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vggnet")
def cli() -> None:
    """VGGNet (Simonyan & Zisserman, 2014): every network of the paper, analysed and trainable."""


def main() -> None:
    cli(prog_name="vggnet")


from vggnet.cli import analysis, bench, cache, experiment, export, predict, train, weights  # noqa: E402,F401  (registers the commands)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
