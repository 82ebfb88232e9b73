"""Every HTTP error in OpenAI's shape: ``{"error": {message, type, param, code}}``.

voxwire errors, FastAPI's request validation, the router's own 404 and 405, and
anything unexpected all leave through :func:`error_response`; an error that says
when to come back (a model still loading, a full queue) adds ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxwire.engine.errors import (
    InvalidValue,
    NotFound,
    PeerError,
    UnsupportedMediaType,
    VoxwireError,
    describe,
)

log = logging.getLogger(__name__)

JSON_ROUTES = frozenset({"/v1/audio/speech"})
"""Routes whose body is JSON: a form sent there is told to send JSON."""


class RouteNotFound(NotFound):
    """No route at that path."""


class MethodNotAllowed(PeerError, code="method_not_allowed", http_status=405):
    """A route that exists, asked with a method it does not answer."""


class SendJson(UnsupportedMediaType):
    """A JSON endpoint sent a form or another non-JSON body."""


def openai_error_body(error: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, body) in OpenAI's error shape for any exception."""
    desc = describe(error)
    return desc.http_status, {
        "error": {
            "message": desc.message,
            "type": "invalid_request_error" if desc.is_peer_error else "server_error",
            "param": desc.param,
            "code": desc.code,
        }
    }


def error_response(error: BaseException, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The JSON answer for `error`, with Retry-After when the error says when to retry."""
    status, body = openai_error_body(error)
    retry = error.retry_after_s if isinstance(error, VoxwireError) else None
    headers = dict(headers or {})
    if retry is not None and retry > 0:
        headers["Retry-After"] = str(max(1, math.ceil(retry)))
    return JSONResponse(body, status_code=status, headers=headers or None)


def validation_error(request: Request, exc: RequestValidationError) -> PeerError:
    """The first validation problem as one peer error naming its field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if request.url.path in JSON_ROUTES and content_type != "application/json":
        return SendJson(
            f"send JSON (Content-Type: application/json), not {content_type or 'no content type'}"
        )
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    param = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
    message = str(first.get("msg")).removeprefix("Value error, ")  # a validator's own words
    return InvalidValue(f"{param or 'request'}: {message}", param=param or None)


def http_error(request: Request, exc: StarletteHTTPException) -> VoxwireError:
    """The router's (and Starlette's) own HTTP errors as voxwire errors."""
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        return RouteNotFound(f"no route for {where}")
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("allow") or (exc.headers or {}).get("Allow") or ""
        return MethodNotAllowed(
            f"{where}: method not allowed" + (f"; use {allowed}" if allowed else "")
        )
    error = PeerError(str(exc.detail)) if exc.status_code < 500 else VoxwireError(str(exc.detail))
    error.http_status = exc.status_code
    return error


def install(app: FastAPI) -> None:
    """Answer every error of `app` in OpenAI's shape."""

    @app.exception_handler(VoxwireError)
    async def voxwire_error(_request: Request, exc: VoxwireError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("request failed: %s", exc)
        return error_response(exc)

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error while answering a request", exc_info=exc)
        return error_response(exc)  # says only "server error"

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(request, exc))

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(http_error(request, exc), headers=exc.headers)
