"""Errors a user can cause, each with a message that fits on one line and says what to do."""

from __future__ import annotations


def one_line(err: BaseException) -> str:
    """The first line of an error's message (some libraries append context on further lines)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class VggnetError(Exception):
    """Base class: the CLI prints these as a single 'error: ...' line, without a traceback."""


class UnknownModelError(VggnetError, ValueError):
    """A model or configuration name that is not registered."""


class InputShapeError(VggnetError, ValueError):
    """An input tensor whose shape the network cannot take."""


class MissingDependencyError(VggnetError, ImportError):
    """An optional library (an extra) is needed for this feature and is not installed."""


class DataError(VggnetError, ValueError):
    """A dataset that cannot be used: unknown path, no images, labels out of range."""


class DownloadError(VggnetError, OSError):
    """A download that stopped early or failed; the partial file is kept so a rerun resumes."""

    permanent = False  # True where asking again cannot help (an HTTP 4xx answer)


class ChecksumError(DownloadError):
    """A file whose checksum differs from the published one (it is removed, never used)."""

    actual: str | None = None  # the digest the file had


class CheckpointError(VggnetError, ValueError):
    """A checkpoint or run directory that cannot be read or does not fit the model."""


class DivergedError(VggnetError, ArithmeticError):
    """Training produced a non-finite loss; the last good checkpoint (if any) is kept."""
