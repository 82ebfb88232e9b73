"""One error root for voxwire, split into local and peer errors.

Transports map these to HTTP statuses, WebSocket close codes and Realtime
`error` events through :func:`describe`, so the mapping lives in one place and
internals never leak to a peer.
"""

from __future__ import annotations

from dataclasses import dataclass


class VoxwireError(Exception):
    """Root of every error voxwire raises on purpose."""

    code: str = "internal_error"
    http_status: int = 500
    ws_close_code: int = 1011
    retry_after_s: float | None = None
    """When to try again (HTTP Retry-After), for errors that pass."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        """The request field the error is about, when there is one."""


class PeerError(VoxwireError):
    """The peer (client, file, request) sent something we cannot use."""

    code = "invalid_request_error"
    http_status = 400
    ws_close_code = 1008


class LocalError(VoxwireError):
    """Something on our side failed; the peer is told only that it did."""


class InvalidAudio(PeerError):
    """Audio that cannot be decoded or has the wrong shape or rate."""

    code = "invalid_audio"


class UnsupportedSampleRate(InvalidAudio):
    """An input sample rate the engine does not resample from."""

    code = "unsupported_sample_rate"


class EmptyCommit(PeerError):
    """A commit of an input audio buffer that holds (almost) no audio."""

    code = "input_audio_buffer_commit_empty"


class PayloadTooLarge(PeerError):
    """An upload or message larger than the configured limit."""

    code = "payload_too_large"
    http_status = 413
    ws_close_code = 1009


class IllegalTransition(LocalError):
    """A state machine was asked to make a transition its table does not allow."""

    code = "illegal_transition"


class AudioEvicted(LocalError):
    """A ring-buffer range was read after it had already been overwritten."""

    code = "audio_evicted"


class Overloaded(LocalError):
    """A bounded queue is full and the work was refused rather than queued."""

    code = "overloaded"
    http_status = 503
    ws_close_code = 1013
    retry_after_s = 1.0


class ModelNotFound(PeerError):
    """A model id or path that no backend can load."""

    code = "model_not_found"
    http_status = 404


class ModelLoadError(LocalError):
    """A model was found but could not be loaded."""

    code = "model_load_error"


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
