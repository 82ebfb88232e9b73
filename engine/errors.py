"""One error root for voxwire, split into local and peer errors.

Transports map these to HTTP statuses, WebSocket close codes and Realtime
`error` events through :func:`describe`, so the mapping lives in one place and
internals never leak to a peer.
"""

from __future__ import annotations

from dataclasses import dataclass


class VoxwireError(Exception):
    """Root of every error voxwire raises on purpose.

    A subclass says what it maps to in its class line, the one place that mapping is
    written: ``class UrlRefused(PeerError, code="url_refused")``; its HTTP status and
    close code come from the nearest base that sets them (:class:`NotFound` 404,
    :class:`Conflict` 409, ...) unless it gives its own.
    """

    code: str = "internal_error"
    http_status: int = 500
    ws_close_code: int = 1011
    retry_after_s: float | None = None
    """When to try again (HTTP Retry-After), for errors that pass."""

    def __init_subclass__(
        cls,
        *,
        code: str | None = None,
        http_status: int | None = None,
        ws_close_code: int | None = None,
        **kwargs: object,
    ) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in (
            ("code", code),
            ("http_status", http_status),
            ("ws_close_code", ws_close_code),
        ):
            if value is not None:
                setattr(cls, name, value)

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        """The request field the error is about, when there is one."""


class PeerError(VoxwireError, code="invalid_request_error", http_status=400, ws_close_code=1008):
    """The peer (client, file, request) sent something we cannot use."""


class LocalError(VoxwireError):
    """Something on our side failed; the peer is told only that it did."""


# -- kinds of peer error: each sets the status its subclasses share ------------------------


class NotFound(PeerError, code="not_found", http_status=404):
    """Something the request names does not exist."""


class Conflict(PeerError, code="conflict", http_status=409):
    """The request clashes with what the server holds."""


class InvalidValue(PeerError, code="invalid_value"):
    """A field whose value is not accepted."""


class InvalidRequest(PeerError, code="invalid_request"):
    """A body, header or parameter that does not have the expected shape."""


class UnsupportedMediaType(PeerError, code="unsupported_media_type", http_status=415):
    """A body of a content type the endpoint does not read."""


class PayloadTooLarge(PeerError, code="payload_too_large", http_status=413, ws_close_code=1009):
    """An upload or message larger than the configured limit."""


# -- the engine's own errors -------------------------------------------------------------------


class InvalidAudio(PeerError, code="invalid_audio"):
    """Audio that cannot be decoded or has the wrong shape or rate."""


class UnsupportedSampleRate(InvalidAudio, code="unsupported_sample_rate"):
    """An input sample rate the engine does not resample from."""


class EmptyCommit(PeerError, code="input_audio_buffer_commit_empty"):
    """A commit of an input audio buffer that holds (almost) no audio."""


class IllegalTransition(LocalError, code="illegal_transition"):
    """A state machine was asked to make a transition its table does not allow."""


class AudioEvicted(LocalError, code="audio_evicted"):
    """A ring-buffer range was read after it had already been overwritten."""


class Overloaded(LocalError, code="overloaded", http_status=503, ws_close_code=1013):
    """A bounded queue is full and the work was refused rather than queued."""

    retry_after_s = 1.0


class ModelNotFound(NotFound, code="model_not_found"):
    """A model id or path that no backend can load."""


class ModelLoadError(LocalError, code="model_load_error"):
    """A model was found but could not be loaded."""


@dataclass(frozen=True)
class ErrorDescription:
    """What a transport may tell a peer about an error."""

    code: str
    message: str
    http_status: int
    ws_close_code: int
    is_peer_error: bool
    param: str | None = None


def describe(error: BaseException) -> ErrorDescription:
    """Map any exception to what may be shown to a peer.

    Peer errors carry their own message; local and unexpected errors are reduced
    to their code so that internals stay inside.
    """
    if isinstance(error, PeerError):
        return ErrorDescription(
            error.code, error.message, error.http_status, error.ws_close_code, True, error.param
        )
    if isinstance(error, VoxwireError):
        return ErrorDescription(
            error.code, f"server error: {error.code}", error.http_status, error.ws_close_code, False
        )
    return ErrorDescription("internal_error", "server error", 500, 1011, False)
