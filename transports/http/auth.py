"""Optional API keys: `Authorization: Bearer <key>` on every route but /health.

Keys come from `--api-key` (repeatable), else the `VOXWIRE_API_KEYS`
environment variable (comma-separated), else the configuration file's
`[server] api_keys`; none means no authentication. :class:`ApiKeyMiddleware` is
pure ASGI, so it guards every router, including ones mounted later, and it
answers before routing:

* HTTP: 401 in OpenAI's error shape (`code: invalid_api_key`) with a
  `WWW-Authenticate: Bearer` header;
* WebSocket: the key may also come as the browser subprotocol
  `openai-insecure-api-key.<key>` (as OpenAI accepts it). A connection without a
  valid key is accepted, told why in a Realtime `error` event, and closed with
  code 1008 (policy violation), so browsers see the reason too.

Keys are compared in constant time over every configured key (SHA-256 digests
with `hmac.compare_digest`, so neither the position nor the length of a key
shows in the timing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from voxwire.transports.realtime.server_events import ErrorDetails, ErrorEvent

ENV_VAR = "VOXWIRE_API_KEYS"
SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
CLOSE_POLICY_VIOLATION = 1008

MISSING_KEY = (
    "You didn't provide an API key. Send it in the Authorization header as "
    "'Authorization: Bearer YOUR_KEY'."
)
WRONG_KEY = "Incorrect API key provided."


def api_keys_from(
    command_line: Sequence[str],
    environ: Mapping[str, str] | None = None,
    config: Sequence[str] = (),
) -> tuple[str, ...]:
    """The keys in force: the command line's, else the environment's, else the file's."""
    env = os.environ if environ is None else environ
    from_env = [key.strip() for key in env.get(ENV_VAR, "").split(",") if key.strip()]
    for source in (command_line, from_env, config):
        keys = tuple(dict.fromkeys(key.strip() for key in source if key.strip()))
        if keys:
            return keys
    return ()


def error_body(message: str) -> dict[str, Any]:
    """OpenAI's error shape for a missing or wrong key."""
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


class KeyChecker:
    """Checks a presented key against every configured key in constant time."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [_digest(key) for key in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: str | None) -> bool:
        """Whether `presented` is one of the keys; every key is compared, always."""
        candidate = _digest(presented or "")
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(candidate, digest)
        return found and presented is not None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def presented_key(scope: Scope) -> str | None:
    """The key a request or WebSocket handshake carries, if any."""
    authorization = _header(scope, b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    if scope["type"] == "websocket":
        for protocol in scope.get("subprotocols", ()):
            if protocol.startswith(SUBPROTOCOL_PREFIX):
                return protocol[len(SUBPROTOCOL_PREFIX) :] or None
    return None


class ApiKeyMiddleware:
    """Refuses HTTP requests and WebSocket connections without a valid key."""

    def __init__(
        self,
        app: ASGIApp,
        keys: Iterable[str],
        *,
        public_paths: Iterable[str] = ("/health",),
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        """`on_reject(scope_type)` is called for every refusal (metrics)."""
        self.app = app
        self.checker = KeyChecker(keys)
        self.public_paths = frozenset(public_paths)
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or not self.checker
            or scope["path"] in self.public_paths
        ):
            await self.app(scope, receive, send)
            return
        presented = presented_key(scope)
        if self.checker.accepts(presented):
            await self.app(scope, receive, send)
            return
        if self.on_reject is not None:
            self.on_reject(scope["type"])
        message = WRONG_KEY if presented is not None else MISSING_KEY
        if scope["type"] == "http":
            await _refuse_http(send, message, wrong=presented is not None)
        else:
            await _refuse_websocket(scope, receive, send, message)


async def _refuse_http(send: Send, message: str, *, wrong: bool) -> None:
    body = json.dumps(error_body(message)).encode()
    challenge = 'Bearer realm="voxwire"' + (', error="invalid_token"' if wrong else "")
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    connect = await receive()
    if connect["type"] != "websocket.connect":
        return
    accept: dict[str, Any] = {"type": "websocket.accept"}
    if "realtime" in scope.get("subprotocols", ()):
        accept["subprotocol"] = "realtime"
    await send(accept)
    event = ErrorEvent(error=ErrorDetails(code="invalid_api_key", message=message))
    await send({"type": "websocket.send", "text": json.dumps(event.to_wire())})
    await send(
        {"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION, "reason": "invalid api key"}
    )
