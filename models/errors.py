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
