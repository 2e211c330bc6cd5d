"""Errors a user can cause, each with a message that fits on one line and says what to do."""

from __future__ import annotations


class VggnetError(Exception):
    """Base class: the CLI prints these as a single 'error: ...' line, without a traceback."""


class UnknownModelError(VggnetError, ValueError):
    """A model or configuration name that is not registered."""


class InputShapeError(VggnetError, ValueError):
    """An input tensor whose shape the network cannot take."""


class MissingDependencyError(VggnetError, ImportError):
    """An optional library (an extra) is needed for this feature and is not installed."""
