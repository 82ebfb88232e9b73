"""Strict types for multipart form fields, which arrive as text.

pydantic's lax mode would read ``stream=yes``, ``stream=1`` or ``stream=on`` as true and
``temperature=1_0`` as 10; a form field here takes only what the official clients send
(the ``openai`` SDK writes booleans as ``true`` / ``false`` and numbers with ``str()``):

* :data:`FormBool`: ``true`` or ``false`` (any case);
* :data:`FormFloat`: a decimal number, optionally with an exponent (``0``, ``0.2``,
  ``-1``, ``1e-05``); no ``nan``, ``inf``, underscores, hex or blank text.

JSON bodies validated with the same models still take real JSON booleans and numbers.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Strict

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def form_bool(value: object) -> object:
    """``true`` / ``false`` as a bool; anything else but a bool is refused."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "false"):
            return word == "true"
        raise ValueError(f"must be true or false, not {value[:32]!r}")
    return value


def decimal(text: str) -> float:
    """A decimal number's text as a float (ValueError saying why for other text)."""
    if not _DECIMAL.fullmatch(text.strip()):
        raise ValueError(f"must be a number such as 0.2, not {text[:32]!r}")
    return float(text)


def form_float(value: object) -> object:
    """A decimal number's text as a float; other text is refused."""
    if isinstance(value, str):
        return decimal(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


FormBool = Annotated[bool, BeforeValidator(form_bool), Strict()]
"""A boolean form field: ``true`` or ``false``."""

FormFloat = Annotated[float, BeforeValidator(form_float), Strict()]
"""A number form field: decimal text, finite."""
