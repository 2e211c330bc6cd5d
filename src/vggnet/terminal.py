"""Text bound for the terminal, made safe at the output boundary.

File names, archive members and class names come from the data, and may hold anything: a
newline could forge a second ``error:`` line, an ESC sequence could recolour or move the
cursor. Every line vggnet prints about such a name goes through :func:`printable_text` first.
It agrees with :func:`vggnet.data.sources.printable` (undecodable bytes as ``\\xNN``, a newline
as ``\\n``, ESC as ``\\x1b``) and is idempotent, so names already escaped stay as they are.
"""

from __future__ import annotations

import logging

import click
from rich.text import Text


def printable_text(text: str) -> str:
    """``text`` as one printable line: bytes that are not UTF-8 (surrogate-escaped names) become
    ``\\xNN``, control and other non-printable characters their Python escapes."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate outside the escape range: keep its bytes visible
        raw = text.encode("utf-8", "surrogatepass")
    text = raw.decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class TerminalHandler(logging.Handler):
    """Log records as one escaped line each on the current stderr (``warning: ...``).

    The stream is looked up at each record (click's test runner swaps stderr), and the message
    is escaped so a name inside it cannot start a new line or send escape sequences."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.levelname.lower()}: {printable_text(record.getMessage())}"
            click.echo(line, err=True)
        except Exception:  # logging's contract: a failing handler reports (handleError), never raises
            self.handleError(record)


def install_log_handler(logger_name: str = "vggnet") -> logging.Handler:
    """Attach one :class:`TerminalHandler` to ``logger_name`` (again: the same one is kept)."""
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:
        if isinstance(handler, TerminalHandler):
            return handler
    handler = TerminalHandler(logging.WARNING)
    logger.addHandler(handler)
    return handler


def table_cell(value: object) -> Text:
    """A rich table cell showing ``value`` literally: escaped, and never read as rich markup (a
    file named ``[/]`` would otherwise stop the table with a markup error)."""
    return Text(printable_text(str(value)))
