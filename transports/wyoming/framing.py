"""Reading one Wyoming event within limits.

An event is a JSON header line ``{type, data?, data_length?, payload_length?}``, then
`data_length` bytes of JSON merged into `data`, then `payload_length` bytes of payload.
The `wyoming` package's own reader (``wyoming.event.async_read_event``) trusts the
lengths a peer declares and turns every problem into "end of stream"; this reader checks
each length against :class:`WyomingLimits` before reading a byte of it, and says what
was wrong, so the peer gets an error event. Events are the package's
:class:`wyoming.event.Event`; writing stays the package's ``async_write_event``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wyoming.event import Event

from voxwire.engine.errors import PayloadTooLarge, PeerError
from voxwire.transports.wyoming.limits import WyomingLimits


class MalformedEvent(PeerError, code="malformed_event"):
    """An event whose framing cannot be read; the stream cannot be trusted after it."""


async def read_event(reader: asyncio.StreamReader, limits: WyomingLimits) -> Event | None:
    """The next event, or None at a clean end of stream (EOF between events).

    Raises :class:`MalformedEvent` or :class:`PayloadTooLarge`; either leaves the stream
    mid-event, so the connection must be closed after reporting it.
    """
    line = b""
    while not line.strip():  # blank lines between events are skipped
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return None
            raise MalformedEvent("the stream ended inside an event header") from None
        except asyncio.LimitOverrunError:
            raise PayloadTooLarge(
                f"event header longer than {limits.max_header_bytes} bytes"
            ) from None
    if len(line) > limits.max_header_bytes:
        raise PayloadTooLarge(f"event header longer than {limits.max_header_bytes} bytes")
    header = _json_object(line, "event header")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind:
        raise MalformedEvent("the event header has no 'type' string")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise MalformedEvent("'data' must be a JSON object")
    data_length = _length(header, "data_length", limits.max_data_bytes)
    payload_length = _length(header, "payload_length", limits.max_payload_bytes)
    try:
        if data_length:
            data = {**data, **_json_object(await reader.readexactly(data_length), "event data")}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        raise MalformedEvent("the stream ended inside an event") from None
    return Event(type=kind, data=data, payload=payload)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise MalformedEvent(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedEvent(f"{what} is not a JSON object")
    return value


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedEvent(f"'{key}' must be a non-negative integer")
    if value > limit:
        raise PayloadTooLarge(f"'{key}' {value} exceeds the limit of {limit} bytes")
    return value
