"""Errors raised by model backends.

Models never import the engine, so they have their own small error family; the
engine and transports map these onto the single ``VoxwireError`` root.
"""

from __future__ import annotations


class ModelError(Exception):
    """Root of every error a model backend raises on purpose."""


class ModelNotFoundError(ModelError):
    """A model id, name or path that no backend can find or load."""


class ModelLoadFailed(ModelError):
    """The model was found but could not be loaded (corrupt files, bad config, ...)."""


class Cancelled(ModelError):
    """The caller gave the work up: it stopped at its next step instead of running on.

    `step_seconds` is how long the step in flight when the stop was asked for ran on
    (the one piece of work that still finished); `late_seconds` is how long after the
    stop was asked for it was noticed.
    """

    def __init__(self, message: str, *, step_seconds: float, late_seconds: float) -> None:
        super().__init__(message)
        self.step_seconds = step_seconds
        self.late_seconds = late_seconds
