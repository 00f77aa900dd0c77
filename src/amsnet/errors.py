"""Typed errors of the package.

Every error message says what is wrong *and* what to change; the CLI prints the message
without a traceback, so the message is all a user sees.
"""

from __future__ import annotations


class AmsnetError(Exception):
    """Base class of every error this package raises on purpose."""


class ShapeError(AmsnetError, ValueError):
    """A tensor has the wrong rank, size or dtype for the operation."""


class ConfigError(AmsnetError, ValueError):
    """A configuration value or keyword argument is invalid (typo, out of range, inconsistent)."""


class CheckpointError(AmsnetError, ValueError):
    """A weights file is missing, corrupt, of the wrong kind or does not fit the network."""


class DataError(AmsnetError, ValueError):
    """A data file or folder is missing, unreadable, corrupt or not in the expected layout."""
