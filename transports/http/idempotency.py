"""The ``Idempotency-Key`` header of the POSTs that create state (workflows, speakers):
read and checked here, stored by the services (:mod:`voxwire.services.idempotency`).

The first request with a key creates; a retry with the same key and the same request
gets the first answer again, marked ``Idempotent-Replayed: true``; the same key with
another request gets 422 ``idempotency_key_reused``."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

from fastapi import Request

from voxwire.engine.errors import PeerError
from voxwire.services.idempotency import IdempotencyKey, KeyReused

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
REPLAYED = {"Idempotent-Replayed": "true"}
"""The header on an answer given again for a retried key."""


class IdempotencyKeyReused(PeerError, code="idempotency_key_reused", http_status=422):
    """An Idempotency-Key sent again with a different request."""


def idempotency_key(request: Request, content: bytes) -> IdempotencyKey | None:
    """The request's Idempotency-Key header with a digest of `content` (what makes two
    requests the same: the body, or a multipart body's fields and file), if it has one."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise PeerError(f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable characters", param=HEADER)
    return IdempotencyKey(key, hashlib.sha256(content).hexdigest())


@contextlib.contextmanager
def refuse_reused_keys() -> Iterator[None]:
    """Turn a store's KeyReused into the 422 the client sees."""
    try:
        yield
    except KeyReused:
        raise IdempotencyKeyReused(
            f"this {HEADER} was used with a different request", param=HEADER
        ) from None
