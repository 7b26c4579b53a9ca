"""The stream package's own exceptions; each carries a stable ``code`` and an HTTP ``status``."""

from __future__ import annotations


class StreamError(Exception):
    """Base of every expected relay failure. The web edge maps ``status``/``code`` to HTTP."""

    code = "stream_error"
    status = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)

    @property
    def message(self) -> str:
        """Human-readable explanation."""
        return str(self.args[0])


class NotPublishing(StreamError):
    """Nobody is publishing this stream right now."""

    code = "not_live"
    status = 404


class SessionNotFound(StreamError):
    """No such publisher or viewer session."""

    code = "session_not_found"
    status = 404


class AlreadyLive(StreamError):
    """Another publisher is already live on this stream."""

    code = "already_live"
    status = 409


class BadSdp(StreamError):
    """The SDP offer is malformed or cannot be negotiated."""

    code = "bad_sdp"
    status = 400


class CodecMismatch(BadSdp):
    """The viewer cannot receive the codec the publisher sends (the relay never transcodes)."""

    code = "codec_mismatch"


class UnsupportedMediaType(StreamError):
    """The request body is not of the expected content type."""

    code = "unsupported_media_type"
    status = 415


class TrickleNotSupported(StreamError):
    """The PATCH asked for something other than trickle ICE (an ICE restart, for instance)."""

    code = "unprocessable"
    status = 422


class PreconditionFailed(StreamError):
    """The If-Match header does not match the session's ETag."""

    code = "precondition_failed"
    status = 412


class RelayClosed(StreamError):
    """The relay is shutting down."""

    code = "unavailable"
    status = 503


class StreamFull(StreamError):
    """The stream, or the relay as a whole, has as many viewers as it may take."""

    code = "stream_full"
    status = 503
