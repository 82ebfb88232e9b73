"""JSON from peers, parsed with a bound on nesting.

Python's parser recurses once per level: a deeply nested document raises
RecursionError (which, unhandled, is an internal error) well before memory is a
concern, and a few thousand levels are a few KiB. :func:`loads_bounded` turns both
that and any nesting beyond `max_depth` into :class:`JsonTooDeep`, a peer error.
"""

from __future__ import annotations

import json
from typing import Any

from voxwire.engine.errors import PeerError

MAX_JSON_DEPTH = 32
"""Deepest nesting of objects and arrays any voxwire API takes (its own need ~6)."""


class JsonTooDeep(PeerError, code="json_too_deep"):
    """A JSON document nested deeper than the limit."""


def loads_bounded(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads, refusing documents nested deeper than `max_depth` (JSONDecodeError
    for malformed input, as json.loads)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonTooDeep(_message(max_depth)) from None
    if depth(value, max_depth) > max_depth:
        raise JsonTooDeep(_message(max_depth))
    return value


def depth(value: Any, stop_after: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted without recursion;
    the count stops once it passes `stop_after`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > stop_after:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest


def _message(max_depth: int) -> str:
    return f"the JSON is nested more than {max_depth} levels deep"
